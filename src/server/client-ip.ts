// Who is asking: the TCP peer address, or — only when the peer is a configured trusted proxy — the right-most
// X-Forwarded-For entry that is not itself a trusted proxy (X-Real-IP and Forwarded are never read). The
// reference trusted the first XFF entry for rate limiting (trivially forged) and let the body set `ip`; neither
// is possible here.

import { isIP } from "node:net";
import type { Context } from "hono";
import { createIpMatcher, normalizeIp } from "../lib/ip.ts";

/** Returns the TCP peer address of the request (tests inject their own). */
export type PeerAddress = (c: Context) => string | undefined;

interface BunServerLike {
  requestIP(request: Request): { address: string } | null;
}

/** The peer address from Bun.serve (passed as the hono env `server`). */
export const bunPeerAddress: PeerAddress = (c) => {
  const server = (c.env as { server?: BunServerLike } | undefined)?.server;
  return server?.requestIP(c.req.raw)?.address;
};

export function createClientIpResolver(
  trustedProxies: readonly string[],
  peerAddress: PeerAddress,
): (c: Context) => string | undefined {
  const resolve = createClientResolver(trustedProxies);
  return (c) => resolve(peerAddress(c), () => c.req.header("x-forwarded-for"));
}

/**
 * The resolution itself, from the raw peer address and a reader of X-Forwarded-For (only called when the peer
 * is trusted): shared by the hono middleware and the native routes in app.ts, which have no Context. Undefined
 * when there is no peer, or when a trusted proxy forwarded a chain the node cannot read: the caller answers 400
 * `Could not get client IP address`. Taking the proxy itself for the client there would hand every client
 * behind it the proxy's (usually loopback) rights: /metrics, /dashboard, PUT /api/status.
 */
export function createClientResolver(
  trustedProxies: readonly string[],
): (raw: string | undefined, forwardedFor: () => string | null | undefined) => string | undefined {
  const trusted = trustedProxies.length > 0 ? createIpMatcher(trustedProxies) : undefined;
  return (raw, forwardedFor) => {
    if (raw === undefined || raw === "") return undefined;
    const peer = normalizeIp(raw);
    if (!trusted?.(peer)) return peer;
    const header = forwardedFor();
    if (!header) return peer;
    return forwardedClient(header, trusted);
  };
}

/**
 * One X-Forwarded-For entry as an address: `1.2.3.4`, `2001:db8::1`, and the forms with a port some proxies
 * write (`1.2.3.4:5678`, `[2001:db8::1]:443`); undefined for anything else.
 */
export function forwardedAddress(entry: string): string | undefined {
  const text = entry.trim();
  const withPort = /^\[([^\]]+)\]:\d{1,5}$/.exec(text) ?? /^(\d{1,3}(?:\.\d{1,3}){3}):\d{1,5}$/.exec(text);
  const address = normalizeIp(withPort?.[1] ?? text);
  return isIP(address) === 0 ? undefined : address;
}

/**
 * Walks X-Forwarded-For from the right (the entries our proxies appended) and returns the first address that
 * is not a trusted proxy. Anything to its left was written by the client and is ignored. An entry that is not
 * an address before that point means the chain cannot be read: undefined.
 */
export function forwardedClient(header: string, trusted: (ip: string) => boolean): string | undefined {
  const entries = header.split(",");
  for (let i = entries.length - 1; i >= 0; i--) {
    const entry = forwardedAddress(entries[i] ?? "");
    if (entry === undefined) return undefined;
    if (!trusted(entry)) return entry;
  }
  // Every hop is one of ours: the left-most is the closest we know to the client.
  return forwardedAddress(entries[0] ?? "");
}
