// Memory over many intervals, without a chain: the processor's own per-subscription structures (the due
// schedule, one interval state per subscription driven through the state machine, the Subscription's response
// caches) for N recurring subscriptions through M intervals each, as the processor drives them when every
// interval is delivered. Heap after a warm-up of M/10 intervals against heap at the end: flat means no
// per-interval growth (the old processor kept an entry per interval in Subscription.responses / replied).
//
//   bun run bench/scale/intervals.ts [--subs 1000] [--intervals 10000]
import { heapStats } from "bun:jsc";
import { parseArgs } from "node:util";
import { DueSchedule } from "../../src/chain/due-schedule.ts";
import {
  advance,
  DEFAULT_RULES,
  type IntervalState,
  initialState,
} from "../../src/chain/interval-machine.ts";
import { Subscription, ZERO_ADDRESS } from "../../src/shared/subscription.ts";

const { values } = parseArgs({
  options: { subs: { type: "string", default: "1000" }, intervals: { type: "string", default: "10000" } },
});
const subs = Number(values.subs);
const intervals = Number(values.intervals);
const PERIOD = 10;
const T0 = 1_700_000_000;
let nowMs = T0 * 1000;

const tracked = Array.from({ length: subs }, (_, i) => ({
  key: String(i + 1),
  sub: new Subscription(
    i + 1,
    {
      owner: ZERO_ADDRESS,
      activeAt: T0,
      period: PERIOD,
      frequency: intervals + 1,
      redundancy: 1,
      containerId: `0x${"ab".repeat(32)}`,
      lazy: false,
      verifier: ZERO_ADDRESS,
      paymentAmount: 0n,
      paymentToken: ZERO_ADDRESS,
      wallet: ZERO_ADDRESS,
    },
    ["echo"],
    () => nowMs,
  ),
  state: undefined as IntervalState | undefined,
}));
const schedule = new DueSchedule();
for (const t of tracked) schedule.schedule(t.key, T0 * 1000 + 1);
const byKey = new Map(tracked.map((t) => [t.key, t]));
const ctx = () => ({ nowMs, oneShot: false, rules: DEFAULT_RULES });

function heapMb(): number {
  Bun.gc(true);
  return heapStats().heapSize / 1024 / 1024;
}

let warm = 0;
const t0 = performance.now();
for (let interval = 1; interval <= intervals; interval++) {
  nowMs = (T0 + (interval - 1) * PERIOD) * 1000 + 1;
  for (const key of schedule.takeDue(nowMs)) {
    const t = byKey.get(key);
    if (!t) continue;
    const current = t.sub.interval(nowMs / 1000);
    t.state = initialState(current);
    for (const event of [
      { kind: "checked", verdict: { kind: "ready" } },
      { kind: "dispatched" },
      { kind: "sent" },
      { kind: "tx-success" },
    ] as const) {
      t.state = advance(t.state, event, ctx()).state;
    }
    t.sub.setResponseCount(current, 1, nowMs / 1000);
    t.sub.markReplied(current);
    schedule.schedule(key, (t.sub.activeAt + current * t.sub.period) * 1000);
  }
  if (interval === Math.ceil(intervals / 10)) warm = heapMb();
}
const end = heapMb();
const seconds = (performance.now() - t0) / 1000;
console.log(
  `intervals: ${subs} subscriptions x ${intervals} intervals (${(subs * intervals).toLocaleString("en")} interval deliveries) in ${seconds.toFixed(1)} s; heap ${warm.toFixed(1)} MB after ${Math.ceil(intervals / 10)} intervals, ${end.toFixed(1)} MB after ${intervals} (${(end - warm).toFixed(1)} MB)`,
);
console.log(`  target (flat: < 5 MB growth): ${end - warm < 5 ? "met" : "MISSED"}`);
