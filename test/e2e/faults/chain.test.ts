// Chain faults through the binary, on one anvil (blocks only when the test mines them) and one node, in order:
// the RPC unreachable at start-up, a delivery dropped from the mempool, a reorganisation that removes a mined
// delivery, and anvil stopped for 20 s with deliveries in flight and restarted with its state. After each:
// every interval delivered exactly once (what the consumer recorded, and the node's mined transactions).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Hex } from "viem";
import { createSubscription, getSubscription, requestCallback } from "../../fixtures/chain-helpers.ts";
import { aboutSubscription, type ChainNode, startChainNode } from "../../fixtures/chain-node.ts";
import {
  deliveriesOf,
  deliveriesSent,
  type E2EChain,
  echoInput,
  mineUntil,
  nonces,
  recorders,
  startE2EChain,
} from "../../fixtures/e2e-chain.ts";
import { waitFor } from "../../fixtures/net.ts";
import { finishedJob, postJson } from "../../integration/server/node-process.ts";

const OUTAGE_MS = 20_000;
const PERIOD_S = 6;

let chain: E2EChain;
let node: ChainNode;

beforeAll(async () => {
  chain = await startE2EChain({}); // automine while the contracts are deployed
  await chain.stop(); // state dumped: the node starts against an RPC that does not answer
  node = await startChainNode("e2e-faults", chain, {
    paymentAddress: null,
    chainSettings: { wallet: { replace_after_blocks: 3 } },
  });
}, 180_000);

afterAll(async () => {
  await node?.[Symbol.asyncDispose]();
  await chain?.[Symbol.asyncDispose]();
}, 60_000);

interface Health {
  status: string;
  degraded: string[];
  checks: Record<string, { ok: boolean; detail?: string }>;
}

async function health(): Promise<{ code: number; body: Health }> {
  const res = await fetch(`${node.url}/health`);
  return { code: res.status, body: (await res.json()) as Health };
}

async function offchainEcho(text: string): Promise<Record<string, unknown>> {
  const res = await postJson(`${node.url}/api/jobs`, {
    containers: [node.containers.echo],
    data: { prompt: text },
  });
  expect(res.status).toBe(200);
  const { id } = (await res.json()) as { id: string };
  const job = await finishedJob(node.url, id);
  if (job.status !== "success") console.log("off-chain job", JSON.stringify(job));
  return job;
}

const mine = (done: () => Promise<boolean>, opts: { holdWhilePending?: boolean } = {}) =>
  mineUntil(chain, node.account.address, done, opts);

/** Sends a request without waiting for it, mines exactly one block once it is in the pool, returns its result. */
async function inOneBlock<T>(work: Promise<T>): Promise<T> {
  const from = chain.accounts.consumerOwner.address;
  await waitFor(
    "the request in the mempool",
    async () => {
      const n = await nonces(chain, from);
      return n.pending > n.latest ? true : undefined;
    },
    30_000,
  );
  await chain.mine();
  return await work;
}

/** An echo callback requested in one block, and the block to look for the node's transactions from. */
async function callback(text: string): Promise<{ id: number; fromBlock: bigint }> {
  const fromBlock = await chain.publicClient.getBlockNumber();
  const { id } = await inOneBlock(
    requestCallback(chain, { containers: node.containers.echo, inputs: echoInput(text) }),
  );
  return { id, fromBlock };
}

const delivered = async (id: number) => (await deliveriesOf(chain, recorders(chain).callback, id)).length;

/** A few more blocks: a duplicate sent late would be mined (and revert) by then. */
async function settle(): Promise<void> {
  for (let i = 0; i < 4; i++) {
    await chain.mine();
    await Bun.sleep(700);
  }
}

async function expectDeliveredOnce(id: number, fromBlock: bigint): Promise<void> {
  expect(await delivered(id)).toBe(1);
  const sent = await deliveriesSent(chain, node.account.address, id, fromBlock);
  expect(sent.map((t) => [t.interval, t.status])).toEqual([[1, "success"]]);
}

describe("chain faults through the binary", () => {
  test("behavior: with the RPC unreachable at start-up the REST port is open and off-chain jobs run; the chain side connects when the RPC answers", async () => {
    // startChainNode returned once /health answered 200: the port opened while the RPC was down.
    const down = await health();
    expect(down.code).toBe(200);
    expect(down.body.degraded).toContain("chain");
    expect(down.body.checks.chain?.detail).toMatch(/not connected/);
    const job = await offchainEcho("no chain");
    expect(job.status).toBe("success");

    await chain.restart();
    await chain.rpc("evm_setAutomine", [false]);
    await waitFor(
      "the chain side connected",
      async () => ((await health()).body.checks.chain?.ok ? true : undefined),
      60_000,
    );
    const { id, fromBlock } = await callback("after connect");
    await mine(async () => (await delivered(id)) >= 1);
    await settle();
    await expectDeliveredOnce(id, fromBlock);
  }, 120_000);

  test("behavior: a delivery dropped from the mempool is sent again with its nonce and delivered once", async () => {
    const mark = node.logs.mark();
    const { id, fromBlock } = await callback("dropped");
    const sentLine = await node.logs.waitFor(aboutSubscription("Sent tx", id), { from: mark });
    const hash = JSON.parse(sentLine).tx_hash as Hex;
    await chain.rpc("anvil_dropTransaction", [hash]);
    const pool = await nonces(chain, node.account.address);
    expect(pool.pending).toBe(pool.latest); // gone: nothing of the node's is pending

    await mine(async () => (await delivered(id)) >= 1);
    await node.logs.waitFor(/Transaction not mined in time; replaced with higher fees/, { from: mark });
    await settle();
    await expectDeliveredOnce(id, fromBlock);
  }, 120_000);

  test("behavior: a reorganisation that removes a mined delivery: the same transaction is sent again, delivered once, and later deliveries follow", async () => {
    const mark = node.logs.mark();
    const { id, fromBlock } = await callback("reorged");
    await mine(async () => (await delivered(id)) >= 1);
    const [first] = await deliveriesSent(chain, node.account.address, id, fromBlock);
    if (!first) throw new Error("the delivery's transaction was not found");
    const head = await chain.publicClient.getBlockNumber();
    // Every block from the delivery's on is replaced by an empty one.
    await chain.rpc("anvil_reorg", [Number(head - first.block) + 1, []]);
    expect(await delivered(id)).toBe(0);

    await mine(async () => (await delivered(id)) >= 1);
    await node.logs.waitFor(/Transaction removed by a chain reorganisation; sent again/, { from: mark });
    await settle();
    await expectDeliveredOnce(id, fromBlock);
    const [again] = await deliveriesSent(chain, node.account.address, id, fromBlock);
    expect(again?.nonce).toBe(first.nonce);

    // The nonces after it are not stuck behind a gap.
    const next = await callback("after the reorg");
    await mine(async () => (await delivered(next.id)) >= 1);
    await settle();
    await expectDeliveredOnce(next.id, next.fromBlock);
  }, 120_000);

  test("behavior: anvil stopped for 20 s with deliveries in flight, restarted with its state: no crash, every interval delivered once", async () => {
    const subscriptionRecorder = recorders(chain).subscription;
    const fromBlock = await chain.publicClient.getBlockNumber();
    const recurring = await inOneBlock(
      createSubscription(chain, { containers: node.containers.echo, frequency: 100, period: PERIOD_S }),
    );
    const callbacks = [await callback("outage 1"), await callback("outage 2")];
    // Mining stops as soon as the node has a delivery in the mempool; then the RPC goes away.
    await mine(async () => false, { holdWhilePending: true });
    const pid = node.process.pid() as number;
    const alive = () => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    };
    const before = await nonces(chain, node.account.address);
    await chain.stop();
    const outageStart = Date.now();
    try {
      await waitFor(
        "/health reporting the chain down",
        async () => ((await health()).body.degraded.includes("chain") ? true : undefined),
        OUTAGE_MS,
      );
      expect((await health()).code).toBe(200);
      expect((await offchainEcho("during the outage")).status).toBe("success");
      await Bun.sleep(Math.max(0, OUTAGE_MS - (Date.now() - outageStart)));
      expect(alive()).toBe(true);
    } finally {
      await chain.restart();
    }
    await chain.rpc("evm_setAutomine", [false]);
    const after = await nonces(chain, node.account.address);
    console.log(
      `anvil outage: ${before.pending - before.latest} delivery(ies) in the mempool at the stop, ${after.pending - after.latest} after the restart`,
    );
    const restartedAt = Date.now();
    const intervalsOf = async () =>
      (await deliveriesOf(chain, subscriptionRecorder, recurring.id)).map((d) => d.interval);
    const { activeAt } = await getSubscription(chain, recurring.id);
    const intervalAtRestart = Math.floor((Date.now() / 1000 - activeAt) / PERIOD_S) + 1;
    await mine(async () => {
      const all = await Promise.all(callbacks.map((c) => delivered(c.id)));
      const recurringDone = (await intervalsOf()).some((i) => i >= intervalAtRestart);
      return all.every((n) => n >= 1) && recurringDone;
    });
    const recoverySeconds = (Date.now() - restartedAt) / 1000;
    await settle();
    console.log(
      `anvil outage: all in-flight deliveries made ${recoverySeconds.toFixed(1)} s after the restart`,
    );

    for (const c of callbacks) await expectDeliveredOnce(c.id, c.fromBlock);
    const intervals = await intervalsOf();
    expect(new Set(intervals).size).toBe(intervals.length); // none twice
    expect([...intervals].sort((a, b) => a - b)).toEqual(intervals);
    const sent = await deliveriesSent(chain, node.account.address, recurring.id, fromBlock);
    expect(sent.every((t) => t.status === "success")).toBe(true);
    expect(sent.map((t) => t.interval)).toEqual(intervals);
    expect(intervals.some((i) => i >= intervalAtRestart)).toBe(true);
    expect(alive()).toBe(true);
  }, 180_000);
});
