// Hooks through which the parts that do the work report what happened, for /metrics. The parts call plain
// functions; only the metrics module (src/metrics/) knows how they become Prometheus samples, so no part
// depends on a metrics library and tests can pass nothing at all.

export type JobKind = "offchain" | "onchain";

/** What an observer may know of a job besides its outcome: never its data. */
export interface ObservedJob {
  containers: readonly string[];
  /** On-chain jobs: the subscription and interval (the dashboard's latest jobs). */
  label?: string | undefined;
}

export interface JobObserver {
  /** One container call finished (any reply or failure, `error` set on failure), with its wall time. */
  containerCall(container: string, ok: boolean, seconds: number, error?: string): void;
  /** One job (its whole container pipeline) finished. */
  job(kind: JobKind, ok: boolean, seconds: number, job?: ObservedJob): void;
}

export interface StoreObserver {
  /** One job store operation (set_running, set_done, get, list_ids) finished or failed. */
  storeOp(op: string, ok: boolean, seconds: number): void;
}

export interface HttpObserver {
  /** One HTTP request answered; `route` is a known path or "other" (bounded label values). */
  http(route: string, method: string, status: number, seconds: number): void;
  /** A request the Guardian refused, by kind (offchain, delegated) and the reference's error string. */
  guardianRejection(kind: string, reason: string): void;
}

export interface SubscriptionObserver {
  /** An on-chain subscription the Guardian (or the listener's cancelled/expired filter) did not relay. */
  guardianRejection(kind: "onchain", reason: string): void;
}

/** Seconds elapsed since `startMs` (a performance.now() reading). */
export function secondsSince(startMs: number): number {
  return (performance.now() - startMs) / 1000;
}
