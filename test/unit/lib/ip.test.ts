import { describe, expect, test } from "bun:test";
import { createIpMatcher, normalizeIp, parseCidr } from "../../../src/lib/ip.ts";

describe("ip", () => {
  test("default: CIDR ranges match addresses inside them", () => {
    const match = createIpMatcher(["10.0.0.0/8", "192.168.1.7", "fd00::/8"]);
    expect(match("10.200.3.4")).toBe(true);
    expect(match("11.0.0.1")).toBe(false);
    expect(match("192.168.1.7")).toBe(true);
    expect(match("192.168.1.8")).toBe(false);
    expect(match("fd12::1")).toBe(true);
    expect(match("not-an-ip")).toBe(false);
  });
  test("behavior: host bits are allowed like ip_network(strict=False)", () => {
    expect(createIpMatcher(["10.0.0.1/8"])("10.9.9.9")).toBe(true);
  });
  test("behavior: IPv4-mapped IPv6 peers match IPv4 ranges", () => {
    expect(normalizeIp("::ffff:127.0.0.1")).toBe("127.0.0.1");
    expect(createIpMatcher(["127.0.0.0/8"])("::ffff:127.0.0.1")).toBe(true);
  });
  test("error: invalid entries are described", () => {
    expect(parseCidr("10.0.0.0/33")).toBe('"10.0.0.0/33" has an invalid prefix length (0-32)');
    expect(parseCidr("abc")).toBe('"abc" is not an IP address or CIDR range');
  });
});
