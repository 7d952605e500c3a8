// The /metrics families read from the node's state at scrape time: service health (as /health shows it),
// job counters, container states, chain sync progress, RPC counters, the processor's deliveries and the
// Metric Sender's counts. Everything comes from memory; nothing here waits on Docker, Redis or the chain.
//
// A fresh prom-client Registry per scrape holds them, so a family whose source is absent (no chain, no
// processor yet) is left out instead of showing a misleading 0, and label sets that disappeared (a container
// removed from the config on restart) never linger. prom-client writes the text format (escaping, values).
import { Counter, Gauge, Registry } from "prom-client";
import type { ServiceHealth } from "../lib/service.ts";
import type { JobCounters } from "../orchestration/orchestrator.ts";
import type { ContainerStatus } from "../shared/containers.ts";

export interface SnapshotInput {
  version: string;
  compatVersion: string;
  health: Record<string, ServiceHealth>;
  pending: { offchain: number; onchain: number };
  counters: JobCounters;
  containers: readonly ContainerStatus[];
  uptimeSeconds: number;
  residentBytes: number;
}

type Labels = Record<string, string>;
type Sample = [Labels, number];
type Fields = Record<string, unknown>;

class Families {
  readonly registry = new Registry();
  /** Registers a gauge or counter with these samples; nothing when there are none. */
  family(name: string, type: "gauge" | "counter", help: string, samples: Sample[]): void {
    const first = samples[0];
    if (!first) return;
    const options = { name, help, labelNames: Object.keys(first[0]), registers: [this.registry] };
    if (type === "gauge") {
      const gauge = new Gauge(options);
      for (const [labels, value] of samples) gauge.set(labels, value);
      return;
    }
    const counter = new Counter(options);
    for (const [labels, value] of samples) counter.inc(labels, Math.max(0, value));
  }
  /** One unlabelled sample from a record's numeric field, when the record has it. */
  fromField(
    record: Fields | undefined,
    key: string,
    name: string,
    type: "gauge" | "counter",
    help: string,
  ): void {
    const value = numberAt(record, key);
    if (value !== undefined) this.family(name, type, help, [[{}, value]]);
  }
}

const isRecord = (value: unknown): value is Fields =>
  typeof value === "object" && value !== null && !Array.isArray(value);
const recordAt = (record: Fields | undefined, key: string): Fields | undefined => {
  const value = record?.[key];
  return isRecord(value) ? value : undefined;
};
const numberAt = (record: Fields | undefined, key: string): number | undefined => {
  const value = record?.[key];
  if (typeof value === "string" && /^\d+$/.test(value)) return Number(value); // wei amounts as strings
  return typeof value === "number" && Number.isFinite(value) ? value : undefined;
};
/** {key: number} → one sample per key, labelled `label`. */
const byKey = (record: Fields | undefined, label: string): Sample[] =>
  Object.entries(record ?? {}).flatMap(([key, n]) => (typeof n === "number" ? [[{ [label]: key }, n]] : []));

/** The chain service's health carries `rpc` counters and listener `sync` progress (src/chain/service.ts). */
function chainFamilies(out: Families, chain: Fields | undefined): void {
  const rpc = recordAt(chain, "rpc");
  out.family(
    "infernet_rpc_requests_total",
    "counter",
    "JSON-RPC requests sent (retries included), by method.",
    byKey(recordAt(rpc, "byMethod"), "method"),
  );
  out.family(
    "infernet_rpc_errors_total",
    "counter",
    "JSON-RPC attempts that failed with an outage, timeout or rate limit (each retried), by method.",
    byKey(recordAt(rpc, "failuresByMethod"), "method"),
  );
  out.fromField(
    rpc,
    "exhausted",
    "infernet_rpc_exhausted_total",
    "counter",
    "JSON-RPC requests that failed after every retry.",
  );
  out.fromField(
    rpc,
    "failovers",
    "infernet_rpc_failovers_total",
    "counter",
    "Switches to another RPC URL after a failure.",
  );
  const sync = recordAt(chain, "sync");
  for (const [key, name, help] of [
    ["head_block", "infernet_chain_head_block", "Latest block number seen from the RPC."],
    ["last_synced_block", "infernet_chain_synced_block", "Last block whose subscriptions are all synced."],
    ["head_sub_id", "infernet_chain_head_subscription_id", "Highest subscription id at the synced block."],
    ["last_sub_id", "infernet_chain_synced_subscription_id", "Highest subscription id synced."],
  ] as const) {
    out.fromField(sync, key, name, "gauge", help);
  }
  const head = numberAt(sync, "head_block");
  const synced = numberAt(sync, "last_synced_block");
  if (head !== undefined && synced !== undefined) {
    out.family("infernet_chain_sync_lag_blocks", "gauge", "Blocks between the head and the synced block.", [
      [{}, Math.max(0, head - synced)],
    ]);
  }
  out.fromField(
    sync,
    "relayed",
    "infernet_subscriptions_relayed_total",
    "counter",
    "Subscriptions that passed the Guardian.",
  );
  out.fromField(
    sync,
    "ignored",
    "infernet_subscriptions_ignored_total",
    "counter",
    "On-chain subscriptions the Guardian filtered out.",
  );
}

/** The processor reports what it tracks and delivers. */
function processorFamilies(out: Families, health: Record<string, ServiceHealth>): void {
  const processor = health.processor;
  out.fromField(processor, "tracked", "infernet_subscriptions_tracked", "gauge", "Subscriptions tracked.");
  out.fromField(
    processor,
    "delegated",
    "infernet_delegated_subscriptions_tracked",
    "gauge",
    "Delegated subscriptions tracked.",
  );
  out.family(
    "infernet_deliveries_total",
    "counter",
    "deliverCompute transactions, by outcome (sent, confirmed, reverted, replaced, reorged, failed).",
    byKey(recordAt(health.processor, "deliveries"), "outcome"),
  );
  out.fromField(
    health.processor,
    "pending_txs",
    "infernet_pending_transactions",
    "gauge",
    "Transactions sent and not yet mined.",
  );
  out.fromField(
    health.processor,
    "fee_capped",
    "infernet_wallet_fee_capped",
    "gauge",
    "1 while a transaction of the node cannot be replaced because chain.wallet.max_fee_per_gas is reached.",
  );
  out.fromField(
    health.processor,
    "chain_clock_lag_s",
    "infernet_chain_clock_lag_seconds",
    "gauge",
    "The host's clock minus the chain's (latest block's timestamp plus the time since it was seen), in seconds.",
  );
  out.fromField(
    recordAt(health.processor, "events"),
    "behind",
    "infernet_event_scan_blocks_behind",
    "gauge",
    "Blocks between the Coordinator event scan's cursor and the head.",
  );
  out.fromField(
    health.processor,
    "nonce",
    "infernet_wallet_nonce",
    "gauge",
    "Next nonce of the node's wallet.",
  );
  out.fromField(
    health.processor,
    "balance_wei",
    "infernet_wallet_balance_wei",
    "gauge",
    "Native balance of the node's wallet, in wei (as a float).",
  );
  out.fromField(
    health.processor,
    "payment_wallet_balance_wei",
    "infernet_payment_wallet_balance_wei",
    "gauge",
    "Native balance of the node's payment wallet (chain.wallet.payment_address), in wei (as a float).",
  );
}

function statsFamilies(out: Families, stats: Fields | undefined): void {
  const records = recordAt(stats, "records");
  out.family(
    "infernet_stats_records_total",
    "counter",
    "Metric Sender records, by outcome: sent to the Fluent receiver, or dropped (queue full or shutdown).",
    byKey(records, "outcome"),
  );
  out.fromField(
    stats,
    "queued",
    "infernet_stats_queue_length",
    "gauge",
    "Metric Sender records waiting to be sent.",
  );
}

export function snapshotRegistry(input: SnapshotInput): Registry {
  const out = new Families();
  out.family("infernet_build_info", "gauge", "Build information.", [
    [{ version: input.version, compat_version: input.compatVersion }, 1],
  ]);
  out.family(
    "infernet_up",
    "gauge",
    "Whether each part of the node reports itself healthy (1) or not (0), as in /health.",
    Object.entries(input.health).map(([part, health]) => [{ part }, health.ok ? 1 : 0]),
  );
  out.family("infernet_jobs_pending", "gauge", "Jobs currently running, by kind.", [
    [{ kind: "offchain" }, input.pending.offchain],
    [{ kind: "onchain" }, input.pending.onchain],
  ]);
  const { jobs, containers } = input.counters;
  out.family("infernet_jobs_total", "counter", "Finished jobs, by kind and outcome.", [
    [{ kind: "offchain", status: "success" }, jobs.offchain.success],
    [{ kind: "offchain", status: "failed" }, jobs.offchain.failed],
    [{ kind: "onchain", status: "success" }, jobs.onchain.success],
    [{ kind: "onchain", status: "failed" }, jobs.onchain.failed],
  ]);
  out.family(
    "infernet_container_jobs_total",
    "counter",
    "Container calls, by container and outcome.",
    Object.entries(containers).flatMap(([container, counts]): Sample[] => [
      [{ container, status: "success" }, counts.success],
      [{ container, status: "failed" }, counts.failed],
    ]),
  );
  const statuses = input.containers;
  out.family(
    "infernet_container_up",
    "gauge",
    "Whether each configured container can take jobs (1) or not (0).",
    statuses.map((status) => [{ container: status.id }, status.ready ? 1 : 0]),
  );
  out.family(
    "infernet_container_restarts_total",
    "counter",
    "Restarts and recreations of managed containers by the node.",
    statuses.flatMap((s): Sample[] => (s.restarts === undefined ? [] : [[{ container: s.id }, s.restarts]])),
  );
  out.family(
    "infernet_container_probe_failures_total",
    "counter",
    "Liveness probes that found the container not answering HTTP.",
    statuses.flatMap((s): Sample[] =>
      s.probe_failures === undefined ? [] : [[{ container: s.id }, s.probe_failures]],
    ),
  );
  chainFamilies(out, input.health.chain);
  processorFamilies(out, input.health);
  statsFamilies(out, input.health.stats);
  out.family("infernet_process_uptime_seconds", "gauge", "Seconds since the node started.", [
    [{}, Math.round(input.uptimeSeconds)],
  ]);
  out.family("infernet_process_resident_memory_bytes", "gauge", "Resident memory of the node process.", [
    [{}, input.residentBytes],
  ]);
  return out.registry;
}
