// getContainerInputs for deliveries that start together: gathered into one Multicall3 call where the chain has
// it (a consumer that cannot answer gets the empty input), one call each where it does not.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { type Address, encodeAbiParameters } from "viem";
import { createBatchReads, MULTICALL3_ADDRESS } from "../../../src/chain/batch-reads.ts";
import { createInputReads } from "../../../src/chain/input-reads.ts";
import { createRpc } from "../../../src/chain/rpc.ts";
import { createLog } from "../../../src/lib/log.ts";
import { startChain, type TestChain } from "../../fixtures/anvil.ts";
import { requestCallback } from "../../fixtures/chain-helpers.ts";
import { compileContracts } from "../../fixtures/contracts/compile.ts";

let chain: TestChain & AsyncDisposable;
const callbacks: Array<{ id: number; inputs: `0x${string}` }> = [];

beforeAll(async () => {
  chain = await startChain();
  for (const text of ["one", "two", "three"]) {
    const inputs = encodeAbiParameters([{ type: "string" }], [text]);
    const { id } = await requestCallback(chain, { containers: "echo", inputs });
    callbacks.push({ id, inputs });
  }
});
afterAll(async () => {
  await chain?.[Symbol.asyncDispose]();
});

function reader() {
  const rpc = createRpc({ urls: [chain.rpcUrl], timeoutMs: 5_000, maxRetries: 0, log: createLog("rpc") });
  const batch = createBatchReads(rpc.client, chain.addresses.coordinator);
  return { rpc, read: createInputReads(rpc.client, () => batch.hasMulticall()) };
}

async function readAll(read: ReturnType<typeof reader>["read"]) {
  const now = Math.floor(Date.now() / 1000);
  const node = chain.accounts.node.address;
  const owner = chain.addresses.callbackConsumer;
  // The last one asks an address without code: no answer to decode, so the empty input.
  const nobody = "0x000000000000000000000000000000000000dEaD" as Address;
  return Promise.all([
    ...callbacks.map(({ id }) => read({ owner, id, interval: 1, timestamp: now, node })),
    read({ owner: nobody, id: 1, interval: 1, timestamp: now, node }),
  ]);
}

describe("gathered getContainerInputs", () => {
  test("default: without Multicall3, one eth_call each; the same answers", async () => {
    const { rpc, read } = reader();
    expect(await readAll(read)).toEqual([...callbacks.map((c) => c.inputs), undefined]);
    expect(rpc.stats().byMethod.eth_call).toBe(4);
  });

  test("behavior: with Multicall3, calls made together go out as one eth_call", async () => {
    const code = compileContracts().Multicall3?.deployedBytecode;
    if (!code) throw new Error("Multicall3 did not compile");
    await chain.rpc("anvil_setCode", [MULTICALL3_ADDRESS, code]);
    const { rpc, read } = reader();
    expect(await readAll(read)).toEqual([...callbacks.map((c) => c.inputs), undefined]);
    expect(rpc.stats().byMethod.eth_call).toBe(1);
  });
});
