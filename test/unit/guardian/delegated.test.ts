import { describe, expect, test } from "bun:test";
import * as v from "valibot";
import { containerSetId } from "../../../src/chain/container-lookup.ts";
import { ContainerSchema } from "../../../src/config/schema.ts";
import {
  checkDelegatedSubscription,
  type DelegatedGuardianContext,
} from "../../../src/guardian/delegated.ts";
import { buildRuleTable } from "../../../src/guardian/rules.ts";
import type { DelegatedSubscriptionMessage } from "../../../src/shared/messages.ts";

const OWNER = "0x70997970c51812dc3a010c7d01b50e0d17dc79c8";
const OWNER_CHECKSUM = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";
const ZERO = "0x0000000000000000000000000000000000000000";

const rules = buildRuleTable(
  [
    { id: "a" },
    { id: "internal", external: false },
    { id: "prover", generates_proofs: true },
    { id: "picky", allowed_delegate_addresses: [OWNER_CHECKSUM] },
    { id: "other", allowed_delegate_addresses: ["0x0000000000000000000000000000000000000001"] },
  ].map((c) => v.parse(ContainerSchema, c)),
);

const pipelines = [
  ["a"],
  ["internal", "a"],
  ["a", "internal"],
  ["a", "prover"],
  ["picky"],
  ["a", "other"],
  ["ghost"],
];
const table = new Map(pipelines.map((p) => [containerSetId(p), p]));
const ctx: DelegatedGuardianContext = {
  rules,
  chainEnabled: true,
  now: 1_700_000_000.7,
  lookup: (h) => table.get(h),
};

function message(
  containers: string[],
  overrides: { expiry?: number; verifier?: string; owner?: string } = {},
) {
  return {
    kind: "delegated",
    id: "job-id",
    ip: "127.0.0.1",
    subscription: {
      owner: overrides.owner ?? OWNER,
      active_at: 0,
      period: 0,
      frequency: 1,
      redundancy: 1,
      containers: containerSetId(containers),
      lazy: false,
      verifier: overrides.verifier ?? ZERO,
      payment_amount: 10n ** 18n,
      payment_token: ZERO,
      wallet: ZERO,
    },
    signature: { nonce: 1, expiry: overrides.expiry ?? 1_700_000_100, v: 27, r: 2n ** 255n, s: 3n },
    data: {},
    requires_proof: false,
  } satisfies DelegatedSubscriptionMessage;
}

describe("checkDelegatedSubscription", () => {
  test("default", () => {
    expect(checkDelegatedSubscription(message(["a"]), ctx)).toEqual({ ok: true, containers: ["a"] });
    expect(
      checkDelegatedSubscription(
        message(["picky"], { owner: OWNER_CHECKSUM.toUpperCase().replace("0X", "0x") }),
        ctx,
      ).ok,
    ).toBe(true);
  });

  test("error: chain not enabled, with the message in params", () => {
    const result = checkDelegatedSubscription(message(["a"]), { ...ctx, chainEnabled: false });
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.error.error).toBe("Chain not enabled");
    expect(result.error.params.delegated_subscription).toMatchObject({ id: "job-id", type: 1, data: {} });
  });

  test("behavior: expiry equal to now (floored) is accepted, one second earlier is not", () => {
    expect(checkDelegatedSubscription(message(["a"], { expiry: 1_700_000_000 }), ctx).ok).toBe(true);
    const expired = checkDelegatedSubscription(message(["a"], { expiry: 1_699_999_999 }), ctx);
    expect(expired.ok ? undefined : expired.error.error).toBe("Signature expired");
  });

  test("error: unknown container-set hash names the hash", () => {
    const msg = message(["a"]);
    msg.subscription.containers = `0x${"ab".repeat(32)}`;
    expect(checkDelegatedSubscription(msg, ctx)).toEqual({
      ok: false,
      error: { error: "Container-set not supported", params: { containers_hash: `0x${"ab".repeat(32)}` } },
    });
  });

  test("error: the remaining checks in the reference's order", () => {
    const errorOf = (m: DelegatedSubscriptionMessage) => {
      const r = checkDelegatedSubscription(m, ctx);
      return r.ok ? undefined : r.error;
    };
    expect(errorOf(message(["ghost"]))).toEqual({
      error: "Container not supported",
      params: { container: "ghost" },
    });
    expect(errorOf(message(["internal", "a"]))).toEqual({
      error: "First container must be external",
      params: { first_container: "internal" },
    });
    expect(errorOf(message(["a", "internal"], { verifier: OWNER }))).toEqual({
      error: "Container does not generate proof",
      params: { container: "internal" },
    });
    expect(errorOf(message(["a", "prover"], { verifier: OWNER }))).toBeUndefined();
    expect(errorOf(message(["a", "other"]))).toEqual({
      error: "Container not allowed for address",
      params: { container: "other", address: OWNER_CHECKSUM },
    });
  });
});
