// The reason of a mined revert on a real anvil: a token transfer that reverts only because an earlier
// transaction in the SAME block spent the balance. Replayed on the state its block started from it succeeds
// (the old "unknown"); its trace names InsufficientBalance. A provider without debug_traceTransaction (a fake
// at the JSON-RPC edge, passed in as the client) gets the replay, labelled as one.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { type Address, createPublicClient, custom, encodeFunctionData, type Hex, http } from "viem";
import { type MinedTransaction, minedRevertReason } from "../../../src/chain/revert-reason.ts";
import { type ChainClient, createRpc } from "../../../src/chain/rpc.ts";
import { createLog } from "../../../src/lib/log.ts";
import { startChain, type TestChain } from "../../fixtures/anvil.ts";
import { write } from "../../fixtures/chain-helpers.ts";

let chain: TestChain & AsyncDisposable;
/** Mined reverted transfers: one that reverted only because of the transfer before it in its block, one on its own. */
let afterEarlierTx: MinedTransaction;
let onItsOwn: MinedTransaction;

const recipient: Address = "0x000000000000000000000000000000000000dEaD";

beforeAll(async () => {
  chain = await startChain();
  const token = chain.addresses.token;
  const sender = chain.accounts.other;
  await write(chain, {
    contract: "MockToken",
    address: token,
    functionName: "mint",
    args: [sender.address, 10n],
    from: chain.accounts.deployer,
  });
  const transfer = (amount: bigint) =>
    encodeFunctionData({
      abi: chain.abis.MockToken ?? [],
      functionName: "transfer",
      args: [recipient, amount],
    });
  const client = chain.walletClient(sender);
  await chain.rpc("evm_setAutomine", [false]);
  const hashes: Hex[] = [];
  try {
    let nonce = await chain.publicClient.getTransactionCount({
      address: sender.address,
      blockTag: "pending",
    });
    // The first spends the whole balance; the second, identical, finds nothing left; the third is too big anyway.
    for (const data of [transfer(10n), transfer(10n), transfer(1_000n)]) {
      hashes.push(await client.sendTransaction({ to: token, data, nonce: nonce++, gas: 200_000n }));
    }
    await chain.rpc("evm_mine");
  } finally {
    await chain.rpc("evm_setAutomine", [true]);
  }
  const receipts = await Promise.all(
    hashes.map((hash) => chain.publicClient.getTransactionReceipt({ hash })),
  );
  expect(receipts.map((r) => r.status)).toEqual(["success", "reverted", "reverted"]);
  expect(new Set(receipts.map((r) => r.blockNumber)).size).toBe(1);
  const mined = (i: number, amount: bigint): MinedTransaction => ({
    hash: hashes[i] as Hex,
    from: sender.address,
    to: token,
    data: transfer(amount),
    blockNumber: receipts[i]?.blockNumber ?? 0n,
  });
  afterEarlierTx = mined(1, 10n);
  onItsOwn = mined(2, 1_000n);
});
afterAll(async () => {
  await chain?.[Symbol.asyncDispose]();
});

function nodeClient(): ChainClient {
  return createRpc({ urls: [chain.rpcUrl], timeoutMs: 5_000, maxRetries: 1, log: createLog("rpc") }).client;
}

/** A provider that does not offer debug_* methods (most free tiers), otherwise anvil itself. */
function clientWithoutTracing(): ChainClient {
  const anvil = http(chain.rpcUrl, { retryCount: 0 })({ retryCount: 0 });
  return createPublicClient({
    transport: custom({
      async request({ method, params }: { method: string; params?: unknown[] }) {
        if (method.startsWith("debug_")) {
          throw Object.assign(new Error(`the method ${method} does not exist/is not available`), {
            code: -32601,
          });
        }
        return await anvil.request({ method, params } as never);
      },
    }),
  }) as ChainClient;
}

describe("minedRevertReason", () => {
  test("behavior: a revert caused by an earlier transaction in the same block is named from the trace", async () => {
    expect(await minedRevertReason(nodeClient(), afterEarlierTx)).toBe("InsufficientBalance()");
    expect(await minedRevertReason(nodeClient(), onItsOwn)).toBe("InsufficientBalance()");
  });

  test("error: without tracing the replay on the block's parent state answers, and says it is a replay", async () => {
    // The same-block case cannot be told this way: the replay succeeds, and the answer says so.
    expect(await minedRevertReason(clientWithoutTracing(), afterEarlierTx)).toBe(
      "unknown: the call succeeds when replayed on the state before its block",
    );
    expect(await minedRevertReason(clientWithoutTracing(), onItsOwn)).toBe(
      "InsufficientBalance() (replayed on the state before its block)",
    );
  });
});
