// The due check: pure verdicts (table-driven), and the reads' chunking, bounded concurrency and failure
// isolation against injected readers (the RPC edge).
import { describe, expect, test } from "bun:test";
import {
  createDueCheck,
  type DueCheckDeps,
  type DueItem,
  type DueVerdict,
  intervalVerdict,
  paymentVerdict,
  type Read,
} from "../../../src/chain/due-check.ts";
import { createLog } from "../../../src/lib/log.ts";

const NODE = "0x00000000000000000000000000000000000000aa";
const WALLET_A = "0x000000000000000000000000000000000000A001";
const WALLET_B = "0x000000000000000000000000000000000000b002";
const TOKEN = "0x000000000000000000000000000000000000C003";
const ETH = "0x0000000000000000000000000000000000000000";

const ok = <T>(value: T): Read<T> => ({ ok: true, value });
const failed: Read<never> = { ok: false, error: "RPC down" };

describe("intervalVerdict", () => {
  const base = { interval: 2, redundancy: 2, frequency: 5 };
  const paid = { ...base, payment: { wallet: WALLET_A, token: ETH, amount: 1n } };
  const cases: Array<{
    name: string;
    item: typeof base;
    count: Read<number>;
    responded: Read<boolean>;
    expected: DueVerdict | "payment";
  }> = [
    {
      name: "nobody delivered yet",
      item: base,
      count: ok(0),
      responded: ok(false),
      expected: { kind: "ready" },
    },
    {
      name: "others delivered, not all",
      item: base,
      count: ok(1),
      responded: ok(false),
      expected: { kind: "ready" },
    },
    {
      name: "redundancy met, not the last interval",
      item: base,
      count: ok(2),
      responded: ok(false),
      expected: { kind: "redundancy-met", count: 2, last: false },
    },
    {
      name: "redundancy met on the last interval",
      item: { ...base, interval: 5 },
      count: ok(3),
      responded: ok(true),
      expected: { kind: "redundancy-met", count: 3, last: true },
    },
    {
      name: "met wins over a failed responded read",
      item: base,
      count: ok(2),
      responded: failed,
      expected: { kind: "redundancy-met", count: 2, last: false },
    },
    {
      name: "this node responded",
      item: base,
      count: ok(1),
      responded: ok(true),
      expected: { kind: "already-responded" },
    },
    {
      name: "responded is known even if the count read failed",
      item: base,
      count: failed,
      responded: ok(true),
      expected: { kind: "already-responded" },
    },
    {
      name: "count read failed",
      item: base,
      count: failed,
      responded: ok(false),
      expected: { kind: "retry", error: "RPC down" },
    },
    {
      name: "responded read failed",
      item: base,
      count: ok(0),
      responded: failed,
      expected: { kind: "retry", error: "RPC down" },
    },
    {
      name: "paid and open: payment decides",
      item: paid,
      count: ok(0),
      responded: ok(false),
      expected: "payment",
    },
    {
      name: "paid but met: no payment check",
      item: paid,
      count: ok(2),
      responded: ok(false),
      expected: { kind: "redundancy-met", count: 2, last: false },
    },
  ];
  test.each(cases)("behavior: $name", ({ item, count, responded, expected }) => {
    expect(intervalVerdict(item, count, responded)).toEqual(expected);
  });
});

describe("paymentVerdict", () => {
  const cases: Array<{
    name: string;
    amount: bigint;
    valid: Read<boolean>;
    balance: Read<bigint> | undefined;
    expected: DueVerdict;
  }> = [
    { name: "valid, enough", amount: 10n, valid: ok(true), balance: ok(10n), expected: { kind: "ready" } },
    {
      name: "valid, short",
      amount: 10n,
      valid: ok(true),
      balance: ok(9n),
      expected: { kind: "insufficient-balance", balance: 9n },
    },
    {
      name: "not a factory wallet",
      amount: 10n,
      valid: ok(false),
      balance: undefined,
      expected: { kind: "invalid-wallet" },
    },
    {
      name: "validity read failed",
      amount: 10n,
      valid: failed,
      balance: undefined,
      expected: { kind: "retry", error: "RPC down" },
    },
    {
      name: "balance read failed",
      amount: 10n,
      valid: ok(true),
      balance: failed,
      expected: { kind: "retry", error: "RPC down" },
    },
    {
      name: "balance never read",
      amount: 10n,
      valid: ok(true),
      balance: undefined,
      expected: { kind: "retry", error: "balance not read" },
    },
  ];
  test.each(cases)("behavior: $name", ({ amount, valid, balance, expected }) => {
    expect(paymentVerdict(amount, valid, balance)).toEqual(expected);
  });
});

/** Injected chain reads: counts and responses per "id:interval", wallets, balances; records every call. */
function fakeReads(opts: {
  counts?: (id: number, interval: number) => number;
  responded?: (id: number, interval: number) => boolean;
  failCounts?: (ids: number[]) => boolean;
  failResponded?: (ids: number[]) => boolean;
  valid?: Record<string, boolean | Error>;
  balances?: Record<string, bigint | Error>;
}) {
  const calls = {
    counts: [] as number[][],
    responded: [] as number[][],
    valid: [] as string[],
    balance: [] as string[],
  };
  let inFlight = 0;
  let maxInFlight = 0;
  const track = async <T>(fn: () => T): Promise<T> => {
    maxInFlight = Math.max(maxInFlight, ++inFlight);
    try {
      await Bun.sleep(0); // answers come later, as over the network
      return fn();
    } finally {
      inFlight--;
    }
  };
  const deps: DueCheckDeps = {
    node: NODE,
    log: createLog("due-check-test"),
    reader: {
      readRedundancyCountBatch: (ids, intervals, block) => {
        calls.counts.push(ids);
        expect(block).toBe(77n);
        return track(() => {
          if (opts.failCounts?.(ids)) throw new Error("execution reverted: out of gas");
          return ids.map((id, i) => opts.counts?.(id, intervals[i] ?? 0) ?? 0);
        });
      },
    },
    nodeResponded: (pairs, node, block) => {
      calls.responded.push(pairs.map((p) => p.id));
      expect(node).toBe(NODE);
      expect(block).toBe(77n);
      return track(() => {
        if (opts.failResponded?.(pairs.map((p) => p.id))) throw new Error("request entity too large");
        return pairs.map((p) => opts.responded?.(p.id, p.interval) ?? false);
      });
    },
    walletChecker: {
      isValidWallet: (wallet, block) => {
        calls.valid.push(wallet);
        expect(block).toBe(77n);
        return track(() => {
          const value = opts.valid?.[wallet.toLowerCase()] ?? true;
          if (value instanceof Error) throw value;
          return value;
        });
      },
      balanceOf: (wallet, token, block) => {
        calls.balance.push(`${wallet.toLowerCase()}:${token.toLowerCase()}`);
        expect(block).toBe(77n);
        return track(() => {
          const value = opts.balances?.[`${wallet.toLowerCase()}:${token.toLowerCase()}`] ?? 0n;
          if (value instanceof Error) throw value;
          return value;
        });
      },
    },
  };
  return { deps, calls, maxInFlight: () => maxInFlight };
}

const items = (count: number, extra: Partial<DueItem> = {}): DueItem[] =>
  Array.from({ length: count }, (_, i) => ({
    key: String(i + 1),
    id: i + 1,
    interval: 1,
    redundancy: 1,
    frequency: 1,
    ...extra,
  }));

describe("due check reads", () => {
  test("default: chunks of chunkSize pairs, two reads per chunk, at most `concurrency` in flight", async () => {
    const reads = fakeReads({ counts: (id) => (id % 10 === 0 ? 1 : 0), responded: (id) => id % 10 === 5 });
    const check = createDueCheck({ ...reads.deps, chunkSize: 100, concurrency: 3 });
    const verdicts = await check.check(items(1_234), 77n);

    expect(reads.calls.counts.map((ids) => ids.length)).toEqual([...Array(12).fill(100), 34]);
    expect(reads.calls.responded.map((ids) => ids.length)).toEqual([...Array(12).fill(100), 34]);
    expect(reads.calls.counts.flat()).toEqual(Array.from({ length: 1_234 }, (_, i) => i + 1));
    expect(reads.maxInFlight()).toBe(3);
    expect(verdicts.size).toBe(1_234);
    expect(verdicts.get("10")).toEqual({ kind: "redundancy-met", count: 1, last: true });
    expect(verdicts.get("15")).toEqual({ kind: "already-responded" });
    expect(verdicts.get("16")).toEqual({ kind: "ready" });
    expect(reads.calls.valid).toEqual([]); // nobody pays
  });

  test("behavior: a failed chunk gives retry to its items only", async () => {
    // The chunk holding id 250 fails its count read; the chunk holding 420 its responded read.
    const reads = fakeReads({
      failCounts: (ids) => ids.includes(250),
      failResponded: (ids) => ids.includes(420),
      counts: (id) => (id === 410 ? 1 : 0),
    });
    const check = createDueCheck({ ...reads.deps, chunkSize: 100 });
    const verdicts = await check.check(items(500), 77n);
    const kinds = (from: number, to: number) =>
      new Set([...Array(to - from + 1)].map((_, i) => verdicts.get(String(from + i))?.kind));
    expect(kinds(1, 200)).toEqual(new Set(["ready"]));
    expect(kinds(201, 300)).toEqual(new Set(["retry"]));
    expect(verdicts.get("250")).toEqual({
      kind: "retry",
      error: "readRedundancyCountBatch: execution reverted: out of gas",
    });
    expect(verdicts.get("410")).toEqual({ kind: "redundancy-met", count: 1, last: true }); // known without responded
    expect(verdicts.get("420")?.kind).toBe("retry");
    expect(kinds(301, 400)).toEqual(new Set(["ready"]));
    expect(kinds(401, 409)).toEqual(new Set(["retry"]));
    expect(kinds(411, 500)).toEqual(new Set(["retry"]));
  });

  test("behavior: an answer of the wrong length fails that chunk, never the check", async () => {
    const reads = fakeReads({});
    const check = createDueCheck({
      ...reads.deps,
      chunkSize: 2,
      reader: { readRedundancyCountBatch: async (ids) => (ids.includes(3) ? [0] : ids.map(() => 0)) },
    });
    const verdicts = await check.check(items(4), 77n);
    expect([...verdicts.values()].map((v) => v.kind)).toEqual(["ready", "ready", "retry", "retry"]);
    expect(verdicts.get("3")).toEqual({
      kind: "retry",
      error: "readRedundancyCountBatch: counts read returned 1 values for 2 pairs",
    });
  });

  test("behavior: a reader that throws synchronously still gives verdicts", async () => {
    const reads = fakeReads({});
    const check = createDueCheck({
      ...reads.deps,
      reader: {
        readRedundancyCountBatch: () => {
          throw new Error("boom");
        },
      },
    });
    const verdicts = await check.check(items(3), 77n);
    expect([...verdicts.values()]).toEqual(
      Array(3).fill({ kind: "retry", error: "readRedundancyCountBatch: boom" }),
    );
  });

  test("behavior: payment reads deduplicated per wallet and per (wallet, token); per-subscription amounts", async () => {
    const reads = fakeReads({
      valid: { [WALLET_B.toLowerCase()]: false },
      balances: {
        [`${WALLET_A.toLowerCase()}:${ETH}`]: 10n,
        [`${WALLET_A.toLowerCase()}:${TOKEN.toLowerCase()}`]: 3n,
      },
      counts: (id) => (id === 6 ? 1 : 0),
    });
    const check = createDueCheck({ ...reads.deps, concurrency: 2 });
    const pay = (wallet: string, token: string, amount: bigint) => ({ payment: { wallet, token, amount } });
    const list: DueItem[] = [
      { ...items(1)[0], key: "1", id: 1, ...pay(WALLET_A, ETH, 6n) } as DueItem,
      { ...items(1)[0], key: "2", id: 2, ...pay(WALLET_A.toLowerCase(), ETH, 6n) } as DueItem, // same wallet, other case
      { ...items(1)[0], key: "3", id: 3, ...pay(WALLET_A, TOKEN, 4n) } as DueItem,
      { ...items(1)[0], key: "4", id: 4, ...pay(WALLET_B, ETH, 1n) } as DueItem,
      { ...items(1)[0], key: "5", id: 5 } as DueItem,
      { ...items(1)[0], key: "6", id: 6, ...pay(WALLET_B, TOKEN, 1n) } as DueItem, // met: no payment read needed
    ];
    const verdicts = await check.check(list, 77n);
    expect(Object.fromEntries(verdicts)).toEqual({
      "1": { kind: "ready" }, // 10 >= 6: each subscription against the whole balance, as the reference
      "2": { kind: "ready" },
      "3": { kind: "insufficient-balance", balance: 3n },
      "4": { kind: "invalid-wallet" },
      "5": { kind: "ready" },
      "6": { kind: "redundancy-met", count: 1, last: true },
    });
    expect(reads.calls.valid.map((w) => w.toLowerCase()).sort()).toEqual(
      [WALLET_A, WALLET_B].map((w) => w.toLowerCase()).sort(),
    );
    expect(reads.calls.balance.sort()).toEqual(
      [`${WALLET_A.toLowerCase()}:${ETH}`, `${WALLET_A.toLowerCase()}:${TOKEN.toLowerCase()}`].sort(),
    );
    expect(reads.maxInFlight()).toBeLessThanOrEqual(2);
  });

  test("behavior: a failed wallet read gives retry to that wallet's items only", async () => {
    const reads = fakeReads({
      valid: { [WALLET_A.toLowerCase()]: new Error("RPC down") },
      balances: { [`${WALLET_B.toLowerCase()}:${ETH}`]: 5n },
    });
    const check = createDueCheck(reads.deps);
    const verdicts = await check.checkPayments(
      [
        {
          key: "a",
          id: 0,
          interval: 1,
          redundancy: 1,
          frequency: 1,
          payment: { wallet: WALLET_A, token: ETH, amount: 1n },
        },
        {
          key: "b",
          id: 0,
          interval: 1,
          redundancy: 1,
          frequency: 1,
          payment: { wallet: WALLET_B, token: ETH, amount: 1n },
        },
        { key: "c", id: 0, interval: 1, redundancy: 1, frequency: 1 },
      ],
      77n,
    );
    expect(Object.fromEntries(verdicts)).toEqual({
      a: { kind: "retry", error: "isValidWallet: RPC down" },
      b: { kind: "ready" },
      c: { kind: "ready" },
    });
    expect(reads.calls.counts).toEqual([]); // delegated: no interval reads
  });

  test("default: nothing due, no call", async () => {
    const reads = fakeReads({});
    const verdicts = await createDueCheck(reads.deps).check([], 77n);
    expect(verdicts.size).toBe(0);
    expect(reads.calls).toEqual({ counts: [], responded: [], valid: [], balance: [] });
  });
});
