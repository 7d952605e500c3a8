import { describe, expect, test } from "bun:test";
import { createRateLimiter } from "../../../src/server/rate-limit.ts";

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
});
