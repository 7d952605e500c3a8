// The interval state machine, table-driven: every (phase, event) pair, and the retry, attempt and backoff rules.
import { describe, expect, test } from "bun:test";
import {
  advance,
  DEFAULT_RULES,
  type IntervalEvent,
  type IntervalPhase,
  type IntervalState,
  initialState,
  retryDelayMs,
} from "../../../src/chain/interval-machine.ts";

const NOW = 1_000_000;
const recurring = { nowMs: NOW, oneShot: false, rules: DEFAULT_RULES };
const oneShot = { ...recurring, oneShot: true };

function inPhase(phase: IntervalPhase, extra: Partial<IntervalState> = {}): IntervalState {
  return { ...initialState(7), phase, ...extra };
}

const EVENTS: IntervalEvent[] = [
  { kind: "checked", verdict: { kind: "ready" } },
  { kind: "checked", verdict: { kind: "redundancy-met", last: false } },
  { kind: "checked", verdict: { kind: "redundancy-met", last: true } },
  { kind: "checked", verdict: { kind: "already-responded" } },
  { kind: "checked", verdict: { kind: "payment-invalid", why: "insufficient balance" } },
  { kind: "checked", verdict: { kind: "retry" } },
  { kind: "dispatched" },
  { kind: "sent" },
  { kind: "refused", timing: true, reason: "IntervalMismatch" },
  { kind: "refused", timing: false, reason: "IntervalCompleted" },
  { kind: "container-failed" },
  { kind: "failed", retryable: true, reason: "rpc down" },
  { kind: "failed", retryable: false, reason: "gas cap" },
  { kind: "tx-success" },
  { kind: "tx-reverted" },
  { kind: "tx-dropped" },
  { kind: "fulfilled-elsewhere" },
  { kind: "undone" },
];

const name = (e: IntervalEvent) =>
  e.kind === "checked"
    ? `checked:${e.verdict.kind}${"last" in e.verdict ? `:${e.verdict.last}` : ""}`
    : e.kind === "refused"
      ? `refused:${e.timing ? "timing" : "other"}`
      : e.kind === "failed"
        ? `failed:${e.retryable}`
        : e.kind;

/** [phase, event] → [next phase, directive kind]; every pair not listed leaves the state unchanged. */
const TABLE: Record<string, [IntervalPhase, "none" | "finish" | "drop"]> = {
  "unchecked checked:ready": ["ready", "none"],
  "unchecked checked:redundancy-met:false": ["done", "finish"],
  "unchecked checked:redundancy-met:true": ["done", "drop"],
  "unchecked checked:already-responded": ["done", "finish"],
  "unchecked checked:payment-invalid": ["done", "drop"],
  "unchecked checked:retry": ["unchecked", "none"],
  "ready dispatched": ["running", "none"],
  "ready fulfilled-elsewhere": ["unchecked", "none"],
  "running sent": ["sent", "none"],
  "running refused:timing": ["unchecked", "none"],
  "running refused:other": ["done", "finish"],
  "running container-failed": ["ready", "none"],
  "running failed:true": ["unchecked", "none"],
  "running failed:false": ["done", "finish"],
  "sent tx-success": ["done", "finish"],
  "sent tx-reverted": ["unchecked", "none"],
  "sent tx-dropped": ["unchecked", "none"],
  "done undone": ["unchecked", "none"],
};

describe("interval machine: every phase × event", () => {
  const phases: IntervalPhase[] = ["unchecked", "ready", "running", "sent", "done"];
  for (const phase of phases) {
    for (const event of EVENTS) {
      const key = `${phase} ${name(event)}`;
      const expected = TABLE[key];
      test(key, () => {
        const before = inPhase(phase);
        const { state, directive } = advance(before, event, recurring);
        if (!expected) {
          expect(state).toBe(before);
          expect(directive.kind).toBe("none");
          return;
        }
        expect(state.phase).toBe(expected[0]);
        expect(directive.kind).toBe(expected[1]);
        expect(state.interval).toBe(7);
      });
    }
  }
  test("the table names only real pairs", () => {
    const names = new Set(phases.flatMap((p) => EVENTS.map((e) => `${p} ${name(e)}`)));
    for (const key of Object.keys(TABLE)) expect(names.has(key)).toBe(true);
  });
});

describe("interval machine: rules", () => {
  test("a timing refusal never gives the interval up, however often it comes", () => {
    let state = inPhase("running");
    for (let i = 1; i <= 100; i++) {
      const t = advance(state, { kind: "refused", timing: true, reason: "IntervalMismatch" }, recurring);
      expect(t.directive.kind).toBe("none");
      expect(t.state.phase).toBe("unchecked");
      expect(t.state.timingRetries).toBe(i);
      expect(t.state.notBefore).toBe(NOW + DEFAULT_RULES.timingRetryMs);
      state = { ...t.state, phase: "running" };
    }
  });

  test("reverted deliveries: checked again, then the subscription is dropped at the maximum", () => {
    let state = inPhase("sent");
    for (let attempt = 1; attempt < DEFAULT_RULES.maxAttempts; attempt++) {
      const t = advance(state, { kind: "tx-reverted" }, recurring);
      expect(t.state).toMatchObject({ phase: "unchecked", attempts: attempt });
      expect(t.directive.kind).toBe("none");
      state = { ...t.state, phase: "sent" };
    }
    const last = advance(state, { kind: "tx-reverted" }, recurring);
    expect(last.state).toMatchObject({ phase: "done", attempts: DEFAULT_RULES.maxAttempts });
    expect(last.directive).toEqual({ kind: "drop", why: "maximum attempts exceeded" });
  });

  test("container failures: backoff doubling, then the recurring interval is given up", () => {
    let state = inPhase("running");
    const delays: number[] = [];
    for (let i = 1; i < DEFAULT_RULES.maxContainerFailures; i++) {
      const t = advance(state, { kind: "container-failed" }, recurring);
      expect(t.state.phase).toBe("ready");
      delays.push(t.state.notBefore - NOW);
      state = { ...t.state, phase: "running" };
    }
    expect(delays).toEqual([2_000, 4_000]);
    const last = advance(state, { kind: "container-failed" }, recurring);
    expect(last.state.phase).toBe("done");
    expect(last.directive).toEqual({ kind: "finish", why: "container errors" });
  });

  test("a one-shot subscription's container failure finishes it at once", () => {
    const t = advance(inPhase("running"), { kind: "container-failed" }, oneShot);
    expect(t.state).toMatchObject({ phase: "done", containerFailures: 1 });
    expect(t.directive).toEqual({ kind: "finish", why: "container error" });
  });

  test("transient failures back off up to the cap", () => {
    let state = inPhase("running");
    const delays: number[] = [];
    for (let i = 0; i < 6; i++) {
      const t = advance(state, { kind: "failed", retryable: true, reason: "rpc down" }, recurring);
      delays.push(t.state.notBefore - NOW);
      state = { ...t.state, phase: "running" };
    }
    expect(delays).toEqual([2_000, 4_000, 8_000, 10_000, 10_000, 10_000]);
  });

  test("a failed due check backs off too, and keeps the interval unchecked", () => {
    const t = advance(inPhase("unchecked"), { kind: "checked", verdict: { kind: "retry" } }, recurring);
    expect(t.state).toMatchObject({ phase: "unchecked", retries: 1, notBefore: NOW + 2_000 });
  });

  test("a late outcome after the interval is finished changes nothing; only a reorganisation reopens it", () => {
    const done = inPhase("done", { attempts: 1 });
    for (const event of EVENTS.filter((e) => e.kind !== "undone")) {
      expect(advance(done, event, recurring).state).toBe(done);
    }
    expect(advance(done, { kind: "undone" }, recurring).state).toMatchObject({
      phase: "unchecked",
      notBefore: 0,
    });
  });

  test("the machine does not mutate the state it is given", () => {
    const before = inPhase("sent");
    const copy = { ...before };
    advance(before, { kind: "tx-reverted" }, recurring);
    expect(before).toEqual(copy);
  });

  test("retryDelayMs is base·2ⁿ capped", () => {
    expect([0, 1, 2, 3, 10].map((n) => retryDelayMs(n, 100, 1_000))).toEqual([100, 200, 400, 800, 1_000]);
  });
});
