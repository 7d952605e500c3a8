// End to end: a hot standby. Two binaries with the same wallet and one Redis serve one container set; only the
// chain-lease holder sends. The holder is paused (SIGSTOP) and later killed (SIGKILL) while callbacks keep
// falling due: the other takes over each time, the paused one wakes up sending nothing, and every subscription
// is delivered exactly once with no reverted transaction from the shared wallet. Delegated subscriptions go
// through the shared journal: one posted to the standby is delivered by the holder, and one accepted by the
// holder that is then killed is delivered by the standby that takes over.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { delegatedSubscription, requestCallback } from "../../fixtures/chain-helpers.ts";
import { type ChainNode, startChainNode } from "../../fixtures/chain-node.ts";
import {
  type E2EChain,
  echoInput,
  recorders,
  signedDelegatedRequest,
  startE2EChain,
  transactionsFrom,
  waitForDeliveries,
} from "../../fixtures/e2e-chain.ts";
import { waitFor } from "../../fixtures/net.ts";
import { sharedRedis, uniqueKeyPrefix } from "../../fixtures/redis.ts";
import { postJson } from "../../integration/server/node-process.ts";

const LEASE_TTL_S = 3;
let chain: E2EChain;
let a: ChainNode;
let b: ChainNode;

beforeAll(async () => {
  chain = await startE2EChain({});
  const redis = await sharedRedis();
  const shared = { host: redis.host, port: redis.port, key_prefix: uniqueKeyPrefix("e2e-standby") };
  a = await startChainNode("e2e-sb-a", chain, { redis: shared, chainSettings: { lease_ttl: LEASE_TTL_S } });
  b = await startChainNode("e2e-sb-b", chain, {
    redis: shared,
    shareContainersOf: a,
    paymentAddress: a.paymentAddress,
    chainSettings: { lease_ttl: LEASE_TTL_S },
  });
}, 180_000);

afterAll(async () => {
  await b?.[Symbol.asyncDispose]();
  await a?.[Symbol.asyncDispose]();
  await chain?.[Symbol.asyncDispose]();
});

async function lease(node: ChainNode): Promise<string> {
  const res = await fetch(`${node.url}/health`);
  const body = (await res.json()) as { checks?: { processor?: { lease?: string } } };
  return body.checks?.processor?.lease ?? "unknown";
}

async function holder(node: ChainNode): Promise<void> {
  await waitFor(
    `${node.url} to hold the lease`,
    async () => ((await lease(node)) === "held" ? true : undefined),
    30_000,
  );
}

/** Three callbacks, each delivered exactly once; returns their ids. */
async function callbacksDelivered(tag: string): Promise<number[]> {
  const ids: number[] = [];
  for (let i = 0; i < 3; i++) {
    const { id } = await requestCallback(chain, {
      containers: a.containers.echo,
      inputs: echoInput(`${tag}-${i}`),
    });
    ids.push(id);
  }
  for (const id of ids) {
    const deliveries = await waitForDeliveries(chain, recorders(chain).callback, id, 1);
    expect(deliveries).toHaveLength(1);
  }
  return ids;
}

describe("hot standby through the binary", () => {
  test("SIGSTOP then SIGKILL of the lease holder: take-over each time, every callback once, no revert", async () => {
    const fromBlock = await chain.publicClient.getBlockNumber();
    await holder(a);
    expect(await lease(b)).toStartWith("standby");
    const all = [...(await callbacksDelivered("a"))];

    // The holder freezes (SIGSTOP): its lease runs out and the standby takes over.
    const pid = a.process.pid();
    if (pid === undefined) throw new Error("node a is not running");
    const stoppedAt = performance.now();
    process.kill(pid, "SIGSTOP");
    try {
      await holder(b);
      console.log(
        `take-over after SIGSTOP: ${Math.round(performance.now() - stoppedAt)} ms (lease_ttl ${LEASE_TTL_S} s)`,
      );
      all.push(...(await callbacksDelivered("b")));
    } finally {
      process.kill(pid, "SIGCONT");
    }
    // Awake again, the old holder finds its lease gone and stands by; deliveries go on through b only.
    await waitFor(
      "a to stand by",
      async () => ((await lease(a)).startsWith("standby") ? true : undefined),
      30_000,
    );
    all.push(...(await callbacksDelivered("b2")));

    // The holder dies (SIGKILL): the other one takes over.
    const killedAt = performance.now();
    await b.process.stop("SIGKILL");
    await holder(a);
    console.log(
      `take-over after SIGKILL: ${Math.round(performance.now() - killedAt)} ms (lease_ttl ${LEASE_TTL_S} s)`,
    );
    all.push(...(await callbacksDelivered("a2")));

    // On-chain, from the shared wallet: exactly one successful delivery per subscription, nothing reverted.
    const sent = await transactionsFrom(chain, a.account.address, fromBlock);
    const deliveries = sent.filter((t) => t.functionName === "deliverCompute");
    expect(deliveries.filter((t) => t.status !== "success")).toEqual([]);
    expect(deliveries.map((t) => t.subscriptionId).sort((x, y) => (x ?? 0) - (y ?? 0))).toEqual(
      [...all].sort((x, y) => x - y),
    );
  }, 240_000);

  test("delegated: posted to the standby, delivered by the holder; accepted by a holder that dies, delivered after the take-over", async () => {
    // After the test above b is dead and a holds the lease.
    await b.process.restart();
    await holder(a);
    await waitFor(
      "b to stand by",
      async () => ((await lease(b)).startsWith("standby") ? true : undefined),
      30_000,
    );
    const fromBlock = await chain.publicClient.getBlockNumber();
    const nonceBase = 5_000 + Math.floor(Math.random() * 1_000);

    /** Posts a signed delegated subscription for the echo container to `node`; returns its nonce. */
    async function postDelegated(node: ChainNode, nonce: number, activeIn: number): Promise<void> {
      const now = Math.floor(Date.now() / 1000);
      const sub = await delegatedSubscription(chain, {
        containers: a.containers.echo,
        activeAt: now + activeIn,
      });
      const body = await signedDelegatedRequest(chain, {
        sub,
        nonce,
        expiry: now + 600,
        data: { input: echoInput(`delegated ${nonce}`) },
      });
      expect((await postJson(`${node.url}/api/jobs`, body)).status).toBe(200);
    }
    const deliveredFor = async (nonce: number) =>
      (await transactionsFrom(chain, a.account.address, fromBlock)).filter((t) => t.delegatedNonce === nonce);
    const waitDelivered = (nonce: number) =>
      waitFor(
        `delegated ${nonce} delivered`,
        async () => ((await deliveredFor(nonce)).length > 0 ? true : undefined),
        90_000,
      );

    await postDelegated(b, nonceBase, 0);
    await waitDelivered(nonceBase);

    await postDelegated(a, nonceBase + 1, 12);
    const killedAt = performance.now();
    await a.process.stop("SIGKILL");
    await holder(b);
    console.log(`delegated take-over: lease after ${Math.round(performance.now() - killedAt)} ms`);
    await waitDelivered(nonceBase + 1);

    await Bun.sleep(3_000); // a duplicate sent late would be mined by now (1-second blocks)
    for (const nonce of [nonceBase, nonceBase + 1]) {
      expect((await deliveredFor(nonce)).map((t) => [t.interval, t.status])).toEqual([[1, "success"]]);
    }
  }, 240_000);
});
