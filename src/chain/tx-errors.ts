// What a node's answer to eth_sendRawTransaction means for the transaction manager. Error texts differ by client
// (geth, reth, anvil, Nethermind, proxies), so each verdict matches several phrasings, case-insensitively, and is
// read from the whole cause chain (viem wraps the node's message a few levels deep).
import { isRetryableRpcError } from "./rpc.ts";

export type BroadcastVerdict =
  /** The pool has this very transaction already (same hash): success for the sender. */
  | "known"
  /** The nonce is mined already: by this transaction (a lost reply) or by another; only a lookup tells which. */
  | "nonce-too-low"
  /** Another transaction holds the nonce in the pool and this one does not pay enough more to replace it. */
  | "replacement-underpriced"
  /** Below the pool's price floor (not a replacement): refused, nothing is in a pool. */
  | "underpriced"
  /** No answer (lost reply, timeout, 5xx, connection error): the broadcast may or may not have happened. */
  | "unknown"
  /** Any other answer from the node (insufficient funds, gas too low, …): refused, nothing is in a pool. */
  | "refused";

const KNOWN = /already known|already imported|\bknown transaction|already in (the )?(tx)?pool|alreadyknown/i;
const NONCE_TOO_LOW =
  /nonce too low|nonce has already been used|oldnonce|nonce is too low|invalid nonce.*low/i;
const REPLACEMENT_UNDERPRICED =
  /replacement (transaction )?underpriced|replacement fee too low|replaceunderpriced/i;
const UNDERPRICED = /underpriced|fee too low|max fee per gas less than block base fee|feetoolow/i;

export function classifyBroadcastError(error: unknown): BroadcastVerdict {
  const text = errorChainText(error);
  if (KNOWN.test(text)) return "known";
  if (NONCE_TOO_LOW.test(text)) return "nonce-too-low";
  if (REPLACEMENT_UNDERPRICED.test(text)) return "replacement-underpriced";
  if (UNDERPRICED.test(text)) return "underpriced";
  if (isRetryableRpcError(error)) return "unknown";
  return "refused";
}

/** Every message along the cause chain, joined: the node's own words sit in `details` a few levels down. */
export function errorChainText(error: unknown): string {
  const parts: string[] = [];
  let current: unknown = error;
  for (let depth = 0; current && depth < 8; depth++) {
    if (typeof current === "string") {
      parts.push(current);
      break;
    }
    const e = current as { message?: unknown; details?: unknown; shortMessage?: unknown; cause?: unknown };
    for (const value of [e.message, e.details, e.shortMessage])
      if (typeof value === "string") parts.push(value);
    current = e.cause;
  }
  return parts.join(" | ");
}
