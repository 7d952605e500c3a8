// The lifecycle contract every long-running part implements (Chainlink's Service, Python's AsyncTask):
// bounded setup, a run loop under an AbortSignal, close, and health as data for /health.
import { describeError } from "./errors.ts";
import type { Logger } from "./log.ts";
import { backoffMs, sleep } from "./time.ts";

export interface ServiceHealth {
  ok: boolean;
  detail?: string;
  [key: string]: unknown;
}

export interface Service {
  readonly name: string;
  /** Bounded: connect, pull images, resolve contracts. Throwing aborts start-up. */
  setup?(signal: AbortSignal): Promise<void>;
  /** Resolves only after `signal` aborts and in-flight work has drained. Rejections are logged and retried. */
  run?(signal: AbortSignal): Promise<void>;
  /** Releases resources; called once, in reverse order of setup. */
  close?(): Promise<void>;
  health?(): ServiceHealth;
}

export interface RunOptions {
  signal: AbortSignal;
  log: Logger;
  setupTimeoutMs: number;
  /** Called after every setup has succeeded and every run loop has started. */
  onReady?: () => void;
}

/**
 * Sets the services up in order, runs them all until `signal` aborts, then closes them in reverse order.
 * A run loop that rejects is logged and restarted with capped backoff: a background failure never ends the node.
 * A setup failure closes what was already set up and rethrows (start-up fails with a one-line reason).
 */
export async function runServices(services: Service[], options: RunOptions): Promise<void> {
  const { signal, log } = options;
  const ready: Service[] = [];
  try {
    for (const service of services) {
      if (signal.aborted) return;
      const setupSignal = AbortSignal.any([signal, AbortSignal.timeout(options.setupTimeoutMs)]);
      await withAbort(service.setup?.(setupSignal) ?? Promise.resolve(), setupSignal, service.name);
      ready.push(service);
      log.debug("service ready", { service: service.name });
    }
    const loops = ready.map((service) => superviseRun(service, signal, log));
    options.onReady?.();
    await Promise.all(loops);
  } finally {
    await closeAll(ready.reverse(), log);
  }
}

async function superviseRun(service: Service, signal: AbortSignal, log: Logger): Promise<void> {
  if (!service.run) return;
  let attempt = 0;
  while (!signal.aborted) {
    try {
      await service.run(signal);
      return;
    } catch (error) {
      if (signal.aborted) return;
      const delay = backoffMs(attempt++, 500, 30_000);
      log.error("service loop failed, restarting", { service: service.name, error, retry_in_ms: delay });
      await sleep(delay, signal);
    }
  }
}

async function closeAll(services: Service[], log: Logger): Promise<void> {
  for (const service of services) {
    try {
      await service.close?.();
    } catch (error) {
      log.warn("service close failed", { service: service.name, error: describeError(error) });
    }
  }
}

/** Rejects as soon as `signal` aborts, naming the step, so a hung setup cannot hold start-up forever. */
function withAbort<T>(work: Promise<T>, signal: AbortSignal, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => {
      const reason =
        signal.reason instanceof Error && signal.reason.name === "TimeoutError" ? "timed out" : "aborted";
      reject(new Error(`${what} setup ${reason}`));
    };
    if (signal.aborted) return onAbort();
    signal.addEventListener("abort", onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}

/**
 * Runs `tick` every `everyMs` until `signal` aborts. A failing tick is logged and the loop goes on; the wait
 * after a failure grows with capped backoff so a dead RPC is not hammered.
 */
export async function loop(
  signal: AbortSignal,
  everyMs: number,
  tick: () => Promise<void>,
  log: Logger,
  name: string,
): Promise<void> {
  let failures = 0;
  while (!signal.aborted) {
    try {
      await tick();
      failures = 0;
      await sleep(everyMs, signal);
    } catch (error) {
      if (signal.aborted) return;
      const delay = Math.max(everyMs, backoffMs(failures++, 250, 30_000));
      log.warn(`${name} failed, retrying`, { error: describeError(error), retry_in_ms: delay });
      await sleep(delay, signal);
    }
  }
}
