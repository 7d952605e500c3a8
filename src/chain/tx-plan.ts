// The transaction manager's decisions, pure: which nonce a new transaction gets, and what to do on a new block
// given the transactions in flight and the chain's mined-transaction count (`latest` nonce). No I/O here: the
// shell in transactions.ts reads the chain, calls these, and carries out the plan.
//
// The model is Chainlink's txmgr confirmer: per head, compare the chain's mined count with the nonces held;
// below it a nonce is mined (look up whose); at it is the one transaction that can be mined next, and only it
// is worth bumping (a higher nonce cannot be mined before it, whatever it pays). When the chain's count sits
// below our lowest nonce, a nonce nobody here tracks blocks them all (a transaction from before a restart, from
// the old lease holder, or a gap): after `replaceAfter` blocks it is filled by a 0-value self-transfer.

/** Where one transaction in flight stands. */
export type TxState =
  /** Signed; the broadcast's answer was lost (or not sent: lease): may or may not be in a pool. Rebroadcast. */
  | "unknown"
  /** A pool accepted it (or already had it). */
  | "pooled"
  /** Its last attempt was refused as underpriced: nothing of it may be in a pool; bump it. */
  | "priced-out";

export interface PlanEntry {
  nonce: number;
  state: TxState;
  /** The block of its last broadcast attempt (first send, bump or rebroadcast). */
  lastAttemptBlock: bigint;
}

/** Since which block the chain's `latest` nonce has had its current value (as this process saw it). */
export interface ChainNonceWatch {
  nonce: number;
  since: bigint;
}

export function watchChainNonce(
  previous: ChainNonceWatch | undefined,
  chainNonce: number,
  head: bigint,
): ChainNonceWatch {
  if (previous && previous.nonce === chainNonce) return previous;
  return { nonce: chainNonce, since: head };
}

export interface BlockPlan {
  /** Nonces the chain has mined: look up the receipts of their attempts (ours, or used by someone else). */
  lookUp: number[];
  /** Entries whose broadcast is unknown: send the same signed bytes again. */
  rebroadcast: number[];
  /** The lowest unmined nonce, stuck for `replaceAfter` blocks: replace it with higher fees. */
  bump: number | null;
  /** Untracked nonces below our lowest one, stuck for `replaceAfter` blocks: fill them with self-transfers. */
  fill: number[];
}

export interface PlanInput {
  head: bigint;
  /** The chain's `latest` transaction count for the node's address: every nonce below it is mined. */
  chain: ChainNonceWatch;
  entries: readonly PlanEntry[];
  replaceAfter: bigint;
  /** At most this many fills per block (a long gap is closed over a few blocks, not in one burst). */
  maxFills: number;
}

export function planBlock(input: PlanInput): BlockPlan {
  const { head, chain, replaceAfter } = input;
  const plan: BlockPlan = { lookUp: [], rebroadcast: [], bump: null, fill: [] };
  let lowest: PlanEntry | undefined;
  for (const entry of input.entries) {
    if (entry.nonce < chain.nonce) {
      plan.lookUp.push(entry.nonce);
      continue;
    }
    if (entry.state === "unknown") plan.rebroadcast.push(entry.nonce);
    if (!lowest || entry.nonce < lowest.nonce) lowest = entry;
  }
  plan.lookUp.sort((a, b) => a - b);
  plan.rebroadcast.sort((a, b) => a - b);
  if (!lowest) return plan;
  if (lowest.nonce === chain.nonce) {
    // Stuck since the later of its last attempt and the moment it became the next nonce to mine.
    const stuckFor = head - later(lowest.lastAttemptBlock, chain.since);
    if (lowest.state !== "unknown" && stuckFor >= replaceAfter) plan.bump = lowest.nonce;
    return plan;
  }
  if (head - chain.since >= replaceAfter) {
    const tracked = new Set(input.entries.map((entry) => entry.nonce));
    for (let nonce = chain.nonce; nonce < lowest.nonce && plan.fill.length < input.maxFills; nonce++)
      if (!tracked.has(nonce)) plan.fill.push(nonce);
  }
  return plan;
}

export interface NonceInput {
  /** The next nonce this process would use; undefined after start-up or a lease change (ask the chain). */
  local: number | undefined;
  /** The chain's counts when asked (`pending` may come from a backend that has not seen our pool). */
  pending?: number | undefined;
  latest?: number | undefined;
  /** Nonces this process still holds (in flight or watched for reorgs): never handed out again. */
  held: Iterable<number>;
  /** A nonce found used by someone else: the next one must be above it. */
  above?: number | undefined;
}

/** The nonce for a new transaction: the highest of every source, above every nonce still held. */
export function chooseNonce(input: NonceInput): number {
  let nonce = Math.max(input.local ?? 0, input.pending ?? 0, input.latest ?? 0);
  if (input.above !== undefined) nonce = Math.max(nonce, input.above + 1);
  // Above every nonce still held, not just outside the set: a stale `pending` must not reopen a lower one.
  for (const n of input.held) nonce = Math.max(nonce, n + 1);
  return nonce;
}

function later(a: bigint, b: bigint): bigint {
  if (a > b) return a;
  return b;
}
