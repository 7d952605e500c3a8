import { describe, expect, test } from "bun:test";
import { Hono } from "hono";
import { createIpMatcher } from "../../../src/lib/ip.ts";
import { createClientIpResolver, forwardedClient } from "../../../src/server/client-ip.ts";

async function resolve(
  trusted: string[],
  peer: string | undefined,
  xff?: string,
): Promise<string | undefined> {
  const resolver = createClientIpResolver(trusted, () => peer);
  const app = new Hono();
  let seen: string | undefined;
  app.get("/", (c) => {
    seen = resolver(c);
    return c.text("ok");
  });
  await app.request("/", xff === undefined ? {} : { headers: { "x-forwarded-for": xff } });
  return seen;
}

describe("client address", () => {
  test("default", async () => {
    expect(await resolve([], "203.0.113.5", "1.2.3.4")).toBe("203.0.113.5");
    expect(await resolve([], "::ffff:127.0.0.1")).toBe("127.0.0.1");
    expect(await resolve([], undefined)).toBeUndefined();
  });

  test("behavior: trusted proxy peers use the right-most untrusted X-Forwarded-For entry", async () => {
    const proxies = ["10.0.0.0/8"];
    expect(await resolve(proxies, "10.0.0.2", "6.6.6.6, 1.2.3.4, 10.0.0.9")).toBe("1.2.3.4");
    expect(await resolve(proxies, "10.0.0.2")).toBe("10.0.0.2");
    expect(await resolve(proxies, "10.0.0.2", "")).toBe("10.0.0.2");
    expect(await resolve(proxies, "10.0.0.2", "garbage, 1.2.3.4")).toBe("1.2.3.4");
    expect(await resolve(proxies, "10.0.0.2", "10.1.1.1, 10.2.2.2")).toBe("10.1.1.1");
  });

  test("behavior: entries with a port, as some proxies write them, are addresses", async () => {
    const proxies = ["10.0.0.0/8"];
    expect(await resolve(proxies, "10.0.0.2", "1.2.3.4:5678")).toBe("1.2.3.4");
    expect(await resolve(proxies, "10.0.0.2", "[2001:db8::1]:443, 10.0.0.9:80")).toBe("2001:db8::1");
    expect(await resolve(proxies, "10.0.0.2", "[::ffff:1.2.3.4]")).toBe("1.2.3.4");
  });

  test("error: a chain the node cannot read from a trusted proxy has no client (400), never the proxy", async () => {
    const proxies = ["10.0.0.0/8"];
    for (const xff of ["1.2.3.4, garbage", "unknown", "1.2.3.4:port", "1.2.3.4:123456", "[1.2.3.4]:", ","]) {
      expect({ xff, client: await resolve(proxies, "10.0.0.2", xff) }).toEqual({ xff, client: undefined });
    }
  });

  test("behavior: forwardedClient handles IPv6", () => {
    expect(forwardedClient("2001:db8::1, 10.0.0.1", createIpMatcher(["10.0.0.0/8"]))).toBe("2001:db8::1");
  });
});
