// Store operation latency for /metrics: the job store with each request-path operation timed and reported to
// an observer. A wrapper rather than timing inside each backend, so Redis and the embedded store are measured
// the same way (from the caller's side: queueing in the write queue counts, as the caller waits for it).
import type { JobStore } from "../shared/jobs.ts";
import { type StoreObserver, secondsSince } from "../shared/observe.ts";

type TimedOp = "setRunning" | "setDone" | "get" | "listIds";

/** Metric label per operation (snake case, as the other label values). */
const LABELS: Record<TimedOp, string> = {
  setRunning: "set_running",
  setDone: "set_done",
  get: "get",
  listIds: "list_ids",
};

/** `store` with setRunning, setDone, get and listIds timed; every other member is `store`'s own. */
export function timedStore<T extends JobStore>(store: T, observer: StoreObserver | undefined): T {
  if (!observer) return store;
  const timed = Object.create(store) as T;
  for (const op of Object.keys(LABELS) as TimedOp[]) {
    const original = store[op].bind(store) as (...args: unknown[]) => Promise<unknown>;
    const label = LABELS[op];
    (timed as Record<TimedOp, unknown>)[op] = async (...args: unknown[]) => {
      const startedAt = performance.now();
      try {
        const result = await original(...args);
        observer.storeOp(label, true, secondsSince(startedAt));
        return result;
      } catch (error) {
        observer.storeOp(label, false, secondsSince(startedAt));
        throw error;
      }
    };
  }
  return timed;
}
