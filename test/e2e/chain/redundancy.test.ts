// End to end: two binaries (dev #1 and dev #3, each with its own payment wallet) serving one container set,
// subscriptions with redundancy 2: both nodes deliver each interval exactly once and are both paid.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { zeroAddress } from "viem";
import { PROTOCOL_FEE_BPS } from "../../fixtures/anvil.ts";
import { balanceOf, createSubscription, requestCallback, setupWallet } from "../../fixtures/chain-helpers.ts";
import { type ChainNode, ONE_ETHER, startChainNode, useChainNode } from "../../fixtures/chain-node.ts";
import {
  decodeEchoOutput,
  deliveriesSent,
  echoInput,
  recorders,
  waitForDeliveries,
} from "../../fixtures/e2e-chain.ts";

const ctx = useChainNode("e2e-red-a");
let second: ChainNode;

beforeAll(async () => {
  second = await startChainNode("e2e-red-b", ctx.chain, {
    account: ctx.chain.accounts.other,
    shareContainersOf: ctx.node,
  });
}, 180_000);

afterAll(async () => {
  await second?.[Symbol.asyncDispose]();
});

const nodes = () => [ctx.node, second];

describe("redundancy 2 with two nodes", () => {
  test("paid callback: both nodes deliver once, counts 1 and 2, each node's wallet gets 90%", async () => {
    const { chain } = ctx;
    const payment = ONE_ETHER / 10n;
    const wallet = await setupWallet(chain, {
      owner: chain.accounts.consumerOwner,
      fundAmount: ONE_ETHER,
      spender: chain.addresses.callbackConsumer,
    });
    const before = await Promise.all(nodes().map((n) => balanceOf(chain, n.paymentAddress)));
    const fromBlock = await chain.publicClient.getBlockNumber();
    const { id } = await requestCallback(chain, {
      containers: ctx.node.containers.echo,
      inputs: echoInput("hello"),
      redundancy: 2,
      paymentToken: zeroAddress,
      paymentAmount: payment,
      wallet,
    });
    const deliveries = await waitForDeliveries(chain, recorders(chain).callback, id, 2);
    expect(deliveries.map((d) => d.redundancy)).toEqual([1, 2]);
    expect(new Set(deliveries.map((d) => d.node))).toEqual(new Set(nodes().map((n) => n.account.address)));
    for (const d of deliveries) expect(decodeEchoOutput(d.output)).toBe("hello");

    const cut = (payment * 2n * BigInt(PROTOCOL_FEE_BPS)) / 10_000n;
    for (const [i, n] of nodes().entries()) {
      expect((await balanceOf(chain, n.paymentAddress)) - (before[i] ?? 0n)).toBe(payment - cut);
      const sent = await deliveriesSent(chain, n.account.address, id, fromBlock);
      expect(sent.map((t) => t.status)).toEqual(["success"]);
    }
    expect(await balanceOf(chain, wallet)).toBe(ONE_ETHER - 2n * payment);
  });

  test("recurring (2 intervals): each node delivers each interval exactly once", async () => {
    const { chain } = ctx;
    const fromBlock = await chain.publicClient.getBlockNumber();
    const { id } = await createSubscription(chain, {
      containers: ctx.node.containers.echo,
      frequency: 2,
      period: 5,
      redundancy: 2,
    });
    const deliveries = await waitForDeliveries(chain, recorders(chain).subscription, id, 4, 90_000);
    const byNode = (n: ChainNode) =>
      deliveries.filter((d) => d.node === n.account.address).map((d) => d.interval);
    for (const n of nodes()) {
      expect(byNode(n)).toEqual([1, 2]);
      const sent = await deliveriesSent(chain, n.account.address, id, fromBlock);
      expect(sent.map((t) => [t.interval, t.status])).toEqual([
        [1, "success"],
        [2, "success"],
      ]);
    }
  }, 120_000);
});
