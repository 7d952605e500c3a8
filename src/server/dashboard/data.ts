// GET /dashboard/data: one JSON snapshot of the node for the dashboard page, built from memory only (service
// health, container states, job counters, the dashboard history). It names things and counts them; it never
// carries job inputs or outputs, container endpoints or headers, or any configured secret, and the whole
// snapshot goes through redactValue as a last guard.
import type { Config } from "../../config/schema.ts";
import { redactValue } from "../../lib/redact.ts";
import type { ServiceHealth } from "../../lib/service.ts";
import type { ContainerStatus } from "../../shared/containers.ts";
import type { DashboardHistory } from "../dashboard-history.ts";
import { healthVerdict, readinessProblems } from "../health.ts";

export interface DashboardInput {
  config: Config;
  version: string;
  compatVersion: string;
  uptimeSeconds: number;
  warnings: readonly string[];
  chainAddress: string;
  health: Record<string, ServiceHealth>;
  statuses: readonly ContainerStatus[];
  pending: { offchain: number; onchain: number };
  history: DashboardHistory;
  now: number;
}

type Rec = Record<string, unknown>;
const isRecord = (value: unknown): value is Rec =>
  typeof value === "object" && value !== null && !Array.isArray(value);
const num = (value: unknown): number | null =>
  typeof value === "number" && Number.isFinite(value) ? value : null;
const text = (value: unknown): string | null => (typeof value === "string" ? value : null);

function chainSection(input: DashboardInput): Rec | null {
  const { config, health, history, now } = input;
  if (!config.chain.enabled) return null;
  const chain = health.chain;
  const processor = health.processor;
  const sync = isRecord(chain?.sync) ? chain.sync : {};
  const rpc = isRecord(chain?.rpc) ? chain.rpc : {};
  const head = num(sync.head_block);
  const synced = num(sync.last_synced_block);
  const deliveries = isRecord(processor?.deliveries) ? processor.deliveries : {};
  return {
    chain_id: num(chain?.chain_id),
    status: chain?.detail ?? null,
    phase: text(sync.phase),
    head_block: head,
    synced_block: synced,
    lag_blocks: head !== null && synced !== null ? Math.max(0, head - synced) : null,
    tracked: num(processor?.tracked),
    delegated: num(processor?.delegated),
    pending_txs: num(processor?.pending_txs),
    deliveries: {
      sent: num(deliveries.sent) ?? 0,
      confirmed: num(deliveries.confirmed) ?? 0,
      reverted: num(deliveries.reverted) ?? 0,
      replaced: num(deliveries.replaced) ?? 0,
      failed: num(deliveries.failed) ?? 0,
    },
    deliveries_per_minute: history.deliveryRate(now),
    wallet: {
      address: text(processor?.address) || input.chainAddress,
      balance_wei: text(processor?.balance_wei),
    },
    // Its native balance, read by the processor once a minute (token balances are per subscription token).
    payment_wallet: {
      address: config.chain.wallet?.payment_address || null,
      balance_wei: text(processor?.payment_wallet_balance_wei),
    },
    rpc: {
      url: text(rpc.url),
      requests: num(rpc.requests) ?? 0,
      failures: num(rpc.failures) ?? 0,
      exhausted: num(rpc.exhausted) ?? 0,
      failovers: num(rpc.failovers) ?? 0,
      by_method: isRecord(rpc.byMethod) ? rpc.byMethod : {},
      // Per endpoint (scheme://host only: paths may hold API keys), primary and fallbacks.
      by_endpoint: isRecord(rpc.byEndpoint) ? rpc.byEndpoint : {},
      last_error: text(rpc.lastError),
    },
  };
}

export function buildDashboardData(input: DashboardInput): unknown {
  const { config, health, statuses, history, now } = input;
  // The same verdicts as GET /health and GET /ready, so the page never disagrees with them.
  const verdict = healthVerdict(health, statuses);
  const notReady = readinessProblems(health, statuses, config.chain.enabled, now);
  const configured = new Map(config.containers.map((container) => [container.id, container]));
  return redactValue(
    {
      generated_at: now,
      node: {
        version: input.version,
        compat_version: input.compatVersion,
        uptime_s: Math.round(input.uptimeSeconds),
        store: config.redis ? "redis" : "embedded",
        chain_enabled: config.chain.enabled,
        address: input.chainAddress || null,
        chain_id: num(health.chain?.chain_id),
        manage_containers: config.manage_containers,
        warnings: input.warnings,
      },
      health: {
        status: verdict.healthy ? "healthy" : "unhealthy",
        degraded: verdict.degraded,
        checks: Object.entries(health).map(([name, check]) => ({
          name,
          ok: check.ok,
          detail: check.detail ?? null,
        })),
      },
      readiness: { ready: notReady.length === 0, reasons: notReady },
      containers: statuses.map((status) => ({
        id: status.id,
        state: status.state,
        ready: status.ready,
        detail: status.detail ?? null,
        since: status.since,
        remote: status.state === "remote" || Boolean(configured.get(status.id)?.url),
        ...history.container(status.id),
      })),
      jobs: {
        pending: input.pending,
        totals: history.totals(),
        rate: history.jobRate(now),
        latest: history.latestJobs(),
      },
      chain: chainSection(input),
      logs: history.logs(),
    },
    0,
  );
}
