// Job latencies over time: each finished job records when it finished and how long it took, and the figures
// of any stretch of time (a sample's interval, a minute, a window) are read back afterwards. Percentiles are
// nearest-rank on the sorted samples. A 30-minute soak at ~15 jobs/s keeps ~30,000 pairs: small.

export interface LatencyFigures {
  count: number;
  p50: number;
  p99: number;
}

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? Number.NaN;
}

export function figuresOf(latencies: readonly number[]): LatencyFigures {
  const sorted = [...latencies].sort((a, b) => a - b);
  return { count: sorted.length, p50: percentile(sorted, 50), p99: percentile(sorted, 99) };
}

export interface LatencyLog {
  /** A job that took `ms` just finished. */
  record(ms: number): void;
  /** Figures of the jobs that finished in [fromMs, toMs) of the log's clock. */
  between(fromMs: number, toMs: number): LatencyFigures;
  /** The log's clock: ms since it was created. */
  now(): number;
}

export function latencyLog(): LatencyLog {
  const origin = performance.now();
  const finishedAt: number[] = [];
  const took: number[] = [];
  const now = () => performance.now() - origin;
  return {
    now,
    record(ms) {
      finishedAt.push(now());
      took.push(ms);
    },
    between(fromMs, toMs) {
      const picked: number[] = [];
      // Appended in time order: skip to the first at or after fromMs.
      for (let i = lowerBound(finishedAt, fromMs); i < finishedAt.length; i++) {
        if ((finishedAt[i] ?? 0) >= toMs) break;
        picked.push(took[i] ?? 0);
      }
      return figuresOf(picked);
    },
  };
}

function lowerBound(sorted: readonly number[], value: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((sorted[mid] ?? 0) < value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
