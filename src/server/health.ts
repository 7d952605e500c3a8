// What /health and /ready conclude from the parts' health records and the container statuses. Two questions:
// /health: can the node take any work at all? (infernet_client and load balancers read it: 503 means "send
// nothing here"); /ready: is every part fully up? (systemd readiness, Kubernetes, rollouts wait on it).
// A part that is down while the node still serves (one container of several, a chain sync behind, the
// Metric Sender's receiver gone) keeps /health at 200 and is listed in `degraded`.
import type { ServiceHealth } from "../lib/service.ts";
import type { ContainerStatus } from "../shared/containers.ts";

/** Parts without which no job can be taken: the HTTP server (not shutting down) and the job store. */
const ESSENTIAL = ["rest", "store"] as const;
/** Telemetry and the log file (full disk) never make the node unready: neither stops a job. */
const TELEMETRY = new Set(["stats", "log"]);
/** An RPC error this recent means the RPC did not answer recently (attempts fail over and retry meanwhile). */
export const RPC_RECENT_MS = 15_000;

export interface HealthVerdict {
  healthy: boolean;
  /** Why no work can be taken (empty when healthy). */
  failing: string[];
  /** Parts down while the node still serves: check names, and `containers.<id>` per container not ready. */
  degraded: string[];
}

const detailOf = (check: ServiceHealth | undefined) => check?.detail ?? "not ok";

export function healthVerdict(
  checks: Record<string, ServiceHealth>,
  containers: readonly ContainerStatus[],
): HealthVerdict {
  const failing: string[] = ESSENTIAL.filter((part) => checks[part] && !checks[part].ok);
  if (containers.length > 0 && !containers.some((status) => status.ready)) failing.push("containers");
  const degraded: string[] = [];
  for (const [name, check] of Object.entries(checks)) {
    if (check.ok || failing.includes(name) || name === "containers") continue;
    degraded.push(name);
  }
  if (!failing.includes("containers")) {
    const down = containers.filter((status) => !status.ready).map((status) => `containers.${status.id}`);
    degraded.push(...down);
    // The engine itself (Docker not answering) while every container still serves.
    if (down.length === 0 && checks.containers && !checks.containers.ok) degraded.push("containers");
  }
  return { healthy: failing.length === 0, failing, degraded };
}

/** Why the node is not fully ready; empty when it is. */
export function readinessProblems(
  checks: Record<string, ServiceHealth>,
  containers: readonly ContainerStatus[],
  chainEnabled: boolean,
  nowMs: number,
): string[] {
  const reasons = containers
    .filter((status) => !status.ready)
    .map((status) => `container ${status.id}: ${status.state} (${status.detail ?? "not ready"})`);
  for (const [name, check] of Object.entries(checks)) {
    if (check.ok || TELEMETRY.has(name)) continue;
    if (name === "containers" && reasons.length > 0) continue; // already named one by one
    reasons.push(`${name}: ${detailOf(check)}`);
  }
  if (!chainEnabled) return reasons;
  const chain = checks.chain;
  const sync = chain?.sync as { phase?: string } | undefined;
  if (chain?.ok && sync?.phase !== "live")
    reasons.push("chain: the snapshot sync has not reached the head yet");
  const rpc = chain?.rpc as { lastError?: string; lastErrorAt?: string } | undefined;
  const lastErrorAt = rpc?.lastErrorAt ? Date.parse(rpc.lastErrorAt) : Number.NaN;
  if (nowMs - lastErrorAt < RPC_RECENT_MS) {
    reasons.push(
      `chain: the RPC failed ${Math.round((nowMs - lastErrorAt) / 1000)} s ago (${rpc?.lastError})`,
    );
  }
  return reasons;
}
