// The due check on a real chain (anvil, the SDK contracts, Multicall3 at its canonical address): 3,000 due
// (subscription, interval) pairs in chunks of 500, some with redundancy met, some answered by this node, some
// paid from good, short and foreign wallets. Verdicts as the chain says, and the request count is the chunking's:
// 2·⌈3000/500⌉ eth_calls for the intervals, plus one per distinct wallet and per (wallet, ERC-20 token).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { parseEther, zeroAddress } from "viem";
import { createBatchReads, MULTICALL3_ADDRESS } from "../../../src/chain/batch-reads.ts";
import { createDueCheck, type DueItem } from "../../../src/chain/due-check.ts";
import { createReader } from "../../../src/chain/reader.ts";
import { createRpc } from "../../../src/chain/rpc.ts";
import { createWalletChecker } from "../../../src/chain/wallet-checker.ts";
import { createLog } from "../../../src/lib/log.ts";
import { startChain, type TestChain } from "../../fixtures/anvil.ts";
import { createSubscriptions, deliver, fund, setupWallet } from "../../fixtures/chain-helpers.ts";
import { compileContracts } from "../../fixtures/contracts/compile.ts";

let chain: TestChain & AsyncDisposable;
const items: DueItem[] = [];
let metIds: number[] = [];
let respondedIds: number[] = [];
let paid: { good: string[]; shortToken: string; foreign: string } = { good: [], shortToken: "", foreign: "" };

beforeAll(async () => {
  chain = await startChain();
  const code = compileContracts().Multicall3?.deployedBytecode;
  if (!code) throw new Error("Multicall3 did not compile");
  await chain.rpc("anvil_setCode", [MULTICALL3_ADDRESS, code]);

  // 2,995 subscriptions with redundancy 1 and 5 with redundancy 2: 3,000 pairs at interval 1.
  const single = await createSubscriptions(chain, { count: 2_995, redundancy: 1 });
  const double = await createSubscriptions(chain, { count: 5, redundancy: 2 });
  for (const id of [...single.ids, ...double.ids]) {
    const redundancy = id > single.lastId ? 2 : 1;
    items.push({ key: `sub-${id}`, id, interval: 1, redundancy, frequency: 1 });
  }
  // The node delivers 5 of the first kind (redundancy met) and 3 of the second (count 1 of 2: it responded).
  metIds = [single.ids[0], single.ids[777], single.ids[1_500], single.ids[2_222], single.lastId] as number[];
  respondedIds = double.ids.slice(0, 3);
  for (const id of [...metIds, ...respondedIds]) await deliver(chain, { id, interval: 1 });

  // Payments on five open intervals: three paying 1 ETH from one funded wallet (5 ETH), one paying 5 tokens
  // from that wallet holding 2, one from an address the WalletFactory never made.
  const wallet = await setupWallet(chain, {
    owner: chain.accounts.consumerOwner,
    fundAmount: parseEther("5"),
  });
  await fund(chain, wallet, 2n, chain.addresses.token);
  const at = (id: number) => items.findIndex((item) => item.id === id);
  const open = single.ids.slice(10, 15);
  paid = {
    good: open.slice(0, 3).map((id) => `sub-${id}`),
    shortToken: `sub-${open[3]}`,
    foreign: `sub-${open[4]}`,
  };
  for (const id of open.slice(0, 3)) {
    const item = items[at(id)] as DueItem;
    item.payment = { wallet: wallet.toLowerCase(), token: zeroAddress, amount: parseEther("1") };
  }
  (items[at(open[3] as number)] as DueItem).payment = { wallet, token: chain.addresses.token, amount: 5n };
  (items[at(open[4] as number)] as DueItem).payment = {
    wallet: chain.accounts.other.address,
    token: zeroAddress,
    amount: 1n,
  };
}, 120_000);

afterAll(async () => {
  await chain?.[Symbol.asyncDispose]();
});

describe("due check on anvil", () => {
  test("behavior: 3,000 pairs in chunks of 500: right verdicts, 2·6 eth_calls plus the payment reads", async () => {
    const rpc = createRpc({ urls: [chain.rpcUrl], timeoutMs: 10_000, maxRetries: 0, log: createLog("rpc") });
    const batch = createBatchReads(rpc.client, chain.addresses.coordinator);
    const due = createDueCheck({
      reader: createReader(rpc.client, chain.addresses.reader),
      nodeResponded: batch.nodeResponded,
      walletChecker: createWalletChecker(rpc.client, chain.addresses.walletFactory),
      node: chain.accounts.node.address,
      log: createLog("due-check"),
      chunkSize: 500,
    });
    const block = await rpc.client.getBlockNumber();
    rpc.resetCounters();

    const verdicts = await due.check(items, block);

    expect(verdicts.size).toBe(3_000);
    for (const id of metIds)
      expect(verdicts.get(`sub-${id}`)).toEqual({ kind: "redundancy-met", count: 1, last: true });
    for (const id of respondedIds) expect(verdicts.get(`sub-${id}`)).toEqual({ kind: "already-responded" });
    for (const key of paid.good) expect(verdicts.get(key)).toEqual({ kind: "ready" });
    expect(verdicts.get(paid.shortToken)).toEqual({ kind: "insufficient-balance", balance: 2n });
    expect(verdicts.get(paid.foreign)).toEqual({ kind: "invalid-wallet" });
    const counts: Record<string, number> = {};
    for (const verdict of verdicts.values()) counts[verdict.kind] = (counts[verdict.kind] ?? 0) + 1;
    expect(counts).toEqual({
      ready: 3_000 - 5 - 3 - 2,
      "redundancy-met": 5,
      "already-responded": 3,
      "insufficient-balance": 1,
      "invalid-wallet": 1,
    });

    const byMethod = rpc.stats().byMethod;
    expect(batch.multicall).toBe(true);
    // 6 readRedundancyCountBatch + 6 aggregate3 (nodeResponded) + 2 isValidWallet (one per distinct wallet)
    // + 1 ERC-20 balanceOf; the ETH balance is one eth_getBalance for the three subscriptions sharing the wallet.
    expect(byMethod.eth_call).toBe(2 * Math.ceil(3_000 / 500) + 2 + 1);
    expect(byMethod.eth_getBalance).toBe(1);
  }, 60_000);
});
