// The chain Processor (reference chain/processor.py, node-behavior §8.10), replacing the interim tracker: it
// takes subscriptions from the Listener and delegated subscriptions from REST, decides which interval is due,
// runs it through the node's one orchestrator and delivers it, exactly once per interval.
//
// How it keeps the RPC load bounded (the reference made 4–9 calls per subscription every 100 ms):
// - Due-ness is arithmetic on the local clock (as the reference): no call for a subscription that is not due.
// - Once per new block (the head the Listener already polls: no extra eth_blockNumber): one eth_getLogs for the
//   Coordinator's SubscriptionCancelled / SubscriptionFulfilled events, which sees a cancellation within one
//   block, and one receipt lookup per transaction in flight.
// - When intervals become due: one readRedundancyCountBatch for all of them, plus nodeResponded, and the wallet
//   checks for paid ones, once per interval.
// Exactly once: an interval is never dispatched twice while it runs or while its transaction is in flight, and
// every delivery is simulated against the pending block first, so a delivery sent before a restart (still in
// the mempool) makes the new one fail in simulation (NodeRespondedAlready) rather than go out twice.
import { getAddress, type Hex, parseAbiItem } from "viem";
import type { Config } from "../config/schema.ts";
import type { RuleTable } from "../guardian/rules.ts";
import { paymentProblem } from "../guardian/subscription.ts";
import { describeError, NodeError } from "../lib/errors.ts";
import { stringifyJsonFast } from "../lib/json.ts";
import type { Logger } from "../lib/log.ts";
import type { Service, ServiceHealth } from "../lib/service.ts";
import { backoffMs, sleep } from "../lib/time.ts";
import type { OrchestratorJob } from "../orchestration/orchestrator.ts";
import type { DelegatedJournal, DelegatedSubscriptionSink } from "../shared/delegated.ts";
import type { ContainerResult } from "../shared/jobs.ts";
import type { SendLease } from "../shared/lease.ts";
import type { DelegatedSubscriptionMessage } from "../shared/messages.ts";
import { type Clock, Subscription, systemClock } from "../shared/subscription.ts";
import type { SubscriptionSink } from "../shared/subscriptions.ts";
import { type BatchReads, createBatchReads } from "./batch-reads.ts";
import { createDelegatedQuota } from "./delegated-quota.ts";
import { delegatedSignerProblem } from "./delegated-signature.ts";
import { type DeliveryResult, type DeliveryTarget, deliverInterval } from "./delivery.ts";
import { decodeRevertData, findRevertData } from "./infernet-errors.ts";
import { createPaymentWallet, type PaymentWallet } from "./payment-wallet.ts";
import { rpcErrorText } from "./rpc.ts";
import type { ChainContext } from "./service.ts";
import { createTransactionManager, type SentTx, type TxOutcome } from "./transactions.ts";
import { createWallet, type Wallet } from "./wallet.ts";

/** Mined-and-reverted deliveries of one interval before the subscription is given up (the reference's 3). */
export const MAX_ATTEMPTS = 3;
/** Container failures of one recurring interval before that interval is given up. */
const MAX_CONTAINER_FAILURES = 3;

export interface ProcessorDeps {
  config: Config;
  log: Logger;
  rules: RuleTable;
  /** Container-set hash → pipeline (the same table the Listener and the REST guardian use). */
  lookup(hash: string): readonly string[] | undefined;
  /** The chain context once connected; the processor waits for it. */
  context(): ChainContext | undefined;
  /** The newest block the Listener has seen (no RPC call). */
  head(): bigint | null;
  run(job: OrchestratorJob, signal?: AbortSignal): Promise<ContainerResult[]>;
  /** Keeps accepted delegated subscriptions across restarts and take-overs; without it they live in memory. */
  journal?: DelegatedJournal;
  clock?: Clock;
  settings?: Partial<ProcessorSettings>;
  /** Set when several processes share the wallet (a hot standby): only the holder dispatches and sends. */
  lease?: SendLease;
}

export interface ProcessorSettings {
  tickMs: number;
  maxConcurrent: number;
  containerRetryBaseMs: number;
  /** Delegated subscriptions held at once, per owner contract and per client, and their data's bytes (memory bound). */
  maxDelegated: number;
  maxDelegatedPerOwner: number;
  maxDelegatedPerClient: number;
  maxDelegatedItemBytes: number;
  maxDelegatedBytes: number;
  /** How long an unverified or never-due delegated subscription may be held (ms). */
  delegatedTtlMs: number;
  simulationAttempts: number;
  simulationRetryMs: number;
}

const DEFAULTS: ProcessorSettings = {
  tickMs: 100,
  maxConcurrent: 64,
  containerRetryBaseMs: 2_000,
  maxDelegated: 10_000,
  maxDelegatedPerOwner: 256,
  maxDelegatedPerClient: 256,
  maxDelegatedItemBytes: 1024 * 1024,
  maxDelegatedBytes: 64 * 1024 * 1024,
  delegatedTtlMs: 24 * 3600 * 1000,
  simulationAttempts: 3,
  simulationRetryMs: 500,
};

type Phase = "unchecked" | "ready" | "running" | "sent" | "done";

interface IntervalState {
  phase: Phase;
  attempts: number;
  containerFailures: number;
  /** Local or transient failures (RPC down…) of this interval so far, for the backoff. */
  retries: number;
  /** ms; not dispatched or checked again before this. */
  notBefore: number;
  txHash?: string;
}

interface Tracked {
  key: string;
  sub: Subscription;
  delegated?: {
    msg: DelegatedSubscriptionMessage;
    verified: boolean;
    receivedAt: number;
    /** ms; a verification that failed for a transient reason (RPC) is tried again after this. */
    retryAt: number;
  };
  intervals: Map<number, IntervalState>;
}

export interface ProcessorHealth extends ServiceHealth {
  tracked: number;
  delegated: number;
  /** Bytes of the held delegated subscriptions' data (bounded by the quota). */
  delegated_bytes: number;
  running: number;
  pending_txs: number;
  deliveries: {
    sent: number;
    confirmed: number;
    reverted: number;
    replaced: number;
    /** Mined, then removed by a chain reorganisation and sent again. */
    reorged: number;
    failed: number;
  };
  nonce: number | null;
  address: string;
  balance_wei: string | null;
  /** Native balance of chain.wallet.payment_address (read once a minute), null when unset or not read yet. */
  payment_wallet_balance_wei: string | null;
  /** "none" (no standby set-up), "held", or "standby: …". */
  lease: string;
}

export interface Processor extends Service, SubscriptionSink, DelegatedSubscriptionSink {
  health(): ProcessorHealth;
  /** Tracked subscription keys: on-chain ids as strings, delegated ones as `d:<owner>:<nonce>`. */
  keys(): string[];
}

const cancelledEvent = parseAbiItem("event SubscriptionCancelled(uint32 indexed id)");
const fulfilledEvent = parseAbiItem("event SubscriptionFulfilled(uint32 indexed id, address indexed node)");
/** Refusals that depend on which second the chain's next block has: worth asking again a little later. */
const TIMING_ERRORS = new Set(["SubscriptionNotActive", "IntervalMismatch"]);
const MAX_TIMING_RETRIES = 10;
const TIMING_RETRY_MS = 1_000;
/** Receipt checks without a new block, while transactions are in flight. */
const RECEIPT_RECHECK_MS = 1_000;
/** Widest eth_getLogs range asked for at once (after an outage the node catches up in steps). */
const MAX_LOG_RANGE = 1_000n;

export function createProcessor(deps: ProcessorDeps): Processor {
  const { config, log, rules } = deps;
  const settings = { ...DEFAULTS, ...deps.settings };
  const clock = deps.clock ?? systemClock;
  const walletConfig = config.chain.wallet;
  const privateKey = walletConfig?.private_key;
  if (!walletConfig || !privateKey) throw new NodeError("the processor needs chain.wallet.private_key");
  const paymentAddress = walletConfig.payment_address || null;

  const tracked = new Map<string, Tracked>();
  const running = new Set<Promise<void>>();
  const quota = createDelegatedQuota({
    maxCount: settings.maxDelegated,
    maxPerOwner: settings.maxDelegatedPerOwner,
    maxPerClient: settings.maxDelegatedPerClient,
    maxItemBytes: settings.maxDelegatedItemBytes,
    maxTotalBytes: settings.maxDelegatedBytes,
  });
  let attached:
    | {
        ctx: ChainContext;
        wallet: Wallet & { transactions: ReturnType<typeof createTransactionManager> };
        batch: BatchReads;
        paymentWallet: PaymentWallet;
      }
    | undefined;
  let lastHead: bigint | null = null;
  let lastLogBlock: bigint | null = null;
  let balance: bigint | null = null;
  let balanceAt = 0;
  let paymentBalance: bigint | null = null;
  let lastReceiptCheck = 0;
  let leaseHeld: boolean | undefined;
  /** Whether the journal's subscriptions were taken in since start-up or since this process took the lease. */
  let journalRestored = false;
  let journalError: string | undefined;
  let lastError: string | undefined;
  let failedDeliveries = 0;

  const nowS = () => clock() / 1000;
  const ownerKey = (owner: string) => owner.toLowerCase();
  const delegatedKey = (owner: string, nonce: number) => `d:${owner.toLowerCase()}:${nonce}`;

  function attach(ctx: ChainContext): void {
    const wallet = createWallet({
      client: ctx.rpc.client,
      privateKey: privateKey as string,
      paymentAddress,
      maxGasLimit: walletConfig?.max_gas_limit ?? 5_000_000,
      allowedSimErrors: walletConfig?.allowed_sim_errors ?? [],
      log: log.child({ component: "wallet" }),
      simulationAttempts: settings.simulationAttempts,
      simulationRetryMs: settings.simulationRetryMs,
      transactions: (account) =>
        createTransactionManager({
          client: ctx.rpc.client,
          account,
          chainId: ctx.chainId,
          log: log.child({ component: "transactions" }),
          ...(deps.lease ? { canSend: () => deps.lease?.held() ?? true } : {}),
          replaceAfterBlocks: walletConfig?.replace_after_blocks ?? 5,
          feeBumpPercent: walletConfig?.fee_bump_percent ?? 25,
          reorgDepth: walletConfig?.reorg_depth ?? 12,
          ...(walletConfig?.max_fee_per_gas ? { maxFeePerGas: BigInt(walletConfig.max_fee_per_gas) } : {}),
        }),
    });
    const paymentWallet = createPaymentWallet({
      client: ctx.rpc.client,
      address: paymentAddress,
      wallet,
      walletChecker: ctx.walletChecker,
    });
    attached = {
      ctx,
      wallet,
      paymentWallet,
      batch: createBatchReads(ctx.rpc.client, ctx.coordinator.address),
    };
  }

  function intervalState(t: Tracked, interval: number): IntervalState {
    let state = t.intervals.get(interval);
    if (!state) {
      state = { phase: "unchecked", attempts: 0, containerFailures: 0, retries: 0, notBefore: 0 };
      t.intervals.set(interval, state);
      // Only the current interval matters: forget older ones so recurring subscriptions stay bounded.
      for (const old of t.intervals.keys()) if (old < interval - 1) t.intervals.delete(old);
    }
    return state;
  }

  function stopTracking(t: Tracked, why: string, fields: Record<string, unknown> = {}): void {
    if (!tracked.delete(t.key)) return;
    if (t.delegated) {
      quota.release(t.key);
      deps.journal?.remove(t.key).catch((error: unknown) => {
        // Left in the journal: taken in again after a restart and then dropped (created on-chain, or expired).
        log.warn("Could not remove a delegated subscription from the journal", {
          key: t.key,
          error: describeError(error),
        });
      });
    }
    log.info(`Stopped tracking subscription: ${t.sub.id}`, {
      id: t.sub.id,
      key: t.key,
      reason: why,
      ...fields,
    });
  }

  function logRefusal(
    t: Tracked,
    interval: number,
    result: Extract<DeliveryResult, { kind: "refused" }>,
  ): void {
    const { revert } = result;
    if (revert.infernet) {
      const level = revert.infernet.level === "info" ? "info" : "error";
      log[level](revert.infernet.message, { subscription_id: t.sub.id, interval, stage: result.stage });
    } else {
      log.error("Failed to simulate transaction", {
        subscription_id: t.sub.id,
        interval,
        reason: revert.reason,
        stage: result.stage,
      });
    }
    log.info("Did not send tx", {
      id: t.sub.id,
      interval,
      delegated: t.delegated !== undefined,
      reason: revert.reason,
    });
  }

  /**
   * This node is finished with the interval. A callback (always interval 1) or a delegated one (the Listener
   * relays it once created on-chain) is then finished with; a recurring subscription stays tracked, at no RPC
   * cost, until its next interval or until it expires (`Subscription expired`, as the reference logs it).
   */
  function finishInterval(t: Tracked, interval: number, why: string): void {
    const state = intervalState(t, interval);
    state.phase = "done";
    if (t.delegated || t.sub.isCallback) stopTracking(t, why, { interval });
  }

  async function onOutcome(t: Tracked, interval: number, sent: SentTx, outcome: TxOutcome): Promise<void> {
    const state = intervalState(t, interval);
    const fields = { id: t.sub.id, interval, tx_hash: outcome.hash };
    if (outcome.status === "success") {
      log.info("Transaction confirmed", { ...fields, block: Number(outcome.blockNumber) });
      t.sub.markReplied(interval);
      if (t.delegated) log.info("Delegated subscription completed for interval", fields);
      finishInterval(t, interval, "delivered");
      return;
    }
    if (outcome.status === "dropped") {
      failedDeliveries++;
      state.phase = "ready";
      return;
    }
    state.attempts++;
    const reason = await revertReasonOf(sent.data, outcome.blockNumber);
    log.warn("Transaction reverted", { ...fields, attempts: state.attempts, reason });
    if (state.attempts >= MAX_ATTEMPTS) {
      failedDeliveries++;
      log.error("Subscription has exceeded the maximum number of attempts", {
        // A delegated subscription has no id until created; name the one it would get (Ritual's tests do).
        id: t.delegated ? await predictedId(t) : t.sub.id,
        interval,
        tx_hash: outcome.hash,
        attempts: state.attempts,
      });
      state.phase = "done";
      stopTracking(t, "maximum attempts exceeded", { interval });
      return;
    }
    state.phase = "ready";
  }

  /** The id a delegated subscription has or would get on-chain: delegateCreatedIds, else id(). */
  async function predictedId(t: Tracked): Promise<number> {
    const msg = t.delegated?.msg;
    if (!attached || !msg) return t.sub.id;
    try {
      const created = await attached.ctx.coordinator.delegateCreatedId(
        getAddress(msg.subscription.owner),
        msg.signature.nonce,
      );
      return created !== 0 ? created : (await attached.ctx.coordinator.headSubscriptionId()) + 1;
    } catch {
      return t.sub.id;
    }
  }

  /** The decoded reason of a mined revert, by replaying its call on the state its block started from. */
  async function revertReasonOf(data: Hex, blockNumber: bigint): Promise<string> {
    if (!attached) return "unknown";
    try {
      await attached.ctx.rpc.client.call({
        account: attached.wallet.address,
        to: attached.ctx.coordinator.address,
        data,
        blockNumber: blockNumber > 0n ? blockNumber - 1n : blockNumber,
      });
      return "unknown (the call succeeds when replayed)";
    } catch (error) {
      const revert = findRevertData(error);
      return revert === undefined ? rpcErrorText(error) : decodeRevertData(revert).reason;
    }
  }

  function targetOf(t: Tracked, interval: number): DeliveryTarget {
    return {
      sub: t.sub,
      interval,
      containers: t.sub.containers,
      ...(t.delegated ? { delegated: t.delegated.msg } : {}),
    };
  }

  async function execute(t: Tracked, interval: number, signal: AbortSignal): Promise<void> {
    if (!attached) return;
    const state = intervalState(t, interval);
    state.phase = "running";
    log.info("Processing subscription", { id: t.sub.id, interval, delegated: t.delegated !== undefined });
    const { ctx, wallet, paymentWallet } = attached;
    const result = await deliverInterval(
      {
        client: ctx.rpc.client,
        coordinator: ctx.coordinator.address,
        wallet,
        paymentWallet,
        run: deps.run,
        log,
        now: nowS,
      },
      targetOf(t, interval),
      signal,
    );
    switch (result.kind) {
      case "sent": {
        state.phase = "sent";
        state.txHash = result.tx.hash;
        log.info("Sent tx", {
          id: t.sub.id,
          interval,
          delegated: t.delegated !== undefined,
          tx_hash: result.tx.hash,
          nonce: result.tx.nonce,
        });
        void result.tx.outcome.then((outcome) => onOutcome(t, interval, result.tx, outcome));
        return;
      }
      case "refused": {
        const name = result.revert.infernet?.name ?? "";
        if (TIMING_ERRORS.has(name) && state.retries < MAX_TIMING_RETRIES) {
          // The local clock and the chain's disagree at a boundary (activeAt, a new period): ask again shortly
          // rather than give up the interval. Logged once per interval; a cancellation ends it via its event.
          if (state.retries === 0) logRefusal(t, interval, result);
          state.retries++;
          state.phase = "unchecked";
          state.notBefore = clock() + TIMING_RETRY_MS;
          return;
        }
        failedDeliveries++;
        logRefusal(t, interval, result);
        finishInterval(t, interval, `refused: ${result.revert.reason}`);
        return;
      }
      case "container-failed": {
        failedDeliveries++;
        state.containerFailures++;
        log.error("Container execution errored", { id: t.sub.id, interval, error: result.error });
        if (t.delegated || t.sub.isCallback) {
          finishInterval(t, interval, "container error");
        } else if (state.containerFailures >= MAX_CONTAINER_FAILURES) {
          log.warn("Giving up this interval after repeated container errors", {
            id: t.sub.id,
            interval,
            failures: state.containerFailures,
          });
          finishInterval(t, interval, "container errors");
        } else {
          state.phase = "ready";
          state.notBefore =
            clock() + backoffMs(state.containerFailures - 1, settings.containerRetryBaseMs, 60_000);
        }
        return;
      }
      case "failed":
        failedDeliveries++;
        lastError = result.error;
        log.error("Failed to send tx", { id: t.sub.id, interval, error: result.error });
        if (!result.retryable) {
          finishInterval(t, interval, result.error);
        } else {
          state.phase = "unchecked";
          // A transient failure (RPC down): the interval is tried again within 10 s of the RPC's return.
          state.notBefore = clock() + backoffMs(state.retries++, settings.containerRetryBaseMs, 10_000);
        }
        return;
    }
  }

  /** Cancellations and fulfilments since the last block looked at: one eth_getLogs per new block. */
  async function scanEvents(ctx: ChainContext, head: bigint): Promise<void> {
    const from = lastLogBlock === null ? (head > 100n ? head - 100n : 0n) : lastLogBlock + 1n;
    if (from > head) return;
    const to = head - from > MAX_LOG_RANGE ? from + MAX_LOG_RANGE : head;
    const logs = await ctx.rpc.client.getLogs({
      address: ctx.coordinator.address,
      events: [cancelledEvent, fulfilledEvent],
      fromBlock: from,
      toBlock: to,
    });
    for (const entry of logs) {
      const id = Number(entry.args.id);
      const t = tracked.get(String(id));
      if (!t) continue;
      if (entry.eventName === "SubscriptionCancelled") {
        log.info("Subscription cancelled", { id });
        stopTracking(t, "cancelled");
      } else {
        // Someone delivered: the redundancy count may be met now; look again before running anything.
        for (const state of t.intervals.values()) if (state.phase === "ready") state.phase = "unchecked";
      }
    }
    lastLogBlock = to;
  }

  /** Reads on-chain state for intervals that just became due, in batches, and marks them ready or done. */
  async function checkDue(ctx: ChainContext, due: Array<{ t: Tracked; interval: number }>): Promise<void> {
    if (!attached) return;
    const onchain = due.filter(({ t }) => !t.delegated);
    // Two reads for all of them, at one block: redundancy counts (Reader) and this node's responses (Multicall3
    // where the chain has it).
    const block =
      onchain.length === 0 ? 0n : (lastHead ?? (await ctx.rpc.client.getBlockNumber({ cacheTime: 0 })));
    const pairs = onchain.map(({ t, interval }) => ({ id: t.sub.id, interval }));
    const [counts, responded] =
      onchain.length === 0
        ? [[], []]
        : await Promise.all([
            ctx.reader.readRedundancyCountBatch(
              pairs.map((p) => p.id),
              pairs.map((p) => p.interval),
              block,
            ),
            attached.batch.nodeResponded(pairs, attached.wallet.address, block),
          ]);
    const now = nowS();
    for (const [i, { t, interval }] of onchain.entries()) {
      const count = counts[i] ?? 0;
      t.sub.setResponseCount(interval, count, now);
      if (count >= t.sub.redundancy) {
        if (interval >= t.sub.frequency) {
          log.info("Subscription already completed", { id: t.sub.id, interval });
          stopTracking(t, "completed");
        } else {
          intervalState(t, interval).phase = "done";
        }
        continue;
      }
      const replied = t.sub.hasReplied(interval) || responded[i] === true;
      if (replied) {
        t.sub.markReplied(interval);
        log.info("Node has already responded for this interval", { id: t.sub.id, interval });
        finishInterval(t, interval, "already responded");
        continue;
      }
      if (t.sub.providesPayment && !(await paymentStillValid(ctx, t))) continue;
      intervalState(t, interval).phase = "ready";
    }
    for (const { t, interval } of due.filter(({ t }) => t.delegated)) {
      if (await droppedAsCreated(ctx, t)) continue;
      if (t.sub.providesPayment && !(await paymentStillValid(ctx, t))) continue;
      intervalState(t, interval).phase = "ready";
    }
  }

  /** The reference's per-loop payment checks, once per interval: factory-made wallet, enough balance. */
  async function paymentStillValid(ctx: ChainContext, t: Tracked): Promise<boolean> {
    const sub = t.sub;
    if (!(await ctx.walletChecker.isValidWallet(sub.wallet))) {
      log.info(
        `Skipping subscription: ${sub.id}: Invalid subscription wallet, please use a wallet generated by infernet's \`WalletFactory\``,
        { id: sub.id, wallet: sub.wallet },
      );
      stopTracking(t, "invalid wallet");
      return false;
    }
    const check = await ctx.walletChecker.hasEnoughBalance(sub.wallet, sub.paymentToken, sub.paymentAmount);
    if (!check.ok) {
      log.info(`Skipping subscription: ${sub.id}: Subscription wallet has insufficient balance`, {
        id: sub.id,
        wallet: sub.wallet,
        sub_amount: sub.paymentAmount.toString(),
        wallet_balance: check.balance.toString(),
      });
      stopTracking(t, "insufficient balance");
      return false;
    }
    return true;
  }

  /**
   * A delegated subscription already created on-chain (by this node earlier, or another) is from then on an
   * ordinary subscription the Listener relays (nodeResponded decides each interval): stop holding it here.
   */
  async function droppedAsCreated(ctx: ChainContext, t: Tracked): Promise<boolean> {
    const msg = t.delegated?.msg;
    if (!msg) return false;
    const createdId = await ctx.coordinator.delegateCreatedId(
      getAddress(msg.subscription.owner),
      msg.signature.nonce,
    );
    if (createdId === 0) return false;
    log.info("Delegated subscription exists on-chain", {
      id: createdId,
      owner: msg.subscription.owner,
      nonce: msg.signature.nonce,
    });
    stopTracking(t, "created on-chain", { created_id: createdId });
    return true;
  }

  /** Not created on-chain yet and its signature expired: the Coordinator would refuse it (SignatureExpired). */
  function droppedAsExpired(t: Tracked): boolean {
    const msg = t.delegated?.msg;
    if (!msg || Math.floor(nowS()) < msg.signature.expiry) return false;
    log.info("Delegated subscription signature expired", {
      owner: msg.subscription.owner,
      nonce: msg.signature.nonce,
      expiry: msg.signature.expiry,
    });
    stopTracking(t, "signature expired");
    return true;
  }

  /** A delegated subscription's signature and payment, checked once before anything is sent for it. */
  async function verifyDelegated(ctx: ChainContext, t: Tracked): Promise<void> {
    const d = t.delegated;
    if (!d) return;
    const { msg } = d;
    const fields = { owner: msg.subscription.owner, nonce: msg.signature.nonce };
    if (await droppedAsCreated(ctx, t)) return;
    const signer = await delegatedSignerProblem(ctx.rpc.client, msg, ctx.chainId, ctx.coordinator.address);
    if (signer) {
      log.error(signer.message, { ...fields, ...signer.fields });
      stopTracking(t, signer.reason);
      return;
    }
    const problem = paymentProblem(t.sub, { rules, paymentAddress });
    if (problem !== undefined) {
      log.info(`Skipping subscription: ${t.sub.id}: ${problem}`, fields);
      stopTracking(t, "payment requirements");
      return;
    }
    d.verified = true;
    log.info("Tracked new delegate subscription", { ...fields, total: tracked.size });
  }

  /** One pass: per-block work when the head moved, then whatever became due by the clock. */
  async function tick(signal: AbortSignal): Promise<void> {
    if (!attached) {
      const ctx = deps.context();
      if (!ctx) return;
      attach(ctx);
    }
    const { ctx, wallet } = attached as NonNullable<typeof attached>;
    const head = deps.head();
    if (head !== null && (lastHead === null || head > lastHead)) {
      await wallet.transactions.onBlock(head);
      lastReceiptCheck = clock();
      await scanEvents(ctx, head);
      lastHead = head;
      if (clock() - balanceAt > 60_000) {
        balanceAt = clock();
        balance = await ctx.rpc.client.getBalance({ address: wallet.address }).catch(() => balance);
        if (paymentAddress) {
          paymentBalance = await ctx.rpc.client
            .getBalance({ address: getAddress(paymentAddress) })
            .catch(() => paymentBalance);
        }
      }
    } else if (
      lastHead !== null &&
      wallet.transactions.stats().pending > 0 &&
      clock() - lastReceiptCheck >= RECEIPT_RECHECK_MS
    ) {
      // No new block, but transactions in flight: one may have been mined in the block seen just before it was
      // registered, and a dev chain (automine) makes no further block. Look again on a timer.
      lastReceiptCheck = clock();
      await wallet.transactions.onBlock(lastHead);
    }

    if (deps.lease) {
      const holding = deps.lease.held();
      if (holding !== leaseHeld) {
        leaseHeld = holding;
        // Another process may have sent with this wallet meanwhile: take the nonce from the chain again.
        if (holding) {
          wallet.transactions.resync();
          journalRestored = false; // a standby's subscriptions and the old holder's are all in the journal
        }
        log.info(holding ? "Chain lease held: processing subscriptions" : "Standing by: not processing", {
          lease: deps.lease.describe(),
          tracked: tracked.size,
        });
      }
      if (!holding) return;
    }
    if (deps.journal) {
      // A journal that cannot be read (Redis down) holds back only what is in it, not the on-chain work.
      // Logged when the failure starts or changes, not every step.
      await takeInJournal(deps.journal).then(
        () => {
          if (journalError !== undefined) log.info("Delegated-subscription journal readable again");
          journalError = undefined;
        },
        (error: unknown) => {
          const text = describeError(error);
          if (text !== journalError) {
            log.warn("Could not read the delegated-subscription journal; trying again each step", {
              error: text,
            });
          }
          journalError = text;
        },
      );
    }

    const now = nowS();
    const nowMs = clock();
    const toCheck: Array<{ t: Tracked; interval: number }> = [];
    const toRun: Array<{ t: Tracked; interval: number }> = [];
    for (const t of [...tracked.values()]) {
      if (t.delegated && !t.delegated.verified) {
        if (nowMs - t.delegated.receivedAt > settings.delegatedTtlMs) stopTracking(t, "expired unverified");
        continue;
      }
      if (droppedAsExpired(t)) continue;
      if (t.sub.cancelled) {
        log.info("Subscription cancelled", { id: t.sub.id });
        stopTracking(t, "cancelled");
        continue;
      }
      if (!t.sub.isActive(now)) continue;
      const interval = t.sub.interval(now);
      if (interval > t.sub.frequency) {
        log.info("Subscription expired", { id: t.sub.id });
        stopTracking(t, "expired");
        continue;
      }
      const state = intervalState(t, interval);
      if (state.notBefore > nowMs) continue;
      if (state.phase === "unchecked") toCheck.push({ t, interval });
      else if (state.phase === "ready") toRun.push({ t, interval });
    }
    if (toCheck.length > 0) await checkDue(ctx, toCheck);
    for (const item of toCheck) if (intervalState(item.t, item.interval).phase === "ready") toRun.push(item);

    for (const { t, interval } of toRun) {
      if (running.size >= settings.maxConcurrent || signal.aborted) break;
      if (!tracked.has(t.key) || intervalState(t, interval).phase !== "ready") continue;
      const task = execute(t, interval, signal)
        .catch((error) => {
          log.error("Subscription processing failed", {
            id: t.sub.id,
            interval,
            error: describeError(error),
          });
          const state = intervalState(t, interval);
          state.phase = "unchecked";
          state.notBefore = clock() + settings.containerRetryBaseMs;
        })
        .finally(() => running.delete(task));
      running.add(task);
    }
  }

  /** Counts a delegated subscription against the quota (throws DelegatedQuotaError past it). */
  function admit(key: string, msg: DelegatedSubscriptionMessage): void {
    quota.admit(key, {
      owner: ownerKey(msg.subscription.owner),
      client: msg.ip,
      bytes: Buffer.byteLength(stringifyJsonFast(msg.data)),
    });
  }

  /** Holds a delegated subscription, unverified (verifyPending checks it before anything is sent). */
  function track(key: string, msg: DelegatedSubscriptionMessage): void {
    const existing = tracked.get(key);
    const s = msg.subscription;
    const sub = new Subscription(
      -1,
      {
        owner: s.owner,
        activeAt: s.active_at,
        period: s.period,
        frequency: s.frequency,
        redundancy: s.redundancy,
        containerId: s.containers,
        lazy: s.lazy,
        verifier: s.verifier,
        paymentAmount: s.payment_amount,
        paymentToken: s.payment_token,
        wallet: s.wallet,
      },
      deps.lookup(s.containers) ?? [],
      clock,
    );
    // A resubmission replaces the held copy (the reference's dict did the same) and is verified again.
    tracked.set(key, {
      key,
      sub,
      delegated: { msg, verified: false, receivedAt: clock(), retryAt: 0 },
      intervals: existing?.intervals ?? new Map(),
    });
  }

  /**
   * The journal's subscriptions into this (sending) process: all of them at start-up and on taking the lease
   * (dropping held ones another process finished meanwhile), then each step those any process saved since.
   */
  async function takeInJournal(journal: DelegatedJournal): Promise<void> {
    const full = !journalRestored;
    // Held before the load: each was saved before it was held, so one missing from the journal was finished
    // (removed) by another process. One submitted while the load runs is not judged by it.
    const heldBefore = [...tracked.values()].filter((t) => t.delegated);
    const entries = full ? await journal.load() : ((await journal.takeNew?.()) ?? []);
    if (full) {
      const stored = new Set(entries.map((entry) => entry.key));
      for (const t of heldBefore) if (!stored.has(t.key)) stopTracking(t, "finished by another node process");
    }
    let taken = 0;
    for (const { key, msg } of entries) {
      if (tracked.has(key)) continue;
      try {
        admit(key, msg);
      } catch (error) {
        log.warn("Delegated subscription from the journal over the quota; dropped", {
          key,
          error: describeError(error),
        });
        await journal.remove(key).catch(() => undefined);
        continue;
      }
      track(key, msg);
      taken++;
    }
    journalRestored = true;
    if (taken > 0) log.info("Delegated subscriptions taken in from the journal", { count: taken, full });
  }

  /** Verifies delegated subscriptions handed in since the last tick (one at a time: no double verification). */
  async function verifyPending(signal: AbortSignal): Promise<void> {
    if (!attached) return;
    for (const t of [...tracked.values()]) {
      if (signal.aborted) return;
      const d = t.delegated;
      if (!d || d.verified || d.retryAt > clock() || droppedAsExpired(t)) continue;
      try {
        await verifyDelegated(attached.ctx, t);
      } catch (error) {
        d.retryAt = clock() + 2_000;
        log.warn("Could not verify delegated subscription yet", {
          owner: d.msg.subscription.owner,
          nonce: d.msg.signature.nonce,
          error: rpcErrorText(error),
        });
      }
    }
  }

  return {
    name: "processor",
    track(sub) {
      const key = String(sub.id);
      if (tracked.has(key)) return;
      tracked.set(key, { key, sub, intervals: new Map() });
      log.debug("Tracked new subscription!", { id: sub.id, total: tracked.size });
    },
    async submit(msg) {
      const key = delegatedKey(msg.subscription.owner, msg.signature.nonce);
      admit(key, msg);
      try {
        await deps.journal?.save(key, msg);
      } catch (error) {
        // Not stored, not accepted: the client is told (503) rather than sent a 200 for something a restart loses.
        if (!tracked.has(key)) quota.release(key);
        throw error;
      }
      track(key, msg);
      // Verified on the processor's next tick (verifyPending), before anything is sent for it.
      log.info("Relayed delegated subscription", {
        owner: msg.subscription.owner,
        nonce: msg.signature.nonce,
      });
    },
    async run(signal) {
      let failures = 0;
      while (!signal.aborted) {
        try {
          await verifyPending(signal);
          await tick(signal);
          failures = 0;
          lastError = undefined;
          await sleep(settings.tickMs, signal);
        } catch (error) {
          if (signal.aborted) break;
          failures++;
          lastError = rpcErrorText(error);
          const delay = backoffMs(failures - 1, 250, 10_000);
          log.warn("Processor step failed; retrying", { error: lastError, retry_in_ms: delay });
          await sleep(delay, signal);
        }
      }
      // Work in flight gets a moment to finish (the orchestrator sees the abort and fails fast).
      await Promise.race([Promise.allSettled([...running]), sleep(2_000)]);
    },
    keys: () => [...tracked.keys()],
    health(): ProcessorHealth {
      const tx = attached?.wallet.transactions.stats();
      const delegated = quota.stats().count;
      return {
        ok: lastError === undefined,
        detail: !attached
          ? "waiting for the chain connection"
          : lastError === undefined
            ? "processing"
            : `failing: ${lastError}`,
        tracked: tracked.size - delegated,
        delegated_bytes: quota.stats().bytes,
        delegated,
        running: running.size,
        pending_txs: tx?.pending ?? 0,
        deliveries: {
          sent: tx?.sent ?? 0,
          confirmed: tx?.confirmed ?? 0,
          reverted: tx?.reverted ?? 0,
          replaced: tx?.replaced ?? 0,
          reorged: tx?.reorged ?? 0,
          failed: failedDeliveries,
        },
        nonce: tx?.nonce ?? null,
        address: attached?.wallet.address ?? "",
        lease: deps.lease ? deps.lease.describe() : "none",
        balance_wei: balance === null ? null : balance.toString(),
        payment_wallet_balance_wei: paymentBalance === null ? null : paymentBalance.toString(),
      };
    },
  };
}
