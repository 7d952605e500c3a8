// Who is asking: the TCP peer address, or — only when the peer is a configured trusted proxy — the right-most
// X-Forwarded-For entry that is not itself a trusted proxy. The reference trusted the first XFF entry for rate
// limiting (trivially forged) and let the body set `ip`; neither is possible here.

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
 * is trusted): shared by the hono middleware and the native routes in app.ts, which have no Context.
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
    return forwardedClient(header, trusted) ?? peer;
  };
}

/**
 * Walks X-Forwarded-For from the right (the entries our proxies appended) and returns the first address that
 * is not a trusted proxy. Anything to its left was written by the client and is ignored. A malformed entry
 * there means the chain cannot be trusted, so the caller falls back to the peer.
 */
export function forwardedClient(header: string, trusted: (ip: string) => boolean): string | undefined {
  const entries = header.split(",");
  for (let i = entries.length - 1; i >= 0; i--) {
    const entry = normalizeIp((entries[i] ?? "").trim());
    if (isIP(entry) === 0) return undefined;
    if (!trusted(entry)) return entry;
  }
  // Every hop is one of ours: the left-most is the closest we know to the client.
  const first = normalizeIp((entries[0] ?? "").trim());
  return isIP(first) === 0 ? undefined : first;
}
