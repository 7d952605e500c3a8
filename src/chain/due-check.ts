// The processor's due check (issue 17, defect 5): for intervals that just fell due, what the chain says about
// each, as verdicts only (the processor decides what a verdict does to its state).
//
// Interface for the processor:
//   const due = createDueCheck({ reader: ctx.reader, nodeResponded: batch.nodeResponded,
//     walletChecker: ctx.walletChecker, node: wallet.address, log });
//   const verdicts = await due.check(items, block);   // never throws; one verdict per item key
//   items: { key, id, interval, redundancy, frequency, payment? } — `payment` only for subscriptions that pay
//   (Subscription.providesPayment), with the subscription's wallet, token and amount.
//   Delegated subscriptions (not on-chain yet) have no redundancy count to read: check them with only their
//   payment, i.e. give them to `checkPayments`, not to `check`.
//
// Verdicts, in the reference's order (chain/processor.py):
//   redundancy-met { count, last }  redundancyCount(id, interval) >= redundancy; `last` when interval >= frequency
//                                   (the reference then drops the subscription: "Subscription already completed")
//   already-responded               nodeResponded(id, interval, node)
//   invalid-wallet                  the payment wallet is not one the WalletFactory made
//   insufficient-balance { balance } the wallet's balance of the token is below this subscription's amount
//   ready                           deliver it
//   retry { error }                 a read this verdict needed failed; only the items of that read get it
//
// Reads, all pinned to `block`:
// - readRedundancyCountBatch and nodeResponded in chunks of `chunkSize` pairs (default 500): one call for all
//   pairs ran into the provider's eth_call gas cap or request size past ~10k pairs, and failed every step. The
//   two reads of every chunk are independent calls; at most `concurrency` (default 4) are in flight.
//   So n pairs cost 2·⌈n / chunkSize⌉ eth_calls (nodeResponded through Multicall3; without it, one call per pair,
//   batch-reads.ts bounds those).
// - Payment checks only for items still "ready" after the two reads: isValidWallet once per wallet, then
//   balanceOf once per (wallet, token) for valid wallets, at most `concurrency` in flight.
// Payment semantics are the reference's, per subscription: balance >= that subscription's amount. Several
// subscriptions paying from one wallet are each checked against the whole balance, not against the sum of their
// amounts (the Coordinator itself takes the payments one delivery at a time; a delivery that finds the wallet
// short fails in simulation, which every send goes through, not on-chain).
import type { Address } from "viem";
import type { Logger } from "../lib/log.ts";
import { type BatchReads, settleBounded } from "./batch-reads.ts";
import type { Reader } from "./reader.ts";
import { rpcErrorText } from "./rpc.ts";
import type { WalletChecker } from "./wallet-checker.ts";

export interface DuePayment {
  wallet: string;
  token: string;
  amount: bigint;
}

export interface DueItem {
  /** The processor's key for the subscription (returned verdicts are keyed by it). */
  key: string;
  id: number;
  interval: number;
  redundancy: number;
  frequency: number;
  payment?: DuePayment;
}

export type DueVerdict =
  | { kind: "ready" }
  | { kind: "redundancy-met"; count: number; last: boolean }
  | { kind: "already-responded" }
  | { kind: "invalid-wallet" }
  | { kind: "insufficient-balance"; balance: bigint }
  | { kind: "retry"; error: string };

export interface DueCheckDeps {
  reader: Pick<Reader, "readRedundancyCountBatch">;
  nodeResponded: BatchReads["nodeResponded"];
  walletChecker: Pick<WalletChecker, "isValidWallet" | "balanceOf">;
  /** The node's address (nodeResponded is per node). */
  node: Address;
  log: Logger;
  /** (id, interval) pairs per call (default 500). */
  chunkSize?: number;
  /** Calls in flight at once (default 4). */
  concurrency?: number;
}

export interface DueCheck {
  /** Verdicts for on-chain subscriptions' due intervals, read at `block`. Never throws. */
  check(items: readonly DueItem[], block: bigint): Promise<Map<string, DueVerdict>>;
  /**
   * Payment verdicts only (for delegated subscriptions, or any item without on-chain interval state), read at
   * `block`, or at the latest block when none is given (a delegated subscription's wallet may have been funded
   * in a block newer than the one the processor last worked from).
   */
  checkPayments(items: readonly DueItem[], block?: bigint): Promise<Map<string, DueVerdict>>;
}

/** The outcome of one read: its value, or why it is not known. */
export type Read<T> = { ok: true; value: T } | { ok: false; error: string };

/**
 * Pure: the verdict from the two interval reads, or "payment" when the payment checks decide. The redundancy
 * count is looked at first (a met count ends the interval for everyone), then this node's response.
 */
export function intervalVerdict(
  item: Pick<DueItem, "interval" | "redundancy" | "frequency" | "payment">,
  count: Read<number>,
  responded: Read<boolean>,
): DueVerdict | "payment" {
  if (count.ok && count.value >= item.redundancy) {
    return { kind: "redundancy-met", count: count.value, last: item.interval >= item.frequency };
  }
  if (responded.ok && responded.value) return { kind: "already-responded" };
  if (!count.ok) return { kind: "retry", error: count.error };
  if (!responded.ok) return { kind: "retry", error: responded.error };
  return item.payment ? "payment" : { kind: "ready" };
}

/** Pure: the verdict from the payment reads (`balance` is not read for an invalid wallet). */
export function paymentVerdict(
  amount: bigint,
  valid: Read<boolean>,
  balance: Read<bigint> | undefined,
): DueVerdict {
  if (!valid.ok) return { kind: "retry", error: valid.error };
  if (!valid.value) return { kind: "invalid-wallet" };
  if (balance === undefined) return { kind: "retry", error: "balance not read" };
  if (!balance.ok) return { kind: "retry", error: balance.error };
  return balance.value >= amount
    ? { kind: "ready" }
    : { kind: "insufficient-balance", balance: balance.value };
}

export function createDueCheck(deps: DueCheckDeps): DueCheck {
  const { log, node } = deps;
  const chunkSize = Math.max(1, Math.floor(deps.chunkSize ?? 500));
  const concurrency = Math.max(1, Math.floor(deps.concurrency ?? 4));

  /** Redundancy counts and this node's responses for every item, chunk by chunk; failures stay per chunk. */
  async function readIntervals(
    items: readonly DueItem[],
    block: bigint,
  ): Promise<{
    counts: Read<number>[];
    responded: Read<boolean>[];
    failedCalls: number;
    firstError?: string;
  }> {
    const chunks: DueItem[][] = [];
    for (let start = 0; start < items.length; start += chunkSize)
      chunks.push(items.slice(start, start + chunkSize));
    type Task = { chunk: number; what: "counts" | "responded" };
    const tasks: Task[] = chunks.flatMap((_, chunk) => [
      { chunk, what: "counts" as const },
      { chunk, what: "responded" as const },
    ]);
    const settled = await settleBounded(tasks, concurrency, async ({ chunk, what }) => {
      const pairs = chunks[chunk] ?? [];
      const values: ReadonlyArray<number | boolean> =
        what === "counts"
          ? await deps.reader.readRedundancyCountBatch(
              pairs.map((p) => p.id),
              pairs.map((p) => p.interval),
              block,
            )
          : await deps.nodeResponded(
              pairs.map((p) => ({ id: p.id, interval: p.interval })),
              node,
              block,
            );
      // A short or long answer cannot be matched to the pairs: the whole chunk is unknown.
      if (values.length !== pairs.length) {
        throw new Error(`${what} read returned ${values.length} values for ${pairs.length} pairs`);
      }
      return values;
    });
    const counts: Read<number>[] = [];
    const responded: Read<boolean>[] = [];
    let failedCalls = 0;
    let firstError: string | undefined;
    for (const [i, result] of settled.entries()) {
      const task = tasks[i] as Task;
      const size = chunks[task.chunk]?.length ?? 0;
      const target = task.what === "counts" ? counts : responded;
      const offset = task.chunk * chunkSize;
      if (result.status === "rejected") {
        failedCalls++;
        const error = `${task.what === "counts" ? "readRedundancyCountBatch" : "nodeResponded"}: ${rpcErrorText(result.reason)}`;
        firstError ??= error;
        for (let j = 0; j < size; j++) target[offset + j] = { ok: false, error };
      } else {
        for (let j = 0; j < size; j++) {
          const value = result.value[j];
          if (task.what === "counts") counts[offset + j] = { ok: true, value: Number(value) };
          else responded[offset + j] = { ok: true, value: value === true };
        }
      }
    }
    return { counts, responded, failedCalls, ...(firstError === undefined ? {} : { firstError }) };
  }

  /** Payment verdicts for items that pay; deduplicated reads per wallet and per (wallet, token). */
  async function paymentVerdicts(
    items: readonly DueItem[],
    block: bigint | undefined,
    verdicts: Map<string, DueVerdict>,
  ): Promise<{ failedCalls: number; firstError?: string }> {
    const paying = items.filter((item) => item.payment !== undefined);
    const wallets = [...new Set(paying.map((item) => walletKey(item.payment as DuePayment)))];
    let failedCalls = 0;
    let firstError: string | undefined;
    const asRead = <T>(result: PromiseSettledResult<T>, what: string): Read<T> => {
      if (result.status === "fulfilled") return { ok: true, value: result.value };
      failedCalls++;
      const error = `${what}: ${rpcErrorText(result.reason)}`;
      firstError ??= error;
      return { ok: false, error };
    };

    const validity = new Map<string, Read<boolean>>();
    const walletResults = await settleBounded(wallets, concurrency, (wallet) =>
      deps.walletChecker.isValidWallet(wallet, block),
    );
    for (const [i, wallet] of wallets.entries()) {
      validity.set(wallet, asRead(walletResults[i] as PromiseSettledResult<boolean>, "isValidWallet"));
    }

    const balanceKeys = new Map<string, DuePayment>();
    for (const item of paying) {
      const payment = item.payment as DuePayment;
      const valid = validity.get(walletKey(payment));
      if (valid?.ok && valid.value) balanceKeys.set(balanceKey(payment), payment);
    }
    const keys = [...balanceKeys.keys()];
    const balanceResults = await settleBounded(keys, concurrency, (key) => {
      const payment = balanceKeys.get(key) as DuePayment;
      return deps.walletChecker.balanceOf(payment.wallet, payment.token, block);
    });
    const balances = new Map<string, Read<bigint>>();
    for (const [i, key] of keys.entries()) {
      balances.set(key, asRead(balanceResults[i] as PromiseSettledResult<bigint>, "balanceOf"));
    }

    for (const item of paying) {
      const payment = item.payment as DuePayment;
      const valid = validity.get(walletKey(payment)) ?? { ok: false, error: "wallet not read" };
      verdicts.set(item.key, paymentVerdict(payment.amount, valid, balances.get(balanceKey(payment))));
    }
    return { failedCalls, ...(firstError === undefined ? {} : { firstError }) };
  }

  function report(items: number, failedCalls: number, firstError: string | undefined, retries: number): void {
    if (failedCalls === 0) return;
    // One line per check, not per chunk: an RPC outage would otherwise log a line per 500 intervals.
    log.warn("Due check: some reads failed; their intervals are checked again later", {
      items,
      failed_calls: failedCalls,
      retry: retries,
      error: firstError,
    });
  }

  const retries = (verdicts: Map<string, DueVerdict>) =>
    [...verdicts.values()].filter((verdict) => verdict.kind === "retry").length;

  return {
    async check(items, block) {
      const verdicts = new Map<string, DueVerdict>();
      try {
        const reads = await readIntervals(items, block);
        const needPayment: DueItem[] = [];
        for (const [i, item] of items.entries()) {
          const verdict = intervalVerdict(
            item,
            reads.counts[i] ?? { ok: false, error: "not read" },
            reads.responded[i] ?? { ok: false, error: "not read" },
          );
          if (verdict === "payment") needPayment.push(item);
          else verdicts.set(item.key, verdict);
        }
        const payments = await paymentVerdicts(needPayment, block, verdicts);
        report(
          items.length,
          reads.failedCalls + payments.failedCalls,
          reads.firstError ?? payments.firstError,
          retries(verdicts),
        );
      } catch (caught) {
        // Not expected (every read is settled above); the caller still gets a verdict per item.
        fillRetry(items, verdicts, rpcErrorText(caught));
      }
      return verdicts;
    },
    async checkPayments(items, block) {
      const verdicts = new Map<string, DueVerdict>();
      try {
        for (const item of items) if (!item.payment) verdicts.set(item.key, { kind: "ready" });
        const payments = await paymentVerdicts(items, block, verdicts);
        report(items.length, payments.failedCalls, payments.firstError, retries(verdicts));
      } catch (caught) {
        fillRetry(items, verdicts, rpcErrorText(caught));
      }
      return verdicts;
    },
  };
}

function fillRetry(items: readonly DueItem[], verdicts: Map<string, DueVerdict>, error: string): void {
  for (const item of items) if (!verdicts.has(item.key)) verdicts.set(item.key, { kind: "retry", error });
}

/** Addresses compare case-insensitively (checksummed and lower-case forms of one wallet are one read). */
function walletKey(payment: DuePayment): string {
  return payment.wallet.toLowerCase();
}

function balanceKey(payment: DuePayment): string {
  return `${payment.wallet.toLowerCase()}:${payment.token.toLowerCase()}`;
}
