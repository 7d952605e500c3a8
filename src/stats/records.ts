// The two records the Metric Sender ships, with the reference's field names where it had them (tables
// node_stats and live_stats of its fluent-bit sidecar). What they never hold: job inputs or outputs, client
// IPs, the node's own IP, or any secret. Container restrictions are sent as configured, except allowed_ips,
// which may name the operator's clients: only their number goes out.
import type { ContainerConfig } from "../config/schema.ts";
import type { JobCounters, SuccessFailure } from "../orchestration/orchestrator.ts";
import type { HardwareProfile, Utilization } from "./hardware.ts";

export interface NodeRecordInput {
  uid: string;
  version: string;
  compatVersion: string;
  /** The node's wallet address, null with the chain off. */
  address: string | null;
  chainId: number | null;
  port: number;
  containers: readonly ContainerConfig[];
  /** Jobs finished since the previous node record. */
  counters: JobCounters;
  resources: HardwareProfile;
  uptimeSeconds: number;
  nodeUptimeSeconds: number;
}

export interface LiveRecordInput {
  uid: string;
  pending: { offchain: number; onchain: number };
  utilization: Utilization;
}

export function nodeRecord(input: NodeRecordInput): Record<string, unknown> {
  return {
    uid: input.uid,
    version: input.compatVersion,
    node_version: input.version,
    address: input.address,
    chain_id: input.chainId,
    port: input.port,
    containers: input.containers.map((container) => ({
      id: container.id,
      external: container.external,
      generates_proofs: container.generates_proofs,
      allowed_addresses: [...container.allowed_addresses],
      allowed_delegate_addresses: [...container.allowed_delegate_addresses],
      allowed_ips_count: container.allowed_ips.length,
    })),
    counters: input.counters,
    resources: input.resources,
    uptime: input.uptimeSeconds,
    node_uptime: input.nodeUptimeSeconds,
  };
}

export function liveRecord(input: LiveRecordInput): Record<string, unknown> {
  return { uid: input.uid, jobs_pending: input.pending, utilization: input.utilization };
}

const minus = (now: SuccessFailure, before: SuccessFailure | undefined): SuccessFailure => ({
  success: now.success - (before?.success ?? 0),
  failed: now.failed - (before?.failed ?? 0),
});

/**
 * Counts since `before`, from the orchestrator's running totals. The totals are never reset (the reference
 * popped them), so /metrics counters and these records read the same source without disturbing each other.
 */
export function countersSince(now: JobCounters, before: JobCounters): JobCounters {
  const containers: Record<string, SuccessFailure> = {};
  for (const [id, counts] of Object.entries(now.containers)) {
    containers[id] = minus(counts, before.containers[id]);
  }
  return {
    jobs: {
      offchain: minus(now.jobs.offchain, before.jobs.offchain),
      onchain: minus(now.jobs.onchain, before.jobs.onchain),
    },
    containers,
  };
}
