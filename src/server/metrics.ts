// GET /metrics: the node's state in the Prometheus text format (0.0.4), built from the same sources as /health
// and /info (service health, job counters, container states, chain sync progress and RPC counters), so the
// two can never disagree. Everything is read from memory; nothing here waits on Docker, Redis or the chain.
import type { ServiceHealth } from "../lib/service.ts";
import type { JobCounters } from "../orchestration/orchestrator.ts";
import type { ContainerStatus } from "../shared/containers.ts";

export interface MetricsInput {
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

/** Label values escaped as the text format requires (backslash, double quote, newline). */
function labelText(labels: Labels): string {
  const parts = Object.entries(labels).map(
    ([name, value]) => `${name}="${value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n")}"`,
  );
  return parts.length === 0 ? "" : `{${parts.join(",")}}`;
}

class Exposition {
  private readonly lines: string[] = [];
  family(name: string, type: "gauge" | "counter", help: string, samples: Array<[Labels, number]>): void {
    if (samples.length === 0) return;
    this.lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    for (const [labels, value] of samples)
      this.lines.push(`${name}${labelText(labels)} ${formatValue(value)}`);
  }
  /** One unlabelled sample from a health record's numeric field, when the record has it. */
  fromField(
    record: Record<string, unknown> | undefined,
    key: string,
    name: string,
    type: "gauge" | "counter",
    help: string,
  ): void {
    const value = numberAt(record, key);
    if (value !== undefined) this.family(name, type, help, [[{}, value]]);
  }
  text(): string {
    return `${this.lines.join("\n")}\n`;
  }
}

function formatValue(value: number): string {
  if (Number.isNaN(value)) return "NaN";
  if (!Number.isFinite(value)) return value > 0 ? "+Inf" : "-Inf";
  return String(value);
}

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value);
const numberAt = (record: Record<string, unknown> | undefined, key: string): number | undefined => {
  const value = record?.[key];
  return typeof value === "number" && Number.isFinite(value) ? value : undefined;
};

/** The chain service's health carries `rpc` counters and listener `sync` progress (src/chain/service.ts). */
function chainSamples(out: Exposition, chain: ServiceHealth | undefined): void {
  const rpc = isRecord(chain?.rpc) ? chain.rpc : undefined;
  const byMethod = isRecord(rpc?.byMethod) ? rpc.byMethod : {};
  out.family(
    "infernet_rpc_requests_total",
    "counter",
    "JSON-RPC requests sent, by method.",
    Object.entries(byMethod).flatMap(([method, n]) =>
      typeof n === "number" ? [[{ method }, n] as [Labels, number]] : [],
    ),
  );
  for (const [key, name, help] of [
    ["failures", "infernet_rpc_failures_total", "JSON-RPC requests that failed (before retries)."],
    ["exhausted", "infernet_rpc_exhausted_total", "JSON-RPC requests that failed after every retry."],
    ["failovers", "infernet_rpc_failovers_total", "Switches to another RPC URL after a failure."],
  ] as const) {
    out.fromField(rpc, key, name, "counter", help);
  }
  const sync = isRecord(chain?.sync) ? chain.sync : undefined;
  for (const [key, name, help] of [
    ["head_block", "infernet_chain_head_block", "Latest block number seen from the RPC."],
    ["last_synced_block", "infernet_chain_synced_block", "Last block whose subscriptions are all synced."],
    [
      "head_sub_id",
      "infernet_chain_head_subscription_id",
      "Highest subscription id on-chain at the synced block.",
    ],
    ["last_sub_id", "infernet_chain_synced_subscription_id", "Highest subscription id synced."],
  ] as const) {
    out.fromField(sync, key, name, "gauge", help);
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
    "Subscriptions the Guardian filtered out.",
  );
}

export function renderMetrics(input: MetricsInput): string {
  const out = new Exposition();
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
    Object.entries(containers).flatMap(
      ([container, counts]): Array<[Labels, number]> => [
        [{ container, status: "success" }, counts.success],
        [{ container, status: "failed" }, counts.failed],
      ],
    ),
  );
  out.family(
    "infernet_container_ready",
    "gauge",
    "Whether each configured container can take jobs (1) or not (0).",
    input.containers.map((status) => [{ container: status.id, state: status.state }, status.ready ? 1 : 0]),
  );
  chainSamples(out, input.health.chain);
  const tracker = input.health.processor;
  out.fromField(
    tracker,
    "tracked",
    "infernet_subscriptions_tracked",
    "gauge",
    "Subscriptions the node tracks.",
  );
  out.fromField(
    tracker,
    "delegated",
    "infernet_delegated_subscriptions_tracked",
    "gauge",
    "Delegated subscriptions the node keeps.",
  );
  out.family("infernet_process_uptime_seconds", "gauge", "Seconds since the node started.", [
    [{}, Math.round(input.uptimeSeconds)],
  ]);
  out.family("infernet_process_resident_memory_bytes", "gauge", "Resident memory of the node process.", [
    [{}, input.residentBytes],
  ]);
  return out.text();
}
