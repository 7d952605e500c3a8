// End to end through the built binary on anvil: delegated subscriptions signed and POSTed exactly as
// infernet_client 1.4.0 does (EIP-712 by the owner contract's signer; r and s as JSON integers above 2^53 in the
// raw body text), delivered with deliverComputeDelegatee: Ritual's test_delegate_subscription cases, plus a
// forged signature that must cost the node nothing.
import { describe, expect, test } from "bun:test";
import { type Address, zeroAddress } from "viem";
import { PROTOCOL_FEE_BPS } from "../../fixtures/anvil.ts";
import {
  balanceOf,
  delegatedSubscription,
  delegateKey,
  latestTimestamp,
  read,
  type SubscriptionStruct,
  setupWallet,
  write,
} from "../../fixtures/chain-helpers.ts";
import { aboutSubscription, ONE_ETHER, useChainNode } from "../../fixtures/chain-node.ts";
import {
  decodeEchoOutput,
  echoInput,
  nonces,
  recorders,
  signedDelegatedRequest,
  transactionsFrom,
  waitForDeliveries,
} from "../../fixtures/e2e-chain.ts";
import { waitFor } from "../../fixtures/net.ts";

const ctx = useChainNode("e2e-delegated");

/** A fresh (owner, nonce) per request, as the client's random nonce. */
let nextNonce = 1000 + Math.floor(Math.random() * 1000);

/** POSTs the client's body text to /api/jobs; returns the status and the JSON reply. */
async function postDelegated(body: string): Promise<{ status: number; json: unknown }> {
  const res = await fetch(`${ctx.node.url}/api/jobs`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body,
  });
  return { status: res.status, json: await res.json() };
}

/** Signs and sends a delegated subscription for the echo container with data {input: abi.encode(input, "")}. */
async function requestDelegated(
  p: Partial<
    Pick<
      SubscriptionStruct,
      "period" | "frequency" | "redundancy" | "activeAt" | "paymentAmount" | "paymentToken" | "wallet"
    >
  > & {
    input?: string;
    signer?: typeof ctx.chain.accounts.other;
  } = {},
): Promise<{
  nonce: number;
  sub: SubscriptionStruct;
  body: string;
  reply: { status: number; json: unknown };
}> {
  const { chain, node } = ctx;
  const { input, signer, ...fields } = p;
  const sub = await delegatedSubscription(chain, {
    containers: node.containers.echo,
    period: 4,
    frequency: 1,
    redundancy: 1,
    ...fields,
  });
  const nonce = nextNonce++;
  const expiry = (await latestTimestamp(chain)) + 60;
  const body = await signedDelegatedRequest(chain, {
    sub,
    nonce,
    expiry,
    data: { input: echoInput(input ?? "hello") },
    ...(signer ? { signer } : {}),
  });
  return { nonce, sub, body, reply: await postDelegated(body) };
}

/** The on-chain id the delegated subscription (owner, nonce) got, once the node's delivery created it. */
async function createdId(owner: Address, nonce: number, timeoutMs = 60_000): Promise<number> {
  const { chain } = ctx;
  return await waitFor(
    `delegated subscription (${owner}, ${nonce}) created on-chain`,
    async () =>
      await read<number>(chain, {
        contract: "EIP712Coordinator",
        address: chain.addresses.coordinator,
        functionName: "delegateCreatedIds",
        args: [delegateKey(owner, nonce)],
      }),
    timeoutMs,
  );
}

/** Three blocks later, the node has sent nothing since its nonces were `before` (none mined, none pending). */
async function expectNonceUnmoved(before: { latest: number; pending: number }): Promise<void> {
  const { chain, node } = ctx;
  const target = (await chain.publicClient.getBlockNumber()) + 3n;
  await waitFor("3 more blocks", async () => (await chain.publicClient.getBlockNumber()) >= target);
  expect(await nonces(chain, node.account.address)).toEqual(before);
}

describe("delegated subscriptions signed and sent as infernet_client 1.4.0 does", () => {
  test("happy path: created and delivered in one deliverComputeDelegatee; the output is the echo", async () => {
    const { chain, node } = ctx;
    const mark = node.logs.mark();
    const fromBlock = await chain.publicClient.getBlockNumber();
    const { nonce, sub, body, reply } = await requestDelegated();
    // The body really carries r and s as bare integers above 2^53.
    const r = /"r": (\d+)/.exec(body)?.[1] ?? "";
    expect(BigInt(r) > 2n ** 53n).toBe(true);
    expect(reply).toEqual({ status: 200, json: {} });

    const id = await createdId(sub.owner, nonce);
    const [delivery] = await waitForDeliveries(chain, recorders(chain).delegator, id);
    expect(decodeEchoOutput(delivery?.output ?? "0x")).toBe("hello");
    expect(delivery?.node).toBe(node.account.address);
    await node.logs.waitFor("Tracked new delegate subscription", { from: mark });
    const sent = (await transactionsFrom(chain, node.account.address, fromBlock)).filter(
      (t) => t.delegatedNonce === nonce,
    );
    expect(sent.map((t) => [t.functionName, t.interval, t.status])).toEqual([
      ["deliverComputeDelegatee", 1, "success"],
    ]);
    const line = await node.logs.waitFor(/"msg":"Sent tx".*"delegated":true/, { from: mark });
    expect(JSON.parse(line).tx_hash).toBe(sent[0]?.hash);
  });

  test("active later (active_at = now + 4): delivered once active, not before", async () => {
    const { chain } = ctx;
    const activeAt = (await latestTimestamp(chain)) + 4;
    const fromBlock = await chain.publicClient.getBlockNumber();
    const { nonce, sub, reply } = await requestDelegated({ activeAt });
    expect(reply.status).toBe(200);
    const id = await createdId(sub.owner, nonce);
    const [delivery] = await waitForDeliveries(chain, recorders(chain).delegator, id);
    expect(decodeEchoOutput(delivery?.output ?? "0x")).toBe("hello");
    // The one delivery was mined at or after active_at.
    const [sent] = (await transactionsFrom(chain, ctx.node.account.address, fromBlock)).filter(
      (t) => t.delegatedNonce === nonce,
    );
    const mined = await chain.publicClient.getBlock({ blockNumber: sent?.block ?? 0n });
    expect(Number(mined.timestamp)).toBeGreaterThanOrEqual(activeAt);
  });

  test("recurring (period 6, frequency 2): interval 1 from the request data, interval 2 from the chain", async () => {
    const { chain } = ctx;
    const { nonce, sub } = await requestDelegated({ period: 6, frequency: 2 });
    const id = await createdId(sub.owner, nonce);
    const [first] = await waitForDeliveries(chain, recorders(chain).delegator, id);
    expect(first?.interval).toBe(1);
    expect(decodeEchoOutput(first?.output ?? "0x")).toBe("hello");
    // Ritual's setSubscriptionInput: later intervals read getContainerInputs on-chain.
    await write(chain, {
      contract: "TestDelegatorConsumer",
      address: chain.addresses.delegator,
      functionName: "setContainerInputs",
      args: [id, echoInput("world")],
      from: chain.accounts.consumerOwner,
    });
    const deliveries = await waitForDeliveries(chain, recorders(chain).delegator, id, 2);
    expect(deliveries.map((d) => [d.interval, decodeEchoOutput(d.output)])).toEqual([
      [1, "hello"],
      [2, "world"],
    ]);
  }, 90_000);

  test("redundancy 2 with this node alone: delivered once, then `subscription expired`", async () => {
    const { chain, node } = ctx;
    const mark = node.logs.mark();
    const { nonce, sub } = await requestDelegated({ redundancy: 2 });
    const id = await createdId(sub.owner, nonce);
    const [delivery] = await waitForDeliveries(chain, recorders(chain).delegator, id);
    expect(decodeEchoOutput(delivery?.output ?? "0x")).toBe("hello");
    await node.logs.waitFor(`subscription expired.*${id}`, { from: mark });
    await node.logs.waitFor(aboutSubscription("Subscription expired", id), { from: mark });
    expect(await waitForDeliveries(chain, recorders(chain).delegator, id)).toHaveLength(1);
  });

  /** A consumer wallet for the delegator consumer: funded with `fund` of `token`, approved for `approve`. */
  function delegatorWallet(token: Address, fund: bigint, approve: bigint | false): Promise<Address> {
    const { chain } = ctx;
    return setupWallet(chain, {
      owner: chain.accounts.consumerOwner,
      token,
      fundAmount: fund,
      ...(approve === false ? {} : { spender: chain.addresses.delegator, allowance: approve }),
    });
  }

  test.each([
    ["ETH", false],
    ["an ERC-20", true],
  ] as const)(
    "paid in %s: delivered, the wallet pays, the node's wallet gets 90%%",
    async (_label, erc20) => {
      const { chain, node } = ctx;
      const token = erc20 ? chain.addresses.token : zeroAddress;
      const payment = ONE_ETHER / 10n;
      const wallet = await delegatorWallet(token, ONE_ETHER, ONE_ETHER);
      const before = await balanceOf(chain, node.paymentAddress, token);
      const { nonce, sub } = await requestDelegated({ paymentAmount: payment, paymentToken: token, wallet });
      const id = await createdId(sub.owner, nonce);
      const [delivery] = await waitForDeliveries(chain, recorders(chain).delegator, id);
      expect(decodeEchoOutput(delivery?.output ?? "0x")).toBe("hello");
      expect(await balanceOf(chain, wallet, token)).toBe(ONE_ETHER - payment);
      const cut = (payment * 2n * BigInt(PROTOCOL_FEE_BPS)) / 10_000n;
      expect((await balanceOf(chain, node.paymentAddress, token)) - before).toBe(payment - cut);
    },
  );

  test("paid, wallet not approved: `insufficient allowance`, nothing sent", async () => {
    const { chain, node } = ctx;
    const wallet = await delegatorWallet(zeroAddress, ONE_ETHER, false);
    const mark = node.logs.mark();
    const before = await nonces(chain, node.account.address);
    await requestDelegated({ paymentAmount: ONE_ETHER / 10n, paymentToken: zeroAddress, wallet });
    await node.logs.waitFor(/.*insufficient allowance.*/, { from: mark });
    await expectNonceUnmoved(before);
  });

  test("paid, wallet short of funds (approved 4×): `insufficient balance`, nothing sent", async () => {
    const { chain, node } = ctx;
    const payment = ONE_ETHER / 10n;
    const wallet = await delegatorWallet(zeroAddress, payment / 2n, 4n * payment);
    const mark = node.logs.mark();
    const before = await nonces(chain, node.account.address);
    await requestDelegated({ paymentAmount: payment, paymentToken: zeroAddress, wallet });
    await node.logs.waitFor(/.*insufficient balance.*/, { from: mark });
    await expectNonceUnmoved(before);
  });

  test("forged signature (not the owner's signer): refused and logged, no transaction at all", async () => {
    const { chain, node } = ctx;
    const mark = node.logs.mark();
    const before = await nonces(chain, node.account.address);
    const { nonce, sub, reply } = await requestDelegated({ signer: chain.accounts.other });
    expect(reply.status).toBeLessThan(500);
    await node.logs.waitFor("Subscription signer mismatch", { from: mark });
    await expectNonceUnmoved(before);
    expect(
      await read<number>(chain, {
        contract: "EIP712Coordinator",
        address: chain.addresses.coordinator,
        functionName: "delegateCreatedIds",
        args: [delegateKey(sub.owner, nonce)],
      }),
    ).toBe(0);
  });
});
