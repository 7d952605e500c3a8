// Ordered, retrying, bounded writes for a store whose backend can be briefly unreachable (Redis restarting).
// Writes of one job run in the order they were issued, even across retries, so a late retry of "running" can
// never overwrite "success". A write that keeps failing with a transient error is retried with capped backoff
// until it lands, the store closes, or its caller gives it up (WriteControl); the queue is bounded so an outage
// cannot exhaust memory.
import { NodeError } from "../lib/errors.ts";
import type { Logger } from "../lib/log.ts";
import { backoffMs, sleep } from "../lib/time.ts";

export interface WriteQueueOptions {
  /** Writes accepted but not yet landed, at most; beyond it enqueue rejects (503). */
  maxQueued: number;
  /** False for errors that no retry can fix (a script bug, a wrong-type key). */
  isRetryable: (error: unknown) => boolean;
  log: Logger;
  maxBackoffMs?: number;
}

/** A caller's handle on one write: what its last failed attempt said, and a way to give it up. */
export interface WriteControl {
  /** The error of the last failed attempt (undefined while none failed). */
  lastError?: unknown;
  /** Set by the caller: the write is not attempted again (the caller refused the job it belongs to). */
  cancelled?: boolean;
}

export interface WriteQueue {
  /**
   * Runs `op` after earlier writes of the same `key` (and after any gate); resolves once it has landed.
   * With `control`, failures are reported to the caller, who may cancel the retries.
   */
  enqueue(key: string, op: () => Promise<void>, control?: WriteControl): Promise<void>;
  /** Holds every write issued from now on until `work` settles (start-up recovery runs first). */
  gate<T>(work: () => Promise<T>): Promise<T>;
  /** Accepted writes that have not landed yet. */
  size(): number;
  /** Writes currently waiting to retry after a failure (the backend is refusing or timing out). */
  retrying(): number;
  /** Waits until the queue is empty or `timeoutMs` passes; true when empty. */
  drain(timeoutMs: number): Promise<boolean>;
  /** Stops retrying: writes still queued reject. */
  close(): void;
}

export function createWriteQueue(options: WriteQueueOptions): WriteQueue {
  const { log } = options;
  const maxBackoff = options.maxBackoffMs ?? 5_000;
  const tails = new Map<string, Promise<void>>();
  const stop = new AbortController();
  let gateTail: Promise<unknown> = Promise.resolve();
  let queued = 0;
  let retryingNow = 0;
  let emptied: (() => void) | undefined;

  /** Runs `op` until it succeeds, a non-retryable error occurs, the queue closes or the caller cancels. */
  async function attempt<T>(what: string, op: () => Promise<T>, control?: WriteControl): Promise<T> {
    for (let failures = 0; ; failures++) {
      if (stop.signal.aborted)
        throw new NodeError("job store closed before the write landed", { status: 503 });
      if (control?.cancelled) throw new NodeError("job store write given up", { status: 503 });
      try {
        return await op();
      } catch (error) {
        if (control) control.lastError = error;
        if (!options.isRetryable(error) || stop.signal.aborted || control?.cancelled) throw error;
        const delay = backoffMs(failures, 100, maxBackoff);
        if (failures === 0 || failures % 10 === 0) {
          log.warn("job store write failed, retrying", { op: what, error, retry_in_ms: delay, queued });
        }
        retryingNow++;
        await sleep(delay, stop.signal);
        retryingNow--;
      }
    }
  }

  return {
    enqueue(key, op, control) {
      if (stop.signal.aborted) {
        return Promise.reject(new NodeError("job store is closed", { status: 503, retryable: true }));
      }
      if (queued >= options.maxQueued) {
        return Promise.reject(
          new NodeError("job store unavailable: too many writes waiting for the backend", {
            status: 503,
            retryable: true,
            meta: { queued },
          }),
        );
      }
      queued++;
      const previous = tails.get(key) ?? Promise.resolve();
      const gate = gateTail;
      // The count drops before the caller's promise settles, so size() is exact once a write has landed.
      const run = previous
        .catch(() => undefined)
        .then(() => gate.catch(() => undefined))
        .then(() => attempt(key, op, control))
        .finally(() => {
          queued--;
          if (tails.get(key) === tail) tails.delete(key);
          if (queued === 0) emptied?.();
        });
      const tail: Promise<void> = run.then(
        () => undefined,
        () => undefined,
      );
      tails.set(key, tail);
      return run;
    },

    gate(work) {
      const previous = gateTail;
      const result = previous.catch(() => undefined).then(() => attempt("gate", work));
      gateTail = result;
      return result;
    },

    size: () => queued,
    retrying: () => retryingNow,

    async drain(timeoutMs) {
      if (queued === 0) return true;
      const empty = new Promise<void>((resolve) => {
        emptied = resolve;
      });
      await Promise.race([empty, sleep(timeoutMs)]);
      emptied = undefined;
      return queued === 0;
    },

    close() {
      stop.abort();
    },
  };
}
