// nodeResponded for many (subscription, interval) pairs: plain parallel calls on a chain without Multicall3,
// one aggregate3 call once Multicall3 is at its canonical address; the answers are the same either way.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createBatchReads, MULTICALL3_ADDRESS } from "../../../src/chain/batch-reads.ts";
import { createRpc } from "../../../src/chain/rpc.ts";
import { createLog } from "../../../src/lib/log.ts";
import { startChain, type TestChain } from "../../fixtures/anvil.ts";
import { createSubscription, deliver } from "../../fixtures/chain-helpers.ts";
import { compileContracts } from "../../fixtures/contracts/compile.ts";

let chain: TestChain & AsyncDisposable;
const pairs: Array<{ id: number; interval: number }> = [];
let expected: boolean[] = [];

beforeAll(async () => {
  chain = await startChain();
  // Four subscriptions; the node delivers the first and the third.
  for (let i = 0; i < 4; i++) {
    const { id } = await createSubscription(chain, { containers: "echo" });
    pairs.push({ id, interval: 1 });
  }
  for (const index of [0, 2]) await deliver(chain, { id: pairs[index]?.id ?? 0, interval: 1 });
  expected = [true, false, true, false];
});
afterAll(async () => {
  await chain?.[Symbol.asyncDispose]();
});

function reads() {
  const rpc = createRpc({ urls: [chain.rpcUrl], timeoutMs: 5_000, maxRetries: 0, log: createLog("rpc") });
  return { rpc, batch: createBatchReads(rpc.client, chain.addresses.coordinator) };
}

describe("batched nodeResponded", () => {
  test("default: without Multicall3, one eth_call per pair", async () => {
    const { rpc, batch } = reads();
    expect(await batch.nodeResponded(pairs, chain.accounts.node.address)).toEqual(expected);
    expect(batch.multicall).toBe(false);
    expect(rpc.stats().byMethod.eth_call).toBe(pairs.length);
  });

  test("behavior: with Multicall3 at its canonical address, one eth_call for all pairs", async () => {
    const code = compileContracts().Multicall3?.deployedBytecode;
    if (!code) throw new Error("Multicall3 did not compile");
    await chain.rpc("anvil_setCode", [MULTICALL3_ADDRESS, code]);
    const { rpc, batch } = reads();
    expect(await batch.nodeResponded(pairs, chain.accounts.node.address)).toEqual(expected);
    expect(batch.multicall).toBe(true);
    expect(rpc.stats().byMethod.eth_call).toBe(1);
  });
});
