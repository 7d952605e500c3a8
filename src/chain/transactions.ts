// The node's one transaction pipeline: every transaction (deliveries and `approve` alike) gets its nonce here,
// so several can go out in the same block without a nonce clash (the reference sent approve outside its lock).
// Modelled on Chainlink's txmgr: each transaction is an entry with a named state (tx-plan.ts) and a list of
// signed attempts that keep its nonce; the decisions are pure (tx-plan.ts, tx-fees.ts, tx-errors.ts) and this
// file is the thin shell that reads the chain and carries them out.
//
// Sending is idempotent. A transaction is signed first, so its hash (keccak256 of the signed bytes) is known
// before the broadcast; the signed bytes are kept. The RPC layer sends eth_sendRawTransaction once and never
// retries it: a lost reply (502/504, timeout) leaves the entry "unknown", and the same bytes go out again on
// the next block ("already known" / "transaction already imported" = success). After "nonce too low" the
// manager looks for its own hash before anything else: found, it is ours and tracked; not found, the nonce was
// used by someone else, and only then does the transaction move on to another nonce. The lease (`canSend`) is
// checked right before every broadcast: first sends, rebroadcasts, replacements, fills and reorg re-sends.
//
// Nonces: the highest of the local counter, the chain's `pending` and `latest` counts, and every nonce this
// process still holds; never one in flight (a load-balanced provider may answer `pending` from a backend that
// has not seen our pool).
//
// Once per block: one `latest` nonce read; receipts are looked up only for nonces the chain has mined. Only the
// lowest unmined nonce is replaced with bumped fees (the others cannot be mined before it); a nonce nobody here
// tracks that blocks ours for `replaceAfterBlocks` is filled with a 0-value self-transfer. A fee cap that stops
// a replacement is reported (stats: feeCapped, stuckNonce) and logged once, never retried as a silent loop.
//
// A mined transaction stays watched for `reorgDepth` blocks: when a reorganisation removes it, the same signed
// bytes are sent again at the same nonce (the interval it delivered is then delivered by the same transaction,
// never by a second one). When a reorganisation changes a mined transaction's status (success ↔ reverted), the
// change is logged, counted and given to `onReorgOutcome`.
//
// The key never leaves the account object given here (the Wallet's); nothing here logs it.
import { type Address, type Hex, keccak256, type LocalAccount } from "viem";
import { describeError, NodeError } from "../lib/errors.ts";
import type { Logger } from "../lib/log.ts";
import type { ChainClient } from "./rpc.ts";
import { rpcErrorText } from "./rpc.ts";
import { type BroadcastVerdict, classifyBroadcastError, errorChainText } from "./tx-errors.ts";
import { bumpFees, type Fees, feeCeiling, initialFees } from "./tx-fees.ts";
import { type ChainNonceWatch, chooseNonce, planBlock, type TxState, watchChainNonce } from "./tx-plan.ts";
import { type MinedReceipt, type TxRpc, txRpcCalls } from "./tx-rpc.ts";

export interface TxRequest {
  to: Address;
  data: Hex;
  gas: bigint;
  /** Context for log lines (subscription id, interval, …). */
  labels?: Record<string, unknown>;
}

export type TxOutcome =
  | { status: "success"; hash: Hex; blockNumber: bigint; gasUsed: bigint }
  | { status: "reverted"; hash: Hex; blockNumber: bigint; gasUsed: bigint }
  /** The nonce was used by a transaction that is not ours (or ours was dropped and its nonce reused). */
  | { status: "dropped"; hash: Hex };

export interface SentTx {
  /** The first attempt's hash (replacements have their own; `outcome` names the one that was mined). */
  hash: Hex;
  nonce: number;
  /** The call data, for replaying a revert to learn its reason. */
  data: Hex;
  outcome: Promise<TxOutcome>;
}

export interface TxStats {
  sent: number;
  confirmed: number;
  reverted: number;
  replaced: number;
  dropped: number;
  /** Mined transactions removed by a chain reorganisation and sent again. */
  reorged: number;
  /** Mined transactions whose status (success / reverted) a reorganisation changed. */
  reorgOutcomeChanged: number;
  /** Broadcasts whose reply was lost (the transaction stayed tracked and was sent again as is). */
  lostReplies: number;
  /** The same signed bytes sent again (after a lost reply or a reorganisation). */
  rebroadcasts: number;
  /** 0-value self-transfers sent at a nonce this node did not track that blocked its transactions. */
  filled: number;
  pending: number;
  /** The next nonce this node will use; null until the first transaction. */
  nonce: number | null;
  /** Replacing `stuckNonce` would need fees above max_fee_per_gas: the node's transactions wait behind it. */
  feeCapped: boolean;
  stuckNonce: number | null;
}

export interface TransactionManager {
  send(request: TxRequest): Promise<SentTx>;
  /** Checks transactions in flight against the chain, rebroadcasts, replaces and fills; call once per block. */
  onBlock(blockNumber: bigint): Promise<void>;
  /** Forget the local nonce: the next send asks the chain (another process may have sent meanwhile). */
  resync(): void;
  stats(): TxStats;
}

/** This process may not send now (the chain lease is held elsewhere). */
export class NotAllowedToSendError extends NodeError {
  override name = "NotAllowedToSendError";
}

export interface TransactionManagerDeps {
  /** The node's ChainClient, or any EIP-1193 `request` (tests stand in for a misbehaving provider). */
  client: ChainClient | TxRpc;
  account: LocalAccount;
  chainId: number;
  log: Logger;
  /** Blocks a transaction may stay the lowest unmined nonce before it is replaced with higher fees (default 5). */
  replaceAfterBlocks?: number;
  /** Fee increase per replacement, percent (default 25; at least 11: pools require 10). */
  feeBumpPercent?: number;
  /** Upper bound on maxFeePerGas / gasPrice in wei; undefined = none. */
  maxFeePerGas?: bigint;
  /**
   * Checked right before every broadcast (first sends, rebroadcasts, replacements, fills): false means this
   * process may not send now (it lost the chain lease to a standby), and nothing goes out.
   */
  canSend?: () => boolean;
  /** Blocks a mined nonce may show no receipt of ours before the transaction counts as dropped (default 3). */
  droppedAfterBlocks?: number;
  /** Blocks a mined transaction is watched for removal by a reorganisation (default 12; 0: not watched). */
  reorgDepth?: number;
  /**
   * A reorganisation changed the status of a transaction whose outcome was reported already (it reverts in the
   * new chain, or now succeeds). `labels` are the request's; the processor may re-check that interval.
   */
  onReorgOutcome?: (labels: Record<string, unknown>, outcome: TxOutcome) => void;
}

/** One signed variant of a transaction; all attempts of an entry share its nonce. */
interface Attempt {
  hash: Hex;
  raw: Hex;
  fees: Fees;
}

interface Entry {
  /** A caller's transaction, or a self-transfer filling a nonce that blocked ours. */
  kind: "request" | "fill";
  request: TxRequest;
  nonce: number;
  state: TxState;
  /** The fees last tried (sent, or refused as underpriced): the next bump starts here. */
  fees: Fees;
  /** Attempts that may be in a pool or mined, oldest first; the newest is the one rebroadcast. */
  attempts: Attempt[];
  /** Undefined until the first block seen after the send. */
  lastAttemptBlock: bigint | undefined;
  /** The chain mined this nonce but no receipt of ours was found, since this block. */
  nonceUsedSince: bigint | undefined;
  /** Its first broadcast is under way (send): the per-block work leaves it alone until it has an answer. */
  busy?: boolean;
  resolve(outcome: TxOutcome): void;
}

/** A mined transaction, watched until it is `reorgDepth` blocks deep. */
interface Mined {
  entry: Entry;
  hash: Hex;
  blockNumber: bigint;
  blockHash: Hex;
  status: "success" | "reverted";
}

type Verdict = BroadcastVerdict | "sent" | "not-allowed";

const FEE_CACHE_MS = 1_000;
const MIN_PRIORITY_FEE = 1_000_000_000n; // 1 gwei when the node cannot tell
const SELF_TRANSFER_GAS = 21_000n;
/** Fills per block at most: a long gap below our nonces is closed over a few blocks. */
const MAX_FILLS_PER_BLOCK = 16;
/** A first send whose nonce turns out used by someone else moves on at most this often before giving up. */
const MAX_NONCE_MOVES = 3;
/** Transactions above a replaced nonce sent again as they are, at most, per replacement. */
const MAX_REFLOAT = 64;
/** Blocks back whose receipts are fetched at once (eth_getBlockReceipts) when several of ours were mined. */
const RECEIPT_BLOCKS = 4n;
/** A provider that does not have a method (JSON-RPC -32601 and the wordings providers use for it). */
const METHOD_MISSING =
  /-32601|method not found|not supported|does not exist|not available|unsupported method/i;

export function createTransactionManager(deps: TransactionManagerDeps): TransactionManager {
  const { account, chainId, log } = deps;
  const calls = txRpcCalls(deps.client as TxRpc);
  const replaceAfter = BigInt(Math.max(1, deps.replaceAfterBlocks ?? 5));
  const bump = BigInt(Math.max(11, deps.feeBumpPercent ?? 25));
  const droppedAfter = BigInt(Math.max(1, deps.droppedAfterBlocks ?? 3));
  const reorgDepth = BigInt(Math.max(0, deps.reorgDepth ?? 12));
  const cap = deps.maxFeePerGas;
  const inFlight = new Map<number, Entry>();
  const mined = new Map<number, Mined>();
  const counters = {
    sent: 0,
    confirmed: 0,
    reverted: 0,
    replaced: 0,
    dropped: 0,
    reorged: 0,
    reorgOutcomeChanged: 0,
    lostReplies: 0,
    rebroadcasts: 0,
    filled: 0,
  };
  let nextNonce: number | undefined;
  let lastBlock: bigint | undefined;
  let chainNonce: ChainNonceWatch | undefined;
  /** The nonce whose replacement max_fee_per_gas stops (logged once per nonce). */
  let feeCapped: number | undefined;
  let feeCache: { at: number; fees: Fees } | undefined;
  let blockReceiptsSupported = true;
  let receiptsThrough: bigint | undefined;
  // Sends are serialised: nonce assignment and broadcast happen one transaction at a time (each is quick).
  let queue: Promise<unknown> = Promise.resolve();

  async function currentFees(fresh = false): Promise<Fees> {
    if (!fresh && feeCache && Date.now() - feeCache.at < FEE_CACHE_MS) return feeCache.fees;
    const block = await calls.block("latest");
    const baseFeePerGas = block?.baseFeePerGas;
    const fees = initialFees(
      {
        baseFeePerGas,
        priorityFee:
          baseFeePerGas === undefined ? 0n : await calls.priorityFee().catch(() => MIN_PRIORITY_FEE),
        gasPrice: baseFeePerGas === undefined ? await calls.gasPrice() : undefined,
      },
      cap,
    );
    feeCache = { at: Date.now(), fees };
    return fees;
  }

  async function sign(request: TxRequest, nonce: number, fees: Fees): Promise<Attempt> {
    const base = { chainId, nonce, to: request.to, data: request.data, gas: request.gas };
    const raw =
      fees.type === "eip1559"
        ? await account.signTransaction({
            ...base,
            type: "eip1559",
            maxFeePerGas: fees.maxFeePerGas,
            maxPriorityFeePerGas: fees.maxPriorityFeePerGas,
          })
        : await account.signTransaction({ ...base, type: "legacy", gasPrice: fees.gasPrice });
    return { raw, hash: keccak256(raw), fees };
  }

  /** One broadcast, never retried here; the lease is checked right before it. */
  async function broadcast(attempt: Attempt): Promise<{ verdict: Verdict; error?: unknown }> {
    if (deps.canSend && !deps.canSend()) return { verdict: "not-allowed" };
    try {
      await calls.sendRaw(attempt.raw);
      return { verdict: "sent" };
    } catch (error) {
      return { verdict: classifyBroadcastError(error), error };
    }
  }

  /** Nonces this process still holds: in flight, or mined and watched for a reorganisation. */
  function held(): number[] {
    return [...inFlight.keys(), ...mined.keys()];
  }

  async function allocateNonce(above: number | undefined): Promise<number> {
    if (nextNonce !== undefined && above === undefined)
      return chooseNonce({ local: nextNonce, held: held() });
    const address = account.address;
    const [pending, latest] = await Promise.all([
      calls.transactionCount(address, "pending"),
      calls.transactionCount(address, "latest"),
    ]);
    return chooseNonce({ local: nextNonce, pending, latest, held: held(), above });
  }

  function outcomePromise(): { outcome: Promise<TxOutcome>; resolve: (outcome: TxOutcome) => void } {
    let resolve!: (outcome: TxOutcome) => void;
    const outcome = new Promise<TxOutcome>((r) => {
      resolve = r;
    });
    return { outcome, resolve };
  }

  async function sendNow(request: TxRequest): Promise<SentTx> {
    if (deps.canSend && !deps.canSend()) {
      throw new NotAllowedToSendError("not sending: this node does not hold the chain lease");
    }
    let above: number | undefined;
    for (let moves = 1; ; moves++) {
      const nonce = await allocateNonce(above);
      const attempt = await sign(request, nonce, await currentFees());
      const { outcome, resolve } = outcomePromise();
      const entry: Entry = {
        kind: "request",
        request,
        nonce,
        state: "unknown",
        fees: attempt.fees,
        attempts: [attempt],
        lastAttemptBlock: lastBlock,
        nonceUsedSince: undefined,
        busy: true,
        resolve,
      };
      // Held before the broadcast: whatever its answer, no other transaction gets this nonce meanwhile.
      inFlight.set(nonce, entry);
      nextNonce = nonce + 1;
      let result: "tracked" | { taken: unknown };
      try {
        result = await firstBroadcast(entry, attempt);
      } finally {
        entry.busy = false;
      }
      if (result === "tracked") {
        counters.sent++;
        return { hash: attempt.hash, nonce, data: request.data, outcome };
      }
      // Someone else's transaction holds the nonce: ours goes after it (a few times at most).
      nextNonce = undefined;
      above = nonce;
      if (moves >= MAX_NONCE_MOVES) {
        throw new NodeError(`nonce ${nonce} and the ones before it were taken by other transactions`, {
          retryable: true,
          cause: result.taken,
          meta: { nonce },
        });
      }
    }
  }

  /**
   * A new transaction's first broadcast: "tracked" when it is (or may be) in a pool; `taken` when another
   * transaction holds its nonce (the entry is released); throws when the node refused it (released too).
   */
  async function firstBroadcast(entry: Entry, attempt: Attempt): Promise<"tracked" | { taken: unknown }> {
    const { nonce } = entry;
    const release = () => {
      inFlight.delete(nonce);
      if (nextNonce === nonce + 1) nextNonce = nonce;
    };
    const fields = { ...entry.request.labels, nonce, tx_hash: attempt.hash };
    const { verdict, error } = await broadcast(attempt);
    switch (verdict) {
      case "sent":
      case "known":
        entry.state = "pooled";
        return "tracked";
      case "unknown":
        // It may be in a pool: keep it, and its nonce, and send the same bytes again next block.
        counters.lostReplies++;
        log.warn("No answer to a transaction's broadcast; it stays tracked and is sent again as is", {
          ...fields,
          error: rpcErrorText(error),
        });
        return "tracked";
      case "nonce-too-low": {
        // Ours (the same bytes went out before) or someone else's: only a lookup of our hash tells.
        const ours = await calls.transactionKnown(attempt.hash).catch(() => undefined);
        if (ours === undefined) {
          // Cannot tell now: keep it tracked; the per-block check finds its receipt or calls it dropped.
          entry.state = "pooled";
          log.warn("Nonce reported used; could not look the transaction up yet", fields);
          return "tracked";
        }
        if (ours) {
          entry.state = "pooled";
          return "tracked";
        }
        release();
        log.warn("Nonce used by another transaction; moving to the next one", {
          ...fields,
          error: rpcErrorText(error),
        });
        return { taken: error };
      }
      case "replacement-underpriced":
        // Another transaction with our key holds this nonce in a pool.
        release();
        log.warn("Nonce held by another pending transaction; moving to the next one", fields);
        return { taken: error };
      case "not-allowed":
        release();
        throw new NotAllowedToSendError("not sending: this node does not hold the chain lease");
      default:
        // Refused: nothing is in a pool, the nonce is free again.
        release();
        throw error;
    }
  }

  function settle(entry: Entry, receipt: MinedReceipt): void {
    inFlight.delete(entry.nonce);
    const outcome: TxOutcome = {
      status: receipt.status,
      hash: receipt.transactionHash,
      blockNumber: receipt.blockNumber,
      gasUsed: receipt.gasUsed,
    };
    if (entry.kind === "fill") {
      log.info("Self-transfer mined at a nonce that blocked this node's transactions", {
        nonce: entry.nonce,
        tx_hash: receipt.transactionHash,
      });
      entry.resolve(outcome);
      return;
    }
    if (reorgDepth > 0n) {
      mined.set(entry.nonce, {
        entry,
        hash: receipt.transactionHash,
        blockNumber: receipt.blockNumber,
        blockHash: receipt.blockHash,
        status: receipt.status,
      });
    }
    if (receipt.status === "success") counters.confirmed++;
    else counters.reverted++;
    entry.resolve(outcome);
  }

  function drop(entry: Entry): void {
    inFlight.delete(entry.nonce);
    const hash = entry.attempts.at(-1)?.hash ?? "0x";
    if (entry.kind === "request") {
      counters.dropped++;
      log.warn("Transaction dropped: its nonce was used by another transaction", {
        ...entry.request.labels,
        nonce: entry.nonce,
        tx_hash: hash,
      });
    }
    entry.resolve({ status: "dropped", hash });
  }

  /** The chain mined this entry's nonce: by one of its attempts (settle), or by someone else (drop, later). */
  async function lookUp(entry: Entry, head: bigint, prefetched?: Map<string, MinedReceipt>): Promise<void> {
    // Newest first: a replacement is the likelier one to be mined.
    for (const attempt of [...entry.attempts].reverse()) {
      const receipt = prefetched?.get(attempt.hash.toLowerCase()) ?? (await calls.receipt(attempt.hash));
      if (receipt) {
        settle(entry, receipt);
        return;
      }
    }
    if (entry.attempts.length === 0) {
      drop(entry); // nothing of ours was ever in a pool (a fill refused as underpriced)
      return;
    }
    // A load-balanced provider's receipt may lag its nonce: wait a few blocks before calling it someone else's.
    if (entry.nonceUsedSince === undefined) entry.nonceUsedSince = head;
    else if (head - entry.nonceUsedSince >= droppedAfter) drop(entry);
  }

  /**
   * The receipts of the blocks since the last look, in one request per block (eth_getBlockReceipts), when several
   * of our transactions were mined: 200 deliveries in one block cost one request instead of 200. At most
   * RECEIPT_BLOCKS blocks back; a transaction mined earlier (or a provider without the method, remembered) falls
   * back to eth_getTransactionReceipt.
   */
  async function recentReceipts(head: bigint): Promise<Map<string, MinedReceipt> | undefined> {
    if (!blockReceiptsSupported) return undefined;
    const from =
      receiptsThrough === undefined || head - receiptsThrough > RECEIPT_BLOCKS
        ? head - RECEIPT_BLOCKS + 1n
        : receiptsThrough + 1n;
    const found = new Map<string, MinedReceipt>();
    for (let block = from > 0n ? from : 0n; block <= head; block++) {
      try {
        for (const receipt of (await calls.blockReceipts(block)) ?? []) {
          found.set(receipt.transactionHash.toLowerCase(), receipt);
        }
      } catch (error) {
        // A provider without the method: remembered. Anything else (an outage): one by one this time.
        const code = (error as { code?: unknown }).code;
        if (code === -32601 || METHOD_MISSING.test(errorChainText(error))) {
          blockReceiptsSupported = false;
          log.info("The RPC has no eth_getBlockReceipts; receipts are looked up one by one", {
            error: rpcErrorText(error),
          });
        }
        return undefined;
      }
    }
    receiptsThrough = head;
    return found;
  }

  /** An entry whose broadcast is unknown: the same signed bytes again (idempotent). */
  async function rebroadcast(entry: Entry, head: bigint): Promise<void> {
    const attempt = entry.attempts.at(-1);
    if (!attempt) {
      entry.state = "priced-out";
      return;
    }
    const { verdict, error } = await broadcast(attempt);
    if (verdict === "not-allowed") return;
    const fields = { ...entry.request.labels, nonce: entry.nonce, tx_hash: attempt.hash };
    if (verdict === "sent" || verdict === "known") {
      counters.rebroadcasts++;
      entry.state = "pooled";
      entry.lastAttemptBlock = head;
      log.info("Transaction sent again as is; a pool holds it", { ...fields, verdict });
    } else if (verdict === "nonce-too-low") {
      // Mined: by this transaction (the lost reply's broadcast went through) or by someone else.
      entry.state = "pooled";
      await lookUp(entry, head);
    } else if (verdict === "replacement-underpriced" || verdict === "underpriced") {
      entry.state = "priced-out";
    } else {
      log.warn("Transaction could not be sent again yet; trying next block", {
        ...fields,
        error: rpcErrorText(error),
      });
    }
  }

  /**
   * A pool that lost or ignored the lowest nonce (a node restart, an eviction) may have lost the ones above it
   * too: their signed bytes go out again as they are (a pool that has them answers "already known"), so they are
   * mined right behind the replaced one instead of each waiting `replaceAfterBlocks` of its own in turn (a
   * recurring delivery held that long can miss its interval and revert).
   */
  async function refloatAbove(nonce: number): Promise<void> {
    const above = [...inFlight.values()]
      .filter((e) => e.nonce > nonce && !e.busy && e.state === "pooled" && e.attempts.length > 0)
      .sort((a, b) => a.nonce - b.nonce)
      .slice(0, MAX_REFLOAT);
    for (const entry of above) {
      const attempt = entry.attempts.at(-1);
      if (!attempt) continue;
      const { verdict } = await broadcast(attempt);
      if (verdict === "not-allowed") return;
      if (verdict === "sent" || verdict === "known") counters.rebroadcasts++;
    }
  }

  function reportFeeCapped(entry: Entry, fees: Fees): void {
    if (feeCapped === entry.nonce) return;
    feeCapped = entry.nonce;
    log.error(
      "Fee cap reached: the lowest pending nonce cannot be replaced without exceeding max_fee_per_gas",
      {
        ...entry.request.labels,
        nonce: entry.nonce,
        max_fee_per_gas: cap?.toString() ?? null,
        fee_per_gas: feeCeiling(fees).toString(),
      },
    );
  }

  /** The lowest unmined nonce, stuck: the same transaction with bumped fees, at most the cap. */
  async function replace(entry: Entry, head: bigint): Promise<void> {
    const next = bumpFees(entry.fees, await currentFees(true), bump, cap);
    entry.lastAttemptBlock = head;
    if (!next.replaces) {
      reportFeeCapped(entry, entry.fees);
      // No valid replacement under the cap: keep the newest attempt in a pool (one that evicted it takes it
      // back; one that has it answers "already known"), so it is mined once the base fee falls under the cap.
      const newest = entry.attempts.at(-1);
      if (newest) await broadcast(newest);
      return;
    }
    const attempt = await sign(entry.request, entry.nonce, next.fees);
    const { verdict, error } = await broadcast(attempt);
    if (verdict === "not-allowed") return;
    const fields = { ...entry.request.labels, nonce: entry.nonce, tx_hash: attempt.hash };
    if (verdict === "sent" || verdict === "known" || verdict === "unknown") {
      entry.attempts.push(attempt);
      entry.fees = next.fees;
      entry.state = verdict === "unknown" ? "unknown" : "pooled";
      counters.replaced++;
      if (verdict === "unknown") counters.lostReplies++;
      log.warn("Transaction not mined in time; replaced with higher fees", {
        ...fields,
        blocks: Number(replaceAfter),
        replaces: entry.attempts.at(-2)?.hash,
        fee_per_gas: feeCeiling(next.fees).toString(),
      });
    } else if (verdict === "replacement-underpriced" || verdict === "underpriced") {
      // Not enough of a bump for this pool: the next attempt bumps from here, unless the cap stops it.
      entry.fees = next.fees;
      if (next.capped || (cap !== undefined && feeCeiling(next.fees) >= cap))
        reportFeeCapped(entry, next.fees);
      else log.warn("Replacement refused as underpriced; bumping further next time", fields);
    } else if (verdict === "nonce-too-low") {
      await lookUp(entry, head);
    } else {
      log.warn("Could not replace a transaction; will try again", { ...fields, error: rpcErrorText(error) });
    }
  }

  /**
   * A nonce no one here tracks blocks this node's transactions (sent before a restart, by the old lease holder,
   * or never sent): a 0-value self-transfer at that nonce, priced one bump above the chain's current fees.
   */
  async function fill(nonce: number, head: bigint): Promise<void> {
    if (inFlight.has(nonce)) return;
    const current = await currentFees(true);
    const fees = bumpFees(current, current, bump, cap).fees;
    const request: TxRequest = { to: account.address, data: "0x", gas: SELF_TRANSFER_GAS, labels: {} };
    const attempt = await sign(request, nonce, fees);
    if (inFlight.has(nonce)) return;
    const entry: Entry = {
      kind: "fill",
      request,
      nonce,
      state: "priced-out",
      fees,
      attempts: [],
      lastAttemptBlock: head,
      nonceUsedSince: undefined,
      resolve: () => undefined,
    };
    inFlight.set(nonce, entry);
    const { verdict, error } = await broadcast(attempt);
    const fields = { nonce, tx_hash: attempt.hash, blocked_since: Number(chainNonce?.since ?? head) };
    if (verdict === "sent" || verdict === "known" || verdict === "unknown") {
      entry.attempts.push(attempt);
      entry.state = verdict === "unknown" ? "unknown" : "pooled";
      counters.filled++;
      log.warn("A nonce this node does not track blocks its transactions; replaced it with a self-transfer", {
        ...fields,
        fee_per_gas: feeCeiling(fees).toString(),
      });
    } else if (verdict === "replacement-underpriced" || verdict === "underpriced") {
      // Stays tracked as priced out: being the lowest nonce now, the replacement rule bumps it (to the cap).
      if (cap !== undefined && feeCeiling(fees) >= cap) reportFeeCapped(entry, fees);
    } else {
      // Mined meanwhile ("nonce too low"), not allowed, or refused: nothing of ours holds the nonce.
      inFlight.delete(nonce);
      if (verdict !== "not-allowed" && verdict !== "nonce-too-low") {
        log.warn("Could not fill a nonce that blocks this node's transactions", {
          ...fields,
          error: rpcErrorText(error),
        });
      }
    }
  }

  /**
   * Once per new block: are the blocks holding this node's recent transactions still part of the chain? One
   * block is read: a block's hash commits to all its ancestors, so when the newest block holding one of them
   * is unchanged, so are the older ones. Only after a reorganisation is each receipt looked up again.
   */
  async function checkReorg(head: bigint): Promise<void> {
    let newest: Mined | undefined;
    for (const m of mined.values()) {
      if (head - m.blockNumber >= reorgDepth) mined.delete(m.entry.nonce);
      else if (!newest || m.blockNumber > newest.blockNumber) newest = m;
    }
    if (!newest) return;
    const block = await calls.block(newest.blockNumber);
    if (block?.hash === newest.blockHash) return;
    for (const m of [...mined.values()].sort((a, b) => a.entry.nonce - b.entry.nonce)) {
      const receipt = await calls.receipt(m.hash);
      if (!receipt) {
        resendRemoved(m, head);
        continue;
      }
      m.blockNumber = receipt.blockNumber;
      m.blockHash = receipt.blockHash;
      if (receipt.status !== m.status) {
        m.status = receipt.status;
        reportChangedOutcome(m.entry, {
          status: receipt.status,
          hash: receipt.transactionHash,
          blockNumber: receipt.blockNumber,
          gasUsed: receipt.gasUsed,
        });
      }
    }
  }

  function reportChangedOutcome(entry: Entry, outcome: TxOutcome): void {
    counters.reorgOutcomeChanged++;
    log.error("A reorganisation changed a transaction's outcome", {
      ...entry.request.labels,
      nonce: entry.nonce,
      tx_hash: outcome.hash,
      outcome: outcome.status,
    });
    try {
      deps.onReorgOutcome?.(entry.request.labels ?? {}, outcome);
    } catch (error) {
      log.warn("onReorgOutcome failed", { error: describeError(error) });
    }
  }

  /** A mined transaction the chain no longer holds: tracked again, and its signed bytes sent again. */
  function resendRemoved(m: Mined, head: bigint): void {
    mined.delete(m.entry.nonce);
    if (inFlight.has(m.entry.nonce)) return; // cannot happen: nonces in flight are above mined ones
    counters.reorged++;
    const { request, nonce } = m.entry;
    const fields = { ...request.labels, nonce, tx_hash: m.hash, block: Number(m.blockNumber) };
    // The attempt that was mined goes out again (it is the last one, the one rebroadcast).
    const minedAttempt = m.entry.attempts.find((a) => a.hash === m.hash);
    const others = m.entry.attempts.filter((a) => a.hash !== m.hash);
    const again: Entry = {
      ...m.entry,
      state: "unknown",
      attempts: minedAttempt ? [...others, minedAttempt] : others,
      lastAttemptBlock: head,
      nonceUsedSince: undefined,
      // Its first outcome was reported already; a different one now is reported as a changed outcome.
      resolve: (outcome) => {
        if (outcome.status === m.status) {
          log.info("Transaction removed by a reorganisation mined again", fields);
          return;
        }
        if (outcome.status === "dropped") {
          log.error("Transaction removed by a reorganisation was not mined again", fields);
        }
        reportChangedOutcome(again, outcome);
      },
    };
    inFlight.set(nonce, again);
    // The wording operators know (the rebroadcast of its signed bytes follows in this block's plan).
    log.warn("Transaction removed by a chain reorganisation; sent again with the same nonce", fields);
  }

  async function guarded(what: string, entry: Entry | undefined, work: () => Promise<void>): Promise<void> {
    try {
      await work();
    } catch (error) {
      log.warn(what, {
        ...entry?.request.labels,
        nonce: entry?.nonce,
        tx_hash: entry?.attempts.at(-1)?.hash,
        error: describeError(error),
      });
    }
  }

  async function onBlock(head: bigint): Promise<void> {
    const moved = lastBlock === undefined || head > lastBlock;
    if (moved) lastBlock = head;
    if (moved && mined.size > 0) {
      await guarded("Could not check recent transactions against a reorganisation", undefined, () =>
        checkReorg(head),
      );
    }
    if (inFlight.size === 0) {
      chainNonce = undefined;
      feeCapped = undefined;
      return;
    }
    let latest: number;
    try {
      latest = await calls.transactionCount(account.address, "latest");
    } catch (error) {
      log.warn("Could not read the wallet's mined nonce; transactions are checked next block", {
        error: describeError(error),
      });
      return;
    }
    chainNonce = watchChainNonce(chainNonce, latest, head);
    if (feeCapped !== undefined && latest > feeCapped) {
      log.info("The nonce the fee cap held up is mined", { nonce: feeCapped });
      feeCapped = undefined;
    }
    for (const entry of inFlight.values()) entry.lastAttemptBlock ??= head;
    const plan = planBlock({
      head,
      chain: chainNonce,
      entries: [...inFlight.values()].map((e) => ({
        nonce: e.nonce,
        state: e.state,
        lastAttemptBlock: e.lastAttemptBlock ?? head,
      })),
      replaceAfter,
      maxFills: MAX_FILLS_PER_BLOCK,
    });
    const idle = (nonce: number) => {
      const entry = inFlight.get(nonce);
      return entry?.busy ? undefined : entry;
    };
    const toLookUp = plan.lookUp.map(idle).filter((entry): entry is Entry => entry !== undefined);
    const prefetched = toLookUp.length > 1 ? await recentReceipts(head) : undefined;
    for (const entry of toLookUp) {
      await guarded("Could not check a transaction's receipt", entry, () => lookUp(entry, head, prefetched));
    }
    // Sending (again) happens once per block, not on the same block's re-checks.
    if (!moved) return;
    for (const nonce of plan.rebroadcast) {
      const entry = idle(nonce);
      if (entry) await guarded("Could not send a transaction again", entry, () => rebroadcast(entry, head));
    }
    const stuck = plan.bump === null ? undefined : idle(plan.bump);
    if (stuck) {
      await guarded("Could not replace a transaction", stuck, () => replace(stuck, head));
      await refloatAbove(stuck.nonce);
    }
    for (const nonce of plan.fill) {
      await guarded("Could not fill a blocking nonce", undefined, () => fill(nonce, head));
    }
  }

  return {
    send(request) {
      const result = queue.then(() => sendNow(request));
      queue = result.catch(() => undefined);
      return result;
    },
    onBlock,
    resync() {
      nextNonce = undefined;
    },
    stats: () => ({
      ...counters,
      pending: [...inFlight.values()].filter((e) => e.kind === "request").length,
      nonce: nextNonce ?? null,
      feeCapped: feeCapped !== undefined,
      stuckNonce: feeCapped ?? null,
    }),
  };
}
