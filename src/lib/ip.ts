// IP and CIDR parsing and matching (allowed_ips, trusted proxies, the /api/status allow-list), on node:net's
// BlockList. Like Python's ip_network(strict=False), host bits in a CIDR are allowed: 10.0.0.1/8 ≡ 10.0.0.0/8.
import { BlockList, isIP } from "node:net";

export interface Cidr {
  address: string;
  prefix: number;
  family: "ipv4" | "ipv6";
}

/** Strips an IPv6 zone and brackets, and unwraps IPv4-mapped IPv6 (::ffff:1.2.3.4 → 1.2.3.4). */
export function normalizeIp(ip: string): string {
  const bare = ip.replace(/^\[|\]$/g, "").replace(/%.*$/, "");
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(bare);
  return mapped?.[1] ?? bare;
}

/** Parses `1.2.3.4`, `10.0.0.0/8`, `::1` or `fd00::/8`; returns an error string when it is not one. */
export function parseCidr(entry: string): Cidr | string {
  const [address = "", prefixText, ...rest] = entry.trim().split("/");
  const version = isIP(address);
  if (version === 0 || rest.length > 0) return `"${entry}" is not an IP address or CIDR range`;
  const family = version === 4 ? "ipv4" : "ipv6";
  const max = version === 4 ? 32 : 128;
  if (prefixText === undefined) return { address, prefix: max, family };
  if (!/^\d{1,3}$/.test(prefixText) || Number(prefixText) > max) {
    return `"${entry}" has an invalid prefix length (0-${max})`;
  }
  return { address, prefix: Number(prefixText), family };
}

/** A matcher over CIDR entries (already validated). An empty list matches nothing. */
export function createIpMatcher(entries: readonly string[]): (ip: string) => boolean {
  const list = new BlockList();
  for (const entry of entries) {
    const cidr = parseCidr(entry);
    if (typeof cidr === "string") throw new Error(cidr);
    list.addSubnet(cidr.address, cidr.prefix, cidr.family);
  }
  return (ip: string) => {
    const normalized = normalizeIp(ip);
    const version = isIP(normalized);
    if (version === 0) return false;
    return list.check(normalized, version === 4 ? "ipv4" : "ipv6");
  };
}
