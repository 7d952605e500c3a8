// Progress of long work as log lines: at most one per `everyMs`, with how much is done of the total, the rate
// and the time left. On a terminal these read as `… Snapshot sync progress done=4000 total=10000 …`.
import type { Logger } from "./log.ts";

export interface ProgressOptions {
  /** Minimum time between two lines (default 5 s). */
  everyMs?: number;
  now?: () => number;
}

/**
 * Returns `report(done)`: logs `<message>` with done, total, percent, rate per second and the estimated seconds
 * left, when `everyMs` has passed since the start or the previous line. Nothing at the end: the caller logs its
 * own completion line.
 */
export function progressReporter(
  log: Logger,
  message: string,
  total: number,
  options: ProgressOptions = {},
): (done: number) => void {
  const now = options.now ?? (() => performance.now());
  const everyMs = options.everyMs ?? 5000;
  const started = now();
  let last = started;
  return (done) => {
    const at = now();
    if (done >= total || at - last < everyMs) return;
    last = at;
    const perS = done / Math.max((at - started) / 1000, 0.001);
    log.info(message, {
      done,
      total,
      percent: Math.floor((done / total) * 100),
      per_s: Math.round(perS),
      eta_s: perS > 0 ? Math.ceil((total - done) / perS) : null,
    });
  };
}
