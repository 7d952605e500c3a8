// The chain write side in process, against a real anvil running the test SDK contracts: the chain service's
// listener relays subscriptions to the Processor, which runs them through a pipeline and delivers them with its
// own Wallet and nonce manager. The container pipeline is injected (the real containers are exercised through
// the binary in the end-to-end suite); everything on-chain is real: simulation, sending, receipts, reverts.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { decodeAbiParameters, encodeAbiParameters, type Hex, stringToHex } from "viem";
import type { Config } from "../../../src/config/schema.ts";
import { parseJson } from "../../../src/lib/json.ts";
import { createLog, type LogRecord } from "../../../src/lib/log.ts";
import type { OrchestratorJob } from "../../../src/orchestration/orchestrator.ts";
import type { ContainerResult } from "../../../src/shared/jobs.ts";
import { type DelegatedSubscriptionMessage, parseJobMessage } from "../../../src/shared/messages.ts";
import { createEmbeddedDelegatedJournal } from "../../../src/store/embedded-delegated-journal.ts";
import { createRedisDelegatedJournal } from "../../../src/store/redis-delegated-journal.ts";
import { startChain, type TestChain } from "../../fixtures/anvil.ts";
import {
  cancelSubscription,
  createSubscription,
  createSubscriptions,
  delegatedSubscription,
  latestTimestamp,
  read,
  requestCallback,
  type SubscriptionStruct,
} from "../../fixtures/chain-helpers.ts";
import { signedDelegatedRequest } from "../../fixtures/e2e-chain.ts";
import { waitFor } from "../../fixtures/net.ts";
import { chainNodeConfig, type ProcessorNode, startProcessorNode } from "../../fixtures/processor-node.ts";
import { startPrivateRedis } from "../../fixtures/redis.ts";

interface Delivery {
  subscriptionId: number;
  interval: number;
  redundancy: number;
  node: string;
  input: Hex;
  output: Hex;
  proof: Hex;
}

function configFor(chain: TestChain, wallet: Record<string, unknown> = {}): Config {
  return chainNodeConfig(chain, { containers: ["echo", "broken"], wallet });
}

/** The pipeline the processor runs: "echo" answers the five-key form around its input, "broken" fails. */
const jobs: OrchestratorJob[] = [];
async function pipeline(job: OrchestratorJob): Promise<ContainerResult[]> {
  jobs.push(job);
  const id = job.containers[0] ?? "";
  if (id === "broken") return [{ container: id, error: "boom" }];
  const input = typeof job.data === "string" ? job.data : stringToHex(JSON.stringify(job.data)).slice(2);
  return [
    {
      container: id,
      output: {
        raw_input: input,
        processed_input: "",
        raw_output: encodeAbiParameters([{ type: "string" }], [`echo:${input}`]).slice(2),
        processed_output: "",
        proof: "",
      },
    },
  ];
}

type Running = ProcessorNode;

function startNode(config: Config): Promise<Running> {
  return startProcessorNode(config, { run: pipeline });
}

const CONSUMER_CONTRACTS = {
  callbackConsumer: "TestCallbackConsumer",
  subscriptionConsumer: "TestSubscriptionConsumer",
  delegator: "TestDelegatorConsumer",
} as const;

async function deliveries(chain: TestChain, consumer: keyof typeof CONSUMER_CONTRACTS): Promise<Delivery[]> {
  const contract = CONSUMER_CONTRACTS[consumer];
  const count = await read<bigint>(chain, {
    contract,
    address: chain.addresses[consumer],
    functionName: "deliveryCount",
  });
  const out: Delivery[] = [];
  for (let i = 0n; i < count; i++) {
    out.push(
      await read<Delivery>(chain, {
        contract,
        address: chain.addresses[consumer],
        functionName: "getDelivery",
        args: [i],
      }),
    );
  }
  return out;
}

/** A delegated subscription as the REST server hands it over: infernet_client's body, parsed as REST parses it. */
async function delegatedMessage(
  chain: TestChain,
  sub: SubscriptionStruct,
  nonce: number,
  signer = chain.accounts.consumerOwner,
): Promise<DelegatedSubscriptionMessage> {
  const expiry = (await latestTimestamp(chain)) + 3600;
  const body = await signedDelegatedRequest(chain, { sub, nonce, expiry, data: { prompt: "hi" }, signer });
  const parsed = parseJobMessage(parseJson(body), crypto.randomUUID(), "127.0.0.1");
  if (!parsed.ok || parsed.message.kind !== "delegated") throw new Error(`not a delegated body: ${body}`);
  return parsed.message;
}

async function nodeNonce(chain: TestChain): Promise<number> {
  return chain.publicClient.getTransactionCount({
    address: chain.accounts.node.address,
    blockTag: "pending",
  });
}

function logged(logs: LogRecord[], msg: string, id?: number): LogRecord[] {
  return logs.filter((r) => r.msg === msg && (id === undefined || r.id === id || r.subscription_id === id));
}

describe("processor on anvil", () => {
  let chain: TestChain & AsyncDisposable;
  let node: Running;

  beforeAll(async () => {
    chain = await startChain();
    node = await startNode(configFor(chain));
  });
  afterAll(async () => {
    await node?.stop();
    await chain?.[Symbol.asyncDispose]();
  });

  test("callback: delivered once, input from getContainerInputs without 0x, five-key output encoded", async () => {
    const inputs = encodeAbiParameters([{ type: "string" }, { type: "string" }], ["hello", ""]);
    const { id } = await requestCallback(chain, { containers: "echo", inputs });
    const delivered = await waitFor(
      "callback delivery",
      async () => {
        const all = await deliveries(chain, "callbackConsumer");
        return all.find((d) => d.subscriptionId === id);
      },
      20_000,
    );
    expect(delivered.interval).toBe(1);
    expect(delivered.node).toBe(chain.accounts.node.address);
    const [rawInput, processedInput] = decodeAbiParameters(
      [{ type: "bytes" }, { type: "bytes" }],
      delivered.input,
    );
    expect(rawInput).toBe(inputs);
    expect(processedInput).toBe("0x");
    const [rawOutput] = decodeAbiParameters([{ type: "bytes" }, { type: "bytes" }], delivered.output);
    const [text] = decodeAbiParameters([{ type: "string" }], rawOutput);
    expect(text).toBe(`echo:${inputs.slice(2)}`);
    const job = jobs.find((j) => j.data === inputs.slice(2));
    expect(job?.destination).toBe(0);
    expect(job?.source).toBe(0);
    await waitFor("confirmation", async () => logged(node.logs, "Transaction confirmed", id)[0], 10_000);
    expect(logged(node.logs, "Sent tx", id)).toHaveLength(1);
    expect(node.processor.keys()).not.toContain(String(id));
  });

  test("recurring: one delivery per interval, then the subscription expires", async () => {
    const { id } = await createSubscription(chain, { containers: "echo", frequency: 3, period: 2 });
    const mine = setInterval(() => void chain.mine().catch(() => {}), 500);
    try {
      await waitFor(
        "three intervals",
        async () => {
          const mineOnes = (await deliveries(chain, "subscriptionConsumer")).filter(
            (d) => d.subscriptionId === id,
          );
          return mineOnes.length >= 3 ? mineOnes : undefined;
        },
        30_000,
      );
      // Its last interval delivered, the node is done with it.
      await waitFor(
        "stop tracking",
        async () => !node.processor.keys().includes(String(id)) || undefined,
        10_000,
      );
    } finally {
      clearInterval(mine);
    }
    const mineOnes = (await deliveries(chain, "subscriptionConsumer")).filter((d) => d.subscriptionId === id);
    expect(mineOnes.map((d) => d.interval)).toEqual([1, 2, 3]);
    expect(logged(node.logs, "Sent tx", id)).toHaveLength(3);
  });

  test("cancelled mid-way: seen from the event, nothing sent after it", async () => {
    const { id } = await createSubscription(chain, { containers: "echo", frequency: 100, period: 3 });
    const mine = setInterval(() => void chain.mine().catch(() => {}), 500);
    try {
      await waitFor("first delivery", async () => logged(node.logs, "Transaction confirmed", id)[0], 20_000);
      await cancelSubscription(chain, id);
      await waitFor("cancel seen", async () => logged(node.logs, "Subscription cancelled", id)[0], 10_000);
      const sentAtCancel = logged(node.logs, "Sent tx", id).length;
      await Bun.sleep(4_000);
      expect(logged(node.logs, "Sent tx", id).length).toBe(sentAtCancel);
      expect(node.processor.keys()).not.toContain(String(id));
    } finally {
      clearInterval(mine);
    }
  });

  test("container error on a callback: logged, dropped, no transaction", async () => {
    const { id } = await requestCallback(chain, { containers: "broken" });
    await waitFor("drop", async () => logged(node.logs, "Container execution errored", id)[0], 20_000);
    expect(logged(node.logs, "Sent tx", id)).toHaveLength(0);
  });

  test("a consumer that always reverts: 3 mined reverts, then the maximum-attempts line", async () => {
    const config = configFor(chain, { allowed_sim_errors: ["testfailingconsumer: failure"] });
    await node.stop();
    node = await startNode(config);
    const { id } = await createSubscription(chain, { consumer: "failingConsumer", containers: "echo" });
    await waitFor(
      "give up",
      async () => logged(node.logs, "Subscription has exceeded the maximum number of attempts", id)[0],
      30_000,
    );
    expect(logged(node.logs, "Transaction reverted", id)).toHaveLength(3);
    expect(String(logged(node.logs, "Transaction reverted", id)[0]?.reason)).toContain(
      "TestFailingConsumer: failure",
    );
    expect(node.processor.health().deliveries.reverted).toBeGreaterThanOrEqual(3);
  });

  test("delegated: the signature is verified and the subscription created and delivered in one transaction", async () => {
    const sub = await delegatedSubscription(chain, { containers: "echo" });
    await node.processor.submit(await delegatedMessage(chain, sub, 7001));
    const delivered = await waitFor(
      "delegated delivery",
      async () =>
        (await deliveries(chain, "delegator")).find(
          (d) => d.interval === 1 && d.node === chain.accounts.node.address,
        ),
      20_000,
    );
    const [rawInput] = decodeAbiParameters([{ type: "bytes" }, { type: "bytes" }], delivered.input);
    // Delegated input is the request's data (as JSON), not getContainerInputs.
    expect(
      jobs.some((j) => j.source === 1 && j.destination === 0 && JSON.stringify(j.data) === '{"prompt":"hi"}'),
    ).toBe(true);
    expect(rawInput).toBe(stringToHex('{"prompt":"hi"}'));
    expect(logged(node.logs, "Tracked new delegate subscription").some((r) => r.nonce === 7001)).toBe(true);
  });

  test("delegated: a forged signature is refused and costs no transaction", async () => {
    const sub = await delegatedSubscription(chain, { containers: "echo" });
    const before = await nodeNonce(chain);
    await node.processor.submit(await delegatedMessage(chain, sub, 7002, chain.accounts.other));
    const mismatch = await waitFor(
      "signer mismatch",
      async () => logged(node.logs, "Subscription signer mismatch").find((r) => r.nonce === 7002),
      10_000,
    );
    expect(String(mismatch.recovered)).toBe(chain.accounts.other.address);
    await Bun.sleep(500);
    expect(await nodeNonce(chain)).toBe(before);
    expect(node.processor.keys().some((k) => k.endsWith(":7002"))).toBe(false);
  });

  test("restart: a delivery still in the mempool is not sent again by the restarted node", async () => {
    await chain.rpc("evm_setAutomine", [false]);
    try {
      const request = requestCallback(chain, { containers: "echo", inputs: "0x1234" });
      await Bun.sleep(50);
      await chain.rpc("evm_mine");
      const { id } = await request;
      await waitFor("first send", async () => logged(node.logs, "Sent tx", id)[0], 20_000);
      // The node goes away with its delivery pending; a new one starts from nothing.
      await node.stop();
      node = await startNode(configFor(chain));
      await waitFor(
        "the pending simulation to refuse a second delivery",
        async () => logged(node.logs, "Did not send tx", id)[0],
        20_000,
      );
      // Redundancy 1 is met by the pending delivery, so the Coordinator's check 5 answers first.
      expect(
        logged(node.logs, "Interval completed. Redundancy has been already met for the current interval", id),
      ).toHaveLength(1);
      expect(logged(node.logs, "Sent tx", id)).toHaveLength(0);
      await chain.rpc("evm_mine");
    } finally {
      await chain.rpc("evm_setAutomine", [true]);
    }
    const all = await deliveries(chain, "callbackConsumer");
    expect(
      all.filter((d) => d.input !== "0x" && d.subscriptionId === all.at(-1)?.subscriptionId),
    ).toHaveLength(1);
  });
});

describe("processor with a delegated-subscription journal in Redis", () => {
  test("behavior: an unreadable journal (Redis down) holds back only itself: callbacks are delivered, and its subscriptions are taken in once Redis is back", async () => {
    await using chain = await startChain();
    await using redis = await startPrivateRedis();
    const endpoint = { host: redis.host, port: redis.port, db: 0, password: null };
    const key = "journal-outage:delegated";
    const journal = createRedisDelegatedJournal({ redis: endpoint, key, log: createLog("journal") });
    await journal.setup?.(AbortSignal.timeout(5_000));
    await redis.stop();
    const node = await startProcessorNode(configFor(chain), { run: pipeline, journal, name: "journal-node" });
    try {
      const { id } = await requestCallback(chain, { containers: "echo", inputs: "0x5678" });
      await waitFor("the callback delivered while the journal is down", async () =>
        (await deliveries(chain, "callbackConsumer")).find((d) => d.subscriptionId === id),
      );
      const unreadable = logged(
        node.logs,
        "Could not read the delegated-subscription journal; trying again each step",
      );
      expect(unreadable).toHaveLength(1); // once, not every step

      // Redis is back; another process (a standby's REST server) saved a delegated subscription meanwhile.
      await redis.start();
      const other = createRedisDelegatedJournal({ redis: endpoint, key, log: createLog("journal") });
      await other.setup?.(AbortSignal.timeout(5_000));
      const sub = await delegatedSubscription(chain, { containers: "echo" });
      await other.save("d:standby:7100", await delegatedMessage(chain, sub, 7100));
      await other.close?.();
      await waitFor(
        "the journal's delegated subscription delivered",
        async () =>
          (await deliveries(chain, "delegator")).find((d) => d.interval === 1 && d.input !== "0x")
            ? true
            : undefined,
        30_000,
      );
      expect(logged(node.logs, "Delegated-subscription journal readable again")).toHaveLength(1);
      expect(logged(node.logs, "Tracked new delegate subscription").some((r) => r.nonce === 7100)).toBe(true);
    } finally {
      await node.stop();
      await journal.close?.();
    }
  }, 90_000);
});

describe("processor whose host clock is 60 s ahead of the chain (a chain behind the host)", () => {
  test("behavior: due-ness follows the chain's block timestamps: every interval delivered once, at the chain's boundaries", async () => {
    await using chain = await startChain({ blockTime: 1 });
    const skewed = () => Date.now() + 60_000;
    const node = await startProcessorNode(configFor(chain), { run: pipeline, name: "skewed", clock: skewed });
    try {
      // Period 4 s, 3 intervals: by the host's clock all of them would be over before the first block.
      const { id } = await createSubscription(chain, { containers: "echo", frequency: 3, period: 4 });
      const mineOnes = await waitFor(
        "three intervals delivered",
        async () => {
          const found = (await deliveries(chain, "subscriptionConsumer")).filter(
            (d) => d.subscriptionId === id,
          );
          return found.length >= 3 ? found : undefined;
        },
        40_000,
      );
      expect(mineOnes.map((d) => d.interval)).toEqual([1, 2, 3]);
      await waitFor(
        "stop tracking",
        async () => !node.processor.keys().includes(String(id)) || undefined,
        15_000,
      );
      expect(logged(node.logs, "Sent tx", id)).toHaveLength(3);
      expect(logged(node.logs, "Subscription expired", id).length).toBeLessThanOrEqual(1);
      // The node reports how far its host's clock is from the chain's.
      const lag = node.processor.health().chain_clock_lag_s;
      expect(lag).not.toBeNull();
      expect(Math.abs((lag as number) - 60)).toBeLessThan(5);
    } finally {
      await node.stop();
    }
  });
});

describe("delegated subscriptions: quota across a standby and the lease holder", () => {
  test("behavior: a standby keeps no quota for what it accepted, and the holder leaves what is over its quota in the journal", async () => {
    await using chain = await startChain();
    const dir = mkdtempSync(join(tmpdir(), "infernet-journal-"));
    const journal = createEmbeddedDelegatedJournal({
      path: join(dir, "delegated.sqlite"),
      log: createLog("journal"),
    });
    await journal.setup?.(AbortSignal.timeout(5_000));
    // Not due for an hour: taken in, verified and held, never delivered during the test.
    const activeAt = (await latestTimestamp(chain)) + 3_600;
    const settings = { maxDelegatedPerOwner: 2 };
    let holding = false;
    const lease = { held: () => holding, describe: () => (holding ? "held" : "standby: other") };
    const node = await startProcessorNode(configFor(chain), {
      run: pipeline,
      journal,
      lease,
      settings,
      name: "quota",
    });
    try {
      // As a standby: five from one owner, over its per-owner quota of 2, all accepted (the holder delivers them;
      // the standby used to keep their quota taken and refused the owner's next ones).
      for (let nonce = 9_001; nonce <= 9_005; nonce++) {
        const sub = await delegatedSubscription(chain, { containers: "echo", activeAt });
        await node.processor.submit(await delegatedMessage(chain, sub, nonce));
      }
      expect(node.processor.health().delegated).toBe(0);
      expect((await journal.load()).length).toBe(5);

      // Taking the lease: the journal holds more than this process's quota; two are taken in, the other three
      // stay in the journal (another process answered 200 for them), none is deleted.
      holding = true;
      await waitFor("two taken in and verified", async () =>
        logged(node.logs, "Tracked new delegate subscription").length >= 2 ? true : undefined,
      );
      await waitFor("over-quota ones kept", async () =>
        logged(
          node.logs,
          "Delegated subscription from the journal over this process's quota; kept there for later",
        ).length >= 3
          ? true
          : undefined,
      );
      expect(node.processor.health().delegated).toBe(2);
      expect((await journal.load()).length).toBe(5);
    } finally {
      await node.stop();
      await journal.close?.();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});

describe("the block clock during a long snapshot sync", () => {
  test("behavior: the head the processor works from moves on while the listener is still syncing", async () => {
    await using chain = await startChain({ blockTime: 1 });
    await createSubscriptions(chain, { count: 20, containers: ["echo"], period: 3_600, frequency: 2 });
    // One subscription per batch and 2 s between batches: the snapshot sync takes ~40 s.
    const config = chainNodeConfig(chain, {
      containers: ["echo"],
      chain: { snapshot_sync: { batch_size: 1, sleep: 2, sync_period: 0.1 } },
    });
    const node = await startProcessorNode(config, { run: pipeline, name: "slow-sync" });
    try {
      const first = await waitFor("a head", async () => node.chainService.head() ?? undefined);
      const later = await waitFor(
        "the head three blocks on",
        async () => {
          const head = node.chainService.head();
          return head !== null && head >= first + 3n ? head : undefined;
        },
        20_000,
      );
      const sync = node.chainService.listener()?.progress();
      // The listener is still in its snapshot sync, pinned to the block it started from.
      expect(sync?.phase).toBe("snapshot");
      expect(BigInt(sync?.last_synced_block ?? 0)).toBeLessThan(later);
    } finally {
      await node.stop();
    }
  }, 60_000);
});
