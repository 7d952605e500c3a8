// The node's one transaction pipeline: every transaction (deliveries and `approve` alike) gets its nonce here,
// so several can go out in the same block without a nonce clash (the reference sent approve outside its lock).
// It signs locally, broadcasts, watches receipts once per new block, and replaces a transaction that is not
// mined within `replaceAfterBlocks` blocks with the same nonce and bumped fees (EIP-1559 or legacy pricing,
// whichever the chain's latest block shows). Reverts are outcomes, not exceptions: the caller decides.
//
// A mined transaction stays watched for `reorgDepth` blocks: when a chain reorganisation removes it (the new
// blocks no longer hold it, and it is not in the pool again), it is sent again with the same nonce. The
// interval it delivered is then delivered by the same transaction (never by a second one, which the same
// nonce rules out), and the nonces after it are not left stuck behind a gap.
//
// The key never leaves the account object given here (the Wallet's); nothing here logs it.
import type { Address, Hex, LocalAccount, TransactionReceipt } from "viem";
import { describeError, NodeError } from "../lib/errors.ts";
import type { Logger } from "../lib/log.ts";
import type { ChainClient } from "./rpc.ts";
import { rpcErrorText } from "./rpc.ts";

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
  /** The first broadcast's hash (replacements have their own; `outcome` names the one that was mined). */
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
  pending: number;
  /** The next nonce this node will use; null until the first transaction. */
  nonce: number | null;
}

export interface TransactionManager {
  send(request: TxRequest): Promise<SentTx>;
  /** Checks receipts of transactions in flight and replaces stale ones; call once per new block. */
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
  client: ChainClient;
  account: LocalAccount;
  chainId: number;
  log: Logger;
  /** Blocks without a receipt before a transaction is sent again with higher fees (default 5). */
  replaceAfterBlocks?: number;
  /** Fee increase per replacement, percent (default 25; nodes require at least 10). */
  feeBumpPercent?: number;
  /** Upper bound on maxFeePerGas / gasPrice in wei; undefined = none. */
  maxFeePerGas?: bigint;
  /**
   * Checked right before every broadcast (first sends and replacements): false means this process may not send
   * now (it lost the chain lease to a standby), and nothing goes out.
   */
  canSend?: () => boolean;
  /** Blocks after a "nonce too low" on replacement with still no receipt before the tx counts as dropped. */
  droppedAfterBlocks?: number;
  /** Blocks a mined transaction is watched for removal by a reorganisation (default 12; 0: not watched). */
  reorgDepth?: number;
}

type Fees =
  | { type: "eip1559"; maxFeePerGas: bigint; maxPriorityFeePerGas: bigint }
  | { type: "legacy"; gasPrice: bigint };

interface InFlight {
  request: TxRequest;
  nonce: number;
  fees: Fees;
  hashes: Hex[];
  sentAtBlock: bigint | undefined;
  /** Set once a replacement was refused because the nonce is already used. */
  nonceUsedSince: bigint | undefined;
  resolve(outcome: TxOutcome): void;
}

/** A mined transaction, watched until it is `reorgDepth` blocks deep. */
interface Mined {
  entry: InFlight;
  hash: Hex;
  blockNumber: bigint;
  blockHash: Hex;
}

const FEE_CACHE_MS = 1_000;
const MIN_PRIORITY_FEE = 1_000_000_000n; // 1 gwei when the node cannot tell

export function createTransactionManager(deps: TransactionManagerDeps): TransactionManager {
  const { client, account, chainId, log } = deps;
  const replaceAfter = BigInt(Math.max(1, deps.replaceAfterBlocks ?? 5));
  const bump = BigInt(Math.max(11, deps.feeBumpPercent ?? 25));
  const droppedAfter = BigInt(Math.max(1, deps.droppedAfterBlocks ?? 3));
  const reorgDepth = BigInt(Math.max(0, deps.reorgDepth ?? 12));
  const inFlight = new Map<number, InFlight>();
  const mined = new Map<number, Mined>();
  const counters = { sent: 0, confirmed: 0, reverted: 0, replaced: 0, dropped: 0, reorged: 0 };
  let nextNonce: number | undefined;
  let lastBlock: bigint | undefined;
  let feeCache: { at: number; fees: Fees } | undefined;
  // Sends are serialised: nonce assignment and broadcast happen one transaction at a time (each is quick).
  let queue: Promise<unknown> = Promise.resolve();

  const capped = (value: bigint) =>
    deps.maxFeePerGas !== undefined && value > deps.maxFeePerGas ? deps.maxFeePerGas : value;

  async function currentFees(fresh = false): Promise<Fees> {
    if (!fresh && feeCache && Date.now() - feeCache.at < FEE_CACHE_MS) return feeCache.fees;
    const block = await client.getBlock({ blockTag: "latest" });
    let fees: Fees;
    if (block.baseFeePerGas !== null && block.baseFeePerGas !== undefined) {
      let priority: bigint;
      try {
        priority = await client.request({ method: "eth_maxPriorityFeePerGas" }).then(BigInt);
      } catch {
        priority = MIN_PRIORITY_FEE;
      }
      const maxFee = capped(block.baseFeePerGas * 2n + priority);
      fees = {
        type: "eip1559",
        maxFeePerGas: maxFee,
        maxPriorityFeePerGas: min(priority, maxFee),
      };
    } else {
      fees = { type: "legacy", gasPrice: capped(await client.getGasPrice()) };
    }
    feeCache = { at: Date.now(), fees };
    return fees;
  }

  function bumped(fees: Fees, fresh: Fees): Fees {
    const up = (value: bigint) => (value * (100n + bump)) / 100n + 1n;
    if (fees.type === "eip1559" && fresh.type === "eip1559") {
      const maxFeePerGas = capped(max(up(fees.maxFeePerGas), fresh.maxFeePerGas));
      const priority = max(up(fees.maxPriorityFeePerGas), fresh.maxPriorityFeePerGas);
      return {
        type: "eip1559",
        maxFeePerGas,
        maxPriorityFeePerGas: min(priority, maxFeePerGas),
      };
    }
    if (fees.type === "legacy" && fresh.type === "legacy") {
      return { type: "legacy", gasPrice: capped(max(up(fees.gasPrice), fresh.gasPrice)) };
    }
    return fresh;
  }

  async function sign(request: TxRequest, nonce: number, fees: Fees): Promise<Hex> {
    const base = { chainId, nonce, to: request.to, data: request.data, gas: request.gas };
    return fees.type === "eip1559"
      ? account.signTransaction({
          ...base,
          type: "eip1559",
          maxFeePerGas: fees.maxFeePerGas,
          maxPriorityFeePerGas: fees.maxPriorityFeePerGas,
        })
      : account.signTransaction({ ...base, type: "legacy", gasPrice: fees.gasPrice });
  }

  async function broadcast(request: TxRequest, nonce: number, fees: Fees): Promise<Hex> {
    const serializedTransaction = await sign(request, nonce, fees);
    // Last moment to stop: a process paused past its lease must not wake up and send.
    if (deps.canSend && !deps.canSend()) {
      throw new NotAllowedToSendError("not sending: this node does not hold the chain lease");
    }
    return client.sendRawTransaction({ serializedTransaction });
  }

  async function pendingNonce(): Promise<number> {
    return client.getTransactionCount({ address: account.address, blockTag: "pending" });
  }

  async function sendNow(request: TxRequest): Promise<SentTx> {
    if (nextNonce === undefined) nextNonce = await pendingNonce();
    const fees = await currentFees();
    let nonce = nextNonce;
    let hash: Hex;
    try {
      hash = await broadcast(request, nonce, fees);
    } catch (error) {
      // For a first send, an underpriced "replacement" means another sender with our key holds the nonce.
      if (error instanceof NotAllowedToSendError) throw error;
      if (!isNonceError(error) && !UNDERPRICED.test(errorChainText(error))) {
        // Unknown whether it reached a mempool: ask the chain for the nonce next time.
        nextNonce = undefined;
        throw error;
      }
      // Someone (a previous run of this node, another process with the same key) used it: resync once.
      nonce = await pendingNonce();
      log.warn("Nonce out of step with the chain; resynchronised", { nonce, error: rpcErrorText(error) });
      try {
        hash = await broadcast(request, nonce, fees);
      } catch (retryError) {
        nextNonce = undefined;
        throw retryError;
      }
    }
    nextNonce = nonce + 1;
    counters.sent++;
    let resolve!: (outcome: TxOutcome) => void;
    const outcome = new Promise<TxOutcome>((r) => {
      resolve = r;
    });
    inFlight.set(nonce, {
      request,
      nonce,
      fees,
      hashes: [hash],
      sentAtBlock: lastBlock,
      nonceUsedSince: undefined,
      resolve,
    });
    return { hash, nonce, data: request.data, outcome };
  }

  function settle(entry: InFlight, receipt: TransactionReceipt): void {
    inFlight.delete(entry.nonce);
    if (reorgDepth > 0n) {
      mined.set(entry.nonce, {
        entry,
        hash: receipt.transactionHash,
        blockNumber: receipt.blockNumber,
        blockHash: receipt.blockHash,
      });
    }
    const base = {
      hash: receipt.transactionHash,
      blockNumber: receipt.blockNumber,
      gasUsed: receipt.gasUsed,
    };
    if (receipt.status === "success") {
      counters.confirmed++;
      entry.resolve({ status: "success", ...base });
    } else {
      counters.reverted++;
      entry.resolve({ status: "reverted", ...base });
    }
  }

  async function receiptOf(hash: Hex): Promise<TransactionReceipt | undefined> {
    try {
      return await client.getTransactionReceipt({ hash });
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }

  async function check(entry: InFlight, blockNumber: bigint): Promise<void> {
    // Newest first: a replacement is the likelier one to be mined.
    for (const hash of [...entry.hashes].reverse()) {
      const receipt = await receiptOf(hash);
      if (receipt) {
        settle(entry, receipt);
        return;
      }
    }
    if (entry.sentAtBlock === undefined) {
      entry.sentAtBlock = blockNumber;
      return;
    }
    if (entry.nonceUsedSince !== undefined) {
      if (blockNumber - entry.nonceUsedSince >= droppedAfter) {
        inFlight.delete(entry.nonce);
        counters.dropped++;
        log.warn("Transaction dropped: its nonce was used by another transaction", {
          ...entry.request.labels,
          nonce: entry.nonce,
          tx_hash: entry.hashes.at(-1),
        });
        entry.resolve({ status: "dropped", hash: entry.hashes.at(-1) ?? entry.hashes[0] ?? "0x" });
      }
      return;
    }
    if (blockNumber - entry.sentAtBlock < replaceAfter) return;
    const fees = bumped(entry.fees, await currentFees(true));
    try {
      const hash = await broadcast(entry.request, entry.nonce, fees);
      entry.hashes.push(hash);
      entry.fees = fees;
      entry.sentAtBlock = blockNumber;
      counters.replaced++;
      log.warn("Transaction not mined in time; replaced with higher fees", {
        ...entry.request.labels,
        nonce: entry.nonce,
        blocks: Number(replaceAfter),
        tx_hash: hash,
        replaces: entry.hashes.at(-2),
      });
    } catch (error) {
      if (UNDERPRICED.test(errorChainText(error))) {
        // Not enough of a bump for this node's pool: the next attempt bumps from here.
        entry.fees = fees;
        entry.sentAtBlock = blockNumber;
        log.warn("Replacement refused as underpriced; bumping further next time", {
          ...entry.request.labels,
          nonce: entry.nonce,
        });
        return;
      }
      if (isNonceError(error)) {
        // Mined meanwhile (receipt not visible yet) or used by someone else: wait a few blocks to tell.
        entry.nonceUsedSince = blockNumber;
        return;
      }
      log.warn("Could not replace a transaction; will try again next block", {
        ...entry.request.labels,
        nonce: entry.nonce,
        error: rpcErrorText(error),
      });
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
    const block = await client.getBlock({ blockNumber: newest.blockNumber }).catch((error) => {
      if (isNotFound(error)) return undefined; // the chain is shorter now
      throw error;
    });
    if (block?.hash === newest.blockHash) return;
    for (const m of [...mined.values()].sort((a, b) => a.entry.nonce - b.entry.nonce)) {
      const receipt = await receiptOf(m.hash);
      if (receipt) {
        m.blockNumber = receipt.blockNumber;
        m.blockHash = receipt.blockHash;
      } else {
        await resendRemoved(m, head);
      }
    }
  }

  /** A mined transaction the chain no longer holds: the same nonce goes out again, and is watched as sent. */
  async function resendRemoved(m: Mined, head: bigint): Promise<void> {
    mined.delete(m.entry.nonce);
    counters.reorged++;
    const { request, nonce, fees } = m.entry;
    const fields = { ...request.labels, nonce, tx_hash: m.hash, block: Number(m.blockNumber) };
    const again: InFlight = {
      request,
      nonce,
      fees,
      hashes: [...m.entry.hashes],
      sentAtBlock: head,
      nonceUsedSince: undefined,
      // Its first outcome was reported already; what happens to it now is for the operator's log.
      resolve: (outcome) => {
        if (outcome.status === "success")
          log.info("Transaction removed by a reorganisation mined again", fields);
        else
          log.error("Transaction removed by a reorganisation did not succeed when sent again", {
            ...fields,
            outcome: outcome.status,
          });
      },
    };
    inFlight.set(nonce, again);
    try {
      again.hashes.push(await broadcast(request, nonce, fees));
      log.warn("Transaction removed by a chain reorganisation; sent again with the same nonce", fields);
    } catch (error) {
      if (isNonceError(error)) again.nonceUsedSince = head;
      // Otherwise the replacement rule sends it again after `replaceAfterBlocks`.
      log.warn("Transaction removed by a chain reorganisation; could not send it again yet", {
        ...fields,
        error: rpcErrorText(error),
      });
    }
  }

  return {
    send(request) {
      const result = queue.then(() => sendNow(request));
      queue = result.catch(() => undefined);
      return result;
    },
    async onBlock(blockNumber) {
      const moved = lastBlock === undefined || blockNumber > lastBlock;
      lastBlock = blockNumber;
      if (moved && mined.size > 0) {
        try {
          await checkReorg(blockNumber);
        } catch (error) {
          log.warn("Could not check recent transactions against a reorganisation", {
            error: describeError(error),
          });
        }
      }
      for (const entry of [...inFlight.values()]) {
        try {
          await check(entry, blockNumber);
        } catch (error) {
          log.warn("Could not check a transaction's receipt", {
            ...entry.request.labels,
            tx_hash: entry.hashes.at(-1),
            error: describeError(error),
          });
        }
      }
    },
    resync() {
      nextNonce = undefined;
    },
    stats: () => ({ ...counters, pending: inFlight.size, nonce: nextNonce ?? null }),
  };
}

function max(a: bigint, b: bigint): bigint {
  return a > b ? a : b;
}

function min(a: bigint, b: bigint): bigint {
  return a < b ? a : b;
}

const NONCE_ERROR = /nonce too low|nonce.*already|already known/i;
/** Another transaction holds the nonce in the pool and ours does not pay enough more to replace it. */
const UNDERPRICED = /underpriced/i;

function isNonceError(error: unknown): boolean {
  return NONCE_ERROR.test(errorChainText(error));
}

function isNotFound(error: unknown): boolean {
  return /could not be found|not found/i.test(errorChainText(error));
}

function errorChainText(error: unknown): string {
  const parts: string[] = [];
  let current: unknown = error;
  for (let depth = 0; current && depth < 8; depth++) {
    const e = current as { message?: unknown; details?: unknown; shortMessage?: unknown; cause?: unknown };
    for (const value of [e.message, e.details, e.shortMessage])
      if (typeof value === "string") parts.push(value);
    current = e.cause;
  }
  return parts.join(" | ");
}
