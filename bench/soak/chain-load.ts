// The on-chain half of the load: recurring subscriptions (TestSubscriptionConsumer) and callbacks
// (TestCallbackConsumer) created continuously on anvil, each from its own account so their nonces never
// clash, and every delivery the consumers record read back incrementally and checked: each expected
// (subscription, interval) exactly once, with the echo container's output for that interval's inputs.
import { type Hex, hexToString } from "viem";
import type { TestChain } from "../../test/fixtures/anvil.ts";
import {
  createSubscription,
  expectedContainerInputs,
  read,
  requestCallback,
} from "../../test/fixtures/chain-helpers.ts";
import {
  type Delivery,
  decodeBytesPair,
  decodeEchoOutput,
  type E2EChain,
  echoInput,
  type Recorder,
  recorders,
} from "../../test/fixtures/e2e-chain.ts";

export interface ChainMix {
  /** Seconds between two new recurring subscriptions (0: none). */
  subscriptionEveryS: number;
  /** Seconds between two new callbacks (0: none). */
  callbackEveryS: number;
  /** Intervals of each recurring subscription, `period` seconds apart. */
  frequency: number;
  period: number;
}

export interface ChainCounts {
  subscriptions: number;
  callbacks: number;
  /** Deliveries owed: every interval of every subscription, one per callback. */
  expected: number;
  /** Expected deliveries recorded (once). */
  delivered: number;
  /** Deliveries recorded for an (id, interval) already delivered. */
  duplicates: number;
  /** (id, interval)s delivered with the wrong output, or not requested (not yet known, while creating). */
  wrong: number;
  /** Subscriptions or callbacks that could not be created. */
  createErrors: number;
}

export interface ChainLoad {
  start(): void;
  /** Stops creating (waits for the creation in progress). */
  stop(): Promise<void>;
  /** Reads the deliveries recorded since the last poll. */
  poll(): Promise<void>;
  counts(): ChainCounts;
  /** Expected deliveries not recorded yet, as `subscription:id:interval` / `callback:id:1`. */
  missing(): string[];
  errors(): string[];
}

const MAX_ERRORS = 20;

/** The input the echo container echoes for a TestSubscriptionConsumer interval: {"echo": <hex>}. */
function subscriptionEcho(output: Hex): string {
  const [raw] = decodeBytesPair(output);
  return (JSON.parse(hexToString(raw)) as { echo: string }).echo;
}

export function createChainLoad(p: { chain: E2EChain; container: string; mix: ChainMix }): ChainLoad {
  const { chain, container, mix } = p;
  const { subscription, callback } = recorders(chain);
  /** What each owed delivery's output must decode to, by `subscription:id:interval` / `callback:id:1`. */
  const owed = new Map<string, string>();
  /** What the consumers recorded, by the same key: how often, and the first output decoded. */
  const recorded = new Map<string, { times: number; output: string }>();
  const next = { subscription: 0, callback: 0 };
  const created = { subscriptions: 0, callbacks: 0, createErrors: 0 };
  const problems: string[] = [];
  const problem = (message: string) => {
    if (problems.length < MAX_ERRORS) problems.push(message);
  };
  let running = false;
  const loops: Promise<void>[] = [];

  /** Calls `create` every `everyS` seconds (on a fixed schedule) while running. */
  async function loop(everyS: number, create: () => Promise<void>): Promise<void> {
    const startedAt = performance.now();
    for (let n = 1; running; n++) {
      try {
        await create();
      } catch (error) {
        created.createErrors++;
        problem(`create: ${String(error).slice(0, 300)}`);
      }
      const wait = startedAt + n * everyS * 1000 - performance.now();
      if (wait > 0 && running) await Bun.sleep(wait);
    }
  }

  async function newSubscription(): Promise<void> {
    const { id } = await createSubscription(chain, {
      containers: container,
      frequency: mix.frequency,
      period: mix.period,
      from: chain.accounts.consumerOwner,
    });
    created.subscriptions++;
    for (let interval = 1; interval <= mix.frequency; interval++) {
      owed.set(`subscription:${id}:${interval}`, expectedContainerInputs(id, interval).slice(2));
    }
  }

  let callbackSeq = 0;
  async function newCallback(): Promise<void> {
    const text = `load-callback-${++callbackSeq}`;
    const { id } = await requestCallback(chain, {
      containers: container,
      inputs: echoInput(text),
      from: chain.accounts.other,
    });
    created.callbacks++;
    owed.set(`callback:${id}:1`, text);
  }

  /** The deliveries `recorder` recorded since the last read. */
  async function newDeliveries(chainRef: TestChain, recorder: Recorder, from: number): Promise<Delivery[]> {
    const count = Number(await read<bigint>(chainRef, { ...recorder, functionName: "deliveryCount" }));
    return await Promise.all(
      Array.from({ length: count - from }, (_, i) =>
        read<Delivery>(chainRef, { ...recorder, functionName: "getDelivery", args: [BigInt(from + i)] }),
      ),
    );
  }

  function record(kind: "subscription" | "callback", d: Delivery): void {
    const key = `${kind}:${d.subscriptionId}:${d.interval}`;
    const before = recorded.get(key);
    if (before) {
      before.times++;
      return;
    }
    let output: string;
    try {
      output = kind === "callback" ? decodeEchoOutput(d.output) : subscriptionEcho(d.output);
    } catch (error) {
      output = `undecodable (${String(error)})`;
    }
    recorded.set(key, { times: 1, output });
  }

  /**
   * Compared when asked, not as deliveries arrive: a delivery may be read before the creation that owes it
   * has returned its id.
   */
  function counts(): ChainCounts {
    let delivered = 0;
    let duplicates = 0;
    let wrong = 0;
    for (const [key, { times, output }] of recorded) {
      const want = owed.get(key);
      duplicates += times - 1;
      if (want !== undefined && output === want) delivered++;
      else wrong++;
    }
    return { ...created, expected: owed.size, delivered, duplicates, wrong };
  }

  /** The problems seen so far: creation failures, then duplicate or wrong deliveries. */
  function errors(): string[] {
    const found = [...problems];
    for (const [key, { times, output }] of recorded) {
      if (found.length >= MAX_ERRORS) break;
      const want = owed.get(key);
      if (times > 1) found.push(`${key} delivered ${times} times`);
      if (want === undefined) found.push(`${key} delivered, never requested (or not yet known)`);
      else if (output !== want) found.push(`${key}: output ${output}, expected ${want}`);
    }
    return found;
  }

  return {
    start() {
      running = true;
      if (mix.subscriptionEveryS > 0) loops.push(loop(mix.subscriptionEveryS, newSubscription));
      if (mix.callbackEveryS > 0) loops.push(loop(mix.callbackEveryS, newCallback));
    },
    async stop() {
      running = false;
      await Promise.all(loops.splice(0));
    },
    async poll() {
      for (const [kind, recorder] of [
        ["subscription", subscription],
        ["callback", callback],
      ] as const) {
        const found = await newDeliveries(chain, recorder, next[kind]);
        next[kind] += found.length;
        for (const d of found) record(kind, d);
      }
    },
    counts,
    missing: () => [...owed.keys()].filter((key) => !recorded.has(key)),
    errors,
  };
}
