// The chain read side against a real anvil running the test SDK contracts: snapshot sync over several batches
// (mixed containers, allowlists, payments, cancelled, completed, expired), live pick-up of new subscriptions,
// an RPC outage in the middle of a sync, and starting_sub_id above the head.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import * as v from "valibot";
import type { Address } from "viem";
import { type ChainService, createChainService } from "../../../src/chain/service.ts";
import { type Config, ConfigSchema } from "../../../src/config/schema.ts";
import { addLogSink, createLog, type LogRecord } from "../../../src/lib/log.ts";
import { startChain, type TestChain } from "../../fixtures/anvil.ts";
import {
  cancelRange,
  createSubscription,
  createSubscriptions,
  deliver,
  latestTimestamp,
  requestCallback,
} from "../../fixtures/chain-helpers.ts";
import { waitFor } from "../../fixtures/net.ts";
import { createSubscriptionTracker, type SubscriptionTracker } from "../../fixtures/subscription-recorder.ts";

const PAYMENT_ADDRESS = "0x5555555555555555555555555555555555555555";

function configFor(
  chain: TestChain,
  overrides: { chain?: Record<string, unknown>; containers?: unknown[] } = {},
): Config {
  return v.parse(ConfigSchema, {
    manage_containers: false,
    containers: overrides.containers ?? [{ id: "a" }, { id: "b" }],
    chain: {
      enabled: true,
      rpc_url: chain.rpcUrl,
      registry_address: chain.addresses.registry,
      trail_head_blocks: 1,
      rpc_timeout: 2,
      rpc_max_retries: 1,
      wallet: { private_key: chain.accounts.node.privateKey.slice(2), payment_address: PAYMENT_ADDRESS },
      ...overrides.chain,
      snapshot_sync: {
        sleep: 0,
        batch_size: 7,
        sync_period: 0.05,
        ...(overrides.chain?.snapshot_sync as object),
      },
    },
  });
}

interface Running {
  service: ChainService;
  tracker: SubscriptionTracker;
  logs: LogRecord[];
  stop(): Promise<void>;
}

async function startNode(config: Config, clock?: () => number): Promise<Running> {
  const logs: LogRecord[] = [];
  const removeSink = addLogSink((record) => {
    if (record.component === "listener") logs.push(record);
  });
  const tracker = createSubscriptionTracker({ log: createLog("tracker") });
  const service = createChainService({
    config,
    log: createLog("chain"),
    sink: tracker,
    ...(clock ? { clock } : {}),
    rpcBackoff: { baseMs: 20, maxMs: 100 },
    retryBackoff: { baseMs: 50, maxMs: 300 },
  });
  const controller = new AbortController();
  await service.setup?.(controller.signal);
  const running = service.run?.(controller.signal);
  return {
    service,
    tracker,
    logs,
    async stop() {
      controller.abort();
      await running;
      removeSink();
    },
  };
}

const progress = (node: Running) => node.service.listener()?.progress();

/** Waits until the listener has synced up to the current head (minus trail). */
async function waitSynced(chain: TestChain, node: Running, trail = 1): Promise<void> {
  const head = Number(await chain.publicClient.getBlockNumber());
  await waitFor(
    `sync to block ${head - trail}`,
    () => (progress(node)?.last_synced_block ?? -1) >= head - trail,
  );
}

describe("chain listener on anvil", () => {
  let chain: TestChain & AsyncDisposable;
  beforeAll(async () => {
    chain = await startChain();
  });
  afterAll(async () => {
    await chain?.[Symbol.asyncDispose]();
  });

  test("default: snapshot sync finds exactly the subscriptions it should, over several batches", async () => {
    const snap = await chain.snapshot();
    try {
      const consumer = chain.addresses.subscriptionConsumer;
      const expected = new Set<number>();
      const ignored = new Map<number, string>();
      // Mixed containers via the bulk consumer: a, b, a,b, b,a and two this node does not run.
      const mixed = await createSubscriptions(chain, {
        count: 24,
        containers: ["a", "b", "a,b", "b,a", "unknown", "a,unknown"],
      });
      mixed.ids.forEach((id, i) => {
        if (i % 6 < 4) expected.add(id);
        else ignored.set(id, "Container-set not supported");
      });
      // Allowlist: only subscriptionConsumer may use "priv".
      const privOk = await createSubscription(chain, { containers: "priv" });
      expected.add(privOk.id);
      const privBad = await createSubscriptions(chain, { count: 2, containers: ["priv"] });
      for (const id of privBad.ids) ignored.set(id, "Container not allowed for address");
      // Payments: "paid" wants ≥ 100 of the mock token.
      const paidOk = await createSubscription(chain, {
        containers: "paid",
        paymentToken: chain.addresses.token,
        paymentAmount: 100n,
      });
      expected.add(paidOk.id);
      const paidLow = await createSubscription(chain, {
        containers: "paid",
        paymentToken: chain.addresses.token,
        paymentAmount: 99n,
      });
      ignored.set(paidLow.id, "Invalid payment");
      const paidEth = await createSubscription(chain, { containers: "paid", paymentAmount: 100n });
      ignored.set(paidEth.id, "Invalid payment");
      // Proofs: "a" does not generate proofs.
      const proof = await createSubscription(chain, { containers: "a", verifier: chain.addresses.verifier });
      ignored.set(proof.id, "Container does not generate proof");
      // Cancelled.
      const cancelled = await createSubscriptions(chain, { count: 3, containers: ["a"] });
      await cancelRange(chain, cancelled.firstId, cancelled.lastId + 1);
      for (const id of cancelled.ids) ignored.set(id, "Subscription cancelled");
      // Completed: a one-shot callback already delivered by another node.
      const done = await requestCallback(chain, { containers: "a" });
      await deliver(chain, { id: done.id, interval: 1, from: chain.accounts.other });
      ignored.set(done.id, "Subscription completed");
      // Expired: recurring, 1 interval of 10 s, then time moves past it. Later (not yet active): relayed.
      const expired = await createSubscription(chain, { containers: "b", period: 10, frequency: 1 });
      ignored.set(expired.id, "Subscription expired");
      const later = await createSubscription(chain, { containers: "b", period: 3600, frequency: 2 });
      expected.add(later.id);
      await chain.increaseTime(30);
      await chain.mine(1);
      const now = (await latestTimestamp(chain)) + 1;

      const config = configFor(chain, {
        containers: [
          { id: "a" },
          { id: "b" },
          { id: "priv", allowed_addresses: [consumer.toLowerCase()] },
          { id: "paid", accepted_payments: { [chain.addresses.token]: 100 } },
        ],
      });
      const node = await startNode(config, () => now * 1000);
      try {
        await waitSynced(chain, node);
        const head = await chain.publicClient.readContract({
          address: chain.addresses.coordinator,
          abi: [
            {
              type: "function",
              name: "id",
              stateMutability: "view",
              inputs: [],
              outputs: [{ type: "uint32" }],
            },
          ],
          functionName: "id",
        });
        expect(progress(node)).toMatchObject({ phase: "live", last_sub_id: head - 1, head_sub_id: head - 1 });
        expect(new Set(node.tracker.ids())).toEqual(expected);
        expect(node.tracker.relayedCount()).toBe(expected.size);
        const seen = new Map(
          node.logs
            .filter((r) => r.msg === "Ignored subscription creation")
            .map((r) => [r.id as number, r.err as string]),
        );
        expect(seen).toEqual(ignored);
        expect(
          node.logs.some(
            (r) =>
              r.msg ===
              `Skipping subscription: ${paidLow.id}: Token ${chain.addresses.token} below minimum payment requirements`,
          ),
        ).toBe(true);
        // 7 per batch → several batches; health carries progress and RPC counters
        const health = node.service.health?.();
        expect(health?.ok).toBe(true);
        const rpcStats = health?.rpc as { byMethod: Record<string, number> } | undefined;
        expect(rpcStats?.byMethod.eth_call).toBeGreaterThan(5);
      } finally {
        await node.stop();
      }
    } finally {
      await chain.revert(snap);
    }
  });

  test("behavior: subscriptions created while the node runs are picked up within trail_head_blocks + 1 blocks", async () => {
    const snap = await chain.snapshot();
    try {
      const trail = 2;
      const node = await startNode(configFor(chain, { chain: { trail_head_blocks: trail } }));
      try {
        await waitSynced(chain, node, trail);
        for (let round = 0; round < 3; round++) {
          const { id } = await createSubscription(chain, { containers: "a" });
          let blocks = 0;
          while (!node.tracker.get(id) && blocks <= trail + 1) {
            await waitSynced(chain, node, trail);
            if (node.tracker.get(id)) break;
            await chain.mine(1);
            blocks++;
            await waitSynced(chain, node, trail);
          }
          expect(node.tracker.get(id)?.id).toBe(id);
          expect(blocks).toBeLessThanOrEqual(trail + 1);
        }
        expect(node.tracker.relayedCount()).toBe(node.tracker.count());
      } finally {
        await node.stop();
      }
    } finally {
      await chain.revert(snap);
    }
  });

  test("behavior: starting_sub_id above the head waits for the head to pass it", async () => {
    const snap = await chain.snapshot();
    try {
      const next = await chain.publicClient.readContract({
        address: chain.addresses.coordinator,
        abi: [
          {
            type: "function",
            name: "id",
            stateMutability: "view",
            inputs: [],
            outputs: [{ type: "uint32" }],
          },
        ],
        functionName: "id",
      });
      const starting = next - 1 + 5; // five ids above the current head
      const node = await startNode(
        configFor(chain, { chain: { snapshot_sync: { starting_sub_id: starting } } }),
      );
      try {
        await chain.mine(1);
        await waitSynced(chain, node);
        expect(progress(node)).toMatchObject({ phase: "live", last_sub_id: starting });
        const first = await createSubscriptions(chain, { count: 8, containers: ["a"] });
        await chain.mine(1);
        await waitSynced(chain, node);
        expect(node.tracker.ids().sort((x, y) => x - y)).toEqual(first.ids.filter((id) => id > starting));
        expect(progress(node)?.consecutive_failures).toBe(0);
      } finally {
        await node.stop();
      }
    } finally {
      await chain.revert(snap);
    }
  });
});

describe("chain listener through an RPC outage", () => {
  test("behavior: an outage mid-sync is survived; the sync completes without duplicates or gaps", async () => {
    await using chain = await startChain();
    const created = await createSubscriptions(chain, { count: 400, containers: ["a", "b"] });
    await chain.mine(2);
    const node = await startNode(
      configFor(chain, { chain: { snapshot_sync: { batch_size: 10, sleep: 0.05, sync_period: 0.05 } } }),
    );
    try {
      await waitFor("the sync to be under way", () => (progress(node)?.last_sub_id ?? 0) >= 50);
      await chain.stop();
      await waitFor("the outage to be noticed", () => (progress(node)?.consecutive_failures ?? 0) > 0);
      expect(node.service.health?.().ok).toBe(false);
      expect((progress(node)?.last_sub_id ?? 0) < created.lastId).toBe(true);
      await chain.restart();
      // anvil restored from a state dump has no history before its current block, so the block the sync was
      // pinned to is gone until the chain moves on (as a real chain does): the listener re-pins to the new head.
      await chain.mine(2);
      await waitFor(
        "the sync to complete",
        () => (progress(node)?.last_sub_id ?? 0) >= created.lastId,
        60_000,
      );
      await waitFor("health to recover", () => node.service.health?.().ok === true);
      expect(node.tracker.ids().sort((x, y) => x - y)).toEqual(created.ids);
      expect(node.tracker.relayedCount()).toBe(created.ids.length);
      const relayed = node.logs.filter((r) => r.msg === "Relayed subscription creation").map((r) => r.id);
      expect(relayed).toEqual(created.ids);
    } finally {
      await node.stop();
    }
  }, 90_000);
});

describe("chain service start-up", () => {
  test("error: a registry_address without a Registry fails start-up with a clear reason", async () => {
    await using chain = await startChain();
    const bad = chain.accounts.other.address as Address;
    const config = configFor(chain, { chain: { registry_address: bad } });
    const service = createChainService({ config, log: createLog("chain"), sink: { track: () => {} } });
    await expect(service.setup?.(new AbortController().signal)).rejects.toThrow(
      `chain.registry_address ${bad} holds no Infernet Registry (no contract code at this address`,
    );
    const notRegistry = configFor(chain, { chain: { registry_address: chain.addresses.token } });
    const second = createChainService({
      config: notRegistry,
      log: createLog("chain"),
      sink: { track: () => {} },
    });
    await expect(second.setup?.(new AbortController().signal)).rejects.toThrow(
      `chain.registry_address ${chain.addresses.token} holds no Infernet Registry (COORDINATOR() failed`,
    );
  });

  test("behavior: set-up is bounded when the RPC never answers (black hole); run() keeps trying", async () => {
    const hole = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: () => new Promise<Response>(() => {}) });
    try {
      const config = v.parse(ConfigSchema, {
        manage_containers: false,
        chain: {
          enabled: true,
          rpc_url: `http://localhost:${hole.port}`,
          registry_address: "0x5FbDB2315678afecb367f032d93F642f64180aa3",
          rpc_timeout: 60,
          wallet: { private_key: "11".repeat(32) },
        },
      });
      const service = createChainService({
        config,
        log: createLog("chain"),
        sink: { track: () => {} },
        setupBudgetMs: 200,
      });
      const controller = new AbortController();
      await service.setup?.(controller.signal);
      expect(service.health?.()).toMatchObject({ ok: false });
      const running = service.run?.(controller.signal);
      controller.abort();
      await running;
    } finally {
      hole.stop(true);
    }
  });

  test("behavior: an RPC that answers HTTP 404 at start-up does not fail set-up; the service connects once it serves", async () => {
    await using chain = await startChain();
    let serving = false;
    // A proxy in front of the RPC that answers 404 until its backend is up (a misrouted or half-deployed RPC).
    const proxy = Bun.serve({
      port: 0,
      hostname: "127.0.0.1",
      fetch: async (req) =>
        serving
          ? fetch(chain.rpcUrl, { method: "POST", headers: req.headers, body: await req.text() })
          : new Response("not found", { status: 404 }),
    });
    try {
      const config = configFor(chain, { chain: { rpc_url: `http://127.0.0.1:${proxy.port}` } });
      const service = createChainService({
        config,
        log: createLog("chain"),
        sink: { track: () => {} },
        rpcBackoff: { baseMs: 10, maxMs: 50 },
        retryBackoff: { baseMs: 20, maxMs: 100 },
      });
      const controller = new AbortController();
      await service.setup?.(controller.signal);
      const health = service.health?.();
      expect(health).toMatchObject({ ok: false });
      expect(String(health?.detail)).toMatch(/404/);
      const running = service.run?.(controller.signal);
      serving = true;
      await waitFor("connection", () => service.listener()?.progress().phase === "live");
      expect(service.context()?.addresses.coordinator).toBe(chain.addresses.coordinator);
      controller.abort();
      await running;
    } finally {
      proxy.stop(true);
    }
  }, 60_000);

  test("behavior: an RPC that is down at start-up does not fail set-up; the service connects when it comes up", async () => {
    await using chain = await startChain();
    await chain.stop();
    const tracker = createSubscriptionTracker({ log: createLog("tracker") });
    const service = createChainService({
      config: configFor(chain),
      log: createLog("chain"),
      sink: tracker,
      rpcBackoff: { baseMs: 10, maxMs: 50 },
      retryBackoff: { baseMs: 20, maxMs: 100 },
    });
    const controller = new AbortController();
    await service.setup?.(controller.signal);
    expect(service.health?.()).toMatchObject({ ok: false });
    const running = service.run?.(controller.signal);
    await chain.restart();
    await chain.mine(2); // a restored anvil has no history before its current block (see the outage test)
    await waitFor("connection", () => service.listener()?.progress().phase === "live");
    expect(service.context()?.chainId).toBe(chain.chainId);
    expect(service.context()?.addresses.coordinator).toBe(chain.addresses.coordinator);
    controller.abort();
    await running;
  }, 60_000);
});
