// Two minutes of the soak's mixed load (bench/soak/workload.ts) through the release binary with a Redis job
// store, on anvil with 1-second blocks and the node's managed echo containers: single jobs, batches, streams
// and status reads at 13 jobs/s, a recurring subscription every 4 s and a callback every 3 s. Checked: every
// job and delivery exactly once and right, memory under the stated bound, no fd or TCP connection left behind
// once quiet, p99 not degrading. The sample table and figures are printed; `bun run bench/soak/run.ts` is the
// 30-minute version.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { BOUNDS, p99Limit } from "../../bench/soak/bounds.ts";
import { samplesTable, summaryLines } from "../../bench/soak/report.ts";
import {
  type LoadPlan,
  type LoadRig,
  MIX,
  runWorkload,
  startLoadRig,
  type WorkloadResult,
} from "../../bench/soak/workload.ts";

const PLAN: LoadPlan = { warmupS: 10, loadS: 120, sampleEveryS: 5, windowS: 30, ...MIX };

let rig: LoadRig | undefined;
let result: WorkloadResult;

beforeAll(async () => {
  rig = await startLoadRig("e2e-load");
  result = await runWorkload(rig, PLAN);
  console.log(`${samplesTable(result.samples)}\n${summaryLines(result).join("\n")}`);
  const windows = result.windows.map(
    (w) => `${w.fromS}-${w.toS}s p50 ${w.p50.toFixed(1)} p99 ${w.p99.toFixed(1)} ms`,
  );
  console.log(`latency windows: ${windows.join("; ")}`);
  if (result.errors.length > 0) console.log(`first problems:\n${result.errors.join("\n")}`);
}, 300_000);

afterAll(async () => {
  await rig?.[Symbol.asyncDispose]();
}, 60_000);

describe("two minutes of mixed off-chain jobs and subscriptions through the binary", () => {
  test("default: every off-chain job accepted completed with the right result", () => {
    const o = result.offchain;
    // The mix sends 13 jobs/s: a node that stopped accepting early would show here, not only as errors.
    expect(o.accepted).toBeGreaterThan(PLAN.loadS * 10);
    expect({ wrong: o.wrong, lost: o.lost, refused: o.refused, skipped: o.skipped }).toEqual({
      wrong: 0,
      lost: 0,
      refused: 0,
      skipped: 0,
    });
    expect(o.completed).toBe(o.accepted);
    expect(o.statusReads).toBeGreaterThan(0);
    expect(o.statusErrors).toBe(0);
  });

  test("behavior: every on-chain interval and callback delivered exactly once, none reverted", () => {
    const c = result.chain;
    expect(c.subscriptions).toBeGreaterThan(10);
    expect(c.callbacks).toBeGreaterThan(10);
    expect(c.createErrors).toBe(0);
    expect(result.missing).toEqual([]);
    expect({ duplicates: c.duplicates, wrong: c.wrong }).toEqual({ duplicates: 0, wrong: 0 });
    expect(c.delivered).toBe(c.expected);
    // The node's own counters agree: one confirmed transaction per delivery, nothing reverted or failed.
    expect(result.processor).toMatchObject({ confirmed: c.expected, reverted: 0, failed: 0 });
  });

  test(`behavior: resident memory stays under ${BOUNDS.rssLimitMb} MB at every sample`, () => {
    expect(result.samples.length).toBeGreaterThan(PLAN.loadS / PLAN.sampleEveryS);
    expect(result.peakRssKb).toBeGreaterThan(0);
    expect(result.peakRssKb).toBeLessThan(BOUNDS.rssLimitMb * 1024);
  });

  test("behavior: once quiet, open fds and TCP connections are back near their value after warm-up", () => {
    const { baseline, final } = result;
    expect(final.fds).toBeLessThanOrEqual(baseline.fds + BOUNDS.fdMargin);
    expect(final.tcpIn + final.tcpOut).toBeLessThanOrEqual(
      baseline.tcpIn + baseline.tcpOut + BOUNDS.tcpMargin,
    );
  });

  test(`behavior: p99 of the last window is at most ${BOUNDS.p99Factor}× the first's (floor ${BOUNDS.p99FloorMs} ms)`, () => {
    const first = result.windows[0];
    const last = result.windows.at(-1);
    if (!first || !last) throw new Error("no latency windows");
    expect(first.count).toBeGreaterThan(100);
    expect(last.count).toBeGreaterThan(100);
    expect(last.p99).toBeLessThanOrEqual(p99Limit(first.p99));
  });
});
