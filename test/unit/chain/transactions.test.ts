// The transaction manager against a fake provider that misbehaves on purpose (fake-tx-chain.ts): lost replies,
// stale nonces, foreign transactions at our nonce, a fee cap, a lost lease, a reorganisation that flips an
// outcome. Each case checks what reached the "chain": never two transactions of ours for one request, never a
// nonce handed out twice, never a fee above the cap.
import { describe, expect, test } from "bun:test";
import { privateKeyToAccount } from "viem/accounts";
import {
  createTransactionManager,
  type TransactionManager,
  type TransactionManagerDeps,
  type TxOutcome,
} from "../../../src/chain/transactions.ts";
import { FakeTxChain, recordingLog } from "./fake-tx-chain.ts";

const account = privateKeyToAccount("0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d");
const target = "0x000000000000000000000000000000000000dEaD" as const;
const request = (n = 1) => ({
  to: target,
  data: `0x${n.toString(16).padStart(8, "0")}` as const,
  gas: 50_000n,
});
const GWEI = 1_000_000_000n;

function setup(overrides: Partial<TransactionManagerDeps> = {}) {
  const chain = new FakeTxChain();
  const log = recordingLog();
  const txs = createTransactionManager({
    client: chain,
    account,
    chainId: 31337,
    log,
    replaceAfterBlocks: 3,
    ...overrides,
  });
  return { chain, log, txs };
}

/** Mine `blocks` blocks, telling the manager about each. */
async function advance(chain: FakeTxChain, txs: TransactionManager, blocks = 1): Promise<void> {
  for (let i = 0; i < blocks; i++) {
    chain.mine();
    await txs.onBlock(chain.head);
  }
}

/** The outcome if settled, else "pending" (no waiting: the manager settles outcomes synchronously in onBlock). */
async function settled(outcome: Promise<TxOutcome>): Promise<TxOutcome | "pending"> {
  return Promise.race([outcome, Promise.resolve("pending" as const)]);
}

describe("transaction manager: lost replies", () => {
  test("behavior: a lost reply keeps the transaction; the same bytes go out again ('already known'), one mined", async () => {
    const { chain, txs } = setup();
    await txs.onBlock(chain.head);
    chain.sendScript = ["lose-reply"];
    const sent = await txs.send(request());
    expect(txs.stats()).toMatchObject({ sent: 1, lostReplies: 1, pending: 1 });
    await txs.onBlock(chain.head + 0n); // same block: no sending
    expect(chain.count("eth_sendRawTransaction")).toBe(1);
    chain.head++; // a new block without mining: the manager sends the same bytes again
    await txs.onBlock(chain.head);
    expect(chain.count("eth_sendRawTransaction")).toBe(2);
    expect(chain.oursAt(sent.nonce).map((t) => t.hash)).toEqual([sent.hash]);
    expect(txs.stats().rebroadcasts).toBe(1);
    await advance(chain, txs);
    expect(await settled(sent.outcome)).toMatchObject({ status: "success", hash: sent.hash });
    expect(chain.latestNonce).toBe(1);
    expect(txs.stats()).toMatchObject({ sent: 1, confirmed: 1, pending: 0 });
  });

  test("behavior: a lost reply, then 'nonce too low' for our own mined hash: no second transaction, success", async () => {
    const { chain, txs } = setup();
    await txs.onBlock(chain.head);
    chain.sendScript = ["lose-reply"];
    const sent = await txs.send(request());
    chain.mine(); // ours is mined, but the next `latest` read comes from a backend that has not seen it
    chain.staleLatest = [0];
    await txs.onBlock(chain.head); // rebroadcast → "nonce too low" → look up our hash → mined: ours
    expect(await settled(sent.outcome)).toMatchObject({ status: "success", hash: sent.hash });
    const next = await txs.send(request(2));
    expect(next.nonce).toBe(sent.nonce + 1);
    await advance(chain, txs);
    expect(await settled(next.outcome)).toMatchObject({ status: "success" });
    // One transaction per request, each at its own nonce; nothing of ours went out twice at another nonce.
    expect(chain.received.filter((t) => t.nonce === 0).map((t) => t.hash)).toEqual([sent.hash, sent.hash]);
    expect(chain.oursAt(1).map((t) => t.hash)).toEqual([next.hash]);
    expect(txs.stats()).toMatchObject({ sent: 2, confirmed: 2, dropped: 0, pending: 0 });
  });

  test("error: 'nonce too low' from a foreign transaction moves on to a new nonce, no duplicate", async () => {
    const { chain, txs } = setup();
    const first = await txs.send(request(1));
    await advance(chain, txs);
    expect(await settled(first.outcome)).toMatchObject({ status: "success" });
    // Another process with our key mines nonce 1 behind our back.
    chain.foreignPending(1, 10n * GWEI);
    chain.mine();
    const second = await txs.send(request(2));
    expect(second.nonce).toBe(2);
    expect(chain.oursAt(1)).toHaveLength(1); // the refused attempt at 1, never accepted
    expect(chain.minedByNonce.get(1)?.ours).toBe(false);
    await advance(chain, txs);
    expect(await settled(second.outcome)).toMatchObject({ status: "success", hash: second.hash });
    expect(chain.count("eth_getTransactionByHash")).toBe(1); // it looked for its own hash first
    expect(txs.stats()).toMatchObject({ sent: 2, confirmed: 2, dropped: 0 });
  });

  test("behavior: a tracked transaction whose nonce someone else mined is reported dropped, after a few blocks", async () => {
    const { chain, txs } = setup({ droppedAfterBlocks: 2 });
    await txs.onBlock(chain.head);
    chain.sendScript = ["fail-before"]; // the broadcast never reached a pool, and the reply was lost
    const sent = await txs.send(request());
    chain.sendScript = ["fail-before"];
    chain.foreignPending(0, 10n * GWEI);
    await advance(chain, txs, 1); // foreign mined; ours: no receipt yet
    expect(await settled(sent.outcome)).toBe("pending");
    await advance(chain, txs, 2);
    expect(await settled(sent.outcome)).toMatchObject({ status: "dropped" });
    expect(txs.stats()).toMatchObject({ dropped: 1, pending: 0 });
  });
});

describe("transaction manager: nonces", () => {
  test("behavior: a stale `pending` (answering `latest`) never reopens a nonce in flight, nor does resync", async () => {
    const { chain, txs } = setup();
    chain.stalePending = true;
    chain.baseFee = 1_000n * GWEI; // nothing is mined
    const first = await Promise.all([1, 2, 3].map((n) => txs.send(request(n))));
    expect(first.map((s) => s.nonce)).toEqual([0, 1, 2]);
    txs.resync(); // a lease change: the chain is asked again, and answers 0
    chain.sendScript = ["lose-reply"];
    const fourth = await txs.send(request(4));
    expect(fourth.nonce).toBe(3);
    txs.resync();
    const fifth = await txs.send(request(5)); // after an unknown broadcast too
    expect(fifth.nonce).toBe(4);
    for (let nonce = 0; nonce <= 4; nonce++) expect(chain.oursAt(nonce)).toHaveLength(1);
    expect(txs.stats()).toMatchObject({ pending: 5, nonce: 5 });
  });

  test("error: a refused transaction frees its nonce for the next one", async () => {
    const { chain, txs } = setup();
    const refusing = {
      request: async (args: { method: string; params?: unknown }) => {
        if (args.method === "eth_sendRawTransaction" && chain.count("eth_sendRawTransaction") === 0) {
          chain.calls.push(args.method);
          throw new Error("insufficient funds for gas * price + value");
        }
        return chain.request(args);
      },
    };
    const txs2 = createTransactionManager({ client: refusing, account, chainId: 31337, log: recordingLog() });
    await expect(txs2.send(request(1))).rejects.toThrow("insufficient funds");
    const next = await txs2.send(request(2));
    expect(next.nonce).toBe(0);
    expect(txs2.stats()).toMatchObject({ sent: 1, pending: 1 });
    expect(txs.stats().sent).toBe(0);
  });
});

describe("transaction manager: replacement", () => {
  test("behavior: only the lowest unmined nonce is bumped", async () => {
    const { chain, txs } = setup();
    await txs.onBlock(chain.head);
    const sent = await Promise.all([1, 2, 3].map((n) => txs.send(request(n))));
    chain.paused = true; // congested: nothing is mined, whatever it pays
    await advance(chain, txs, 12);
    expect(chain.oursAt(1)).toHaveLength(1);
    expect(chain.oursAt(2)).toHaveLength(1);
    const bumps = chain.oursAt(0);
    expect(bumps).toHaveLength(4); // the first send and a bump every 3 blocks from the first seen stuck
    expect(bumps.map((t) => t.maxFee)).toEqual([...bumps.map((t) => t.maxFee)].sort((a, b) => Number(a - b)));
    expect(txs.stats().replaced).toBe(3);
    chain.paused = false;
    await advance(chain, txs, 1);
    const outcomes = await Promise.all(sent.map((s) => settled(s.outcome)));
    expect(outcomes.map((o) => (o === "pending" ? o : o.status))).toEqual(["success", "success", "success"]);
  });

  test("behavior: a foreign transaction blocking our nonces is replaced by a 0-value self-transfer", async () => {
    const { chain, txs } = setup();
    await txs.onBlock(chain.head);
    // An old lease holder's transaction at nonce 0, priced below the base fee: it blocks everything after it.
    chain.foreignPending(0, GWEI / 2n);
    const sent = await txs.send(request());
    expect(sent.nonce).toBe(1);
    await advance(chain, txs, 3); // the chain's nonce is seen stuck at 0 from the first of these blocks on
    expect(chain.oursAt(0)).toHaveLength(0);
    await advance(chain, txs, 1); // stuck for replace_after_blocks: filled
    const fills = chain.oursAt(0);
    expect(fills).toHaveLength(1);
    expect(fills[0]).toMatchObject({ to: account.address.toLowerCase(), value: 0n, gas: 21_000n });
    expect(txs.stats().filled).toBe(1);
    expect(chain.oursAt(1)).toHaveLength(1); // ours was not bumped meanwhile
    await advance(chain, txs, 1);
    expect(await settled(sent.outcome)).toMatchObject({ status: "success", hash: sent.hash });
    expect(chain.minedByNonce.get(0)?.to?.toLowerCase()).toBe(account.address.toLowerCase());
    expect(txs.stats()).toMatchObject({ pending: 0, confirmed: 1, feeCapped: false });
  });

  test("error: a fee cap that stops replacement is flagged and logged once; fees never exceed the cap", async () => {
    const cap = 5n * GWEI;
    const { chain, txs, log } = setup({ maxFeePerGas: cap });
    await txs.onBlock(chain.head);
    const sent = await txs.send(request());
    chain.baseFee = 50n * GWEI; // far above the cap: it can never be mined at any fee we may pay
    await advance(chain, txs, 40);
    expect(chain.received.every((t) => t.maxFee <= cap && t.priority <= cap)).toBe(true);
    expect(new Set(chain.received.map((t) => t.hash)).size).toBeLessThanOrEqual(2); // no climbing bumps
    // Once per replace_after_blocks the newest attempt is offered again as is (a pool may have evicted it).
    expect(chain.received.length).toBeLessThanOrEqual(1 + 40 / 3);
    expect(txs.stats()).toMatchObject({ feeCapped: true, stuckNonce: 0, pending: 1 });
    expect(log.lines.filter((l) => l.msg.startsWith("Fee cap reached"))).toHaveLength(1);
    // The pool evicts it, and the base fee comes back down: it is offered again, mined, and the flag clears.
    chain.pool.delete(0);
    chain.baseFee = GWEI;
    await advance(chain, txs, 4);
    expect(await settled(sent.outcome)).toMatchObject({ status: "success" });
    expect(txs.stats()).toMatchObject({ feeCapped: false, stuckNonce: null });
  });

  test("error: a foreign transaction paying more than the cap allows: flagged, never above the cap", async () => {
    const cap = 5n * GWEI;
    const { chain, txs } = setup({ maxFeePerGas: cap });
    await txs.onBlock(chain.head);
    chain.foreignPending(0, 4_900_000_000n); // within 10% of the cap, below the base fee: a fill cannot win
    chain.baseFee = 6n * GWEI;
    await txs.send(request());
    await advance(chain, txs, 20);
    expect(chain.received.every((t) => t.maxFee <= cap)).toBe(true);
    expect(txs.stats()).toMatchObject({ feeCapped: true, stuckNonce: 0 });
  });
});

describe("transaction manager: lease", () => {
  test("error: canSend false before a rebroadcast: nothing is sent until the lease is back", async () => {
    let holding = true;
    const { chain, txs } = setup({ canSend: () => holding });
    await txs.onBlock(chain.head);
    chain.sendScript = ["fail-before"];
    const sent = await txs.send(request());
    expect(chain.received).toHaveLength(0);
    holding = false;
    for (let i = 0; i < 5; i++) {
      chain.head++;
      await txs.onBlock(chain.head);
    }
    expect(chain.count("eth_sendRawTransaction")).toBe(1);
    await expect(txs.send(request(2))).rejects.toThrow("does not hold the chain lease");
    holding = true;
    await advance(chain, txs, 1);
    expect(chain.oursAt(0).map((t) => t.hash)).toEqual([sent.hash]);
    await advance(chain, txs, 1);
    expect(await settled(sent.outcome)).toMatchObject({ status: "success" });
  });
});

describe("transaction manager: reorganisations", () => {
  test("behavior: a reorg that makes a delivered transaction revert is reported through onReorgOutcome", async () => {
    const reported: Array<{ labels: Record<string, unknown>; outcome: TxOutcome }> = [];
    const { chain, txs } = setup({ onReorgOutcome: (labels, outcome) => reported.push({ labels, outcome }) });
    const sent = await txs.send({ ...request(), labels: { id: 7, interval: 3 } });
    await advance(chain, txs);
    expect(await settled(sent.outcome)).toMatchObject({ status: "success" });
    chain.reorgWithStatus(sent.hash, "0x0");
    await advance(chain, txs);
    expect(reported).toEqual([
      {
        labels: { id: 7, interval: 3 },
        outcome: expect.objectContaining({ status: "reverted", hash: sent.hash }),
      },
    ]);
    expect(txs.stats().reorgOutcomeChanged).toBe(1);
    await advance(chain, txs, 2); // reported once, not every block
    expect(reported).toHaveLength(1);
  });
});

describe("transaction manager: reorganisations (re-sent)", () => {
  test("behavior: a removed transaction is sent again as is; reverting in the new chain is reported", async () => {
    const reported: TxOutcome[] = [];
    const { chain, txs } = setup({ onReorgOutcome: (_labels, outcome) => reported.push(outcome) });
    const sent = await txs.send(request());
    await advance(chain, txs);
    expect(await settled(sent.outcome)).toMatchObject({ status: "success" });
    chain.reorgRemove(sent.hash);
    chain.reverting.add(sent.hash); // the new chain's state makes the same transaction revert
    await advance(chain, txs); // noticed: tracked again and sent again (same bytes)
    expect(txs.stats()).toMatchObject({ reorged: 1, pending: 1 });
    expect(chain.oursAt(0).map((t) => t.hash)).toEqual([sent.hash]);
    await advance(chain, txs);
    expect(reported).toEqual([expect.objectContaining({ status: "reverted", hash: sent.hash })]);
    expect(txs.stats()).toMatchObject({ reorged: 1, reorgOutcomeChanged: 1, pending: 0 });
  });
});

describe("transaction manager: RPC requests", () => {
  test("behavior: a delivery costs one broadcast and one receipt; idle blocks one nonce read or none", async () => {
    const { chain, txs } = setup();
    await txs.onBlock(chain.head);
    await txs.send(request(1)); // the first send also reads pending/latest and fees
    await advance(chain, txs);
    chain.calls.length = 0;
    const sent = await Promise.all([2, 3, 4, 5].map((n) => txs.send(request(n))));
    await advance(chain, txs);
    expect(await Promise.all(sent.map(async (s) => (await settled(s.outcome)) !== "pending"))).toEqual([
      true,
      true,
      true,
      true,
    ]);
    expect(chain.count("eth_sendRawTransaction")).toBe(4);
    // The fake has no eth_getBlockReceipts (tried once, remembered): receipts one by one.
    expect(chain.count("eth_getBlockReceipts")).toBe(1);
    expect(chain.count("eth_getTransactionReceipt")).toBe(4);
    expect(chain.count("eth_getTransactionCount")).toBe(1);
    expect(chain.calls.length).toBeLessThanOrEqual(4 * 2 + 1 + 2 + 1); // + fees (cached) + the reorg check
  });

  test("behavior: where the provider has eth_getBlockReceipts, several deliveries mined together cost one receipt request per block", async () => {
    const { chain, txs } = setup();
    chain.blockReceipts = true;
    await txs.onBlock(chain.head);
    await txs.send(request(1));
    await advance(chain, txs);
    chain.calls.length = 0;
    const sent = await Promise.all([2, 3, 4, 5, 6, 7].map((n) => txs.send(request(n))));
    await advance(chain, txs);
    const outcomes = await Promise.all(sent.map((s) => settled(s.outcome)));
    expect(outcomes.every((o) => o !== "pending")).toBe(true);
    expect(chain.count("eth_sendRawTransaction")).toBe(6);
    expect(chain.count("eth_getTransactionReceipt")).toBe(0);
    expect(chain.count("eth_getBlockReceipts")).toBeLessThanOrEqual(4);
  });
});

describe("transaction manager: a pool that lost everything", () => {
  test("behavior: when the lowest nonce is replaced, the ones above it are sent again as they are and mined right behind it", async () => {
    const { chain, txs } = setup();
    await txs.onBlock(chain.head);
    const sent = [];
    for (const n of [1, 2, 3]) sent.push(await txs.send(request(n)));
    // A node restart: the pool forgets all three; nothing is mined meanwhile.
    chain.pool.clear();
    await advance(chain, txs, 3);
    expect(await Promise.all(sent.map((s) => settled(s.outcome)))).toEqual(["pending", "pending", "pending"]);
    // The lowest is replaced after replace_after_blocks; the other two re-enter the pool with it.
    await advance(chain, txs, 2);
    const outcomes = await Promise.all(sent.map((s) => settled(s.outcome)));
    expect(outcomes.map((o) => (o === "pending" ? o : o.status))).toEqual(["success", "success", "success"]);
    const blocks = outcomes.map((o) => (o !== "pending" && "blockNumber" in o ? o.blockNumber : -1n));
    expect(new Set(blocks).size).toBe(1);
  });
});
