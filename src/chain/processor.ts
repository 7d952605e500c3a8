// The chain Processor (reference chain/processor.py, node-behavior §8.10): takes subscriptions from the Listener
// and delegated subscriptions from REST, decides which interval is due, runs it through the node's one
// orchestrator and delivers it, exactly once per interval. This file is the shell around small parts that each
// own one job:
// - interval-machine.ts: the pure state machine of one interval (phases, attempts, retries, backoff);
// - due-schedule.ts: a min-heap of the next time each subscription needs attention, so a step touches only the
//   subscriptions that are due (100,000 tracked with nothing due: nothing is scanned);
// - due-check.ts: the on-chain reads for intervals that fell due (chunked, bounded concurrency, verdicts only);
// - event-scan.ts: cancellations and fulfilments from the Coordinator's logs (adaptive range; a refused scan
//   holds nothing else back);
// - delivery.ts / wallet.ts / transactions.ts: one delivery, the key, the transactions.
//
// Time is the chain's (block-watcher.ts: the latest block's timestamp plus the time since it was seen): the
// Coordinator computes intervals from block.timestamp, so a host clock that is off, an idle chain or a halted
// sequencer never makes the node deliver (or give up) an interval the chain is not at.
//
// Exactly once: an interval is never dispatched twice while it runs or while its transaction is in flight, and
// every delivery is simulated against the pending block first, so a delivery sent before a restart (still in
// the mempool) makes the new one fail in simulation (NodeRespondedAlready) rather than go out twice.
import { getAddress, parseAbiItem } from "viem";
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
import { createBatchReads } from "./batch-reads.ts";
import { createDelegatedQuota } from "./delegated-quota.ts";
import { delegatedSignerProblem } from "./delegated-signature.ts";
import { type DeliveryResult, type DeliveryTarget, deliverInterval } from "./delivery.ts";
import { createDueCheck, type DueItem, type DueVerdict } from "./due-check.ts";
import { DueSchedule } from "./due-schedule.ts";
import { confirmCancelled, createEventScanner } from "./event-scan.ts";
import { createInputReads, type ReadInputs } from "./input-reads.ts";
import {
  advance,
  DEFAULT_RULES,
  type IntervalEvent,
  type IntervalState,
  initialState,
  type MachineRules,
} from "./interval-machine.ts";
import { createPaymentWallet, type PaymentWallet } from "./payment-wallet.ts";
import { minedRevertReason } from "./revert-reason.ts";
import { rpcErrorText } from "./rpc.ts";
import type { ChainContext } from "./service.ts";
import { createTransactionManager, type SentTx, type TxOutcome } from "./transactions.ts";
import { createWallet, type Wallet } from "./wallet.ts";

/** Mined-and-reverted deliveries of one interval before the subscription is given up (the reference's 3). */
export const MAX_ATTEMPTS = DEFAULT_RULES.maxAttempts;

export interface ProcessorDeps {
  config: Config;
  log: Logger;
  rules: RuleTable;
  /** Container-set hash → pipeline (the same table the Listener and the REST guardian use). */
  lookup(hash: string): readonly string[] | undefined;
  /** The chain context once connected; the processor waits for it. */
  context(): ChainContext | undefined;
  /** The newest block seen by the chain service's block watcher (no RPC call). */
  head(): bigint | null;
  /**
   * The chain's clock in ms (latest block's timestamp plus the time since it was seen); null before the first
   * block. Without it (or while null) the processor's own clock is used.
   */
  chainNowMs?(): number | null;
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
  /** Intervals handed to one due check at most (the rest wait for the next step). */
  maxCheckBatch: number;
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
  maxCheckBatch: 20_000,
};

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
  /** The current interval's state (older intervals are forgotten: memory per subscription is constant). */
  state?: IntervalState;
}

export interface ProcessorHealth extends ServiceHealth {
  tracked: number;
  delegated: number;
  /** Bytes of the held delegated subscriptions' data (bounded by the quota). */
  delegated_bytes: number;
  running: number;
  /** Intervals cleared to run, waiting for a dispatch slot. */
  ready: number;
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
  /** The event scan's state: blocks behind the head and its last error. */
  events: { behind: number; error: string | null };
  /** How far the chain's clock is from the host's, s (positive: the chain is behind); null before a block. */
  chain_clock_lag_s: number | null;
  /** Duration of the processor's steps, ms: the last one and the longest since start. */
  step_ms: { last: number; max: number };
  /** 1 while a transaction cannot be replaced because of chain.wallet.max_fee_per_gas (it waits for fees to fall). */
  fee_capped: number;
  /** The lowest unmined nonce that blocks this node's transactions, or null. */
  stuck_nonce: number | null;
}

export interface Processor extends Service, SubscriptionSink, DelegatedSubscriptionSink {
  health(): ProcessorHealth;
  /** Tracked subscription keys: on-chain ids as strings, delegated ones as `d:<owner>:<nonce>`. */
  keys(): string[];
}

const cancelledEvent = parseAbiItem("event SubscriptionCancelled(uint32 indexed id)");
const fulfilledEvent = parseAbiItem("event SubscriptionFulfilled(uint32 indexed id, address indexed node)");
/** Refusals that depend on which second the chain's next block has: asked again after the next block. */
const TIMING_ERRORS = new Set(["SubscriptionNotActive", "IntervalMismatch"]);
/** Receipt checks without a new block, while transactions are in flight. */
const RECEIPT_RECHECK_MS = 1_000;
/** Subscriptions examined per step at most, so no step runs long (the rest wait for the next step). */
const MAX_DUE_PER_STEP = 5_000;
/** How often over-quota journal entries are offered to the quota again. */
const DEFERRED_RETRY_MS = 30_000;

export function createProcessor(deps: ProcessorDeps): Processor {
  const { config, log, rules } = deps;
  const settings = { ...DEFAULTS, ...deps.settings };
  const machineRules: MachineRules = {
    ...DEFAULT_RULES,
    containerRetryBaseMs: settings.containerRetryBaseMs,
  };
  const clock = deps.clock ?? systemClock;
  const walletConfig = config.chain.wallet;
  const privateKey = walletConfig?.private_key;
  if (!walletConfig || !privateKey) throw new NodeError("the processor needs chain.wallet.private_key");
  const paymentAddress = walletConfig.payment_address || null;

  const tracked = new Map<string, Tracked>();
  const schedule = new DueSchedule();
  /** Keys whose interval is cleared to run, waiting for a dispatch slot (insertion order: first due, first run). */
  const ready = new Set<string>();
  /** Delegated subscriptions not verified yet (signature, payment): few, checked every step. */
  const unverified = new Set<string>();
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
        paymentWallet: PaymentWallet;
        dueCheck: ReturnType<typeof createDueCheck>;
        readInputs: ReadInputs;
        scanner: ReturnType<typeof createEventScanner>;
      }
    | undefined;
  let lastHead: bigint | null = null;
  let balance: bigint | null = null;
  let balanceAt = 0;
  let paymentBalance: bigint | null = null;
  let lastReceiptCheck = 0;
  let leaseHeld: boolean | undefined;
  /** Whether the journal's subscriptions were taken in since start-up or since this process took the lease. */
  let journalRestored = false;
  let journalError: string | undefined;
  /** Journal entries the quota could not take yet: left in the journal, offered again later (never deleted). */
  const deferred = new Set<string>();
  let deferredAt = 0;
  let lastError: string | undefined;
  let failedDeliveries = 0;
  let checking: Promise<void> | undefined;
  const stepMs = { last: 0, max: 0 };
  const toCheck = new Set<string>();
  let scanBehind = 0n;
  let scanning: Promise<void> | undefined;
  let blockWork: Promise<void> | undefined;
  /** Ids a cancellation event named, waiting for the chain's latest state to confirm it. */
  const cancelsToConfirm = new Set<number>();
  let scanError: string | undefined;

  /** The chain's time (ms): what the Coordinator's interval arithmetic will use. */
  const nowMs = (): number => deps.chainNowMs?.() ?? clock();
  const ownerKey = (owner: string) => owner.toLowerCase();
  const delegatedKey = (owner: string, nonce: number) => `d:${owner.toLowerCase()}:${nonce}`;
  const isOneShot = (t: Tracked) => t.delegated !== undefined || t.sub.isCallback;

  /**
   * A delivery a reorganisation removed and the chain then mined with another outcome (or one whose status the
   * new chain changed): an interval believed delivered that is not is looked at again while the subscription is
   * still tracked; otherwise the transaction manager's log line and counter are what is left of it.
   */
  function onReorgOutcome(labels: Record<string, unknown>, outcome: TxOutcome): void {
    if (outcome.status === "success") return;
    const t = typeof labels.id === "number" ? tracked.get(String(labels.id)) : undefined;
    const interval = typeof labels.interval === "number" ? labels.interval : undefined;
    if (!t || interval === undefined || t.state?.interval !== interval || t.state.phase !== "done") return;
    log.warn("A delivery undone by a chain reorganisation; the interval is checked again", {
      id: t.sub.id,
      interval,
      tx_hash: outcome.hash,
      outcome: outcome.status,
    });
    apply(t, interval, { kind: "undone" });
  }

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
          onReorgOutcome,
          ...(walletConfig?.max_fee_per_gas ? { maxFeePerGas: BigInt(walletConfig.max_fee_per_gas) } : {}),
        }),
    });
    const paymentWallet = createPaymentWallet({
      client: ctx.rpc.client,
      address: paymentAddress,
      wallet,
      walletChecker: ctx.walletChecker,
      log: log.child({ component: "payment-wallet" }),
    });
    const batch = createBatchReads(ctx.rpc.client, ctx.coordinator.address);
    attached = {
      ctx,
      wallet,
      paymentWallet,
      readInputs: createInputReads(ctx.rpc.client, () => batch.hasMulticall()),
      dueCheck: createDueCheck({
        reader: ctx.reader,
        nodeResponded: (pairs, node, block) => batch.nodeResponded(pairs, node, block),
        walletChecker: ctx.walletChecker,
        node: wallet.address,
        log: log.child({ component: "due-check" }),
      }),
      scanner: createEventScanner({
        getLogs: (fromBlock, toBlock) =>
          ctx.rpc.client.getLogs({
            address: ctx.coordinator.address,
            events: [cancelledEvent, fulfilledEvent],
            fromBlock,
            toBlock,
          }),
        log: log.child({ component: "event-scan" }),
      }),
    };
  }

  // ---------------------------------------------------------------------------------------------------------
  // Tracking

  function stopTracking(t: Tracked, why: string, fields: Record<string, unknown> = {}): void {
    if (!tracked.delete(t.key)) return;
    schedule.cancel(t.key);
    ready.delete(t.key);
    unverified.delete(t.key);
    toCheck.delete(t.key);
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

  /** When the interval after `interval` starts, in ms of chain time. */
  function nextIntervalAt(sub: Subscription, interval: number): number {
    return (sub.activeAt + interval * sub.period) * 1000;
  }

  /** Feeds an event to the interval's state machine and carries out what it says. */
  function apply(t: Tracked, interval: number, event: IntervalEvent): void {
    const state = t.state;
    // An outcome for an interval the subscription has moved past: the log has it, the state is the new one's.
    if (!state || state.interval !== interval || !tracked.has(t.key)) return;
    const now = nowMs();
    const { state: next, directive } = advance(state, event, {
      nowMs: now,
      oneShot: isOneShot(t),
      rules: machineRules,
    });
    t.state = next;
    switch (directive.kind) {
      case "drop":
        stopTracking(t, directive.why, { interval });
        return;
      case "finish":
        if (isOneShot(t)) stopTracking(t, directive.why, { interval });
        else schedule.schedule(t.key, nextIntervalAt(t.sub, interval));
        return;
      case "none":
        break;
    }
    // Running and sent intervals wake on their own outcome; the others when their backoff is over.
    if (next.phase === "unchecked" || next.phase === "ready")
      schedule.schedule(t.key, Math.max(next.notBefore, now));
  }

  /** A subscription whose wake time came: what its current interval needs next. */
  function examine(t: Tracked, now: number): void {
    if (t.delegated && !t.delegated.verified) return; // verifyPending wakes it once verified
    if (droppedAsExpired(t, now)) return;
    if (t.sub.cancelled) {
      log.info("Subscription cancelled", { id: t.sub.id });
      stopTracking(t, "cancelled");
      return;
    }
    const nowS = now / 1000;
    if (!t.sub.isActive(nowS)) {
      schedule.schedule(t.key, t.sub.activeAt * 1000 + 1);
      return;
    }
    const interval = t.sub.interval(nowS);
    if (interval > t.sub.frequency) {
      log.info("Subscription expired", { id: t.sub.id });
      stopTracking(t, "expired");
      return;
    }
    if (!t.state || t.state.interval !== interval) t.state = initialState(interval);
    const state = t.state;
    if (state.notBefore > now) {
      schedule.schedule(t.key, state.notBefore);
      return;
    }
    switch (state.phase) {
      case "unchecked":
        toCheck.add(t.key);
        return;
      case "ready":
        ready.add(t.key);
        return;
      case "done":
        schedule.schedule(t.key, nextIntervalAt(t.sub, interval));
        return;
      default:
        return; // running / sent: their outcome wakes them
    }
  }

  // ---------------------------------------------------------------------------------------------------------
  // The due check: on-chain reads for intervals that fell due, in the background of the step

  function startCheck(): void {
    if (checking || toCheck.size === 0 || !attached) return;
    const keys = [...toCheck].slice(0, settings.maxCheckBatch);
    for (const key of keys) toCheck.delete(key);
    checking = runCheck(keys)
      .catch((error: unknown) => {
        log.warn("Due check failed; trying again", { error: rpcErrorText(error) });
        for (const key of keys) {
          const t = tracked.get(key);
          if (t?.state) apply(t, t.state.interval, { kind: "checked", verdict: { kind: "retry" } });
        }
      })
      .finally(() => {
        checking = undefined;
      });
  }

  async function runCheck(keys: string[]): Promise<void> {
    if (!attached) return;
    const { ctx, dueCheck } = attached;
    const onchain: DueItem[] = [];
    const delegated: DueItem[] = [];
    for (const key of keys) {
      const t = tracked.get(key);
      if (t?.state?.phase !== "unchecked") continue;
      (t.delegated ? delegated : onchain).push({
        key,
        id: t.sub.id,
        interval: t.state.interval,
        redundancy: t.sub.redundancy,
        frequency: t.sub.frequency,
        ...(t.sub.providesPayment
          ? { payment: { wallet: t.sub.wallet, token: t.sub.paymentToken, amount: t.sub.paymentAmount } }
          : {}),
      });
    }
    if (onchain.length > 0) {
      const block = lastHead ?? (await ctx.rpc.client.getBlockNumber({ cacheTime: 0 }));
      applyVerdicts(onchain, await dueCheck.check(onchain, block));
    }
    // Delegated ones are not on-chain yet: no interval to read, only whether they were created meanwhile (then
    // the listener relays them) and their payment.
    const uncreated: DueItem[] = [];
    for (const item of delegated) {
      const t = tracked.get(item.key);
      if (!t) continue;
      try {
        if (!(await droppedAsCreated(ctx, t))) uncreated.push(item);
      } catch (error) {
        log.warn("Could not check a delegated subscription; trying again", {
          key: t.key,
          error: rpcErrorText(error),
        });
        apply(t, item.interval, { kind: "checked", verdict: { kind: "retry" } });
      }
    }
    // At the latest block, as before the due check existed: the wallet may have been funded just now.
    if (uncreated.length > 0) applyVerdicts(uncreated, await dueCheck.checkPayments(uncreated));
  }

  function applyVerdicts(items: readonly DueItem[], verdicts: Map<string, DueVerdict>): void {
    for (const item of items) {
      const t = tracked.get(item.key);
      if (t) onVerdict(t, item.interval, verdicts.get(item.key) ?? { kind: "retry", error: "no verdict" });
    }
  }

  function onVerdict(t: Tracked, interval: number, verdict: DueVerdict): void {
    const sub = t.sub;
    switch (verdict.kind) {
      case "redundancy-met":
        if (verdict.last) log.info("Subscription already completed", { id: sub.id, interval });
        sub.setResponseCount(interval, verdict.count, Math.max(nowMs() / 1000, sub.activeAt + 1));
        apply(t, interval, { kind: "checked", verdict: { kind: "redundancy-met", last: verdict.last } });
        return;
      case "already-responded":
        sub.markReplied(interval);
        log.info("Node has already responded for this interval", { id: sub.id, interval });
        apply(t, interval, { kind: "checked", verdict: { kind: "already-responded" } });
        return;
      case "invalid-wallet":
        log.info(
          `Skipping subscription: ${sub.id}: Invalid subscription wallet, please use a wallet generated by infernet's \`WalletFactory\``,
          { id: sub.id, wallet: sub.wallet },
        );
        apply(t, interval, { kind: "checked", verdict: { kind: "payment-invalid", why: "invalid wallet" } });
        return;
      case "insufficient-balance":
        log.info(`Skipping subscription: ${sub.id}: Subscription wallet has insufficient balance`, {
          id: sub.id,
          wallet: sub.wallet,
          sub_amount: sub.paymentAmount.toString(),
          wallet_balance: verdict.balance.toString(),
        });
        apply(t, interval, {
          kind: "checked",
          verdict: { kind: "payment-invalid", why: "insufficient balance" },
        });
        return;
      case "retry":
        log.debug("Due check could not read this interval yet", {
          id: sub.id,
          interval,
          error: verdict.error,
        });
        apply(t, interval, { kind: "checked", verdict: { kind: "retry" } });
        return;
      case "ready":
        apply(t, interval, { kind: "checked", verdict: { kind: "ready" } });
        return;
    }
  }

  // ---------------------------------------------------------------------------------------------------------
  // Dispatch and outcomes

  function dispatch(signal: AbortSignal): void {
    for (const key of ready) {
      if (running.size >= settings.maxConcurrent || signal.aborted) return;
      ready.delete(key);
      const t = tracked.get(key);
      const state = t?.state;
      if (!t || !state || state.phase !== "ready") continue;
      const interval = state.interval;
      apply(t, interval, { kind: "dispatched" });
      const task = execute(t, interval, signal)
        .catch((error) => {
          log.error("Subscription processing failed", {
            id: t.sub.id,
            interval,
            error: describeError(error),
          });
          apply(t, interval, { kind: "failed", retryable: true, reason: describeError(error) });
        })
        .finally(() => running.delete(task));
      running.add(task);
    }
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

  async function onOutcome(t: Tracked, interval: number, sent: SentTx, outcome: TxOutcome): Promise<void> {
    const fields = { id: t.sub.id, interval, tx_hash: outcome.hash };
    if (outcome.status === "success") {
      log.info("Transaction confirmed", { ...fields, block: Number(outcome.blockNumber) });
      t.sub.markReplied(interval);
      if (t.delegated) log.info("Delegated subscription completed for interval", fields);
      apply(t, interval, { kind: "tx-success" });
      return;
    }
    if (outcome.status === "dropped") {
      failedDeliveries++;
      apply(t, interval, { kind: "tx-dropped" });
      return;
    }
    const attempts = (t.state?.interval === interval ? t.state.attempts : 0) + 1;
    const reason = attached
      ? await minedRevertReason(attached.ctx.rpc.client, {
          hash: outcome.hash,
          from: attached.wallet.address,
          to: attached.ctx.coordinator.address,
          data: sent.data,
          blockNumber: outcome.blockNumber,
        })
      : "unknown";
    log.warn("Transaction reverted", { ...fields, attempts, reason });
    if (attempts >= machineRules.maxAttempts) {
      failedDeliveries++;
      log.error("Subscription has exceeded the maximum number of attempts", {
        // A delegated subscription has no id until created; name the one it would get (Ritual's tests do).
        id: t.delegated ? await predictedId(t) : t.sub.id,
        interval,
        tx_hash: outcome.hash,
        attempts,
      });
    }
    apply(t, interval, { kind: "tx-reverted" });
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
        now: () => nowMs() / 1000,
        readInputs: attached.readInputs,
      },
      targetOf(t, interval),
      signal,
    );
    switch (result.kind) {
      case "sent": {
        log.info("Sent tx", {
          id: t.sub.id,
          interval,
          delegated: t.delegated !== undefined,
          tx_hash: result.tx.hash,
          nonce: result.tx.nonce,
        });
        apply(t, interval, { kind: "sent" });
        void result.tx.outcome.then((outcome) => onOutcome(t, interval, result.tx, outcome));
        return;
      }
      case "refused": {
        const name = result.revert.infernet?.name ?? "";
        const timing = TIMING_ERRORS.has(name);
        // A timing refusal is logged once per interval: the chain's clock and ours disagree at a boundary, and
        // the interval is asked again after the next block for as long as it lasts.
        if (!timing || (t.state?.timingRetries ?? 0) === 0) logRefusal(t, interval, result);
        if (!timing) failedDeliveries++;
        apply(t, interval, { kind: "refused", timing, reason: result.revert.reason });
        return;
      }
      case "container-failed": {
        failedDeliveries++;
        log.error("Container execution errored", { id: t.sub.id, interval, error: result.error });
        const failures = (t.state?.containerFailures ?? 0) + 1;
        if (!isOneShot(t) && failures >= machineRules.maxContainerFailures) {
          log.warn("Giving up this interval after repeated container errors", {
            id: t.sub.id,
            interval,
            failures,
          });
        }
        apply(t, interval, { kind: "container-failed" });
        return;
      }
      case "failed":
        failedDeliveries++;
        lastError = result.error;
        log.error("Failed to send tx", { id: t.sub.id, interval, error: result.error });
        apply(t, interval, { kind: "failed", retryable: result.retryable, reason: result.error });
        return;
    }
  }

  // ---------------------------------------------------------------------------------------------------------
  // Per-block work

  /**
   * Cancellations and fulfilments since the last scan. The scan runs beside the step (its calls may be retried
   * and time out): a refused or failed scan only delays these, never a delivery.
   */
  function startScan(ctx: ChainContext, head: bigint): void {
    if (!attached || scanning) return;
    const { scanner } = attached;
    scanning = scanner
      .advance(head)
      .then(async (step) => {
        scanBehind = step.behind;
        if (step.error !== scanError && step.error !== undefined) {
          log.warn("Could not scan the Coordinator's events yet; deliveries go on", { error: step.error });
        }
        scanError = step.error;
        for (const event of step.events) {
          const t = tracked.get(String(event.id));
          if (!t) continue;
          if (event.kind === "cancelled") cancelsToConfirm.add(event.id);
          else if (t.state) apply(t, t.state.interval, { kind: "fulfilled-elsewhere" });
        }
        if (cancelsToConfirm.size > 0) await confirmCancellations(ctx);
      })
      .catch((error: unknown) => {
        scanError = rpcErrorText(error);
      })
      .finally(() => {
        scanning = undefined;
      });
  }

  /**
   * A cancellation seen in a block a reorganisation later orphans must not drop the subscription for good: it is
   * dropped only when the chain's latest state says it is cancelled; a read that failed is tried again next scan.
   */
  async function confirmCancellations(ctx: ChainContext): Promise<void> {
    const ids = [...cancelsToConfirm];
    cancelsToConfirm.clear();
    const { cancelled, unconfirmed } = await confirmCancelled(
      async (id) => (await ctx.coordinator.getSubscription(id)).activeAt,
      ids,
    );
    for (const id of unconfirmed) if (tracked.has(String(id))) cancelsToConfirm.add(id);
    for (const id of cancelled) {
      const t = tracked.get(String(id));
      if (!t) continue;
      log.info("Subscription cancelled", { id });
      stopTracking(t, "cancelled");
    }
  }

  /** Per-block work failed (the RPC, most likely): logged, and done again with the next block or step. */
  function blockWorkFailed(error: unknown): void {
    log.warn("Per-block work failed; trying again", { error: rpcErrorText(error) });
  }

  async function onNewBlock(ctx: ChainContext, head: bigint): Promise<void> {
    if (!attached) return;
    await attached.wallet.transactions.onBlock(head);
    lastReceiptCheck = clock();
    startScan(ctx, head);
    lastHead = head;
    if (clock() - balanceAt > 60_000) {
      balanceAt = clock();
      balance = await ctx.rpc.client.getBalance({ address: attached.wallet.address }).catch(() => balance);
      if (paymentAddress) {
        paymentBalance = await ctx.rpc.client
          .getBalance({ address: getAddress(paymentAddress) })
          .catch(() => paymentBalance);
      }
    }
  }

  // ---------------------------------------------------------------------------------------------------------
  // Delegated subscriptions

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
  function droppedAsExpired(t: Tracked, now: number): boolean {
    const msg = t.delegated?.msg;
    if (!msg || Math.floor(now / 1000) < msg.signature.expiry) return false;
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
    unverified.delete(t.key);
    schedule.schedule(t.key, nowMs());
    log.info("Tracked new delegate subscription", { ...fields, total: tracked.size });
  }

  /** Verifies delegated subscriptions handed in since the last step (one at a time: no double verification). */
  async function verifyPending(signal: AbortSignal): Promise<void> {
    if (!attached || unverified.size === 0) return;
    const now = nowMs();
    for (const key of [...unverified]) {
      if (signal.aborted) return;
      const t = tracked.get(key);
      const d = t?.delegated;
      if (!t || !d || d.verified) {
        unverified.delete(key);
        continue;
      }
      if (clock() - d.receivedAt > settings.delegatedTtlMs) {
        stopTracking(t, "expired unverified");
        continue;
      }
      if (d.retryAt > clock() || droppedAsExpired(t, now)) continue;
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

  /** Counts a delegated subscription against the quota (throws DelegatedQuotaError past it). */
  function admit(key: string, msg: DelegatedSubscriptionMessage): void {
    quota.admit(key, {
      owner: ownerKey(msg.subscription.owner),
      client: msg.ip,
      bytes: Buffer.byteLength(stringifyJsonFast(msg.data)),
    });
  }

  /** Holds a delegated subscription, unverified (verifyPending checks it before anything is sent for it). */
  function track(key: string, msg: DelegatedSubscriptionMessage): void {
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
    const existing = tracked.get(key);
    schedule.cancel(key);
    ready.delete(key);
    tracked.set(key, {
      key,
      sub,
      delegated: { msg, verified: false, receivedAt: clock(), retryAt: 0 },
      ...(existing?.state ? { state: existing.state } : {}),
    });
    unverified.add(key);
  }

  /** Whether this process sends (no standby set-up, or it holds the lease). */
  const sending = () => !deps.lease || deps.lease.held();

  /**
   * The journal's subscriptions into this (sending) process: all of them at start-up and on taking the lease
   * (dropping held ones another process finished meanwhile), then each step those any process saved since.
   * One the quota cannot take now stays in the journal (another process answered 200 for it) and is offered again.
   */
  async function takeInJournal(journal: DelegatedJournal): Promise<void> {
    if (deferred.size > 0 && clock() - deferredAt > DEFERRED_RETRY_MS) journalRestored = false;
    const full = !journalRestored;
    // Held before the load: each was saved before it was held, so one missing from the journal was finished
    // (removed) by another process. One submitted while the load runs is not judged by it.
    const heldBefore = [...tracked.values()].filter((t) => t.delegated);
    const entries = full ? await journal.load() : ((await journal.takeNew?.()) ?? []);
    if (full) {
      deferred.clear();
      const stored = new Set(entries.map((entry) => entry.key));
      for (const t of heldBefore) if (!stored.has(t.key)) stopTracking(t, "finished by another node process");
    }
    let taken = 0;
    for (const { key, msg } of entries) {
      if (tracked.has(key)) continue;
      try {
        admit(key, msg);
      } catch (error) {
        if (!deferred.has(key)) {
          log.warn(
            "Delegated subscription from the journal over this process's quota; kept there for later",
            {
              key,
              error: describeError(error),
            },
          );
        }
        deferred.add(key);
        deferredAt = clock();
        continue;
      }
      deferred.delete(key);
      track(key, msg);
      taken++;
    }
    journalRestored = true;
    if (taken > 0) log.info("Delegated subscriptions taken in from the journal", { count: taken, full });
  }

  // ---------------------------------------------------------------------------------------------------------
  // The step

  /** One pass: per-block work when the head moved, then whatever fell due by the chain's clock. */
  async function tick(signal: AbortSignal): Promise<void> {
    if (!attached) {
      const ctx = deps.context();
      if (!ctx) return;
      attach(ctx);
    }
    const { ctx, wallet } = attached as NonNullable<typeof attached>;
    const head = deps.head();
    // Per-block work (receipts, replacements, the balance) runs beside the step, one at a time: its requests
    // never make a step long.
    if (blockWork) {
      // the previous block's work is still running
    } else if (head !== null && (lastHead === null || head > lastHead)) {
      blockWork = onNewBlock(ctx, head)
        .catch(blockWorkFailed)
        .finally(() => {
          blockWork = undefined;
        });
    } else if (
      lastHead !== null &&
      wallet.transactions.stats().pending > 0 &&
      clock() - lastReceiptCheck >= RECEIPT_RECHECK_MS
    ) {
      // No new block, but transactions in flight: one may have been mined in the block seen just before it was
      // registered, and a dev chain (automine) makes no further block. Look again on a timer.
      lastReceiptCheck = clock();
      blockWork = wallet.transactions
        .onBlock(lastHead)
        .catch(blockWorkFailed)
        .finally(() => {
          blockWork = undefined;
        });
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

    const now = nowMs();
    // Bounded per step (a snapshot sync hands over 100,000 at once): the rest are taken on the next steps.
    for (const key of schedule.takeDue(now, MAX_DUE_PER_STEP)) {
      const t = tracked.get(key);
      if (t) examine(t, now);
    }
    startCheck();
    dispatch(signal);
  }

  return {
    name: "processor",
    track(sub) {
      const key = String(sub.id);
      if (tracked.has(key)) return;
      tracked.set(key, { key, sub });
      // Due at once: examine() works out when its first interval starts.
      schedule.schedule(key, 0);
      log.debug("Tracked new subscription!", { id: sub.id, total: tracked.size });
    },
    async submit(msg) {
      const key = delegatedKey(msg.subscription.owner, msg.signature.nonce);
      const holding = sending();
      admit(key, msg);
      try {
        await deps.journal?.save(key, msg);
      } catch (error) {
        // Not stored, not accepted: the client is told (503) rather than sent a 200 for something a restart loses.
        if (!tracked.has(key)) quota.release(key);
        throw error;
      }
      if (holding || !deps.journal) {
        track(key, msg);
      } else if (!tracked.has(key)) {
        // A standby: the lease holder takes it from the journal and delivers it; holding it here too would keep
        // its quota taken long after the holder delivered it. Taken in from the journal when this one takes over.
        quota.release(key);
      }
      // Verified on the processor's next step (verifyPending), before anything is sent for it.
      log.info("Relayed delegated subscription", {
        owner: msg.subscription.owner,
        nonce: msg.signature.nonce,
      });
    },
    async run(signal) {
      let failures = 0;
      while (!signal.aborted) {
        try {
          const started = performance.now();
          await verifyPending(signal);
          await tick(signal);
          stepMs.last = performance.now() - started;
          if (stepMs.last > stepMs.max) stepMs.max = stepMs.last;
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
      const background = [checking, scanning, blockWork].filter((p): p is Promise<void> => p !== undefined);
      await Promise.race([Promise.allSettled([...running, ...background]), sleep(2_000)]);
    },
    keys: () => [...tracked.keys()],
    health(): ProcessorHealth {
      const tx = attached?.wallet.transactions.stats();
      const delegated = quota.stats().count;
      const chainNow = deps.chainNowMs?.() ?? null;
      const feeCapped = tx?.feeCapped === true;
      return {
        // A fee cap that stops replacement is a degradation the operator must see, not a silent loop.
        ok: lastError === undefined && !feeCapped,
        detail: !attached
          ? "waiting for the chain connection"
          : lastError !== undefined
            ? `failing: ${lastError}`
            : feeCapped
              ? `nonce ${tx?.stuckNonce} cannot be replaced: chain.wallet.max_fee_per_gas reached; waiting for fees to fall`
              : "processing",
        tracked: tracked.size - delegated,
        delegated_bytes: quota.stats().bytes,
        delegated,
        running: running.size,
        ready: ready.size,
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
        events: { behind: Number(scanBehind), error: scanError ?? null },
        chain_clock_lag_s: chainNow === null ? null : Math.round((clock() - chainNow) / 100) / 10,
        step_ms: { last: Math.round(stepMs.last * 10) / 10, max: Math.round(stepMs.max * 10) / 10 },
        fee_capped: feeCapped ? 1 : 0,
        stuck_nonce: tx?.stuckNonce ?? null,
      };
    },
  };
}
