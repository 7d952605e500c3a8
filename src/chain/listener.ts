// The chain listener (reference chain/listener.py, node-behavior §8.8): finds subscriptions by polling the
// Coordinator's id counter (no event logs), reads new ones in batches through the Reader, filters them with the
// guardian's on-chain checks and hands the rest to a SubscriptionSink.
//
// One sync step: head = eth_blockNumber − trail_head_blocks; if the head moved, read id() − 1 at head and sync
// every id after the last one synced, in batch_size batches, every read of the step pinned to that one block.
// The first steps are the snapshot sync (from snapshot_sync.starting_sub_id + 1, exclusive as in the
// reference); after that each new block costs one id() call. With no new block the listener sleeps sync_period.
//
// Fixes over the reference (node-behavior §11.7–10):
// - `Ignored subscription creation` names the subscription that was ignored;
// - a batch is retried a bounded number of times with capped backoff; then the step fails, the listener keeps
//   its position (the last fully synced batch) and resumes from there on the next step: no gaps, no duplicates;
// - any RPC failure backs off and resumes; nothing here ends the process;
// - starting_sub_id above the head gives no reversed range: the listener waits until the head passes it;
// - cancelled and expired subscriptions (which can never be delivered: deliverCompute reverts) are ignored
//   here instead of being tracked and dropped later.

import type { RuleTable } from "../guardian/rules.ts";
import { checkSubscription } from "../guardian/subscription.ts";
import { NodeError } from "../lib/errors.ts";
import type { Logger } from "../lib/log.ts";
import { progressReporter } from "../lib/progress.ts";
import { backoffMs, sleep as defaultSleep } from "../lib/time.ts";
import type { SubscriptionObserver } from "../shared/observe.ts";
import { type Clock, Subscription, systemClock, ZERO_ADDRESS } from "../shared/subscription.ts";
import type { SubscriptionSink } from "../shared/subscriptions.ts";
import type { ContainerLookup } from "./container-lookup.ts";
import type { Coordinator } from "./coordinator.ts";
import type { Reader } from "./reader.ts";
import { rpcErrorText } from "./rpc.ts";

/** Subscriptions read by a snapshot sync past which the sync ends with a full garbage collection. */
const LARGE_SYNC = 10_000;

export interface ListenerSettings {
  batchSize: number;
  /** Pause between batches of one sync step (snapshot_sync.sleep), ms. */
  batchSleepMs: number;
  /** Exclusive: the first id synced is startingSubId + 1. */
  startingSubId: number;
  /** Pause when there is no new block (snapshot_sync.sync_period), ms. */
  syncPeriodMs: number;
  trailHeadBlocks: number;
  /** Attempts per batch within one step before the step gives up (default 3). */
  batchAttempts?: number;
  /** Backoff between batch attempts and after a failed step: base·2^n capped (defaults 500 ms, 30 s). */
  retryBaseMs?: number;
  retryMaxMs?: number;
}

export interface ListenerDeps {
  getBlockNumber(): Promise<bigint>;
  coordinator: Pick<Coordinator, "headSubscriptionId">;
  reader: Pick<Reader, "readSubscriptionBatch" | "readRedundancyCountBatch">;
  lookup: Pick<ContainerLookup, "lookupContainers">;
  rules: RuleTable;
  paymentAddress: string | null;
  sink: SubscriptionSink;
  settings: ListenerSettings;
  log: Logger;
  clock?: Clock;
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** Told about every subscription not relayed, with the Guardian's reason (for /metrics). */
  observe?: SubscriptionObserver;
}

export interface ListenerProgress {
  /** "snapshot" until the first sync reached the head, then "live". */
  phase: "snapshot" | "live";
  /** Last block whose subscriptions are all synced (head − trail_head_blocks at that step). */
  last_synced_block: number | null;
  /** Highest subscription id synced. */
  last_sub_id: number;
  /** Latest block number seen from the RPC. */
  head_block: number | null;
  /** id() − 1 at the block being synced. */
  head_sub_id: number | null;
  relayed: number;
  ignored: number;
  consecutive_failures: number;
  last_error?: string;
}

export interface Listener {
  /** Polls until `signal` aborts; never throws because of the chain. */
  run(signal: AbortSignal): Promise<void>;
  /** One sync step; true when the head moved (work was done), false when there was nothing new. */
  step(signal?: AbortSignal): Promise<boolean>;
  progress(): ListenerProgress;
}

/**
 * Batches [start, endExclusive) covering ids start … end inclusive, each at most `size` ids.
 * start > end → [] (the reference returned a reversed range here, which the Reader reverts on).
 */
export function getBatches(start: number, end: number, size: number): Array<[number, number]> {
  if (size < 1) throw new RangeError("batch size must be at least 1");
  const batches: Array<[number, number]> = [];
  for (let from = start; from <= end; from += size) batches.push([from, Math.min(from + size - 1, end) + 1]);
  return batches;
}

export function createListener(deps: ListenerDeps): Listener {
  const { settings, log, coordinator, reader, lookup, sink } = deps;
  const clock = deps.clock ?? systemClock;
  const sleep = deps.sleep ?? defaultSleep;
  const batchAttempts = Math.max(1, settings.batchAttempts ?? 3);
  const retryBaseMs = settings.retryBaseMs ?? 500;
  const retryMaxMs = settings.retryMaxMs ?? 30_000;

  let phase: ListenerProgress["phase"] = "snapshot";
  let lastSyncedBlock: bigint | null = null;
  let lastSubId = settings.startingSubId;
  let headBlock: bigint | null = null;
  let headSubId: number | null = null;
  let relayed = 0;
  let ignored = 0;
  let failures = 0;
  let lastError: string | undefined;
  let waitingLogged = false;

  const ignore = (id: number, err: string, params: Record<string, unknown> = {}) => {
    ignored++;
    deps.observe?.guardianRejection("onchain", err);
    log.info("Ignored subscription creation", { id, err, params });
  };

  /** Reads one batch at `blockNumber`, then filters and relays it. Reads first, so a failure relays nothing. */
  const syncBatch = async (start: number, endExclusive: number, blockNumber: bigint) => {
    const fields = await reader.readSubscriptionBatch(start, endExclusive, blockNumber);
    const now = clock() / 1000;
    const subs = fields.map(
      (f, i) => new Subscription(start + i, f, lookup.lookupContainers(f.containerId) ?? [], clock),
    );
    // Redundancy counts only matter for subscriptions on their last interval: they may already be completed.
    const onLast = subs.filter((s) => !isEmpty(s) && !s.cancelled && s.isLastInterval(now));
    if (onLast.length > 0) {
      const counts = await reader.readRedundancyCountBatch(
        onLast.map((s) => s.id),
        onLast.map((s) => s.frequency),
        blockNumber,
      );
      for (const [i, s] of onLast.entries()) s.setResponseCount(s.frequency, counts[i] ?? 0, now);
    }
    for (const sub of subs) {
      if (isEmpty(sub)) {
        log.debug("No subscription at id", { id: sub.id });
        continue;
      }
      if (sub.cancelled) {
        ignore(sub.id, "Subscription cancelled");
        continue;
      }
      if (sub.isPastLastInterval(now)) {
        ignore(sub.id, "Subscription expired");
        continue;
      }
      const verdict = checkSubscription(sub, { rules: deps.rules, paymentAddress: deps.paymentAddress, now });
      if (!verdict.ok) {
        if (verdict.detail) log.info(`Skipping subscription: ${sub.id}: ${verdict.detail}`, { id: sub.id });
        ignore(sub.id, verdict.error, verdict.params);
        continue;
      }
      try {
        sink.track(sub);
      } catch (error) {
        log.error("Could not track subscription", { id: sub.id, error: rpcErrorText(error) });
        continue;
      }
      relayed++;
      log.info("Relayed subscription creation", { id: sub.id });
    }
  };

  const syncBatchWithRetry = async (
    start: number,
    end: number,
    blockNumber: bigint,
    signal?: AbortSignal,
  ) => {
    for (let attempt = 1; ; attempt++) {
      try {
        await syncBatch(start, end, blockNumber);
        return;
      } catch (error) {
        const reason = rpcErrorText(error);
        if (attempt >= batchAttempts || signal?.aborted) {
          throw new NodeError(
            `subscription batch (${start}, ${end}) failed after ${attempt} attempts: ${reason}`,
            {
              retryable: true,
              cause: error,
              meta: { start, end, block: blockNumber.toString() },
            },
          );
        }
        const delay = backoffMs(attempt - 1, retryBaseMs, retryMaxMs);
        log.warn(`Error syncing subscription batch (${start}, ${end}). Retrying...`, {
          attempt,
          retry_in_ms: delay,
          error: reason,
        });
        await sleep(delay, signal);
      }
    }
  };

  const step = async (signal?: AbortSignal): Promise<boolean> => {
    const latest = await deps.getBlockNumber();
    headBlock = latest;
    const trail = BigInt(settings.trailHeadBlocks);
    const target = latest > trail ? latest - trail : 0n;
    if (lastSyncedBlock !== null && target <= lastSyncedBlock) return false;

    const head = await coordinator.headSubscriptionId(target);
    headSubId = head;
    if (head < lastSubId && !waitingLogged) {
      waitingLogged = true;
      log.info("starting_sub_id is above the head subscription id; waiting for the head to pass it", {
        starting_sub_id: settings.startingSubId,
        head_sub_id: head,
      });
    }
    const batches = getBatches(lastSubId + 1, head, settings.batchSize);
    const firstId = lastSubId;
    const progress =
      phase === "snapshot" && batches.length > 1
        ? progressReporter(log, "Snapshot sync progress", head - firstId)
        : undefined;
    for (const [i, [start, end]] of batches.entries()) {
      if (signal?.aborted) return true;
      await syncBatchWithRetry(start, end, target, signal);
      lastSubId = end - 1;
      progress?.(lastSubId - firstId);
      if (i < batches.length - 1) await sleep(settings.batchSleepMs, signal);
    }
    if (signal?.aborted) return true;
    lastSyncedBlock = target;
    if (phase === "snapshot") {
      phase = "live";
      log.info("Finished snapshot sync", { block: Number(target), last_sub_id: lastSubId, relayed, ignored });
      // A large snapshot sync leaves its decoded batches behind all at once; one collection now returns that
      // memory before the node settles, instead of the process keeping the burst's peak as resident memory.
      if (relayed + ignored >= LARGE_SYNC) Bun.gc(true);
    }
    return true;
  };

  return {
    step,
    async run(signal) {
      while (!signal.aborted) {
        try {
          const moved = await step(signal);
          failures = 0;
          lastError = undefined;
          // At least 10 ms even with sync_period 0, so an idle chain cannot spin the event loop.
          if (!moved) await sleep(Math.max(settings.syncPeriodMs, 10), signal);
        } catch (error) {
          if (signal.aborted) return;
          failures++;
          lastError = rpcErrorText(error);
          const delay = backoffMs(failures - 1, retryBaseMs, retryMaxMs);
          log.warn("Listener sync step failed; resuming from the last synced subscription", {
            last_sub_id: lastSubId,
            retry_in_ms: delay,
            error: lastError,
          });
          await sleep(delay, signal);
        }
      }
    },
    progress: () => ({
      phase,
      last_synced_block: lastSyncedBlock === null ? null : Number(lastSyncedBlock),
      last_sub_id: lastSubId,
      head_block: headBlock === null ? null : Number(headBlock),
      head_sub_id: headSubId,
      relayed,
      ignored,
      consecutive_failures: failures,
      ...(lastError === undefined ? {} : { last_error: lastError }),
    }),
  };
}

/** Ids past the end of the Coordinator's table read back as all-zero structs. */
function isEmpty(sub: Subscription): boolean {
  return sub.owner.toLowerCase() === ZERO_ADDRESS;
}
