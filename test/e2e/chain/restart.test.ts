// End to end: the binary is killed with SIGKILL while its delivery sits in the mempool (anvil mining only when
// told to), then restarted on the same config and store. The pending delivery is mined, no second one is
// sent for that interval, and the next interval is still delivered: each interval exactly once. Then the same
// under load: 6 recurring subscriptions and 4 callbacks, killed with several deliveries in the mempool. And a
// delegated subscription accepted (200) and not yet due when the node is killed: kept in the journal, delivered.
import { describe, expect, test } from "bun:test";
import {
  createSubscription,
  createSubscriptions,
  delegatedSubscription,
  delegateKey,
  read,
  requestCallback,
} from "../../fixtures/chain-helpers.ts";
import { aboutSubscription, useChainNode } from "../../fixtures/chain-node.ts";
import {
  deliveriesOf,
  deliveriesSent,
  echoInput,
  mineUntil,
  nonces,
  recorders,
  signedDelegatedRequest,
  transactionsFrom,
} from "../../fixtures/e2e-chain.ts";
import { waitFor } from "../../fixtures/net.ts";
import { postJson } from "../../integration/server/node-process.ts";

// Automine at first (setup transactions), switched off by the test.
const ctx = useChainNode("e2e-restart", { chain: {} });

/** The node's own mining loop (see mineUntil): it is the sender held back while pending. */
const mineWhile = (done: () => Promise<boolean>, opts: { holdWhilePending?: boolean } = {}) =>
  mineUntil(ctx.chain, ctx.node.account.address, done, opts);

describe("SIGKILL with the delivery pending, then restart", () => {
  test("each interval delivered exactly once; the pending transaction is the one mined", async () => {
    const { chain, node } = ctx;
    const recorder = recorders(chain).subscription;
    const fromBlock = await chain.publicClient.getBlockNumber();
    const { id } = await createSubscription(chain, {
      containers: node.containers.echo,
      frequency: 2,
      period: 8,
    });
    await chain.rpc("evm_setAutomine", [false]);
    try {
      // Blocks until the node has sent interval 1's delivery; then no more blocks: it stays in the mempool.
      const mark = node.logs.mark();
      await mineWhile(async () => false, { holdWhilePending: true });
      const sentLine = await node.logs.waitFor(aboutSubscription("Sent tx", id), { from: mark });
      const pendingHash = JSON.parse(sentLine).tx_hash as string;
      const pool = await nonces(chain, node.account.address);
      expect(pool.pending).toBe(pool.latest + 1);
      expect(
        await chain.publicClient
          .getTransactionReceipt({ hash: pendingHash as `0x${string}` })
          .catch(() => null),
      ).toBeNull();
      expect(await deliveriesOf(chain, recorder, id)).toEqual([]);

      expect(await node.process.stop("SIGKILL")).not.toBe(0);
      const restartMark = node.logs.mark();
      await node.process.restart();
      // The restarted node has seen the subscription again before anything is mined.
      await node.logs.waitFor(aboutSubscription("Relayed subscription creation", id), { from: restartMark });

      await mineWhile(async () => (await deliveriesOf(chain, recorder, id)).length >= 2);
      // A few more blocks: a duplicate sent late would be mined (and revert) by then.
      for (let i = 0; i < 3; i++) {
        await chain.mine();
        await Bun.sleep(1000);
      }

      const delivered = await deliveriesOf(chain, recorder, id);
      expect(delivered.map((d) => d.interval)).toEqual([1, 2]);
      const sent = await deliveriesSent(chain, node.account.address, id, fromBlock);
      expect(sent.map((t) => [t.interval, t.status])).toEqual([
        [1, "success"],
        [2, "success"],
      ]);
      expect(sent[0]?.hash).toBe(pendingHash as `0x${string}`);
    } finally {
      await chain.rpc("evm_setAutomine", [true]);
    }
  }, 180_000);
});

describe("SIGKILL under load, then restart", () => {
  test("with deliveries in the mempool and containers running: every interval of every subscription sent once", async () => {
    const { chain, node } = ctx;
    const fromBlock = await chain.publicClient.getBlockNumber();
    // Automine while they are created: the node starts delivering at once.
    const recurring = await createSubscriptions(chain, {
      count: 6,
      containers: [node.containers.echo],
      frequency: 2,
      period: 10,
    });
    const callbacks: number[] = [];
    for (let i = 0; i < 4; i++) {
      const { id } = await requestCallback(chain, {
        containers: node.containers.echo,
        inputs: echoInput(`load ${i}`),
      });
      callbacks.push(id);
    }
    await chain.rpc("evm_setAutomine", [false]);
    try {
      await mineWhile(async () => false, { holdWhilePending: true });
      const pool = await nonces(chain, node.account.address);
      expect(await node.process.stop("SIGKILL")).not.toBe(0);
      await node.process.restart();

      const sentFor = async (id: number) =>
        (await transactionsFrom(chain, node.account.address, fromBlock)).filter(
          (t) => t.subscriptionId === id,
        );
      await mineWhile(async () => {
        const sent = await transactionsFrom(chain, node.account.address, fromBlock);
        const of = (id: number) => sent.filter((t) => t.subscriptionId === id).map((t) => t.interval);
        return callbacks.every((id) => of(id).length > 0) && recurring.ids.every((id) => of(id).includes(2));
      });
      for (let i = 0; i < 3; i++) {
        await chain.mine();
        await Bun.sleep(1000);
      }
      console.log(
        `SIGKILL under load: ${pool.pending - pool.latest} transaction(s) in the mempool at the kill`,
      );
      for (const id of callbacks) {
        expect((await sentFor(id)).map((t) => [t.interval, t.status])).toEqual([[1, "success"]]);
        expect(await deliveriesOf(chain, recorders(chain).callback, id)).toHaveLength(1);
      }
      for (const id of recurring.ids) {
        const sent = await sentFor(id);
        const intervals = sent.map((t) => t.interval);
        expect(new Set(intervals).size).toBe(intervals.length);
        expect(intervals).toContain(2);
        expect(sent.every((t) => t.status === "success")).toBe(true);
      }
    } finally {
      await chain.rpc("evm_setAutomine", [true]);
    }
  }, 180_000);
});

describe("SIGKILL with a delegated subscription accepted and not yet due, then restart", () => {
  test("the restarted node takes it from its journal and delivers it once", async () => {
    const { chain, node } = ctx;
    const fromBlock = await chain.publicClient.getBlockNumber();
    const now = Math.floor(Date.now() / 1000);
    const nonce = 9_000 + Math.floor(Math.random() * 1_000);
    const sub = await delegatedSubscription(chain, { containers: node.containers.echo, activeAt: now + 15 });
    const body = await signedDelegatedRequest(chain, {
      sub,
      nonce,
      expiry: now + 600,
      data: { input: echoInput("kept") },
    });
    const reply = await postJson(`${node.url}/api/jobs`, body);
    expect(reply.status).toBe(200);

    expect(await node.process.stop("SIGKILL")).not.toBe(0);
    const mark = node.logs.mark();
    await node.process.restart();
    await node.logs.waitFor(/Delegated subscriptions taken in from the journal/, { from: mark });
    const delivered = async () =>
      (await transactionsFrom(chain, node.account.address, fromBlock)).filter(
        (t) => t.delegatedNonce === nonce,
      );
    await waitFor(
      "the delegated delivery",
      async () => ((await delivered()).length > 0 ? true : undefined),
      90_000,
    );
    for (let i = 0; i < 3; i++) await chain.mine(); // a duplicate sent late would be mined by now
    await Bun.sleep(2_000);
    expect((await delivered()).map((t) => [t.interval, t.status])).toEqual([[1, "success"]]);
    const createdId = await read<number>(chain, {
      contract: "EIP712Coordinator",
      address: chain.addresses.coordinator,
      functionName: "delegateCreatedIds",
      args: [delegateKey(sub.owner, nonce)],
    });
    expect(createdId).toBeGreaterThan(0);
    expect((await deliveriesOf(chain, recorders(chain).delegator, createdId)).map((d) => d.interval)).toEqual(
      [1],
    );
  }, 180_000);
});
