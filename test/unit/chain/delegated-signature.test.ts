// The delegated signer check against an injected chain client: a matching getSigner() passes, another signer or
// an owner without getSigner() is a mismatch (as deliverComputeDelegatee would refuse), and an RPC outage while
// getSigner() is read is thrown (so the processor tries again) instead of dropping a valid subscription.
import { describe, expect, test } from "bun:test";
import {
  type Address,
  ContractFunctionRevertedError,
  type Hex,
  HttpRequestError,
  hexToSignature,
} from "viem";
import { privateKeyToAccount } from "viem/accounts";
import {
  DELEGATE_SUBSCRIPTION_TYPES,
  delegatedSignerProblem,
  delegatedSubscriptionTuple,
} from "../../../src/chain/delegated-signature.ts";
import type { ChainClient } from "../../../src/chain/rpc.ts";
import { parseJson } from "../../../src/lib/json.ts";
import { type DelegatedSubscriptionMessage, parseJobMessage } from "../../../src/shared/messages.ts";
import { DEV_PRIVATE_KEYS } from "../../fixtures/anvil.ts";

const CHAIN_ID = 31337;
const COORDINATOR: Address = "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512";
const OWNER: Address = "0x0000000000000000000000000000000000000abc";
const signer = privateKeyToAccount(DEV_PRIVATE_KEYS[2]);
const ZERO: Address = "0x0000000000000000000000000000000000000000";

async function signedMessage(): Promise<DelegatedSubscriptionMessage> {
  const subscription = {
    owner: OWNER,
    active_at: 1_700_000_000,
    period: 0,
    frequency: 1,
    redundancy: 1,
    containers: `0x${"11".repeat(32)}`,
    lazy: false,
    verifier: ZERO,
    payment_amount: 0,
    payment_token: ZERO,
    wallet: ZERO,
  };
  const unsigned = parseJobMessage(
    { subscription, signature: { nonce: 1, expiry: 2_000_000_000, v: 27, r: 1, s: 1 }, data: {} },
    "id",
    "127.0.0.1",
  );
  if (!unsigned.ok || unsigned.message.kind !== "delegated") throw new Error("not a delegated message");
  const signature = await signer.signTypedData({
    domain: { name: "InfernetCoordinator", version: "1", chainId: CHAIN_ID, verifyingContract: COORDINATOR },
    types: DELEGATE_SUBSCRIPTION_TYPES,
    primaryType: "DelegateSubscription",
    message: { nonce: 1, expiry: 2_000_000_000, sub: delegatedSubscriptionTuple(unsigned.message) },
  });
  const { v, r, s } = hexToSignature(signature);
  const body = `{"subscription": ${JSON.stringify(subscription)}, "signature": {"nonce": 1, "expiry": 2000000000, "v": ${v}, "r": ${BigInt(r)}, "s": ${BigInt(s)}}, "data": {}}`;
  const parsed = parseJobMessage(parseJson(body), "id", "127.0.0.1");
  if (!parsed.ok || parsed.message.kind !== "delegated") throw new Error("not a delegated message");
  return parsed.message;
}

/** A chain client whose only call, getSigner(), answers with `answer`. */
function clientAnswering(answer: () => Promise<Hex>): ChainClient {
  return { readContract: answer } as unknown as ChainClient;
}

describe("delegatedSignerProblem", () => {
  test("default: the owner's getSigner() is the signer: no problem", async () => {
    const msg = await signedMessage();
    const client = clientAnswering(async () => signer.address);
    expect(await delegatedSignerProblem(client, msg, CHAIN_ID, COORDINATOR)).toBeUndefined();
  });

  test("error: another signer is a mismatch naming both", async () => {
    const msg = await signedMessage();
    const other = "0x00000000000000000000000000000000000000ff";
    const problem = await delegatedSignerProblem(
      clientAnswering(async () => other),
      msg,
      CHAIN_ID,
      COORDINATOR,
    );
    expect(problem).toEqual({
      message: "Subscription signer mismatch",
      reason: "signer mismatch",
      fields: { signer: other, recovered: signer.address },
    });
  });

  test("error: an owner whose getSigner() reverts counts as 0x0: a mismatch", async () => {
    const msg = await signedMessage();
    const reverting = clientAnswering(async () => {
      throw new ContractFunctionRevertedError({ abi: [], functionName: "getSigner" });
    });
    const problem = await delegatedSignerProblem(reverting, msg, CHAIN_ID, COORDINATOR);
    expect(problem?.fields.signer).toBe(ZERO);
  });

  test("behavior: an RPC outage while getSigner() is read is thrown, not taken for a mismatch", async () => {
    const msg = await signedMessage();
    const down = clientAnswering(async () => {
      throw new HttpRequestError({ url: "http://127.0.0.1:1", details: "ECONNREFUSED" });
    });
    await expect(delegatedSignerProblem(down, msg, CHAIN_ID, COORDINATOR)).rejects.toThrow(
      /HTTP request failed/,
    );
  });
});
