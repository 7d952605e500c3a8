// The processor's event scan (issue 17, defects 4 and 10b): the Coordinator's SubscriptionCancelled and
// SubscriptionFulfilled events, from a cursor towards the head, in ranges the provider accepts.
//
// Interface for the processor:
//   const scanner = createEventScanner({
//     getLogs: (from, to) => ctx.rpc.client.getLogs({ address: ctx.coordinator.address,
//       events: [cancelledEvent, fulfilledEvent], fromBlock: from, toBlock: to }),
//     log,
//   });
//   const step = await scanner.advance(head);   // never throws
//   step.events      // [{ kind: "cancelled" | "fulfilled", id, blockNumber }], in chain order
//   step.scannedTo   // the last block scanned so far (null before the first success)
//   step.behind      // blocks between scannedTo and head still to scan (0n when caught up)
//   step.error       // set when a call of this step failed for a reason other than the range (an outage)
//
// How it behaves:
// - Adaptive range: a refusal for range or result size (log-range.ts: -32005 result caps, -32602 "block range",
//   "Maximum allowed number of requested blocks is N", HTTP 413, a timeout, …) shrinks the range to what the
//   provider named (a range, or a span in blocks, which also becomes a ceiling for growth) or else to half (but
//   not below the span last accepted), and the smaller range is tried at once (a timeout waits for the next
//   step: it already cost a full wait). After `growAfter` (2) consecutive successes the range doubles, up to
//   maxRange (or the provider's named ceiling), but towards a span refused within the last `probeAfter` (100)
//   successful calls only by halving the distance: a hard cap the provider does not name (a bare -32005) is
//   found by bisection, and costs about 3 refused probes per 100 calls afterwards (createRangeGovernor).
// - The cursor moves only over ranges scanned successfully: no gaps, no duplicates (except after a rewind).
// - Bounded work: at most `maxCallsPerStep` eth_getLogs per advance(); a node far behind catches up over steps.
// - Other failures (outage, rate limit, a refusal at minRange) are returned as `error` and the scanner backs off
//   (no call before 1 s · 2ⁿ, at most 30 s, jittered); the failure is logged when it starts or changes, and its
//   end once. advance() still returns at once while backing off, so nothing else waits for the scan.
// - A chain shorter than what was scanned (a reorg; or a load-balanced provider whose backend lags) rewinds the
//   cursor to the head, and the head block is scanned again (the reorg may have replaced it). Events may then be
//   seen twice: consumers must be idempotent (they are: a cancellation is confirmed, a fulfilment re-checked).
//   A reorg that keeps the length is not seen by the cursor; what it hides is caught elsewhere (the due check
//   reads redundancy counts anyway; a cancelled subscription fails its pre-flight simulation).
// - Calls to advance() must not overlap: one that starts while another runs returns an empty step at once.
//   advance() takes as long as its calls do (the transport's own retries and timeouts included), so the
//   processor should not await it inside its step: start it, keep the promise, take its result when settled.
//   (rpc.ts retries -32005, -32603 and timeouts with backoff before a refusal reaches this scanner: with the
//   default 5 retries one -32005 refusal costs 6 requests and ~8 s; a refusal should not be retried there.)
//
// Defect 10b (note for the processor): a "cancelled" event may come from a block a reorg later orphans; dropping
// the subscription on the event alone loses it for good. `confirmCancelled` reads activeAt at the latest block
// and only the ids really cancelled there (activeAt = 2³²−1) should be dropped; ids whose read failed should be
// confirmed again later (keep them in a small pending set), the others stay tracked.
import type { Logger } from "../lib/log.ts";
import { backoffMs } from "../lib/time.ts";
import { CANCELLED_ACTIVE_AT } from "../shared/subscription.ts";
import { settleBounded } from "./batch-reads.ts";
import { isTimeout, type LogRangeHint, suggestedLogRange } from "./log-range.ts";
import { rpcErrorText } from "./rpc.ts";

/** What the scanner needs of a log; viem's decoded getLogs entries for the two events fit it. */
export interface ScanLog {
  eventName?: string;
  args?: { id?: number | bigint };
  blockNumber: bigint | null;
}

export interface ScanEvent {
  kind: "cancelled" | "fulfilled";
  id: number;
  blockNumber: bigint;
}

export interface ScanStep {
  events: ScanEvent[];
  /** The last block scanned so far (this step or before); null until the first successful call. */
  scannedTo: bigint | null;
  /** Blocks up to `head` still to scan. */
  behind: bigint;
  /** A call of this step failed for a reason a smaller range does not cure; the scanner backs off. */
  error?: string;
}

export interface EventScannerDeps {
  getLogs(from: bigint, to: bigint): Promise<readonly ScanLog[]>;
  log: Logger;
  /** Largest range per call, in blocks (default 1000, the smallest common provider cap). */
  maxRange?: bigint;
  /** Smallest range (default 1): a refusal at this size is treated as a failure. */
  minRange?: bigint;
  /** How far behind the first head seen the scan starts (default 100 blocks). */
  startBack?: bigint;
  /** eth_getLogs calls at most per advance() (default 4). */
  maxCallsPerStep?: number;
  /** Consecutive successful calls before the range doubles (default 2). */
  growAfter?: number;
  /** Successful calls before the range may grow again to a span that was refused (default 100). */
  probeAfter?: number;
  /** Backoff after a failure: base·2ⁿ ms, at most max (defaults 1 s and 30 s). */
  backoffBaseMs?: number;
  backoffMaxMs?: number;
  /** ms clock (default Date.now). */
  clock?: () => number;
}

export interface EventScannerState {
  /** The next block to scan (null before the first advance). */
  next: bigint | null;
  range: bigint;
  /** A span the provider said it accepts at most; the range does not grow past it. */
  ceiling: bigint | null;
  /** The smallest span refused lately (the range grows towards it by halves); forgotten after `probeAfter` calls. */
  refused: bigint | null;
  /** The largest span accepted since a refusal of a span at most as large. */
  accepted: bigint;
  /** The current failure, while backing off. */
  failing?: string;
}

export interface EventScanner {
  advance(head: bigint): Promise<ScanStep>;
  state(): EventScannerState;
}

export function createEventScanner(deps: EventScannerDeps): EventScanner {
  const { log } = deps;
  const maxRange = deps.maxRange ?? 1_000n;
  const minRange = deps.minRange ?? 1n;
  if (minRange < 1n || maxRange < minRange) throw new Error("event scan: need 1 <= minRange <= maxRange");
  const startBack = deps.startBack ?? 100n;
  const maxCalls = deps.maxCallsPerStep ?? 4;
  const growAfter = deps.growAfter ?? 2;
  const probeAfter = deps.probeAfter ?? 100;
  const baseMs = deps.backoffBaseMs ?? 1_000;
  const maxMs = deps.backoffMaxMs ?? 30_000;
  const clock = deps.clock ?? Date.now;

  let next: bigint | null = null;
  let scannedTo: bigint | null = null;
  const ranges = createRangeGovernor({ maxRange, minRange, growAfter, probeAfter });
  let failures = 0;
  let retryAt = 0;
  let failing: string | undefined;
  let running = false;

  const behindOf = (head: bigint): bigint => (next === null || next > head ? 0n : head - next + 1n);

  async function scan(head: bigint): Promise<ScanStep> {
    if (next === null) next = head > startBack ? head - startBack : 0n;
    if (scannedTo !== null && head < scannedTo) {
      log.info("Chain is shorter than the event scan: scanning again from the head", {
        head: head.toString(),
        scanned_to: scannedTo.toString(),
      });
      next = head;
      scannedTo = head > 0n ? head - 1n : null;
    }
    const events: ScanEvent[] = [];
    if (clock() < retryAt) return { events, scannedTo, behind: behindOf(head) };

    let error: string | undefined;
    for (let calls = 0; calls < maxCalls && next <= head; calls++) {
      const from: bigint = next;
      const range = ranges.range();
      const span = range < head - from + 1n ? range : head - from + 1n;
      const to = from + span - 1n;
      try {
        const logs = await deps.getLogs(from, to);
        for (const entry of logs) {
          const event = toScanEvent(entry, to);
          if (event) events.push(event);
        }
        next = to + 1n;
        scannedTo = to;
        failures = 0;
        if (failing !== undefined) log.info("Event scan works again", { scanned_to: to.toString() });
        failing = undefined;
        ranges.accepted(span);
      } catch (caught) {
        const hint = suggestedLogRange(caught);
        if (hint !== undefined && span > minRange) {
          // A timeout may as well be an outage: it shrinks the range but teaches nothing about the provider's cap.
          ranges.refused(span, hint, { learn: !isTimeout(caught) });
          log.info("eth_getLogs range refused; scanning smaller ranges", {
            from: from.toString(),
            to: to.toString(),
            range: ranges.range().toString(),
            error: rpcErrorText(caught),
          });
          // A timeout already cost a full wait (and may be an outage): the smaller range waits for the next step.
          if (isTimeout(caught)) break;
          continue;
        }
        error = rpcErrorText(caught);
        retryAt = clock() + backoffMs(failures++, baseMs, maxMs);
        if (error !== failing) {
          log.warn("Event scan failed; other work goes on, the scan is retried with backoff", {
            from: from.toString(),
            to: to.toString(),
            error,
          });
        }
        failing = error;
        break;
      }
    }
    return { events, scannedTo, behind: behindOf(head), ...(error === undefined ? {} : { error }) };
  }

  return {
    async advance(head) {
      if (running) return { events: [], scannedTo, behind: behindOf(head) };
      running = true;
      try {
        return await scan(head);
      } catch (caught) {
        // Not expected (every call is caught above); the promise to the caller still never rejects.
        return { events: [], scannedTo, behind: behindOf(head), error: rpcErrorText(caught) };
      } finally {
        running = false;
      }
    },
    state: () => ({ next, ...ranges.state(), ...(failing === undefined ? {} : { failing }) }),
  };
}

export interface RangeGovernorOptions {
  maxRange: bigint;
  minRange: bigint;
  growAfter: number;
  probeAfter: number;
}

/**
 * The range the scanner asks for, learnt from the provider's answers. Doubling after `growAfter` successes, but
 * towards a span refused lately only by halving the distance (a cap the provider does not name is found by
 * bisection, not by a refusal per doubling); after a refusal it falls to the provider's named range or span, else
 * to half, but not below a span just accepted (unless that very span is now refused: denser logs).
 */
export function createRangeGovernor(options: RangeGovernorOptions) {
  const { maxRange, minRange, growAfter, probeAfter } = options;
  let range = maxRange;
  let ceiling: bigint | null = null;
  let refused: bigint | null = null;
  let accepted = 0n;
  let successes = 0;
  let sinceRefusal = 0;
  const atLeastMin = (value: bigint) => (value > minRange ? value : minRange);
  return {
    range: () => range,
    accepted(span: bigint): void {
      if (span > accepted) accepted = span;
      if (refused !== null && ++sinceRefusal >= probeAfter) refused = null;
      if (++successes < growAfter) return;
      successes = 0;
      let target = range * 2n;
      const cap = ceiling !== null && ceiling < maxRange ? ceiling : maxRange;
      if (target > cap) target = cap;
      if (refused !== null && target >= refused) target = (range + refused) / 2n;
      if (target > range) range = target;
    },
    refused(span: bigint, hint: LogRangeHint | "refusal", { learn }: { learn: boolean }): void {
      successes = 0;
      if (accepted >= span) accepted = 0n;
      const named = typeof hint === "object";
      let next = shrunkRange(span, hint);
      if (!named && accepted > next) next = accepted;
      range = atLeastMin(next);
      if (named && hint.maxBlocks !== undefined && hint.maxBlocks < span) {
        ceiling = ceiling === null || hint.maxBlocks < ceiling ? hint.maxBlocks : ceiling;
      }
      if (learn) {
        refused = refused === null || span < refused ? span : refused;
        sinceRefusal = 0;
      }
    },
    state: () => ({ range, ceiling, refused, accepted }),
  };
}

/**
 * The span to try after a refusal of `span` blocks: the provider's named range or span when it is smaller,
 * else half (never below 1).
 */
export function shrunkRange(span: bigint, hint: LogRangeHint | "refusal"): bigint {
  let suggested: bigint | undefined;
  if (typeof hint === "object") {
    if (hint.from !== undefined && hint.to !== undefined) suggested = hint.to - hint.from + 1n;
    else if (hint.maxBlocks !== undefined) suggested = hint.maxBlocks;
  }
  const size = suggested !== undefined && suggested >= 1n && suggested < span ? suggested : span / 2n;
  return size >= 1n ? size : 1n;
}

function toScanEvent(entry: ScanLog, fallbackBlock: bigint): ScanEvent | undefined {
  const kind =
    entry.eventName === "SubscriptionCancelled"
      ? "cancelled"
      : entry.eventName === "SubscriptionFulfilled"
        ? "fulfilled"
        : undefined;
  const id = Number(entry.args?.id);
  if (kind === undefined || !Number.isSafeInteger(id)) return undefined;
  return { kind, id, blockNumber: entry.blockNumber ?? fallbackBlock };
}

export interface CancelConfirmation {
  /** activeAt is 2³²−1 at the latest block: drop these. */
  cancelled: number[];
  /** The read failed: keep them and confirm again later. */
  unconfirmed: number[];
}

/**
 * Which of the ids a "cancelled" event named are really cancelled on the chain as it is now (defect 10b: the
 * event's block may have been orphaned). `readActiveAt` reads the subscription's activeAt at the latest block;
 * ids are deduplicated and read with at most `concurrency` in flight. Never throws.
 */
export async function confirmCancelled(
  readActiveAt: (id: number) => Promise<number>,
  ids: readonly number[],
  concurrency = 4,
): Promise<CancelConfirmation> {
  const unique = [...new Set(ids)];
  const results = await settleBounded(unique, concurrency, (id) => readActiveAt(id));
  const confirmation: CancelConfirmation = { cancelled: [], unconfirmed: [] };
  for (const [i, result] of results.entries()) {
    const id = unique[i] as number;
    if (result.status === "rejected") confirmation.unconfirmed.push(id);
    else if (result.value === CANCELLED_ACTIVE_AT) confirmation.cancelled.push(id);
  }
  return confirmation;
}
