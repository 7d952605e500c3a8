import { describe, expect, test } from "bun:test";
import {
  CANCELLED_ACTIVE_AT,
  Subscription,
  type SubscriptionFields,
  ZERO_ADDRESS,
} from "../../../src/shared/subscription.ts";

const T0 = 1_700_000_000;

function fields(overrides: Partial<SubscriptionFields> = {}): SubscriptionFields {
  return {
    owner: "0x1111111111111111111111111111111111111111",
    activeAt: T0,
    period: 0,
    frequency: 1,
    redundancy: 1,
    containerId: `0x${"ab".repeat(32)}`,
    lazy: false,
    verifier: ZERO_ADDRESS,
    paymentAmount: 0n,
    paymentToken: ZERO_ADDRESS,
    wallet: ZERO_ADDRESS,
    ...overrides,
  };
}

function at(seconds: number) {
  return () => seconds * 1000;
}

describe("Subscription", () => {
  test("default: a callback is interval 1 once active", () => {
    const sub = new Subscription(1, fields(), ["a"], at(T0 + 5));
    expect(sub.isCallback).toBe(true);
    expect(sub.isActive()).toBe(true);
    expect(sub.interval()).toBe(1);
    expect(sub.isLastInterval()).toBe(true);
    expect(sub.isPastLastInterval()).toBe(false);
    expect(sub.isCompleted()).toBe(false);
  });

  test("behavior: active is strictly after activeAt", () => {
    expect(new Subscription(1, fields(), [], at(T0)).isActive()).toBe(false);
    expect(new Subscription(1, fields(), [], () => T0 * 1000 + 1).isActive()).toBe(true);
  });

  test("behavior: recurring interval math", () => {
    const f = fields({ period: 10, frequency: 3 });
    const now = (s: number) => new Subscription(1, f, [], at(s));
    expect(now(T0 + 1).interval()).toBe(1);
    expect(now(T0 + 9).interval()).toBe(1);
    expect(now(T0 + 10).interval()).toBe(2);
    expect(now(T0 + 29).interval()).toBe(3);
    expect(now(T0 + 29).isLastInterval()).toBe(true);
    expect(now(T0 + 30).interval()).toBe(4);
    expect(now(T0 + 30).isPastLastInterval()).toBe(true);
    // an explicit `now` overrides the clock
    expect(now(T0 + 1).interval(T0 + 25.9)).toBe(3);
  });

  test("behavior: completed needs the last interval's responses to equal redundancy", () => {
    const sub = new Subscription(7, fields({ period: 10, frequency: 2, redundancy: 2 }), [], at(T0 + 15));
    expect(sub.isCompleted()).toBe(false);
    sub.setResponseCount(2, 1);
    expect(sub.isCompleted()).toBe(false);
    sub.setResponseCount(2, 2);
    expect(sub.isCompleted()).toBe(true);
    // not on the last interval yet → never completed
    expect(sub.isCompleted(T0 + 5)).toBe(false);
  });

  test("behavior: cancelled, proof and payment flags", () => {
    const sub = new Subscription(
      2,
      fields({
        activeAt: CANCELLED_ACTIVE_AT,
        verifier: "0x2222222222222222222222222222222222222222",
        paymentAmount: 5n,
        containerId: `0x${"AB".repeat(32)}`,
      }),
      [],
      at(T0),
    );
    expect(sub.cancelled).toBe(true);
    expect(sub.isActive()).toBe(false);
    expect(sub.requiresProof).toBe(true);
    expect(sub.providesPayment).toBe(true);
    expect(sub.containersHash).toBe(`0x${"ab".repeat(32)}`);
  });

  test("error: interval of an inactive subscription", () => {
    const sub = new Subscription(3, fields({ activeAt: T0 + 100 }), [], at(T0));
    expect(() => sub.interval()).toThrow("Checking interval for inactive subscription");
  });

  test("error: response count for inactive subscriptions and future intervals", () => {
    expect(() =>
      new Subscription(3, fields({ activeAt: T0 + 100 }), [], at(T0)).setResponseCount(1, 1),
    ).toThrow("inactive");
    const sub = new Subscription(3, fields({ period: 10, frequency: 5 }), [], at(T0 + 1));
    expect(() => sub.setResponseCount(2, 1)).toThrow("future interval");
  });
});

describe("Subscription: per-interval memory", () => {
  test("response counts and replies are kept for the latest intervals only", () => {
    const sub = new Subscription(1, fields({ period: 10, frequency: 1_000_000 }), [], at(T0 + 10 * 100_000));
    for (let interval = 1; interval <= 100_000; interval++) {
      sub.setResponseCount(interval, 1);
      sub.markReplied(interval);
    }
    expect(sub.responseCount(100_000)).toBe(1);
    expect(sub.responseCount(99_999)).toBe(1);
    expect(sub.responseCount(1)).toBe(0);
    expect(sub.hasReplied(100_000)).toBe(true);
    expect(sub.hasReplied(99_999)).toBe(true);
    expect(sub.hasReplied(5)).toBe(false);
    // Two entries at most: what the processor asks about (this interval, and the last one's late outcome).
    expect((sub as unknown as { responses?: Map<number, number> }).responses?.size).toBeLessThanOrEqual(3);
    expect((sub as unknown as { replied?: Set<number> }).replied?.size).toBeLessThanOrEqual(3);
  });
});
