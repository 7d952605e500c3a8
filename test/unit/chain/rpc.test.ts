import { afterAll, describe, expect, test } from "bun:test";
import { createRpc, isRetryableRpcError, RpcUnavailableError } from "../../../src/chain/rpc.ts";
import { NodeError } from "../../../src/lib/errors.ts";
import { createLog } from "../../../src/lib/log.ts";

type Reply = { status?: number; body?: unknown } | "hang";

/** A JSON-RPC server whose replies are scripted per call; records each request's method. */
function fakeRpc(script: (method: string, n: number) => Reply) {
  const methods: string[] = [];
  const server = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    async fetch(req) {
      const body = (await req.json()) as { id: number; method: string };
      methods.push(body.method);
      const reply = script(body.method, methods.length);
      if (reply === "hang") await Bun.sleep(2000);
      if (reply === "hang") return new Response("late");
      return new Response(JSON.stringify({ jsonrpc: "2.0", id: body.id, ...(reply.body as object) }), {
        status: reply.status ?? 200,
        headers: { "content-type": "application/json" },
      });
    },
  });
  return { server, methods, url: `http://localhost:${server.port}` };
}

const servers: Array<{ stop(force?: boolean): unknown }> = [];
afterAll(() => {
  for (const server of servers) server.stop(true);
});

const log = createLog("rpc-test");
const opts = { timeoutMs: 500, maxRetries: 3, log, backoffBaseMs: 1, backoffMaxMs: 5 };

describe("createRpc", () => {
  test("default: single-label host (localhost) works and every request is counted by method", async () => {
    const fake = fakeRpc((method) => ({ body: { result: method === "eth_chainId" ? "0x7a69" : "0x10" } }));
    servers.push(fake.server);
    const rpc = createRpc({ ...opts, urls: [fake.url] });
    expect(await rpc.client.getChainId()).toBe(31337);
    expect(await rpc.client.getBlockNumber()).toBe(16n);
    expect(await rpc.client.getBlockNumber()).toBe(16n); // no caching: asked again
    expect(rpc.stats()).toMatchObject({
      requests: 3,
      byMethod: { eth_chainId: 1, eth_blockNumber: 2 },
      failures: 0,
    });
    expect(fake.methods).toEqual(["eth_chainId", "eth_blockNumber", "eth_blockNumber"]);
    rpc.resetCounters();
    expect(rpc.stats().requests).toBe(0);
  });

  test("behavior: 429 and 5xx are retried with backoff and counted per attempt", async () => {
    const fake = fakeRpc((_, n) =>
      n === 1 ? { status: 429, body: {} } : n === 2 ? { status: 503, body: {} } : { body: { result: "0x5" } },
    );
    servers.push(fake.server);
    const rpc = createRpc({ ...opts, urls: [fake.url] });
    expect(await rpc.client.getBlockNumber()).toBe(5n);
    expect(rpc.stats()).toMatchObject({ requests: 3, failures: 2, byMethod: { eth_blockNumber: 3 } });
  });

  test("behavior: JSON-RPC rate limit (-32005) is retried; a revert is an answer and is not", async () => {
    const fake = fakeRpc((_, n) =>
      n === 1
        ? { body: { error: { code: -32005, message: "limit exceeded" } } }
        : n === 2
          ? { body: { result: "0x1" } }
          : { body: { error: { code: 3, message: "execution reverted", data: "0x1a00354f" } } },
    );
    servers.push(fake.server);
    const rpc = createRpc({ ...opts, urls: [fake.url] });
    expect(await rpc.client.getBlockNumber()).toBe(1n);
    await expect(
      rpc.client.call({ to: "0x0000000000000000000000000000000000000001", data: "0x12345678" }),
    ).rejects.toThrow();
    expect(rpc.stats()).toMatchObject({ requests: 3, failures: 1 });
  });

  test("behavior: fails over to the next URL when one is down", async () => {
    const fake = fakeRpc(() => ({ body: { result: "0x9" } }));
    servers.push(fake.server);
    const dead = Bun.serve({ port: 0, fetch: () => new Response("x") });
    const deadUrl = `http://user:hunter2@127.0.0.1:${dead.port}`;
    dead.stop(true);
    const rpc = createRpc({ ...opts, urls: [deadUrl, fake.url] });
    expect(await rpc.client.getBlockNumber()).toBe(9n);
    expect(rpc.stats()).toMatchObject({ requests: 2, failures: 1, failovers: 1 });
    // Per endpoint, by scheme://host only (no credentials, no path).
    expect(rpc.stats().byEndpoint).toEqual({
      [new URL(deadUrl).origin]: { requests: 1, failures: 1 },
      [new URL(fake.url).origin]: { requests: 1, failures: 0 },
    });
    expect(rpc.stats().url).toBe(fake.url);
    expect(JSON.stringify(rpc.stats())).not.toContain("hunter2");
  });

  test("behavior: a request that times out is retried", async () => {
    const fake = fakeRpc((_, n) => (n === 1 ? "hang" : { body: { result: "0x2" } }));
    servers.push(fake.server);
    const rpc = createRpc({ ...opts, timeoutMs: 100, urls: [fake.url] });
    expect(await rpc.client.getBlockNumber()).toBe(2n);
    expect(rpc.stats()).toMatchObject({ requests: 2, failures: 1 });
  });

  test("error: retries run out → retryable error without credentials", async () => {
    const dead = Bun.serve({ port: 0, fetch: () => new Response("x") });
    const url = `http://admin:s3cret@127.0.0.1:${dead.port}`;
    dead.stop(true);
    const rpc = createRpc({ ...opts, maxRetries: 2, urls: [url] });
    const error = await rpc.client.getBlockNumber().catch((e: unknown) => e);
    const inner =
      error instanceof NodeError
        ? error
        : (error as { walk?: (fn: (e: unknown) => boolean) => unknown }).walk?.(
            (e) => e instanceof RpcUnavailableError,
          );
    expect(inner).toBeInstanceOf(RpcUnavailableError);
    const rpcError = inner as RpcUnavailableError;
    expect(rpcError.retryable).toBe(true);
    expect(rpcError.shortMessage).toContain("RPC request eth_blockNumber failed after 3 attempts");
    expect(rpcError.shortMessage).not.toContain("s3cret");
    expect(isRetryableRpcError(error)).toBe(true);
    expect(rpc.stats()).toMatchObject({ requests: 3, exhausted: 1 });
  });
});
