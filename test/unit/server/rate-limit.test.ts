import { describe, expect, test } from "bun:test";
import { clientKey, createRateLimiter } from "../../../src/server/rate-limit.ts";

describe("createRateLimiter", () => {
  test("default", () => {
    let now = 0;
    const limiter = createRateLimiter({ numRequests: 60, period: 60, now: () => now });
    for (let i = 0; i < 60; i++) expect(limiter.check("info", "a").allowed).toBe(true);
    const refused = limiter.check("info", "a");
    expect(refused.allowed).toBe(false);
    expect(refused.headers["Retry-After"]).toBe("1");
    now += 999;
    expect(limiter.check("info", "a").allowed).toBe(false);
    now += 1;
    expect(limiter.check("info", "a").allowed).toBe(true);
    expect(limiter.check("info", "a").allowed).toBe(false);
    expect(limiter.check("health", "a").allowed).toBe(true);
    expect(limiter.check("info", "b").allowed).toBe(true);
  });

  test("behavior: RateLimit headers like quart-rate-limiter", () => {
    const limiter = createRateLimiter({ numRequests: 10, period: 10, now: () => 0 });
    expect(limiter.check("x", "c").headers).toEqual({
      "RateLimit-Limit": "10",
      "RateLimit-Remaining": "9",
      "RateLimit-Reset": "1",
    });
  });

  test("behavior: idle buckets are pruned and the count is bounded", () => {
    let now = 0;
    const limiter = createRateLimiter({ numRequests: 5, period: 1, now: () => now, maxBuckets: 100 });
    for (let i = 0; i < 1000; i++) limiter.check("x", `client-${i}`);
    expect(limiter.size()).toBeLessThanOrEqual(101);
    now += 2000;
    limiter.check("x", "late");
    expect(limiter.size()).toBe(1);
  });

  test("behavior: once full, a new client costs O(1), not a scan of every bucket", () => {
    let now = 0;
    const limiter = createRateLimiter({ numRequests: 60, period: 60, now: () => now });
    for (let i = 0; i < 100_000; i++) limiter.check("x", `fill-${i}`);
    expect(limiter.size()).toBe(100_000);
    now += 1;
    // 20,000 new clients into a full table: a scan per client (the old code) took ~0.43 ms each, ~9 s in all;
    // dropping the least recently used one takes microseconds. The bound leaves a 2-core machine ample slack.
    const started = performance.now();
    for (let i = 0; i < 20_000; i++) expect(limiter.check("x", `new-${i}`).allowed).toBe(true);
    expect(performance.now() - started).toBeLessThan(3_000);
    expect(limiter.size()).toBe(100_000);
    // The least recently admitted gave way; a client seen since then keeps its bucket.
    for (let i = 0; i < 59; i++) limiter.check("x", "new-19999");
    expect(limiter.check("x", "new-19999").allowed).toBe(false);
  });

  test("behavior: expired buckets go as requests come in, a bounded number per request", () => {
    let now = 0;
    const limiter = createRateLimiter({ numRequests: 1, period: 1, now: () => now });
    for (let i = 0; i < 2_500; i++) limiter.check("x", `c-${i}`);
    now += 1_001;
    limiter.check("x", "late");
    expect(limiter.size()).toBe(1_501);
    limiter.check("x", "later");
    limiter.check("x", "latest");
    expect(limiter.size()).toBe(3);
  });

  test("behavior: IPv6 clients share a bucket per /64 (configurable); IPv4 per address", () => {
    const limiter = createRateLimiter({ numRequests: 2, period: 60, now: () => 0 });
    expect(limiter.check("x", "2001:db8:1:2::1").allowed).toBe(true);
    expect(limiter.check("x", "2001:db8:1:2:ffff:1:2:3").allowed).toBe(true);
    // Any other address of the same /64 is the same client.
    expect(limiter.check("x", "2001:db8:1:2:abcd::9").allowed).toBe(false);
    expect(limiter.check("x", "2001:db8:1:3::1").allowed).toBe(true);
    expect(limiter.check("x", "10.0.0.1").allowed).toBe(true);
    expect(limiter.check("x", "10.0.0.2").allowed).toBe(true);

    const perAddress = createRateLimiter({ numRequests: 1, period: 60, now: () => 0, ipv6Prefix: 128 });
    expect(perAddress.check("x", "2001:db8::1").allowed).toBe(true);
    expect(perAddress.check("x", "2001:db8::2").allowed).toBe(true);
  });

  test("default: clientKey cuts IPv6 to its prefix and leaves the rest alone", () => {
    expect(clientKey("2001:db8:1:2:3:4:5:6", 64)).toBe("2001:db8:1:2:0:0:0:0/64");
    expect(clientKey("2001:DB8:1:2::", 64)).toBe("2001:db8:1:2:0:0:0:0/64");
    expect(clientKey("::1", 64)).toBe("0:0:0:0:0:0:0:0/64");
    expect(clientKey("2001:db8:ab:cdef::1", 56)).toBe("2001:db8:ab:cd00:0:0:0:0/56");
    expect(clientKey("64:ff9b::192.0.2.33", 96)).toBe("64:ff9b:0:0:0:0:0:0/96");
    expect(clientKey("fe80::1%eth0", 64)).toBe("fe80:0:0:0:0:0:0:0/64");
    expect(clientKey("2001:db8::1", 128)).toBe("2001:db8::1");
    expect(clientKey("10.1.2.3", 64)).toBe("10.1.2.3");
    expect(clientKey("not:an:address:::", 64)).toBe("not:an:address:::");
  });
});
