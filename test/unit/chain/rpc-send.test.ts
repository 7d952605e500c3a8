// eth_sendRawTransaction is sent once per call: a lost reply is not retried by the RPC layer (the transaction
// manager rebroadcasts the same bytes itself, after checking the lease), but the next call goes to the next URL.
import { afterAll, describe, expect, test } from "bun:test";
import { createRpc, isRetryableRpcError } from "../../../src/chain/rpc.ts";
import { createLog } from "../../../src/lib/log.ts";

const servers: Array<{ stop(force?: boolean): unknown }> = [];
afterAll(() => {
  for (const server of servers) server.stop(true);
});

/** A JSON-RPC server that answers 502 to everything and records the methods it saw. */
function badGateway() {
  const methods: string[] = [];
  const server = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    async fetch(req) {
      methods.push(((await req.json()) as { method: string }).method);
      return new Response("Bad Gateway", { status: 502 });
    },
  });
  servers.push(server);
  return { methods, url: `http://127.0.0.1:${server.port}` };
}

describe("createRpc: eth_sendRawTransaction", () => {
  test("behavior: a 502 is not retried; the error is retryable (unknown outcome) and the next call fails over", async () => {
    const first = badGateway();
    const second = badGateway();
    const rpc = createRpc({
      urls: [first.url, second.url],
      timeoutMs: 1_000,
      maxRetries: 3,
      log: createLog("rpc-test"),
      backoffBaseMs: 1,
      backoffMaxMs: 2,
    });
    const error = await rpc.client
      .request({ method: "eth_sendRawTransaction", params: ["0x01"] })
      .catch((e: unknown) => e);
    expect(first.methods).toEqual(["eth_sendRawTransaction"]);
    expect(second.methods).toEqual([]);
    expect(isRetryableRpcError(error)).toBe(true);
    expect(String((error as Error).message)).toContain("failed after 1 attempt");
    expect(rpc.stats()).toMatchObject({ requests: 1, failures: 1, failovers: 1 });
    await rpc.client.request({ method: "eth_sendRawTransaction", params: ["0x01"] }).catch(() => undefined);
    expect(second.methods).toEqual(["eth_sendRawTransaction"]);
    // Reads are still retried.
    await rpc.client.getBlockNumber().catch(() => undefined);
    expect(first.methods.length + second.methods.length).toBe(2 + 4);
  });
});
