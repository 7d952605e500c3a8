// The chain end-to-end cases through a misbehaving RPC (issue 17, "What must be shown"): the node's rpc_url is a
// fault proxy (test/fixtures/rpc-fault-proxy.ts) in front of anvil, in two profiles run side by side:
//   A. half the eth_sendRawTransaction replies lost (502 after anvil took the transaction);
//   B. eth_getLogs capped at 5 blocks, 30% of `pending` nonces answered from `latest`, 5% of all calls 502.
// Per profile one anvil (1-second blocks), one proxy and two nodes (the second only for redundancy); the cases
// (a callback, a recurring subscription over 3 intervals, a paid callback, a delegated subscription through the
// REST API, redundancy 2, an eager proof) start together in beforeAll and run concurrently; each test then waits
// for its case and checks that every (subscription, interval, node) was delivered exactly once. The last tests of
// a profile check that neither node's address has a single reverted transaction, and that the faults happened.
// The test side talks to anvil directly (never through the proxy): only the node sees the faults.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { type Address, zeroAddress } from "viem";
import {
  balanceOf,
  createSubscription,
  delegatedSubscription,
  delegateKey,
  fund,
  latestTimestamp,
  read,
  requestCallback,
  setupWallet,
  write,
} from "../../fixtures/chain-helpers.ts";
import { type ChainNode, ONE_ETHER, startChainNode } from "../../fixtures/chain-node.ts";
import {
  abiString,
  decodeEchoOutput,
  deliveriesOf,
  type E2EChain,
  echoInput,
  type Recorder,
  recorders,
  signedDelegatedRequest,
  startE2EChain,
  transactionsFrom,
} from "../../fixtures/e2e-chain.ts";
import { waitFor } from "../../fixtures/net.ts";
import {
  type FaultKind,
  type FaultProxy,
  type Faults,
  startFaultProxy,
} from "../../fixtures/rpc-fault-proxy.ts";

interface Profile {
  name: string;
  seed: number;
  faults: Faults;
  /** Faults that must have been injected at least once by the end (else the profile proved nothing). */
  expectInjected: FaultKind[];
}

const PROFILES: Profile[] = [
  {
    name: "A: 50% of send replies lost",
    seed: 17,
    faults: { loseSendReply: 0.5 },
    expectInjected: ["loseSendReply"],
  },
  {
    name: "B: 5-block eth_getLogs cap, 30% stale pending nonces, 5% 502s",
    seed: 71,
    faults: { getLogsMaxRange: 5, stalePendingNonce: 0.3, http502: 0.05 },
    expectInjected: ["stalePendingNonce", "http502"],
  },
];

/** How long a case may take to be delivered (recurring: 3 periods of 5 s plus the faults' delays). */
const CASE_TIMEOUT_MS = 90_000;
/** Blocks to wait after a case is delivered, so a duplicate the node would still send gets mined and counted. */
const SETTLE_BLOCKS = 5n;
const PAYMENT = ONE_ETHER / 10n;
const PROOF_PAYMENT = ONE_ETHER;

/** What a case expects on-chain: at `recorder`, each interval delivered once by each of `nodes`. */
interface Expected {
  recorder: Recorder;
  id: number;
  intervals: number[];
  nodes: Address[];
  /** Extra checks once delivered (outputs, balances). */
  check?: () => Promise<void>;
}

type CaseName = "callback" | "recurring" | "paid" | "delegated" | "redundancy" | "proof";
type Settled = { ok: true; value: Expected; deliveredAt: bigint } | { ok: false; error: unknown };

interface Run {
  chain: E2EChain;
  proxy: FaultProxy;
  node: ChainNode;
  second: ChainNode;
  fromBlock: bigint;
  cases: Record<CaseName, Promise<Settled>>;
}

/** Runs test-side transactions one at a time: the cases share accounts, and viem takes nonces from `pending`. */
function serialQueue(): <T>(work: () => Promise<T>) => Promise<T> {
  let tail: Promise<unknown> = Promise.resolve();
  return (work) => {
    const next = tail.then(work, work);
    tail = next.catch(() => undefined);
    return next;
  };
}

async function startRun(profile: Profile): Promise<Omit<Run, "cases" | "fromBlock">> {
  const chain = await startE2EChain();
  const proxy = await startFaultProxy({ upstream: chain.rpcUrl, seed: profile.seed, faults: profile.faults });
  const tag = profile.name.slice(0, 1).toLowerCase();
  let node: ChainNode | undefined;
  try {
    node = await startChainNode(`e2e-faulty-${tag}`, chain, { rpcUrl: proxy.url });
    const second = await startChainNode(`e2e-faulty-${tag}2`, chain, {
      rpcUrl: proxy.url,
      account: chain.accounts.other,
      shareContainersOf: node,
      // Only the redundancy case's container: no race with the first node over the other cases.
      serveOnly: ["paid"],
    });
    return { chain, proxy, node, second };
  } catch (error) {
    // afterAll only knows the runs that started: tear down this one's parts here.
    await node?.[Symbol.asyncDispose]();
    await proxy.stop();
    await chain[Symbol.asyncDispose]();
    throw error;
  }
}

/** Waits until `recorder` holds at least `count` deliveries of `id`. */
async function delivered(chain: E2EChain, recorder: Recorder, id: number, count: number): Promise<void> {
  await waitFor(
    `${count} deliveries of subscription ${id} at ${recorder.contract}`,
    async () => (await deliveriesOf(chain, recorder, id)).length >= count,
    CASE_TIMEOUT_MS,
  );
}

/** Starts every case (not awaited); each settles to what it expects, or its error. */
function startCases(run: Omit<Run, "cases" | "fromBlock">): Record<CaseName, Promise<Settled>> {
  const { chain, node, second } = run;
  const serial = serialQueue();
  const rec = recorders(chain);
  const one = [node.account.address];

  const cases: Record<CaseName, () => Promise<Expected>> = {
    async callback() {
      const { id } = await serial(() =>
        requestCallback(chain, { containers: node.containers.echo, inputs: echoInput("hello") }),
      );
      await delivered(chain, rec.callback, id, 1);
      return {
        recorder: rec.callback,
        id,
        intervals: [1],
        nodes: one,
        check: async () => {
          const [d] = await deliveriesOf(chain, rec.callback, id);
          expect(decodeEchoOutput(d?.output ?? "0x")).toBe("hello");
        },
      };
    },

    async recurring() {
      const { id } = await serial(() =>
        createSubscription(chain, { containers: node.containers.echo, frequency: 3, period: 5 }),
      );
      await delivered(chain, rec.subscription, id, 3);
      return { recorder: rec.subscription, id, intervals: [1, 2, 3], nodes: one };
    },

    async paid() {
      // The free container takes any payment; the paid one is the redundancy case's.
      const wallet = await serial(() =>
        setupWallet(chain, {
          owner: chain.accounts.consumerOwner,
          fundAmount: ONE_ETHER,
          spender: chain.addresses.callbackConsumer,
        }),
      );
      const { id } = await serial(() =>
        requestCallback(chain, {
          containers: node.containers.echo,
          inputs: echoInput("paid"),
          paymentToken: zeroAddress,
          paymentAmount: PAYMENT,
          wallet,
        }),
      );
      await delivered(chain, rec.callback, id, 1);
      return {
        recorder: rec.callback,
        id,
        intervals: [1],
        nodes: one,
        // Paid exactly once: the wallet is short of one payment, not two.
        check: async () => expect(await balanceOf(chain, wallet)).toBe(ONE_ETHER - PAYMENT),
      };
    },

    async delegated() {
      const sub = await delegatedSubscription(chain, { containers: node.containers.echo });
      const nonce = 5000 + Math.floor(Math.random() * 1000);
      const body = await signedDelegatedRequest(chain, {
        sub,
        nonce,
        expiry: (await latestTimestamp(chain)) + 120,
        data: { input: echoInput("delegated") },
      });
      const res = await fetch(`${node.url}/api/jobs`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body,
      });
      if (res.status !== 200) throw new Error(`POST /api/jobs answered ${res.status}: ${await res.text()}`);
      const id = await waitFor(
        `delegated subscription (${sub.owner}, ${nonce}) created on-chain`,
        () =>
          read<number>(chain, {
            contract: "EIP712Coordinator",
            address: chain.addresses.coordinator,
            functionName: "delegateCreatedIds",
            args: [delegateKey(sub.owner, nonce)],
          }),
        CASE_TIMEOUT_MS,
      );
      await delivered(chain, rec.delegator, id, 1);
      return {
        recorder: rec.delegator,
        id,
        intervals: [1],
        nodes: one,
        check: async () => {
          const [d] = await deliveriesOf(chain, rec.delegator, id);
          expect(decodeEchoOutput(d?.output ?? "0x")).toBe("delegated");
        },
      };
    },

    async redundancy() {
      // On the paid container (1 ETH minimum), the only one the second node serves: each node paid once.
      const wallet = await serial(() =>
        setupWallet(chain, {
          owner: chain.accounts.consumerOwner,
          fundAmount: 2n * ONE_ETHER,
          spender: chain.addresses.callbackConsumer,
        }),
      );
      const { id } = await serial(() =>
        requestCallback(chain, {
          containers: node.containers.paid,
          inputs: echoInput("twice"),
          redundancy: 2,
          paymentToken: zeroAddress,
          paymentAmount: ONE_ETHER,
          wallet,
        }),
      );
      await delivered(chain, rec.callback, id, 2);
      return {
        recorder: rec.callback,
        id,
        intervals: [1],
        nodes: [node.account.address, second.account.address],
        check: async () => expect(await balanceOf(chain, wallet)).toBe(0n),
      };
    },

    async proof() {
      // The node's stake in its payment wallet; the mock verifier eager (atomic) and valid, paid in ETH.
      await serial(() => fund(chain, node.paymentAddress, 2n * PROOF_PAYMENT));
      for (const [functionName, args] of [
        ["setToken", [zeroAddress, true, PROOF_PAYMENT / 5n]],
        ["setAtomic", [true, true]],
      ] as const) {
        await serial(() =>
          write(chain, {
            contract: "MockVerifier",
            address: chain.addresses.verifier,
            functionName,
            args,
            from: chain.accounts.deployer,
          }),
        );
      }
      const wallet = await serial(() =>
        setupWallet(chain, {
          owner: chain.accounts.consumerOwner,
          fundAmount: 2n * PROOF_PAYMENT,
          spender: chain.addresses.callbackConsumer,
        }),
      );
      const { id } = await serial(() =>
        requestCallback(chain, {
          containers: node.containers.proofs,
          inputs: echoInput("proven", "just trust me bro"),
          paymentToken: zeroAddress,
          paymentAmount: PROOF_PAYMENT,
          wallet,
          verifier: chain.addresses.verifier,
        }),
      );
      await delivered(chain, rec.callback, id, 1);
      return {
        recorder: rec.callback,
        id,
        intervals: [1],
        nodes: one,
        check: async () => {
          const [d] = await deliveriesOf(chain, rec.callback, id);
          expect(d?.proof).toBe(abiString("just trust me bro"));
        },
      };
    },
  };

  const settle = async (work: () => Promise<Expected>): Promise<Settled> => {
    try {
      const value = await work();
      return { ok: true, value, deliveredAt: await chain.publicClient.getBlockNumber() };
    } catch (error) {
      return { ok: false, error };
    }
  };
  return Object.fromEntries(Object.entries(cases).map(([name, work]) => [name, settle(work)])) as Record<
    CaseName,
    Promise<Settled>
  >;
}

/** The node's log lines that say something about `id` or went wrong (for a failing case's message). */
function logHints(node: ChainNode, id: number | undefined): string {
  const about = id === undefined ? undefined : new RegExp(`"(id|subscription_id)":"?${id}"?[,}]`);
  const lines = node.logs
    .lines()
    .filter((line) => (about?.test(line) ?? false) || /"level":"(warn|error)"/.test(line))
    .slice(-25);
  return `\n--- ${node.account.address} log lines (about ${id ?? "?"}, warnings, errors) ---\n${lines.join("\n")}`;
}

/** (interval, node) → how many deliveries the consumer recorded for `id`. */
async function recordedCounts(chain: E2EChain, e: Expected): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const d of await deliveriesOf(chain, e.recorder, e.id)) {
    const key = `${d.interval}@${d.node}`;
    counts[key] = (counts[key] ?? 0) + 1;
  }
  return counts;
}

const runs = new Map<string, Run>();

beforeAll(async () => {
  // One profile's rig after the other: a node binds the port the fixture picked for it only once it runs, so two
  // rigs starting at once could take each other's ports (seen once: "Failed to start server. Is port … in use?").
  // Their cases then run side by side: the whole file is mostly waiting for blocks.
  for (const profile of PROFILES) {
    const started = await startRun(profile);
    const fromBlock = await started.chain.publicClient.getBlockNumber();
    runs.set(profile.name, { ...started, fromBlock, cases: startCases(started) });
  }
}, 240_000);

afterAll(async () => {
  for (const run of runs.values()) {
    // Let every case finish before its chain goes away (they are bounded by CASE_TIMEOUT_MS).
    await Promise.all(Object.values(run.cases));
    await run.second?.[Symbol.asyncDispose]();
    await run.node?.[Symbol.asyncDispose]();
    await run.proxy?.stop();
    await run.chain?.[Symbol.asyncDispose]();
  }
}, 240_000);

function runOf(profile: Profile): Run {
  const run = runs.get(profile.name);
  if (!run) throw new Error(`profile ${profile.name} did not start`);
  return run;
}

const CASES: CaseName[] = ["callback", "recurring", "paid", "delegated", "redundancy", "proof"];

describe.each(PROFILES)("through the fault proxy, profile $name", (profile) => {
  test.each(CASES)(
    "%s: every interval delivered exactly once by each node that should",
    async (name) => {
      const run = runOf(profile);
      const { chain, node } = run;
      const settled = await run.cases[name];
      if (!settled.ok) {
        throw new Error(
          `${name} not delivered: ${(settled.error as Error).message}${logHints(node, undefined)}`,
        );
      }
      const e = settled.value;
      // A few more blocks, so a second delivery the node still had in flight is mined and counted.
      await waitFor(
        `${SETTLE_BLOCKS} blocks after delivery`,
        async () => (await chain.publicClient.getBlockNumber()) >= settled.deliveredAt + SETTLE_BLOCKS,
        60_000,
      );
      const expected: Record<string, number> = {};
      for (const interval of e.intervals) for (const n of e.nodes) expected[`${interval}@${n}`] = 1;
      try {
        expect(await recordedCounts(chain, e)).toEqual(expected);
        await e.check?.();
      } catch (error) {
        throw new Error(`${(error as Error).message}${logHints(node, e.id)}`);
      }
    },
    CASE_TIMEOUT_MS + 90_000,
  );

  test("no reverted transaction from either node", async () => {
    const run = runOf(profile);
    await Promise.all(Object.values(run.cases));
    const reverted: string[] = [];
    for (const n of [run.node, run.second]) {
      for (const t of await transactionsFrom(run.chain, n.account.address, run.fromBlock)) {
        if (t.status !== "reverted") continue;
        const call = `${t.functionName ?? `call to ${t.to}`}(${t.subscriptionId ?? t.delegatedNonce}, ${t.interval})`;
        reverted.push(`${n.account.address} nonce ${t.nonce} ${call} block ${t.block}`);
      }
    }
    expect(reverted).toEqual([]);
  }, 240_000);

  test("the profile's faults were really injected (else it proved nothing)", async () => {
    const run = runOf(profile);
    await Promise.all(Object.values(run.cases));
    const counters = run.proxy.counters();
    const notInjected = profile.expectInjected.filter((kind) => counters.faults[kind] === 0);
    expect({ notInjected, counters }).toMatchObject({ notInjected: [] });
  }, 240_000);
});
