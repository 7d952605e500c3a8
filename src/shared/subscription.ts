// The Subscription model (reference shared/subscription.py, node-behavior §8.2): the on-chain struct plus the
// interval arithmetic the listener, the guardian and the processor reason with. Pure: no I/O, and time comes
// from an injected clock so tests can pin "now".
import { NodeError } from "../lib/errors.ts";

/** `activeAt` of a cancelled subscription: type(uint32).max. */
export const CANCELLED_ACTIVE_AT = 4_294_967_295;
export const ZERO_ADDRESS = "0x0000000000000000000000000000000000000000";

/** Milliseconds since the epoch, like Date.now(). */
export type Clock = () => number;
export const systemClock: Clock = () => Date.now();

/** The on-chain `Subscription` struct, in struct order (chain-interface.md §2). */
export interface SubscriptionFields {
  owner: string;
  activeAt: number;
  period: number;
  frequency: number;
  redundancy: number;
  /** bytes32 as 0x + 64 hex digits. */
  containerId: string;
  lazy: boolean;
  verifier: string;
  paymentAmount: bigint;
  paymentToken: string;
  wallet: string;
}

export class Subscription implements SubscriptionFields {
  readonly owner: string;
  readonly activeAt: number;
  readonly period: number;
  readonly frequency: number;
  readonly redundancy: number;
  readonly containerId: string;
  readonly lazy: boolean;
  readonly verifier: string;
  readonly paymentAmount: bigint;
  readonly paymentToken: string;
  readonly wallet: string;
  /**
   * Local cache: interval → redundancy count seen on-chain (the latest two intervals only: memory stays constant),
   * made on first use (most of 100,000 tracked subscriptions never need one).
   */
  private responses: Map<number, number> | undefined;
  /** Local cache: intervals this node has already answered (the latest two only), made on first use. */
  private replied: Set<number> | undefined;

  /**
   * @param id on-chain id; −1 for a delegated subscription not created on-chain yet.
   * @param containers the pipeline the container-set hash resolved to; empty when unknown to this node.
   */
  constructor(
    readonly id: number,
    fields: SubscriptionFields,
    readonly containers: readonly string[],
    private readonly clock: Clock = systemClock,
  ) {
    this.owner = fields.owner;
    this.activeAt = fields.activeAt;
    this.period = fields.period;
    this.frequency = fields.frequency;
    this.redundancy = fields.redundancy;
    // Values most subscriptions share (a few container sets, the zero address, a few tokens) are kept once:
    // with 100,000 tracked, a copy of each per subscription was ~40% of the processor's memory.
    this.containerId = shared(fields.containerId.toLowerCase());
    this.lazy = fields.lazy;
    this.verifier = shared(fields.verifier);
    this.paymentAmount = fields.paymentAmount;
    this.paymentToken = shared(fields.paymentToken);
    this.wallet = shared(fields.wallet);
  }

  /** Seconds since the epoch (fractional), from the injected clock. */
  now(): number {
    return this.clock() / 1000;
  }

  /** `0x` + lowercase hex of the container-set id. */
  get containersHash(): string {
    return this.containerId;
  }

  get cancelled(): boolean {
    return this.activeAt === CANCELLED_ACTIVE_AT;
  }

  /** Period 0: a one-shot callback, always interval 1. */
  get isCallback(): boolean {
    return this.period === 0;
  }

  get requiresProof(): boolean {
    return this.verifier.toLowerCase() !== ZERO_ADDRESS;
  }

  get providesPayment(): boolean {
    return this.paymentAmount > 0n;
  }

  /** Strictly after activeAt, as the reference (a subscription is not active in its own activeAt second). */
  isActive(now = this.now()): boolean {
    return now > this.activeAt;
  }

  /** 1 for callbacks, else ⌊(⌊now⌋ − activeAt) / period⌋ + 1. Only defined once active. */
  interval(now = this.now()): number {
    if (!this.isActive(now)) {
      throw new NodeError("Checking interval for inactive subscription", { meta: { id: this.id } });
    }
    if (this.period === 0) return 1;
    return Math.floor((Math.floor(now) - this.activeAt) / this.period) + 1;
  }

  isLastInterval(now = this.now()): boolean {
    return this.isActive(now) && this.interval(now) === this.frequency;
  }

  isPastLastInterval(now = this.now()): boolean {
    return this.isActive(now) && this.interval(now) > this.frequency;
  }

  /** On (or past) the last interval, and the last interval already has `redundancy` responses. */
  isCompleted(now = this.now()): boolean {
    if (!this.isLastInterval(now) && !this.isPastLastInterval(now)) return false;
    return this.responseCount(this.frequency) === this.redundancy;
  }

  responseCount(interval: number): number {
    return this.responses?.get(interval) ?? 0;
  }

  /** Records the on-chain redundancy count of an interval; refused for inactive subs and future intervals. */
  setResponseCount(interval: number, count: number, now = this.now()): void {
    if (!this.isActive(now)) {
      throw new NodeError("Cannot set response count for inactive subscription", { meta: { id: this.id } });
    }
    if (interval > this.interval(now)) {
      throw new NodeError("Cannot set response count for future interval", {
        meta: { id: this.id, interval },
      });
    }
    this.responses ??= new Map();
    this.responses.set(interval, count);
    forgetBefore(this.responses, interval - 1);
  }

  hasReplied(interval: number): boolean {
    return this.replied?.has(interval) ?? false;
  }

  markReplied(interval: number): void {
    this.replied ??= new Set();
    this.replied.add(interval);
    forgetBefore(this.replied, interval - 1);
  }
}

/** Drops entries for intervals before `oldest`: a recurring subscription must not gain an entry per interval forever. */
function forgetBefore(cache: Map<number, unknown> | Set<number>, oldest: number): void {
  if (cache.size <= 2) return;
  for (const interval of cache.keys()) if (interval < oldest) cache.delete(interval);
}

/** Strings seen across subscriptions, each kept once; bounded (past it, values are simply not shared). */
const sharedStrings = new Map<string, string>();
const MAX_SHARED_STRINGS = 10_000;

function shared(value: string): string {
  const known = sharedStrings.get(value);
  if (known !== undefined) return known;
  if (sharedStrings.size < MAX_SHARED_STRINGS) sharedStrings.set(value, value);
  return value;
}
