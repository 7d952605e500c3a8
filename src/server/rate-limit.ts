// Per-client, per-endpoint rate limiting with GCRA, as quart-rate-limiter did for the reference (§3.2): a
// fresh client may burst `num_requests`, then one request per `period / num_requests`. Unlike the reference,
// the key is the resolved client address (not a forgeable X-Forwarded-For), IPv6 clients share a bucket per
// /64 (one host usually has a whole /64, so per address it could mint unlimited clients), and idle buckets are
// dropped as requests come in, a few at a time, so memory stays bounded without scanning all of them.

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
  /** Upper bound on tracked buckets; the least recently used are dropped beyond it. */
  maxBuckets?: number;
  /** IPv6 clients are keyed by this many leading bits of their address (64; 128 = per address). */
  ipv6Prefix?: number | undefined;
}

export interface RateLimiter {
  check(endpoint: string, client: string): RateLimitDecision;
  /** Buckets currently tracked (for tests and metrics). */
  size(): number;
}

/** Expired buckets dropped per request at most: the work per request stays small and bounded. */
const SWEEP_MAX = 1_000;

export function createRateLimiter(options: RateLimiterOptions): RateLimiter {
  const now = options.now ?? (() => performance.timeOrigin + performance.now());
  const periodMs = options.period * 1000;
  const inverseMs = periodMs / options.numRequests;
  const maxBuckets = options.maxBuckets ?? 100_000;
  const ipv6Prefix = options.ipv6Prefix ?? 64;
  const limitHeader = String(options.numRequests);
  // Theoretical arrival time per bucket, in least-recently-admitted-first order (an admitted request moves its
  // bucket to the end). A bucket whose tat is in the past is full again, i.e. the same as no bucket at all, so
  // it can be dropped without changing any decision. A bucket's tat is at most one period after its last
  // admission, so the ones at the front are the first to expire: dropping expired buckets from the front
  // costs O(1) per request (each bucket is dropped once), where a scan of all of them cost 0.43 ms at 100,000.
  const tats = new Map<string, number>();

  function sweep(t: number): void {
    let budget = SWEEP_MAX;
    for (const [key, tat] of tats) {
      if (tat > t || budget-- === 0) return;
      tats.delete(key);
    }
  }

  /** A new bucket when all are taken (a flood of distinct clients): the least recently admitted gives way. */
  function makeRoom(): void {
    const oldest = tats.keys().next();
    if (!oldest.done) tats.delete(oldest.value);
  }

  return {
    check(endpoint, client): RateLimitDecision {
      const t = now();
      sweep(t);
      const key = `${endpoint}\u0000${clientKey(client, ipv6Prefix)}`;
      const known = tats.get(key);
      const tat = known === undefined || known < t ? t : known;
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
      if (known !== undefined) tats.delete(key);
      else if (tats.size >= maxBuckets) makeRoom();
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

/**
 * The rate-limit key of a client address: IPv4 and names as they are, IPv6 cut to its first `prefix` bits
 * (`2001:db8:1:2::/64`), so the addresses of one network share one bucket.
 */
export function clientKey(client: string, prefix: number): string {
  if (prefix >= 128 || !client.includes(":")) return client;
  const groups = ipv6Groups(client);
  if (!groups) return client;
  const out: string[] = [];
  for (let i = 0; i < 8; i++) {
    const keep = Math.max(0, Math.min(16, prefix - i * 16));
    const group = groups[i] as number;
    out.push((keep === 0 ? 0 : group & (0xffff << (16 - keep)) & 0xffff).toString(16));
  }
  return `${out.join(":")}/${prefix}`;
}

/** The eight 16-bit groups of an IPv6 address (`::` expanded, a dotted IPv4 tail split), or undefined. */
function ipv6Groups(address: string): number[] | undefined {
  const halves = address.replace(/%.*$/, "").split("::");
  if (halves.length > 2) return undefined;
  const parse = (part: string): number[] | undefined => {
    if (part === "") return [];
    const groups: number[] = [];
    for (const piece of part.split(":")) {
      const v4 = /^(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(piece);
      if (v4) {
        const [a, b, c, d] = v4.slice(1).map(Number) as [number, number, number, number];
        groups.push((a << 8) | b, (c << 8) | d);
      } else if (/^[0-9a-fA-F]{1,4}$/.test(piece)) groups.push(Number.parseInt(piece, 16));
      else return undefined;
    }
    return groups;
  };
  const head = parse(halves[0] ?? "");
  const tail = halves.length === 2 ? parse(halves[1] ?? "") : [];
  if (!head || !tail) return undefined;
  const missing = 8 - head.length - tail.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return undefined;
  return [...head, ...new Array<number>(halves.length === 1 ? 0 : missing).fill(0), ...tail];
}
