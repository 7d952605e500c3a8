import { describe, expect, test } from "bun:test";
import * as v from "valibot";
import { containerSetId, createContainerLookup } from "../../../src/chain/container-lookup.ts";
import { createListener, getBatches, type ListenerSettings } from "../../../src/chain/listener.ts";
import { ContainerSchema } from "../../../src/config/schema.ts";
import { buildRuleTable } from "../../../src/guardian/rules.ts";
import { addLogSink, createLog, type LogRecord } from "../../../src/lib/log.ts";
import {
  CANCELLED_ACTIVE_AT,
  type Subscription,
  type SubscriptionFields,
  ZERO_ADDRESS,
} from "../../../src/shared/subscription.ts";

describe("getBatches", () => {
  test("default: reference examples (batch size 500)", () => {
    expect(getBatches(1, 1000, 500)).toEqual([
      [1, 501],
      [501, 1001],
    ]);
    expect(getBatches(1, 1001, 500)).toEqual([
      [1, 501],
      [501, 1001],
      [1001, 1002],
    ]);
    expect(getBatches(5, 5, 500)).toEqual([[5, 6]]);
    expect(getBatches(1, 10, 500)).toEqual([[1, 11]]);
  });

  test("behavior: nothing new and reversed ranges give no batch", () => {
    expect(getBatches(6, 5, 500)).toEqual([]);
    expect(getBatches(11, 5, 500)).toEqual([]);
  });

  test("behavior: batches cover every id exactly once", () => {
    for (const [start, end, size] of [
      [1, 10_000, 1000],
      [3, 997, 7],
      [1, 1, 1],
      [100, 250, 1],
    ] as const) {
      const ids = getBatches(start, end, size).flatMap(([a, b]) =>
        Array.from({ length: b - a }, (_, i) => a + i),
      );
      expect(ids).toEqual(Array.from({ length: end - start + 1 }, (_, i) => start + i));
      for (const [a, b] of getBatches(start, end, size)) expect(b - a).toBeLessThanOrEqual(size);
    }
  });

  test("error: batch size below 1", () => {
    expect(() => getBatches(1, 2, 0)).toThrow();
  });
});

const NOW = 1_700_000_000;
const OWNER = "0x1111111111111111111111111111111111111111";

function subFields(container: string[], overrides: Partial<SubscriptionFields> = {}): SubscriptionFields {
  return {
    owner: OWNER,
    activeAt: NOW - 100,
    period: 0,
    frequency: 1,
    redundancy: 1,
    containerId: containerSetId(container),
    lazy: false,
    verifier: ZERO_ADDRESS,
    paymentAmount: 0n,
    paymentToken: ZERO_ADDRESS,
    wallet: ZERO_ADDRESS,
    ...overrides,
  };
}

/** A scripted chain: subscriptions by id, the block each was created in, a head, and injectable failures. */
function fakeChain(subs: Array<{ fields: SubscriptionFields; block: number; redundancy?: number }>) {
  const chain = {
    head: 100n,
    failReads: 0,
    failHead: 0,
    failWhen: (_start: number) => false as boolean,
    calls: [] as string[],
    blocksRead: new Set<bigint>(),
    redundancyReads: [] as Array<{ ids: number[]; intervals: number[] }>,
  };
  const idAt = (block: bigint) => subs.filter((s) => BigInt(s.block) <= block).length;
  const deps = {
    getBlockNumber: async () => {
      chain.calls.push("blockNumber");
      if (chain.failHead > 0) {
        chain.failHead--;
        throw new Error("connection refused");
      }
      return chain.head;
    },
    coordinator: {
      headSubscriptionId: async (block?: bigint) => {
        chain.calls.push(`id@${block}`);
        if (block !== undefined) chain.blocksRead.add(block);
        return idAt(block ?? chain.head);
      },
    },
    reader: {
      readSubscriptionBatch: async (start: number, end: number, block: bigint) => {
        chain.calls.push(`read(${start},${end})@${block}`);
        chain.blocksRead.add(block);
        if (chain.failWhen(start)) throw new Error("fetch failed");
        if (chain.failReads > 0) {
          chain.failReads--;
          throw new Error("fetch failed");
        }
        const out: SubscriptionFields[] = [];
        for (let id = start; id < end; id++) {
          const s = subs[id - 1];
          out.push(s && BigInt(s.block) <= block ? s.fields : subFields([], { owner: ZERO_ADDRESS }));
        }
        return out;
      },
      readRedundancyCountBatch: async (ids: number[], intervals: number[], block: bigint) => {
        chain.calls.push(`redundancy(${ids.length})@${block}`);
        chain.blocksRead.add(block);
        chain.redundancyReads.push({ ids, intervals });
        return ids.map((id) => subs[id - 1]?.redundancy ?? 0);
      },
    },
  };
  return { chain, deps };
}

const rules = buildRuleTable(
  [
    { id: "a" },
    { id: "b" },
    { id: "proof", generates_proofs: true },
    { id: "no-proof" },
    { id: "priv", allowed_addresses: ["0x9999999999999999999999999999999999999999"] },
  ].map((c) => v.parse(ContainerSchema, c)),
);
const lookup = createContainerLookup(["a", "b", "proof", "no-proof", "priv"]);

function settings(overrides: Partial<ListenerSettings> = {}): ListenerSettings {
  return {
    batchSize: 3,
    batchSleepMs: 0,
    startingSubId: 0,
    syncPeriodMs: 0,
    trailHeadBlocks: 1,
    batchAttempts: 2,
    retryBaseMs: 1,
    retryMaxMs: 2,
    ...overrides,
  };
}

function listenerFor(
  subs: Parameters<typeof fakeChain>[0],
  overrides: Partial<ListenerSettings> = {},
  sleeps: number[] = [],
) {
  const { chain, deps } = fakeChain(subs);
  const tracked: Subscription[] = [];
  const rejections: string[] = [];
  const listener = createListener({
    observe: { guardianRejection: (_kind, reason) => rejections.push(reason) },
    ...deps,
    lookup,
    rules,
    paymentAddress: null,
    sink: { track: (sub) => tracked.push(sub) },
    settings: settings(overrides),
    log: createLog("listener-test"),
    clock: () => NOW * 1000,
    sleep: async (ms) => {
      sleeps.push(ms);
      await Bun.sleep(0); // yield to timers like the real sleep would
    },
  });
  return { chain, listener, tracked, rejections };
}

function captureLogs() {
  const records: LogRecord[] = [];
  const remove = addLogSink((record) => {
    if (record.component === "listener-test") records.push(record);
  });
  return { records, [Symbol.dispose]: remove };
}

describe("listener", () => {
  test("default: snapshot sync relays what passes the guardian, one block for every read of the step", async () => {
    using logs = captureLogs();
    const { chain, listener, tracked, rejections } = listenerFor([
      { fields: subFields(["a"]), block: 10 }, // 1 ok
      { fields: subFields(["unknown"]), block: 10 }, // 2 unknown container set
      { fields: subFields(["a", "b"]), block: 20 }, // 3 ok
      { fields: subFields(["no-proof"], { verifier: OWNER }), block: 20 }, // 4 no proof
      { fields: subFields(["a"]), block: 30, redundancy: 1 }, // 5 completed callback
      { fields: subFields(["a"], { activeAt: CANCELLED_ACTIVE_AT }), block: 30 }, // 6 cancelled
      { fields: subFields(["a"], { period: 10, frequency: 2, activeAt: NOW - 100 }), block: 40 }, // 7 expired
      { fields: subFields(["priv"]), block: 40 }, // 8 owner not allowed
      { fields: subFields(["a"], { paymentAmount: 1n }), block: 50 }, // 9 no payment address
      { fields: subFields(["proof"], { verifier: OWNER, activeAt: NOW + 50 }), block: 50 }, // 10 ok (inactive)
      { fields: subFields(["a"]), block: 200 }, // 11: after the head, not yet
    ]);
    expect(await listener.step()).toBe(true);
    expect(tracked.map((s) => s.id)).toEqual([1, 3, 10]);
    expect([...chain.blocksRead]).toEqual([99n]);
    // only the callbacks on their last interval (1, 5, 8, 9 are callbacks: 1 & 5 in batch 1..3/4..6 etc.)
    expect(chain.redundancyReads.flatMap((r) => r.ids)).toEqual([1, 2, 3, 4, 5, 8, 9]);
    const ignored = logs.records
      .filter((r) => r.msg === "Ignored subscription creation")
      .map((r) => [r.id, r.err]);
    // /metrics counts each by the same reason.
    expect(rejections).toEqual(ignored.map(([, err]) => String(err)));
    expect(ignored).toEqual([
      [2, "Container-set not supported"],
      [4, "Container does not generate proof"],
      [5, "Subscription completed"],
      [6, "Subscription cancelled"],
      [7, "Subscription expired"],
      [8, "Container not allowed for address"],
      [9, "Invalid payment"],
    ]);
    expect(
      logs.records.some(
        (r) => r.msg === "Skipping subscription: 9: No payment address provided for the node",
      ),
    ).toBe(true);
    expect(listener.progress()).toMatchObject({
      phase: "live",
      last_synced_block: 99,
      last_sub_id: 10,
      head_block: 100,
      head_sub_id: 10,
      relayed: 3,
      ignored: 7,
    });
  });

  test("behavior: batches of batch_size with a sleep between them, then per-block sync picks up new ids", async () => {
    const sleeps: number[] = [];
    const subs = Array.from({ length: 8 }, (_, i) => ({ fields: subFields(["a"]), block: i < 7 ? 10 : 101 }));
    const { chain, listener, tracked } = listenerFor(subs, { batchSleepMs: 250 }, sleeps);
    await listener.step();
    expect(chain.calls.filter((c) => c.startsWith("read"))).toEqual([
      "read(1,4)@99",
      "read(4,7)@99",
      "read(7,8)@99",
    ]);
    expect(sleeps).toEqual([250, 250]);
    expect(await listener.step()).toBe(false); // no new block
    chain.head = 102n;
    expect(await listener.step()).toBe(true);
    expect(tracked.map((s) => s.id)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(listener.progress().last_synced_block).toBe(101);
  });

  test("behavior: starting_sub_id is exclusive", async () => {
    const subs = Array.from({ length: 5 }, () => ({ fields: subFields(["a"]), block: 10 }));
    const { listener, tracked } = listenerFor(subs, { startingSubId: 2 });
    await listener.step();
    expect(tracked.map((s) => s.id)).toEqual([3, 4, 5]);
  });

  test("behavior: starting_sub_id above the head waits for the head to pass it", async () => {
    const subs = Array.from({ length: 6 }, (_, i) => ({ fields: subFields(["a"]), block: i < 3 ? 10 : 150 }));
    const { chain, listener, tracked } = listenerFor(subs, { startingSubId: 4 });
    expect(await listener.step()).toBe(true);
    expect(chain.calls.some((c) => c.startsWith("read"))).toBe(false);
    expect(tracked).toEqual([]);
    chain.head = 160n;
    await listener.step();
    expect(tracked.map((s) => s.id)).toEqual([5, 6]);
  });

  test("behavior: a failing batch is retried a bounded number of times", async () => {
    using logs = captureLogs();
    const subs = Array.from({ length: 6 }, () => ({ fields: subFields(["a"]), block: 10 }));
    const { chain, listener, tracked } = listenerFor(subs);
    chain.failReads = 1; // the first attempt of batch (1, 4) fails, the second succeeds
    await listener.step();
    expect(tracked.map((s) => s.id)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(logs.records.some((r) => r.msg === "Error syncing subscription batch (1, 4). Retrying...")).toBe(
      true,
    );
  });

  test("behavior: when a batch keeps failing the step gives up, keeps its position and resumes without gaps or duplicates", async () => {
    const subs = Array.from({ length: 9 }, () => ({ fields: subFields(["a"]), block: 10 }));
    const { chain, listener, tracked } = listenerFor(subs);
    chain.failWhen = (start) => start === 4;
    await expect(listener.step()).rejects.toThrow("subscription batch (4, 7) failed after 2 attempts");
    expect(tracked.map((s) => s.id)).toEqual([1, 2, 3]);
    expect(listener.progress()).toMatchObject({ phase: "snapshot", last_sub_id: 3, last_synced_block: null });
    chain.failWhen = () => false;
    await listener.step();
    expect(tracked.map((s) => s.id)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(chain.calls.filter((c) => c.startsWith("read"))).toEqual([
      "read(1,4)@99",
      "read(4,7)@99",
      "read(4,7)@99",
      "read(4,7)@99",
      "read(7,10)@99",
    ]);
  });

  test("behavior: run() survives RPC failures, backs off and finishes the sync", async () => {
    const subs = Array.from({ length: 5 }, () => ({ fields: subFields(["a"]), block: 10 }));
    const { chain, listener, tracked } = listenerFor(subs);
    chain.failHead = 3;
    const controller = new AbortController();
    const running = listener.run(controller.signal);
    const deadline = Date.now() + 5000;
    while (tracked.length < 5 && Date.now() < deadline) await Bun.sleep(1);
    controller.abort();
    await running;
    expect(tracked.map((s) => s.id)).toEqual([1, 2, 3, 4, 5]);
    expect(listener.progress().consecutive_failures).toBe(0);
  });

  test("behavior: a subscription that reads back empty (owner 0x0) is skipped silently", async () => {
    const { chain, listener, tracked } = listenerFor([
      { fields: subFields(["a"], { owner: ZERO_ADDRESS }), block: 1 },
    ]);
    await listener.step();
    expect(tracked).toEqual([]);
    expect(listener.progress().ignored).toBe(0);
    expect(chain.redundancyReads).toEqual([]);
  });
});
