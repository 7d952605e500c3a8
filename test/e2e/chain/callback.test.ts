// End to end through the built binary on anvil (1-second blocks) with the example echo containers: Ritual's
// test_callback cases (clients-and-containers.md §3.2). Each is checked on-chain (what the consumer recorded,
// balances, the node's transactions) and in the node's log with Ritual's regexes.
import { describe, expect, test } from "bun:test";
import { type Address, zeroAddress } from "viem";
import { PROTOCOL_FEE_BPS } from "../../fixtures/anvil.ts";
import { balanceOf, requestCallback, setupWallet } from "../../fixtures/chain-helpers.ts";
import { aboutSubscription, escapeRegExp, ONE_ETHER, useChainNode } from "../../fixtures/chain-node.ts";
import {
  decodeBytesPair,
  decodeEchoOutput,
  deliveriesOf,
  deliveriesSent,
  echoInput,
  recorders,
  waitForDeliveries,
} from "../../fixtures/e2e-chain.ts";

const ctx = useChainNode("e2e-callback");

/** What the protocol takes of a payment without a verifier: the 5% fee applied twice (chain-interface.md). */
const protocolCut = (amount: bigint) => (amount * 2n * BigInt(PROTOCOL_FEE_BPS)) / 10_000n;

/** A consumer payment wallet (owner: consumerOwner), funded, approved for the callback consumer unless told. */
function consumerWallet(p: { fund: bigint; token?: Address; approve?: bigint | false }): Promise<Address> {
  const { chain } = ctx;
  return setupWallet(chain, {
    owner: chain.accounts.consumerOwner,
    fundAmount: p.fund,
    ...(p.token ? { token: p.token } : {}),
    ...(p.approve === false
      ? {}
      : { spender: chain.addresses.callbackConsumer, allowance: p.approve ?? p.fund }),
  });
}

/** Asserts that nothing was delivered for `id`: no record at the consumer and no transaction by the node. */
async function expectNoDelivery(id: number, fromBlock: bigint): Promise<void> {
  const { chain, node } = ctx;
  // Let a few blocks pass after the node's verdict, so a delivery it wrongly sent would be mined.
  const target = (await chain.publicClient.getBlockNumber()) + 3n;
  while ((await chain.publicClient.getBlockNumber()) < target) await Bun.sleep(200);
  expect(await deliveriesOf(chain, recorders(chain).callback, id)).toEqual([]);
  expect(await deliveriesSent(chain, node.account.address, id, fromBlock)).toEqual([]);
}

type CallbackParams = Omit<Parameters<typeof requestCallback>[1] & object, "inputs">;

/** Requests an echo callback of "hello" (default: the free container); returns its id and where to look from. */
async function echoCallback(
  p: CallbackParams = {},
): Promise<{ id: number; mark: number; fromBlock: bigint }> {
  const { chain, node } = ctx;
  const mark = node.logs.mark();
  const fromBlock = await chain.publicClient.getBlockNumber();
  const { id } = await requestCallback(chain, {
    containers: node.containers.echo,
    inputs: echoInput("hello"),
    ...p,
  });
  return { id, mark, fromBlock };
}

/**
 * Requests an echo callback ("hello"; default the free container) that the node must not deliver: waits for
 * each of `patterns(id)` in the log (after the request), then checks nothing was delivered for it.
 */
async function expectSkipped(
  p: CallbackParams,
  patterns: (id: number) => (string | RegExp)[],
): Promise<void> {
  const { id, mark, fromBlock } = await echoCallback(p);
  for (const pattern of patterns(id)) await ctx.node.logs.waitFor(pattern, { from: mark });
  await expectNoDelivery(id, fromBlock);
}

describe("callback subscriptions delivered by the binary", () => {
  test("callback: the echo output decodes to the input; `Sent tx` names the one delivery", async () => {
    const { chain, node } = ctx;
    const { id, mark, fromBlock } = await echoCallback();

    await node.logs.waitFor(/Sent tx/, { from: mark });
    const [delivery] = await waitForDeliveries(chain, recorders(chain).callback, id);
    expect(decodeEchoOutput(delivery?.output ?? "0x")).toBe("hello");
    // input = abi.encode(bytes raw_input, bytes processed_input): the hex of getContainerInputs, then "".
    expect(decodeBytesPair(delivery?.input ?? "0x")).toEqual([echoInput("hello"), "0x"]);
    expect(delivery?.proof).toBe("0x");
    expect(delivery?.node).toBe(node.account.address);
    expect(delivery?.interval).toBe(1);

    const sent = await deliveriesSent(chain, node.account.address, id, fromBlock);
    expect(sent.map((t) => [t.interval, t.status])).toEqual([[1, "success"]]);
    const line = await node.logs.waitFor(aboutSubscription("Sent tx", id), { from: mark });
    expect(JSON.parse(line)).toMatchObject({ msg: "Sent tx", id, interval: 1, tx_hash: sent[0]?.hash });
  });

  // Ritual's happy path (0.1 ETH from a 1 ETH wallet) and custom token (0.5 AcceptedMoney).
  test.each([
    ["ETH", false, ONE_ETHER / 10n],
    ["an ERC-20 (AcceptedMoney)", true, ONE_ETHER / 2n],
  ] as const)(
    "payment in %s: the wallet pays it, the node's wallet gets 90%%, the protocol 10%%, to the wei",
    async (_label, erc20, payment) => {
      const { chain, node } = ctx;
      const token = erc20 ? chain.addresses.token : zeroAddress;
      const wallet = await consumerWallet({ fund: ONE_ETHER, token });
      const feeRecipient = chain.accounts.deployer.address;
      const before = {
        node: await balanceOf(chain, node.paymentAddress, token),
        protocol: await balanceOf(chain, feeRecipient, token),
      };
      const { id } = await echoCallback({ paymentToken: token, paymentAmount: payment, wallet });
      const [delivery] = await waitForDeliveries(chain, recorders(chain).callback, id);
      expect(decodeEchoOutput(delivery?.output ?? "0x")).toBe("hello");
      expect(await balanceOf(chain, wallet, token)).toBe(ONE_ETHER - payment);
      expect((await balanceOf(chain, node.paymentAddress, token)) - before.node).toBe(
        payment - protocolCut(payment),
      );
      expect((await balanceOf(chain, feeRecipient, token)) - before.protocol).toBe(protocolCut(payment));
    },
  );

  test("unaccepted token (RejectedMoney): skipped with the spec's line, nothing delivered", async () => {
    const token = ctx.chain.e2e.rejectedToken;
    const wallet = await consumerWallet({ fund: ONE_ETHER, token });
    await expectSkipped({ paymentToken: token, paymentAmount: ONE_ETHER, wallet }, (id) => [
      `skipping subscription.*token ${token} not accepted`,
      `skipping subscription: ${id}: token ${token} not accepted`,
    ]);
  });

  test("too low a payment (0.5 ETH for a 1 ETH container): skipped as below minimum, nothing delivered", async () => {
    const wallet = await consumerWallet({ fund: ONE_ETHER });
    await expectSkipped(
      {
        containers: ctx.node.containers.paid,
        paymentToken: zeroAddress,
        paymentAmount: ONE_ETHER / 2n,
        wallet,
      },
      (id) => [
        `skipping subscription.*token ${zeroAddress} below minimum payment requirements`,
        `skipping subscription: ${id}:.*below minimum payment requirements`,
      ],
    );
  });

  test("insufficient balance: an unfunded (approved) wallet is skipped naming the wallet", async () => {
    const wallet = await consumerWallet({ fund: 0n, approve: ONE_ETHER });
    await expectSkipped({ paymentToken: zeroAddress, paymentAmount: ONE_ETHER, wallet }, (id) => [
      `.*subscription wallet.*insufficient balance.*${wallet}`,
      `"msg":"${escapeRegExp(`Skipping subscription: ${id}: Subscription wallet has insufficient balance`)}"`,
    ]);
  });

  test("insufficient allowance: a funded wallet that never approved the consumer is logged, nothing delivered", async () => {
    const wallet = await consumerWallet({ fund: ONE_ETHER, approve: false });
    await expectSkipped({ paymentToken: zeroAddress, paymentAmount: ONE_ETHER, wallet }, (id) => [
      ".*insufficient allowance.*",
      aboutSubscription(escapeRegExp("Insufficient allowance."), id, "subscription_id"),
    ]);
  });
});
