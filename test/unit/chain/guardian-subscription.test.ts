import { describe, expect, test } from "bun:test";
import * as v from "valibot";
import { ContainerSchema } from "../../../src/config/schema.ts";
import { buildRuleTable } from "../../../src/guardian/rules.ts";
import { checkSubscription } from "../../../src/guardian/subscription.ts";
import { Subscription, type SubscriptionFields, ZERO_ADDRESS } from "../../../src/shared/subscription.ts";

const T0 = 1_700_000_000;
const OWNER = "0x1111111111111111111111111111111111111111";
const TOKEN = "0xAbCdEf0123456789aBcDeF0123456789AbCdEf01";
const VERIFIER = "0x2222222222222222222222222222222222222222";
const PAY = "0x3333333333333333333333333333333333333333";

function rules(containers: Record<string, unknown>[]) {
  return buildRuleTable(containers.map((c) => v.parse(ContainerSchema, c)));
}

function sub(containers: string[], overrides: Partial<SubscriptionFields> = {}, id = 42): Subscription {
  const f: SubscriptionFields = {
    owner: OWNER,
    activeAt: T0,
    period: 0,
    frequency: 1,
    redundancy: 1,
    containerId: `0x${"00".repeat(32)}`,
    lazy: false,
    verifier: ZERO_ADDRESS,
    paymentAmount: 0n,
    paymentToken: ZERO_ADDRESS,
    wallet: ZERO_ADDRESS,
    ...overrides,
  };
  return new Subscription(id, f, containers, () => (T0 + 5) * 1000);
}

const table = rules([
  { id: "a" },
  { id: "b", generates_proofs: true },
  { id: "internal", external: false },
  { id: "private", allowed_addresses: [OWNER.toUpperCase().replace("0X", "0x")] },
  { id: "other-owner", allowed_addresses: ["0x9999999999999999999999999999999999999999"] },
  { id: "paid", accepted_payments: { [TOKEN.toLowerCase()]: 100, [ZERO_ADDRESS]: 7 } },
  { id: "paid2", accepted_payments: { [TOKEN]: 50 } },
]);
const ctx = { rules: table, paymentAddress: PAY };

describe("checkSubscription", () => {
  test("default: a plain subscription passes", () => {
    expect(checkSubscription(sub(["a"]), ctx)).toEqual({ ok: true });
    expect(checkSubscription(sub(["a", "internal", "b"]), ctx)).toEqual({ ok: true });
  });

  test("error: completed comes first", () => {
    const s = sub([]);
    s.setResponseCount(1, 1);
    expect(checkSubscription(s, ctx)).toEqual({ ok: false, error: "Subscription completed", params: {} });
  });

  test("error: unknown container set", () => {
    expect(checkSubscription(sub([], { containerId: `0x${"Fe".repeat(32)}` }), ctx)).toEqual({
      ok: false,
      error: "Container-set not supported",
      params: { containers_hash: `0x${"fe".repeat(32)}` },
    });
  });

  test("error: first container must be external", () => {
    expect(checkSubscription(sub(["internal", "a"]), ctx)).toMatchObject({
      error: "First container must be external",
      params: { first_container: "internal" },
    });
  });

  test("error: owner not allowed (case-insensitive match passes), checked before proofs", () => {
    expect(checkSubscription(sub(["a", "private"]), ctx)).toEqual({ ok: true });
    expect(checkSubscription(sub(["a", "other-owner"], { verifier: VERIFIER }), ctx)).toEqual({
      ok: false,
      error: "Container not allowed for address",
      params: { container: "other-owner", address: OWNER },
    });
  });

  test("error: proof required but the last container does not generate proofs", () => {
    expect(checkSubscription(sub(["b", "a"], { verifier: VERIFIER }), ctx)).toEqual({
      ok: false,
      error: "Container does not generate proof",
      params: { container: "a" },
    });
    expect(checkSubscription(sub(["a", "b"], { verifier: VERIFIER }), ctx)).toEqual({ ok: true });
  });

  test("error: paid subscription without a node payment address", () => {
    expect(checkSubscription(sub(["a"], { paymentAmount: 1n }), { ...ctx, paymentAddress: null })).toEqual({
      ok: false,
      error: "Invalid payment",
      params: { subscription_id: 42 },
      detail: "No payment address provided for the node",
    });
  });

  test("error: token not accepted (free subscriptions included)", () => {
    const other = "0x4444444444444444444444444444444444444444";
    expect(
      checkSubscription(sub(["paid2"], { paymentAmount: 100n, paymentToken: other }), ctx),
    ).toMatchObject({
      error: "Invalid payment",
      detail: `Token ${other} not accepted for container paid2.`,
    });
    expect(checkSubscription(sub(["paid2"]), ctx)).toMatchObject({
      detail: `Token ${ZERO_ADDRESS} not accepted for container paid2.`,
    });
  });

  test("behavior: tokens compare case-insensitively and minimums add up over the pipeline", () => {
    const lower = TOKEN.toLowerCase();
    expect(
      checkSubscription(sub(["paid", "paid2"], { paymentAmount: 150n, paymentToken: lower }), ctx),
    ).toEqual({
      ok: true,
    });
    expect(
      checkSubscription(sub(["paid", "a", "paid2"], { paymentAmount: 149n, paymentToken: TOKEN }), ctx),
    ).toEqual({
      ok: false,
      error: "Invalid payment",
      params: { subscription_id: 42 },
      detail: `Token ${TOKEN} below minimum payment requirements`,
    });
    expect(checkSubscription(sub(["paid"], { paymentAmount: 6n }), ctx)).toMatchObject({
      detail: `Token ${ZERO_ADDRESS} below minimum payment requirements`,
    });
    expect(checkSubscription(sub(["paid"], { paymentAmount: 7n }), ctx)).toEqual({ ok: true });
  });
});
