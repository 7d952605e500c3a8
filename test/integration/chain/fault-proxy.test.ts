// The JSON-RPC fault proxy (test/fixtures/rpc-fault-proxy.ts) in front of a real anvil, each fault observed
// through a viem client pointed at the proxy: a lost send reply whose transaction is mined anyway, eth_getLogs
// refused over the cap with a usable suggested range (block tags resolved), a `pending` nonce answered from
// `latest` while a transaction waits in the pool, and 502s at the seeded rate, to the exact count.
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import {
  BaseError,
  createPublicClient,
  createWalletClient,
  HttpRequestError,
  http,
  type PublicClient,
  parseEther,
  RpcRequestError,
  TimeoutError,
} from "viem";
import { startChain, type TestChain } from "../../fixtures/anvil.ts";
import {
  type FaultProxy,
  seededRandom,
  startFaultProxy,
  suggestedRange,
} from "../../fixtures/rpc-fault-proxy.ts";

let chain: TestChain & AsyncDisposable;
let proxy: FaultProxy;
let client: PublicClient;

beforeAll(async () => {
  chain = await startChain();
  // Enough blocks for ranges wider than the caps below.
  await chain.mine(30);
}, 120_000);
afterAll(async () => {
  await chain?.[Symbol.asyncDispose]();
});

/** A fresh proxy (fresh counters and PRNG) per test; viem without retries, so every fault reaches the test. */
async function useProxy(seed: number, faults: Parameters<FaultProxy["set"]>[0] = {}): Promise<void> {
  proxy = await startFaultProxy({ upstream: chain.rpcUrl, seed, faults });
  client = createPublicClient({
    chain: chain.chain,
    transport: http(proxy.url, { retryCount: 0 }),
    cacheTime: 0,
  });
}
afterEach(async () => {
  await proxy?.stop();
});

/** The error a call rejects with (fails the test if it resolves). */
async function failure(work: Promise<unknown>): Promise<BaseError> {
  try {
    await work;
  } catch (error) {
    if (error instanceof BaseError) return error;
    throw error;
  }
  throw new Error("expected the call to fail");
}

function rpcErrorOf(error: BaseError): RpcRequestError {
  const found = error.walk((e) => e instanceof RpcRequestError);
  if (!(found instanceof RpcRequestError)) throw new Error(`no RpcRequestError in ${error.message}`);
  return found;
}

const recipient = "0x000000000000000000000000000000000000dEaD";

describe("lost eth_sendRawTransaction reply", () => {
  test.each(["502", "504", "timeout"] as const)(
    "as %s: the client gets an error, yet the transaction is mined on anvil",
    async (lostReplyAs) => {
      await useProxy(11, { loseSendReply: 1, lostReplyAs });
      const wallet = createWalletClient({
        account: chain.accounts.other,
        chain: chain.chain,
        // "timeout" holds the reply for 60 s: the client gives up after 1 s.
        transport: http(proxy.url, { retryCount: 0, timeout: 1_000 }),
      });
      const before = await chain.publicClient.getTransactionCount({ address: chain.accounts.other.address });
      const error = await failure(wallet.sendTransaction({ to: recipient, value: parseEther("0.001") }));
      if (lostReplyAs === "timeout") {
        expect(error.walk((e) => e instanceof TimeoutError)).toBeInstanceOf(TimeoutError);
      } else {
        const httpError = error.walk((e) => e instanceof HttpRequestError);
        expect(httpError instanceof HttpRequestError && httpError.status).toBe(Number(lostReplyAs));
      }
      expect(proxy.counters().faults.loseSendReply).toBe(1);
      const [hash] = proxy.lostSendHashes();
      expect(hash).toMatch(/^0x[0-9a-f]{64}$/);
      // Straight to anvil: it was executed (automine) despite the lost reply.
      const receipt = await chain.publicClient.getTransactionReceipt({ hash: hash as `0x${string}` });
      expect(receipt.status).toBe("success");
      expect(await chain.publicClient.getTransactionCount({ address: chain.accounts.other.address })).toBe(
        before + 1,
      );
    },
  );

  test("with p = 0.5 and a fixed seed: the replies lost are exactly the seeded draws", async () => {
    await useProxy(5, { loseSendReply: 0.5 });
    const wallet = createWalletClient({
      account: chain.accounts.other,
      chain: chain.chain,
      transport: http(proxy.url, { retryCount: 0 }),
    });
    const draws = seededRandom(5 * 4 + 0);
    let expectedLost = 0;
    let failed = 0;
    let nonce = await chain.publicClient.getTransactionCount({ address: chain.accounts.other.address });
    for (let i = 0; i < 10; i++) {
      if (draws() < 0.5) expectedLost++;
      // A fixed nonce and gas: a lost reply must not make the next send re-read anything through the proxy.
      await wallet
        .sendTransaction({ to: recipient, value: 1n, nonce: nonce++, gas: 21_000n })
        .catch(() => failed++);
    }
    expect(failed).toBe(expectedLost);
    expect(proxy.counters().faults.loseSendReply).toBe(expectedLost);
    expect(proxy.counters().requests.eth_sendRawTransaction).toBe(10);
    expect(await chain.publicClient.getTransactionCount({ address: chain.accounts.other.address })).toBe(
      nonce,
    );
  });
});

describe("eth_getLogs over the range cap", () => {
  test("Infura style: -32005 with a suggested range that is accepted as it stands", async () => {
    await useProxy(1, { getLogsMaxRange: 5 });
    const error = rpcErrorOf(await failure(client.getLogs({ fromBlock: 3n, toBlock: 20n })));
    expect(error.code).toBe(-32005);
    expect(error.details).toMatch(/query returned more than 10000 results\. Try with this block range/);
    const range = suggestedRange(error.details);
    expect(range).toEqual({ from: 3n, to: 7n });
    await client.getLogs({ fromBlock: range?.from, toBlock: range?.to });
    expect(proxy.counters().faults.getLogsRefused).toBe(1);
    expect(proxy.counters().requests.eth_getLogs).toBe(2);
  });

  test("Alchemy style: -32602 `Log response size exceeded … this block range should work: [..]`", async () => {
    await useProxy(1, { getLogsMaxRange: 5, getLogsRefusal: "alchemy" });
    const error = rpcErrorOf(await failure(client.getLogs({ fromBlock: 10n, toBlock: 15n })));
    expect(error.code).toBe(-32602);
    expect(error.details).toMatch(/Log response size exceeded.*this block range should work: \[/);
    expect(suggestedRange(error.details)).toEqual({ from: 10n, to: 14n });
  });

  test("block tags are resolved against upstream's head: `latest`, `earliest`, and a missing bound", async () => {
    await useProxy(1, { getLogsMaxRange: 5 });
    const head = await chain.publicClient.getBlockNumber();
    // Exactly 5 blocks ending at latest: accepted.
    await client.getLogs({ fromBlock: head - 4n, toBlock: "latest" });
    // 6 blocks: refused, suggesting 5 from the start.
    const wide = rpcErrorOf(await failure(client.getLogs({ fromBlock: head - 5n, toBlock: "latest" })));
    expect(suggestedRange(wide.details)).toEqual({ from: head - 5n, to: head - 1n });
    // earliest … latest: refused from block 0.
    const all = rpcErrorOf(await failure(client.getLogs({ fromBlock: "earliest", toBlock: "latest" })));
    expect(suggestedRange(all.details)).toEqual({ from: 0n, to: 4n });
    // No bounds at all means latest … latest: one block, accepted.
    await client.getLogs();
    expect(proxy.counters().faults.getLogsRefused).toBe(2);
  });

  test("a batch: the call over the cap is refused, its neighbours answered, in order", async () => {
    await useProxy(1, { getLogsMaxRange: 5 });
    const res = await fetch(proxy.url, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify([
        { jsonrpc: "2.0", id: 1, method: "eth_chainId", params: [] },
        { jsonrpc: "2.0", id: 2, method: "eth_getLogs", params: [{ fromBlock: "0x1", toBlock: "0x10" }] },
        { jsonrpc: "2.0", id: 3, method: "eth_getLogs", params: [{ fromBlock: "0x1", toBlock: "0x2" }] },
      ]),
    });
    const replies = (await res.json()) as { id: number; result?: unknown; error?: { code: number } }[];
    expect(replies.map((r) => r.id)).toEqual([1, 2, 3]);
    expect(replies[0]?.result).toBe(`0x${chain.chainId.toString(16)}`);
    expect(replies[1]?.error?.code).toBe(-32005);
    expect(replies[2]?.result).toEqual([]);
    expect(proxy.counters().requests).toEqual({ eth_chainId: 1, eth_getLogs: 2 });
  });
});

describe("stale pending nonce", () => {
  test("`pending` is answered with the `latest` count while a transaction waits in anvil's pool", async () => {
    await useProxy(3, { stalePendingNonce: 1 });
    const address = chain.accounts.other.address;
    await chain.rpc("evm_setAutomine", [false]);
    try {
      const latest = await chain.publicClient.getTransactionCount({ address, blockTag: "latest" });
      const hash = await chain.walletClient(chain.accounts.other).sendTransaction({
        to: recipient,
        value: 1n,
        nonce: latest,
        gas: 21_000n,
      });
      // Anvil itself has it pending.
      expect(await chain.publicClient.getTransactionCount({ address, blockTag: "pending" })).toBe(latest + 1);
      // Through the proxy, `pending` lags: the backend "has not seen the pool".
      expect(await client.getTransactionCount({ address, blockTag: "pending" })).toBe(latest);
      expect(proxy.counters().faults.stalePendingNonce).toBe(1);
      // Turned off at runtime: the true pending count again.
      proxy.set({});
      expect(await client.getTransactionCount({ address, blockTag: "pending" })).toBe(latest + 1);
      expect(proxy.counters().faults.stalePendingNonce).toBe(1);
      await chain.mine();
      expect((await chain.publicClient.getTransactionReceipt({ hash })).status).toBe("success");
    } finally {
      await chain.rpc("evm_setAutomine", [true]);
    }
  });
});

describe("502 without forwarding", () => {
  test("p = 0.3 over 200 requests with seed 42: the exact seeded count, roughly 30%", async () => {
    await useProxy(42, { http502: 0.3 });
    const draws = seededRandom(42 * 4 + 2);
    let expected = 0;
    let got502 = 0;
    for (let i = 0; i < 200; i++) {
      if (draws() < 0.3) expected++;
      const error = await client.getChainId().then(
        () => undefined,
        (e: unknown) => e,
      );
      if (error instanceof BaseError) {
        const httpError = error.walk((e) => e instanceof HttpRequestError);
        if (httpError instanceof HttpRequestError && httpError.status === 502) got502++;
      }
    }
    expect(got502).toBe(expected);
    expect(proxy.counters().faults.http502).toBe(expected);
    expect(proxy.counters().requests.eth_chainId).toBe(200);
    // Roughly honoured: within ±10 points of 30%.
    expect(expected).toBeGreaterThan(40);
    expect(expected).toBeLessThan(80);
  });

  test("a 502 never forwards: a signed transaction refused with 502 does not reach anvil", async () => {
    await useProxy(9, { http502: 1, loseSendReply: 1 });
    const address = chain.accounts.other.address;
    const before = await chain.publicClient.getTransactionCount({ address, blockTag: "pending" });
    const signed = await chain.accounts.other.signTransaction({
      chainId: chain.chainId,
      nonce: before,
      to: recipient,
      value: 1n,
      gas: 21_000n,
      maxFeePerGas: 100_000_000_000n,
      maxPriorityFeePerGas: 1_000_000_000n,
    });
    await failure(client.request({ method: "eth_sendRawTransaction", params: [signed] }));
    expect(await chain.publicClient.getTransactionCount({ address, blockTag: "pending" })).toBe(before);
    expect(proxy.counters()).toEqual({
      requests: { eth_sendRawTransaction: 1 },
      faults: { http502: 1, loseSendReply: 0, getLogsRefused: 0, stalePendingNonce: 0 },
    });
  });
});

describe("latency", () => {
  test("delayMs holds every call: a client with less patience times out, then the call answers once off", async () => {
    await useProxy(1, { delayMs: 2_000 });
    const impatient = createPublicClient({ transport: http(proxy.url, { retryCount: 0, timeout: 200 }) });
    const error = await failure(impatient.getChainId());
    expect(error.walk((e) => e instanceof TimeoutError)).toBeInstanceOf(TimeoutError);
    proxy.set({});
    expect(await impatient.getChainId()).toBe(chain.chainId);
  });
});
