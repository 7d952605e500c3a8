// The event scanner against a scripted provider (getLogs injected, the edge we do not own): range caps with and
// without suggestions, outages, a chain that gets shorter. Refusals are viem's real error classes.
import { describe, expect, test } from "bun:test";
import { HttpRequestError, RpcRequestError, TimeoutError } from "viem";
import {
  confirmCancelled,
  createEventScanner,
  createRangeGovernor,
  type EventScannerDeps,
  type ScanLog,
  shrunkRange,
} from "../../../src/chain/event-scan.ts";
import type { LogRangeHint } from "../../../src/chain/log-range.ts";
import { createLog } from "../../../src/lib/log.ts";
import { CANCELLED_ACTIVE_AT } from "../../../src/shared/subscription.ts";

const url = "http://rpc.invalid";
const refusal = (code: number, message: string, data?: unknown) =>
  new RpcRequestError({
    body: { method: "eth_getLogs" },
    error: { code, message, ...(data === undefined ? {} : { data }) },
    url,
  });
const outage = () => new HttpRequestError({ url, status: 503, details: "Service Unavailable" });

/**
 * A provider over a chain with an event every `every` blocks (alternating cancelled / fulfilled, id = block),
 * refusing spans per `refuse`; records each call's range and whether it was answered.
 */
function fakeProvider(
  refuse: (from: bigint, to: bigint, call: number) => unknown = () => undefined,
  every = 3n,
) {
  const calls: Array<{ from: bigint; to: bigint; ok: boolean }> = [];
  const getLogs = async (from: bigint, to: bigint): Promise<ScanLog[]> => {
    const problem = refuse(from, to, calls.length);
    calls.push({ from, to, ok: problem === undefined });
    await Bun.sleep(0); // answers come later, as over the network
    if (problem !== undefined) throw problem;
    const logs: ScanLog[] = [];
    for (let block = from; block <= to; block++) {
      if (block % every !== 0n) continue;
      logs.push({
        eventName: (block / every) % 2n === 0n ? "SubscriptionCancelled" : "SubscriptionFulfilled",
        args: { id: Number(block) },
        blockNumber: block,
      });
    }
    return logs;
  };
  const answered = () => calls.filter((call) => call.ok);
  return { calls, answered, getLogs };
}

function scanner(getLogs: EventScannerDeps["getLogs"], overrides: Partial<EventScannerDeps> = {}) {
  let now = 1_000_000;
  const scan = createEventScanner({
    getLogs,
    log: createLog("event-scan-test"),
    ...overrides,
    clock: () => now,
  });
  return {
    scan,
    later: (ms: number) => {
      now += ms;
    },
  };
}

/** Every block in [first, last] answered exactly once, in order, with no gap. */
function expectContiguous(ranges: Array<{ from: bigint; to: bigint }>, first: bigint, last: bigint) {
  let expected = first;
  for (const { from, to } of ranges) {
    expect(from).toBe(expected);
    expect(to >= from).toBe(true);
    expected = to + 1n;
  }
  expect(expected).toBe(last + 1n);
}

describe("shrunkRange", () => {
  const cases: Array<{ span: bigint; hint: LogRangeHint | "refusal"; expected: bigint }> = [
    { span: 1000n, hint: "refusal", expected: 500n },
    { span: 1n, hint: "refusal", expected: 1n },
    { span: 3n, hint: "refusal", expected: 1n },
    { span: 1000n, hint: { from: 10n, to: 109n }, expected: 100n },
    { span: 1000n, hint: { maxBlocks: 64n }, expected: 64n },
    { span: 50n, hint: { maxBlocks: 64n }, expected: 25n }, // the span was within the cap: results, so halve
    { span: 1000n, hint: { from: 10n, to: 2000n }, expected: 500n }, // suggestion no smaller: halve
  ];
  test.each(cases)("behavior: case %#: span and hint give the next span", ({ span, hint, expected }) => {
    expect(shrunkRange(span, hint)).toBe(expected);
  });
});

describe("range governor", () => {
  // Each step: "ok" (the current range accepted) or a refusal of the current range; then the range expected.
  type Step = "ok" | "refused" | "timeout" | { maxBlocks: bigint } | { from: bigint; to: bigint };
  const cases: Array<{ name: string; probeAfter?: number; steps: Array<[Step, bigint]> }> = [
    {
      name: "halves, then grows back towards the refused span by halving the distance",
      steps: [
        ["refused", 500n],
        ["refused", 250n],
        ["ok", 250n],
        ["ok", 375n],
        ["ok", 375n],
        ["ok", 437n],
      ],
    },
    {
      name: "a refused span is forgotten after probeAfter successes: doubling again up to maxRange",
      probeAfter: 2,
      steps: [
        ["refused", 500n],
        ["ok", 500n],
        ["ok", 1000n],
      ],
    },
    {
      name: "an unnamed hard cap (5) is found by bisection, not by a refusal per doubling",
      steps: [
        ["refused", 500n],
        ["refused", 250n],
        ["refused", 125n],
        ["refused", 62n],
        ["refused", 31n],
        ["refused", 15n],
        ["refused", 7n],
        ["refused", 3n], // 7 refused: 3
        ["ok", 3n],
        ["ok", 6n],
        ["refused", 3n], // 6 refused: back to the 3 accepted
        ["ok", 3n],
        ["ok", 4n],
        ["ok", 4n],
        ["ok", 5n], // towards 6 by halves
        ["ok", 5n],
        ["ok", 5n],
        ["ok", 5n], // between 5 and 6 there is nothing left to try
      ],
    },
    {
      name: "a refusal falls back to the span just accepted rather than to half",
      steps: [
        ["refused", 500n],
        ["ok", 500n],
        ["ok", 750n],
        ["refused", 500n],
      ],
    },
    {
      name: "a named span is used at once and is a ceiling for good",
      probeAfter: 1,
      steps: [
        [{ maxBlocks: 64n }, 64n],
        ["ok", 64n],
        ["ok", 64n],
        ["ok", 64n],
        ["ok", 64n],
      ],
    },
    {
      name: "a named range is used at once",
      steps: [
        [{ from: 10n, to: 109n }, 100n],
        ["ok", 100n],
        ["ok", 200n],
      ],
    },
    {
      name: "a timeout halves but is not remembered as a cap",
      steps: [
        ["timeout", 500n],
        ["ok", 500n],
        ["ok", 1000n],
      ],
    },
    {
      name: "an accepted span refused later (denser logs) is not a floor",
      steps: [
        ["refused", 500n],
        ["ok", 500n],
        ["refused", 250n],
        ["refused", 125n],
      ],
    },
  ];
  test.each(cases)("behavior: $name", ({ steps, probeAfter }) => {
    const governor = createRangeGovernor({
      maxRange: 1_000n,
      minRange: 1n,
      growAfter: 2,
      probeAfter: probeAfter ?? 100,
    });
    const seen: bigint[] = [];
    for (const [step] of steps) {
      const span = governor.range();
      if (step === "ok") governor.accepted(span);
      else if (step === "timeout") governor.refused(span, "refusal", { learn: false });
      else governor.refused(span, step === "refused" ? "refusal" : step, { learn: true });
      seen.push(governor.range());
    }
    expect(seen).toEqual(steps.map(([, range]) => range));
  });
});

describe("event scanner", () => {
  test("default: starts startBack behind the first head, reaches it, events in chain order", async () => {
    const provider = fakeProvider();
    const { scan } = scanner(provider.getLogs);
    const step = await scan.advance(1_000n);
    expect(provider.calls.map(({ from, to }) => [from, to])).toEqual([[900n, 1_000n]]);
    expect(step.scannedTo).toBe(1_000n);
    expect(step.behind).toBe(0n);
    expect(step.error).toBeUndefined();
    expect(step.events[0]).toEqual({ kind: "cancelled", id: 900, blockNumber: 900n });
    expect(step.events[1]).toEqual({ kind: "fulfilled", id: 903, blockNumber: 903n });
    expect(step.events.map((e) => e.id)).toEqual(Array.from({ length: 34 }, (_, i) => 900 + 3 * i));

    // Nothing new: no call. One new block: one call for it.
    expect((await scan.advance(1_000n)).events).toEqual([]);
    await scan.advance(1_001n);
    expect(provider.calls.slice(1).map(({ from, to }) => [from, to])).toEqual([[1_001n, 1_001n]]);
  });

  test("behavior: a block-range cap the provider names is used at once and becomes the ceiling", async () => {
    const provider = fakeProvider((from, to) =>
      to - from + 1n > 64n ? refusal(-32602, "eth_getLogs is limited to 64 block range") : undefined,
    );
    const { scan } = scanner(provider.getLogs, { startBack: 0n, maxCallsPerStep: 100 });
    await scan.advance(0n); // first head: the cursor starts at block 0
    const step = await scan.advance(1_000n);
    expect(step.scannedTo).toBe(1_000n);
    expect(provider.calls[1]).toEqual({ from: 1n, to: 1_000n, ok: false });
    // After the one refusal: 64-block calls only, never grown past the cap.
    expect(provider.calls.slice(2).every((call) => call.ok && call.to - call.from + 1n <= 64n)).toBe(true);
    expect(provider.calls.filter((call) => !call.ok)).toHaveLength(1);
    expect(scan.state().ceiling).toBe(64n);
    expectContiguous(provider.answered(), 0n, 1_000n);
  });

  test("behavior: a result cap without numbers halves the range, then it grows back (x2) after successes", async () => {
    let dense = true; // a busy stretch: more than 100 blocks' events refused
    const provider = fakeProvider((from, to) =>
      dense && to - from + 1n > 100n ? refusal(-32005, "query returned more than 10000 results") : undefined,
    );
    const { scan } = scanner(provider.getLogs, { startBack: 0n, maxCallsPerStep: 6, probeAfter: 10 });
    await scan.advance(0n);
    await scan.advance(20_000n);
    // 1000 → 500 → 250 → 125 → 62: four refusals, then 62 blocks answered, all within one step's 6 calls.
    expect(provider.calls.map((call) => call.to - call.from + 1n)).toEqual([
      1n,
      1_000n,
      500n,
      250n,
      125n,
      62n,
      62n,
    ]);
    dense = false;
    for (let i = 0; i < 20; i++) await scan.advance(20_000n);
    const spans = provider.answered().map((call) => call.to - call.from + 1n);
    // Grows x2 every 2 successes but stays below the refused 125 for probeAfter (10) calls, then up to maxRange.
    expect(spans.slice(0, 12)).toEqual([1n, 62n, 62n, ...Array(8).fill(124n), 248n]);
    expect(spans).toContain(248n);
    expect(spans).toContain(1_000n);
    expect(spans.every((span) => span <= 1_000n)).toBe(true);
    expect(scan.state().range).toBe(1_000n);
    expectContiguous(provider.answered(), 0n, 20_000n);
  });

  test("behavior: a hard 5-block cap refused with a bare -32005: adapts, then a few refused probes per probeAfter calls", async () => {
    const provider = fakeProvider((from, to) =>
      to - from + 1n > 5n ? refusal(-32005, "limit exceeded") : undefined,
    );
    const { scan } = scanner(provider.getLogs, { startBack: 0n, maxCallsPerStep: 4 });
    await scan.advance(0n);
    for (let i = 0; i < 300; i++) await scan.advance(5_000n);
    const refused = provider.calls.filter((call) => !call.ok).length;
    const answered = provider.answered();
    // Halving from 1000 to 3 (8 refusals), bisecting up to 5 (one more), then every probeAfter (100) answered
    // calls one doubling and its bisection back (at most 3 refusals).
    expect(answered.length).toBeGreaterThan(900);
    expect(refused).toBeLessThanOrEqual(9 + 3 * Math.ceil(answered.length / 100));
    expect(scan.state().range).toBe(5n);
    expect(answered.slice(-100).every((call) => call.to - call.from + 1n <= 5n)).toBe(true);
    expect(answered.slice(-100).filter((call) => call.to - call.from + 1n === 5n).length).toBeGreaterThan(90);
  });

  test("behavior: the provider's suggested range [0x…, 0x…] is what the next call asks", async () => {
    const provider = fakeProvider((from, to, call) =>
      call === 1
        ? refusal(
            -32005,
            `query returned more than 10000 results. Try with this block range [0x${from.toString(16)}, 0x${(from + 99n).toString(16)}].`,
          )
        : to < from
          ? new Error("reversed")
          : undefined,
    );
    const { scan } = scanner(provider.getLogs, { startBack: 0n });
    await scan.advance(10n);
    await scan.advance(5_000n);
    expect(provider.calls[2]).toEqual({ from: 11n, to: 110n, ok: true });
  });

  test("behavior: no gap and no duplicate over many steps with caps, outages and a moving head", async () => {
    let seed = 17;
    const random = () => {
      seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648;
      return seed / 2_147_483_648;
    };
    const provider = fakeProvider((from, to) => {
      const r = random();
      if (r < 0.15) return outage();
      if (r < 0.25) return new TimeoutError({ body: {}, url });
      if (to - from + 1n > 37n) return refusal(35, "query exceeds max results 20000");
      return undefined;
    });
    const { scan, later } = scanner(provider.getLogs, { startBack: 0n, backoffMaxMs: 5_000 });
    let head = 0n;
    const seen: number[] = [];
    seen.push(...(await scan.advance(head)).events.map((e) => e.id));
    for (let step = 0; step < 400; step++) {
      head += BigInt(Math.floor(random() * 20));
      const result = await scan.advance(head);
      seen.push(...result.events.map((e) => e.id));
      expect(result.behind).toBe(result.scannedTo === null ? head + 1n : head - result.scannedTo);
      later(1_000);
    }
    for (let i = 0; i < 1_000 && scan.state().next !== head + 1n; i++) {
      later(10_000);
      seen.push(...(await scan.advance(head)).events.map((e) => e.id));
    }
    expect(scan.state().next).toBe(head + 1n);
    expectContiguous(provider.answered(), 0n, head);
    const expected: number[] = [];
    for (let block = 0n; block <= head; block += 3n) expected.push(Number(block));
    expect(seen).toEqual(expected);
  });

  test("behavior: an outage is returned as error, the cursor stays, calls pause with capped backoff", async () => {
    let down = true;
    const provider = fakeProvider(() => (down ? outage() : undefined));
    const { scan, later } = scanner(provider.getLogs, {
      startBack: 10n,
      backoffBaseMs: 1_000,
      backoffMaxMs: 8_000,
    });
    const first = await scan.advance(100n);
    expect(first.error).toContain("HTTP request failed");
    expect(first.scannedTo).toBeNull();
    expect(first.behind).toBe(11n);
    expect(provider.calls).toHaveLength(1); // no hammering within the step

    const paused = await scan.advance(101n);
    expect(provider.calls).toHaveLength(1); // backing off: no call, and no error repeated
    expect(paused.error).toBeUndefined();
    expect(scan.state().failing).toContain("HTTP request failed");

    // Many failures: the pause stays within the cap (8 s + 20% jitter).
    for (let i = 0; i < 10; i++) {
      later(9_601);
      await scan.advance(101n);
    }
    expect(provider.calls).toHaveLength(11);
    down = false;
    later(9_601);
    const back = await scan.advance(101n);
    expect(back.error).toBeUndefined();
    expect(back.scannedTo).toBe(101n);
    expect(provider.answered()).toEqual([{ from: 90n, to: 101n, ok: true }]);
    expect(scan.state().failing).toBeUndefined();
  });

  test("behavior: a refusal at the smallest range is a failure with backoff, not a loop", async () => {
    const provider = fakeProvider(() => refusal(-32602, "block range too large"));
    const { scan } = scanner(provider.getLogs, { startBack: 99n, maxRange: 4n, maxCallsPerStep: 10 });
    const step = await scan.advance(100n);
    expect(provider.calls.map((call) => call.to - call.from + 1n)).toEqual([4n, 2n, 1n]);
    expect(step.error).toContain("block range too large");
    expect(step.scannedTo).toBeNull();
  });

  test("behavior: a timeout shrinks the range but waits for the next step", async () => {
    const provider = fakeProvider((_from, _to, call) =>
      call === 0 ? new TimeoutError({ body: {}, url }) : undefined,
    );
    const { scan } = scanner(provider.getLogs, { startBack: 999n });
    const step = await scan.advance(1_999n);
    expect(provider.calls).toHaveLength(1);
    expect(step.error).toBeUndefined();
    expect(step.behind).toBe(1_000n);
    await scan.advance(1_999n);
    expect(provider.calls[1]).toEqual({ from: 1_000n, to: 1_499n, ok: true });
  });

  test("behavior: at most maxCallsPerStep calls per step; far behind, it catches up over steps", async () => {
    const provider = fakeProvider();
    const { scan } = scanner(provider.getLogs, { startBack: 10_000n, maxRange: 1_000n, maxCallsPerStep: 4 });
    const step = await scan.advance(20_000n);
    expect(provider.calls).toHaveLength(4);
    expect(step.scannedTo).toBe(13_999n);
    expect(step.behind).toBe(6_001n);
  });

  test("behavior: a chain shorter than the scan rewinds the cursor to the head and rescans it", async () => {
    const provider = fakeProvider();
    const { scan } = scanner(provider.getLogs, { startBack: 0n });
    await scan.advance(200n);
    const step = await scan.advance(195n);
    expect(provider.calls.at(-1)).toEqual({ from: 195n, to: 195n, ok: true });
    expect(step.scannedTo).toBe(195n);
    expect(step.events).toEqual([{ kind: "fulfilled", id: 195, blockNumber: 195n }]);
    await scan.advance(197n);
    expect(provider.calls.at(-1)).toEqual({ from: 196n, to: 197n, ok: true });
  });

  test("behavior: advance never throws (sync throw, non-Error, malformed logs) and calls do not overlap", async () => {
    let calls = 0;
    const weird: EventScannerDeps["getLogs"] = () => {
      if (calls++ === 0) throw "not even an Error";
      return Promise.resolve([
        { eventName: "SubscriptionCancelled", args: {}, blockNumber: 5n }, // no id
        { eventName: "Other", args: { id: 3 }, blockNumber: 5n },
        { eventName: "SubscriptionFulfilled", args: { id: 7n }, blockNumber: null },
      ]);
    };
    const { scan, later } = scanner(weird, { startBack: 0n });
    const failed = await scan.advance(0n);
    expect(failed.error).toBe("not even an Error");
    later(60_000);
    const [a, b] = await Promise.all([scan.advance(9n), scan.advance(9n)]);
    expect(a?.events).toEqual([{ kind: "fulfilled", id: 7, blockNumber: 9n }]);
    expect(b?.events).toEqual([]); // the overlapping call returned at once
  });
});

describe("confirmCancelled", () => {
  test("behavior: only ids whose activeAt is 2^32-1 now are dropped; failed reads are unconfirmed", async () => {
    const activeAt: Record<number, number | Error> = {
      1: CANCELLED_ACTIVE_AT, // cancelled for real
      2: 1_700_000_000, // the cancellation was in an orphaned block: still active
      3: new Error("RPC down"),
      4: CANCELLED_ACTIVE_AT,
    };
    let inFlight = 0;
    let maxInFlight = 0;
    const reads: number[] = [];
    const result = await confirmCancelled(
      async (id) => {
        reads.push(id);
        maxInFlight = Math.max(maxInFlight, ++inFlight);
        await Bun.sleep(0);
        inFlight--;
        const value = activeAt[id];
        if (value instanceof Error || value === undefined) throw value ?? new Error("unknown");
        return value;
      },
      [1, 2, 3, 4, 1, 4],
      2,
    );
    expect(result).toEqual({ cancelled: [1, 4], unconfirmed: [3] });
    expect(reads.sort()).toEqual([1, 2, 3, 4]); // deduplicated
    expect(maxInFlight).toBe(2);
  });
});
