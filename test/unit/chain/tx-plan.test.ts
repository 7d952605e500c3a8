// The transaction manager's pure decisions, table-driven: what to look up, rebroadcast, bump or fill on a block,
// and which nonce a new transaction gets.
import { describe, expect, test } from "bun:test";
import {
  type BlockPlan,
  chooseNonce,
  type NonceInput,
  type PlanEntry,
  planBlock,
  watchChainNonce,
} from "../../../src/chain/tx-plan.ts";

const pooled = (nonce: number, lastAttemptBlock = 100n): PlanEntry => ({
  nonce,
  state: "pooled",
  lastAttemptBlock,
});
const unknown = (nonce: number, lastAttemptBlock = 100n): PlanEntry => ({
  nonce,
  state: "unknown",
  lastAttemptBlock,
});
const pricedOut = (nonce: number, lastAttemptBlock = 100n): PlanEntry => ({
  nonce,
  state: "priced-out",
  lastAttemptBlock,
});

const nothing: BlockPlan = { lookUp: [], rebroadcast: [], bump: null, fill: [] };

describe("planBlock", () => {
  const cases: Array<{
    name: string;
    head: bigint;
    chain: { nonce: number; since: bigint };
    entries: PlanEntry[];
    plan: Partial<BlockPlan>;
  }> = [
    {
      name: "default: nothing in flight, nothing to do",
      head: 110n,
      chain: { nonce: 5, since: 90n },
      entries: [],
      plan: {},
    },
    {
      name: "behavior: mined nonces are looked up, nothing else",
      head: 101n,
      chain: { nonce: 7, since: 101n },
      entries: [pooled(5), pooled(6)],
      plan: { lookUp: [5, 6] },
    },
    {
      name: "behavior: the next nonce waiting fewer than replaceAfter blocks is left alone",
      head: 104n,
      chain: { nonce: 5, since: 100n },
      entries: [pooled(5, 102n), pooled(6)],
      plan: {},
    },
    {
      name: "behavior: only the lowest unmined nonce is bumped, not the ones behind it",
      head: 110n,
      chain: { nonce: 5, since: 100n },
      entries: [pooled(7), pooled(5), pooled(6)],
      plan: { bump: 5 },
    },
    {
      name: "behavior: a nonce that just became the next to mine waits replaceAfter blocks from then",
      head: 110n,
      chain: { nonce: 6, since: 109n },
      entries: [pooled(6, 100n)],
      plan: {},
    },
    {
      name: "behavior: a priced-out lowest nonce is bumped",
      head: 103n,
      chain: { nonce: 5, since: 90n },
      entries: [pricedOut(5, 100n)],
      plan: { bump: 5 },
    },
    {
      name: "behavior: an unknown broadcast is sent again as is, never bumped",
      head: 120n,
      chain: { nonce: 5, since: 90n },
      entries: [unknown(5), unknown(6), pooled(4)],
      plan: { lookUp: [4], rebroadcast: [5, 6] },
    },
    {
      name: "behavior: an untracked nonce blocking ours for replaceAfter blocks is filled (the gap only)",
      head: 103n,
      chain: { nonce: 3, since: 100n },
      entries: [pooled(6), pooled(5), pooled(8)],
      plan: { fill: [3, 4] },
    },
    {
      name: "behavior: a blocking nonce is not filled before replaceAfter blocks",
      head: 102n,
      chain: { nonce: 3, since: 100n },
      entries: [pooled(5)],
      plan: {},
    },
    {
      name: "behavior: fills are bounded per block",
      head: 200n,
      chain: { nonce: 0, since: 100n },
      entries: [pooled(40)],
      plan: { fill: [0, 1, 2, 3] },
    },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const plan = planBlock({
        head: c.head,
        chain: c.chain,
        entries: c.entries,
        replaceAfter: 3n,
        maxFills: 4,
      });
      expect(plan).toEqual({ ...nothing, ...c.plan });
    });
  }
});

describe("watchChainNonce", () => {
  test("behavior: keeps the block since which the nonce has not moved; restarts when it moves", () => {
    const first = watchChainNonce(undefined, 4, 100n);
    expect(first).toEqual({ nonce: 4, since: 100n });
    expect(watchChainNonce(first, 4, 105n)).toEqual({ nonce: 4, since: 100n });
    expect(watchChainNonce(first, 5, 105n)).toEqual({ nonce: 5, since: 105n });
    expect(watchChainNonce(first, 3, 106n)).toEqual({ nonce: 3, since: 106n }); // a reorg took one back
  });
});

describe("chooseNonce", () => {
  const cases: Array<{ name: string; input: NonceInput; nonce: number }> = [
    {
      name: "default: the chain's pending count at start",
      input: { local: undefined, pending: 4, latest: 4, held: [] },
      nonce: 4,
    },
    {
      name: "behavior: the local counter wins while ours are in flight",
      input: { local: 9, held: [6, 7, 8] },
      nonce: 9,
    },
    {
      name: "behavior: a stale pending (= latest) never reopens a nonce in flight (resync)",
      input: { local: undefined, pending: 5, latest: 5, held: [5, 6, 7] },
      nonce: 8,
    },
    {
      name: "behavior: latest above pending (a backend behind the other) wins",
      input: { local: undefined, pending: 3, latest: 6, held: [] },
      nonce: 6,
    },
    {
      name: "behavior: a nonce found used by someone else is skipped",
      input: { local: undefined, pending: 4, latest: 4, held: [], above: 4 },
      nonce: 5,
    },
    {
      name: "behavior: mined nonces still watched for reorgs count as held",
      input: { local: 2, held: [7] },
      nonce: 8,
    },
  ];
  for (const c of cases) test(c.name, () => expect(chooseNonce(c.input)).toBe(c.nonce));
});
