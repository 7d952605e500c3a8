// Per-client, per-endpoint rate limiting with GCRA, as quart-rate-limiter did for the reference (§3.2): a
// fresh client may burst `num_requests`, then one request per `period / num_requests`. Unlike the reference,
// the key is the resolved client address (not a forgeable X-Forwarded-For), and idle buckets are pruned so
// memory stays bounded.

export interface RateLimitDecision {
  allowed: boolean;
  /** RateLimit-* and (when refused) Retry-After header values. */
  headers: Record<string, string>;
  /** Seconds until a request would be admitted (0 when allowed). */
  retryAfter: number;
}

export interface RateLimiterOptions {
  numRequests: number;
  /** Seconds. */
  period: number;
  /** Milliseconds clock (tests inject one). */
  now?: () => number;
  /** Upper bound on tracked buckets; the oldest are dropped beyond it. */
  maxBuckets?: number;
}

export interface RateLimiter {
  check(endpoint: string, client: string): RateLimitDecision;
  /** Buckets currently tracked (for tests and metrics). */
  size(): number;
}

export function createRateLimiter(options: RateLimiterOptions): RateLimiter {
  const now = options.now ?? (() => performance.timeOrigin + performance.now());
  const periodMs = options.period * 1000;
  const inverseMs = periodMs / options.numRequests;
  const maxBuckets = options.maxBuckets ?? 100_000;
  const limitHeader = String(options.numRequests);
  // Theoretical arrival time per bucket. A bucket whose tat is in the past is full again, i.e. the same as
  // no bucket at all, so it can be dropped without changing any decision.
  const tats = new Map<string, number>();
  let nextPrune = now() + periodMs;

  function prune(t: number): void {
    for (const [key, tat] of tats) if (tat <= t) tats.delete(key);
    // Still too many (a flood of distinct clients): drop the oldest inserted, which were the first to use
    // their burst. Map iteration order is insertion order.
    if (tats.size > maxBuckets) {
      let excess = tats.size - maxBuckets;
      for (const key of tats.keys()) {
        if (excess-- <= 0) break;
        tats.delete(key);
      }
    }
    nextPrune = t + Math.min(periodMs, 60_000);
  }

  return {
    check(endpoint, client): RateLimitDecision {
      const t = now();
      if (t >= nextPrune || tats.size > maxBuckets) prune(t);
      const key = `${endpoint}\u0000${client}`;
      const tat = Math.max(tats.get(key) ?? t, t);
      // 1 µs of slack: tat is a sum of float increments, and the burst of exactly num_requests must pass.
      if (tat - t > periodMs - inverseMs + 0.001) {
        const retryAfter = Math.max(0, Math.ceil((tat - (periodMs - inverseMs) - t) / 1000));
        const headers: Record<string, string> = {
          "RateLimit-Limit": limitHeader,
          "RateLimit-Remaining": "0",
          "RateLimit-Reset": String(Math.ceil((tat - t) / 1000)),
          "Retry-After": String(retryAfter),
        };
        return {
          allowed: false,
          retryAfter,
          headers,
        };
      }
      const next = tat + inverseMs;
      tats.set(key, next);
      return {
        allowed: true,
        retryAfter: 0,
        headers: {
          "RateLimit-Limit": limitHeader,
          "RateLimit-Remaining": String(Math.max(0, Math.floor((periodMs - (next - t)) / inverseMs))),
          "RateLimit-Reset": String(Math.ceil((next - t) / 1000)),
        },
      };
    },
    size: () => tats.size,
  };
}
