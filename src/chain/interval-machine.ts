// The life of one due interval of one subscription, as a pure state machine: phases, attempts, container
// retries, timing retries and backoff. No I/O, no clock of its own (the caller passes `nowMs`), no logging: the
// processor feeds it events (a due-check verdict, a dispatch, what the delivery did, what became of the
// transaction) and acts on the directive it returns. Every phase change of an interval happens here, so the
// rules can be read in one place and tested exhaustively (test/unit/chain/interval-machine.test.ts).
//
//   unchecked ──verdict ready──▶ ready ──dispatched──▶ running ──sent──▶ sent ──tx success──▶ done
//       ▲  └──verdict met / responded──▶ done             │                 │
//       └──── retry (transient, timing, reverted, dropped, fulfilled elsewhere, undone by a reorg) ◀┘
//
// "done" means this node is finished with the interval; what that means for the subscription (a callback or a
// delegated one is dropped, a recurring one waits for its next interval) is the directive's business.

/** Where an interval is: not looked at on-chain yet, cleared to run, running its containers, its delivery in flight, finished. */
export type IntervalPhase = "unchecked" | "ready" | "running" | "sent" | "done";

export interface IntervalState {
  readonly interval: number;
  readonly phase: IntervalPhase;
  /** Deliveries of this interval mined and reverted. */
  readonly attempts: number;
  readonly containerFailures: number;
  /** Transient failures (RPC down, …) so far: the backoff exponent. */
  readonly retries: number;
  /** Simulations refused for timing (the chain's clock not at this interval yet / any more). */
  readonly timingRetries: number;
  /** Milliseconds (the caller's clock); nothing is done for this interval before it. */
  readonly notBefore: number;
}

/** What the due check found on-chain for an interval (see due-check.ts). */
export type CheckVerdict =
  | { kind: "ready" }
  /** The redundancy count is met; `last` when it is the subscription's last interval. */
  | { kind: "redundancy-met"; last: boolean }
  | { kind: "already-responded" }
  /** The subscription's payment cannot be honoured (wallet not made by the factory, balance too low). */
  | { kind: "payment-invalid"; why: string }
  /** The read failed: look again later. */
  | { kind: "retry" };

export type IntervalEvent =
  | { kind: "checked"; verdict: CheckVerdict }
  | { kind: "dispatched" }
  | { kind: "sent" }
  /** The chain refused the delivery in simulation; `timing` for refusals that depend on the block's timestamp. */
  | { kind: "refused"; timing: boolean; reason: string }
  | { kind: "container-failed" }
  /** A local or transient failure; `retryable: false` for one that will not go away (gas cap, no payment wallet). */
  | { kind: "failed"; retryable: boolean; reason: string }
  | { kind: "tx-success" }
  | { kind: "tx-reverted" }
  /** The transaction's nonce was used by another transaction: the delivery never happened. */
  | { kind: "tx-dropped" }
  /** Another node delivered (SubscriptionFulfilled): the redundancy count may be met now. */
  | { kind: "fulfilled-elsewhere" }
  /** A reorganisation undid this interval's delivery (its transaction now reverts or was dropped). */
  | { kind: "undone" };

export type Directive =
  /** Nothing beyond the new state. */
  | { kind: "none" }
  /** The interval is finished (delivered, not needed, or given up). */
  | { kind: "finish"; why: string }
  /** Stop tracking the subscription altogether. */
  | { kind: "drop"; why: string };

export interface MachineRules {
  /** Mined-and-reverted deliveries of one interval before the subscription is given up (the reference's 3). */
  maxAttempts: number;
  /** Container failures of one recurring interval before that interval is given up. */
  maxContainerFailures: number;
  containerRetryBaseMs: number;
  containerRetryMaxMs: number;
  /** Backoff for transient failures: base·2ⁿ up to this (the RPC's return is noticed within it). */
  transientRetryMaxMs: number;
  /** Pause before a timing refusal is tried again (the chain's next block). */
  timingRetryMs: number;
}

export const DEFAULT_RULES: MachineRules = {
  maxAttempts: 3,
  maxContainerFailures: 3,
  containerRetryBaseMs: 2_000,
  containerRetryMaxMs: 60_000,
  transientRetryMaxMs: 10_000,
  timingRetryMs: 1_000,
};

export interface MachineContext {
  nowMs: number;
  /** A callback or a delegated subscription: one interval only, so a finished interval ends it. */
  oneShot: boolean;
  rules: MachineRules;
}

export interface Transition {
  state: IntervalState;
  directive: Directive;
}

export function initialState(interval: number): IntervalState {
  return {
    interval,
    phase: "unchecked",
    attempts: 0,
    containerFailures: 0,
    retries: 0,
    timingRetries: 0,
    notBefore: 0,
  };
}

/** base·2ⁿ capped, without jitter: the machine must be deterministic. */
export function retryDelayMs(failures: number, baseMs: number, maxMs: number): number {
  return Math.min(maxMs, baseMs * 2 ** Math.max(0, failures));
}

const NONE: Directive = { kind: "none" };

/**
 * The next state of an interval after `event`. Events that make no sense in the current phase (a late outcome
 * after the interval was finished, say) leave the state as it is: the caller may receive them from callbacks
 * that raced with something else.
 */
export function advance(state: IntervalState, event: IntervalEvent, ctx: MachineContext): Transition {
  const { rules, nowMs } = ctx;
  const stay: Transition = { state, directive: NONE };
  const to = (changes: Partial<IntervalState>, directive: Directive = NONE): Transition => ({
    state: { ...state, ...changes },
    directive,
  });
  const finish = (why: string): Transition => to({ phase: "done" }, { kind: "finish", why });

  switch (event.kind) {
    case "checked": {
      if (state.phase !== "unchecked") return stay;
      const { verdict } = event;
      switch (verdict.kind) {
        case "ready":
          return to({ phase: "ready" });
        case "redundancy-met":
          return verdict.last
            ? to({ phase: "done" }, { kind: "drop", why: "completed" })
            : finish("redundancy met");
        case "already-responded":
          return finish("already responded");
        case "payment-invalid":
          return to({ phase: "done" }, { kind: "drop", why: verdict.why });
        case "retry":
          return to({
            retries: state.retries + 1,
            notBefore:
              nowMs + retryDelayMs(state.retries, rules.containerRetryBaseMs, rules.transientRetryMaxMs),
          });
      }
      return stay;
    }
    case "dispatched":
      return state.phase === "ready" ? to({ phase: "running" }) : stay;
    case "sent":
      return state.phase === "running" ? to({ phase: "sent" }) : stay;
    case "refused": {
      if (state.phase !== "running") return stay;
      // The chain's clock is at another interval than ours: not a reason to give the interval up. Asked again
      // after the next block; the caller drops the state once the chain has moved on to the next interval.
      if (event.timing) {
        return to({
          phase: "unchecked",
          timingRetries: state.timingRetries + 1,
          notBefore: nowMs + rules.timingRetryMs,
        });
      }
      return finish(`refused: ${event.reason}`);
    }
    case "container-failed": {
      if (state.phase !== "running") return stay;
      const failures = state.containerFailures + 1;
      if (ctx.oneShot)
        return {
          ...finish("container error"),
          state: { ...state, phase: "done", containerFailures: failures },
        };
      if (failures >= rules.maxContainerFailures) {
        return {
          ...finish("container errors"),
          state: { ...state, phase: "done", containerFailures: failures },
        };
      }
      return to({
        phase: "ready",
        containerFailures: failures,
        notBefore: nowMs + retryDelayMs(failures - 1, rules.containerRetryBaseMs, rules.containerRetryMaxMs),
      });
    }
    case "failed": {
      if (state.phase !== "running") return stay;
      if (!event.retryable) return finish(event.reason);
      return to({
        phase: "unchecked",
        retries: state.retries + 1,
        notBefore: nowMs + retryDelayMs(state.retries, rules.containerRetryBaseMs, rules.transientRetryMaxMs),
      });
    }
    case "tx-success":
      return state.phase === "sent" ? finish("delivered") : stay;
    case "tx-reverted": {
      if (state.phase !== "sent") return stay;
      const attempts = state.attempts + 1;
      if (attempts >= rules.maxAttempts) {
        return to({ phase: "done", attempts }, { kind: "drop", why: "maximum attempts exceeded" });
      }
      // Looked at on-chain again before the next try: the revert may mean someone else delivered.
      return to({ phase: "unchecked", attempts });
    }
    case "tx-dropped":
      // Never mined: the interval is as it was before dispatch. Checked again (someone may have delivered).
      return state.phase === "sent" ? to({ phase: "unchecked" }) : stay;
    case "fulfilled-elsewhere":
      return state.phase === "ready" ? to({ phase: "unchecked", notBefore: 0 }) : stay;
    case "undone":
      // Looked at on-chain again, at once: it may need delivering again, or someone else filled it meanwhile.
      return state.phase === "done" ? to({ phase: "unchecked", notBefore: 0 }) : stay;
  }
  return stay;
}
