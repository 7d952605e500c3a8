// suggestedLogRange: providers' eth_getLogs refusals (../shared/notes/rpc-providers.md) as the node sees them.
// Each message is answered by a scripted JSON-RPC server (the provider's side, which we do not own) and read
// back through the real transport (rpc.ts) and viem's client.getLogs, so the error arrives wrapped exactly as
// in the node; a second table checks viem's error classes built by hand, as the brief's shapes.
import { afterAll, describe, expect, test } from "bun:test";
import {
  HttpRequestError,
  InvalidParamsRpcError,
  LimitExceededRpcError,
  parseAbiItem,
  RpcRequestError,
  TimeoutError,
  UnknownRpcError,
} from "viem";
import { isTimeout, type LogRangeHint, suggestedLogRange } from "../../../src/chain/log-range.ts";
import { createRpc, RpcUnavailableError } from "../../../src/chain/rpc.ts";
import { createLog } from "../../../src/lib/log.ts";

type Expected = LogRangeHint | "refusal" | undefined;
type Reply = { status?: number; error?: { code: number; message: string; data?: unknown } } | "hang";

// code, message, data → what the scanner should make of it.
const PROVIDER_CASES: Array<{
  name: string;
  code: number;
  message: string;
  data?: unknown;
  expected: Expected;
}> = [
  {
    name: "Infura: result cap with a suggested range (text and data)",
    code: -32005,
    message: "query returned more than 10000 results. Try with this block range [0x10, 0x2F].",
    data: { from: "0x10", to: "0x2F", limit: 10000 },
    expected: { from: 16n, to: 47n },
  },
  {
    name: "Infura: range only in data",
    code: -32005,
    message: "query returned more than 10000 results",
    data: { from: "0x100", to: "0x17f", limit: 10000 },
    expected: { from: 256n, to: 383n },
  },
  {
    name: "Alchemy: response size with the range that should work",
    code: -32602,
    message:
      "Log response size exceeded. You can make eth_getLogs requests with up to a 2K block range and no limit on the response size, or you can request any block range with a cap of 10K logs in the response. Based on your parameters, this block range should work: [0x1a2b, 0x1b00]",
    expected: { from: 0x1a2bn, to: 0x1b00n },
  },
  {
    name: "thirdweb: maximum number of requested blocks",
    code: -32602,
    message: "Maximum allowed number of requested blocks is 1000",
    expected: { maxBlocks: 1000n },
  },
  {
    name: "BlockPI: limited to N block range",
    code: -32602,
    message: "eth_getLogs is limited to 1024 block range",
    expected: { maxBlocks: 1024n },
  },
  {
    name: "QuickNode: limited to a N range (thousands separator)",
    code: -32614,
    message: "eth_getLogs is limited to a 10,000 range",
    expected: { maxBlocks: 10000n },
  },
  {
    name: "others: -32602 max block range",
    code: -32602,
    message: "query exceeds max block range 100000",
    expected: { maxBlocks: 100000n },
  },
  {
    name: "others: -32603 max block range",
    code: -32603,
    message: "query exceeds max block range 1000",
    expected: { maxBlocks: 1000n },
  },
  {
    name: "others: code 35, max results with a decimal range",
    code: 35,
    message: "query exceeds max results 20000, retry with the range 24480000-24480499",
    expected: { from: 24480000n, to: 24480499n },
  },
  {
    name: "others: exceed maximum block range with a colon",
    code: -32000,
    message: "exceed maximum block range: 50000",
    expected: { maxBlocks: 50000n },
  },
  {
    name: "Ankr-like: result cap without numbers we can use",
    code: -32602,
    message: "query returned more than 200000 logs, narrow the query",
    expected: "refusal",
  },
  { name: "block range too large", code: -32000, message: "block range too large", expected: "refusal" },
  { name: "bare -32005 limit exceeded", code: -32005, message: "limit exceeded", expected: "refusal" },
  {
    name: "reversed suggested range: still a refusal, no range",
    code: -32005,
    message: "query returned more than 10000 results. Try with this block range [0x2f, 0x10].",
    expected: "refusal",
  },
  {
    name: "rate limit on -32005: an outage, not a range",
    code: -32005,
    message: "daily request count exceeded, request rate limited",
    expected: undefined,
  },
  { name: "internal error: an outage", code: -32603, message: "internal error", expected: undefined },
  {
    name: "invalid params unrelated to the range",
    code: -32602,
    message: "invalid argument 0: hex string without 0x prefix",
    expected: undefined,
  },
  { name: "header not found", code: -32000, message: "header not found", expected: undefined },
];

const HTTP_CASES: Array<{ name: string; reply: Reply; expected: Expected }> = [
  { name: "HTTP 413 (request or response too large)", reply: { status: 413 }, expected: "refusal" },
  { name: "HTTP 503: an outage", reply: { status: 503 }, expected: undefined },
  { name: "HTTP 401: not a range problem", reply: { status: 401 }, expected: undefined },
  { name: "timeout", reply: "hang", expected: "refusal" },
];

let reply: Reply = { status: 200 };
const server = Bun.serve({
  port: 0,
  hostname: "127.0.0.1",
  async fetch(req) {
    const body = (await req.json()) as { id: number };
    const current = reply;
    if (current === "hang") {
      await Bun.sleep(1_000);
      return new Response("late");
    }
    if (current.error) {
      return Response.json(
        { jsonrpc: "2.0", id: body.id, error: current.error },
        { status: current.status ?? 200 },
      );
    }
    return new Response("refused", { status: current.status ?? 200 });
  },
});
afterAll(() => server.stop(true));

const rpc = createRpc({
  urls: [`http://127.0.0.1:${server.port}`],
  timeoutMs: 200,
  maxRetries: 0,
  log: createLog("log-range-test"),
  backoffBaseMs: 1,
  backoffMaxMs: 1,
});
const events = [
  parseAbiItem("event SubscriptionCancelled(uint32 indexed id)"),
  parseAbiItem("event SubscriptionFulfilled(uint32 indexed id, address indexed node)"),
];

/** The error client.getLogs throws for `next`, through the node's transport. */
async function getLogsError(next: Reply): Promise<unknown> {
  reply = next;
  try {
    await rpc.client.getLogs({
      address: "0x0000000000000000000000000000000000000001",
      events,
      fromBlock: 1n,
      toBlock: 5000n,
    });
  } catch (error) {
    return error;
  }
  throw new Error("getLogs did not fail");
}

describe("suggestedLogRange through the transport and client.getLogs", () => {
  test.each(PROVIDER_CASES)("behavior: $name", async ({ code, message, data, expected }) => {
    const error = await getLogsError({ error: { code, message, ...(data === undefined ? {} : { data }) } });
    expect(suggestedLogRange(error)).toEqual(expected);
  });

  test.each(HTTP_CASES)("behavior: $name", async ({ reply: next, expected }) => {
    const error = await getLogsError(next);
    expect(suggestedLogRange(error)).toEqual(expected);
    expect(isTimeout(error)).toBe(next === "hang");
  });
});

describe("suggestedLogRange on viem's error classes", () => {
  const body = { method: "eth_getLogs" };
  const url = "https://user:secret@rpc.invalid/key";
  const request = (code: number, message: string, data?: unknown) =>
    new RpcRequestError({ body, error: { code, message, ...(data === undefined ? {} : { data }) }, url });
  const wrapped = (cause: Error) =>
    new UnknownRpcError(
      new RpcUnavailableError("RPC request eth_getLogs failed", { retryable: true, cause }),
    );

  const cases: Array<{ name: string; error: unknown; expected: Expected }> = [
    {
      name: "bare RpcRequestError",
      error: request(-32602, "eth_getLogs is limited to 1024 block range"),
      expected: { maxBlocks: 1024n },
    },
    {
      name: "InvalidParamsRpcError twice around it (both buildRequest layers)",
      error: new InvalidParamsRpcError(new InvalidParamsRpcError(request(-32602, "block range is too wide"))),
      expected: "refusal",
    },
    {
      name: "retried -32005 inside RpcUnavailableError inside UnknownRpcError",
      error: wrapped(
        new LimitExceededRpcError(
          request(-32005, "query returned more than 10000 results", { from: "0x1", to: "0x9" }),
        ),
      ),
      expected: { from: 1n, to: 9n },
    },
    {
      name: "TimeoutError after retries",
      error: wrapped(new TimeoutError({ body, url })),
      expected: "refusal",
    },
    {
      name: "HttpRequestError 413",
      error: new HttpRequestError({ url, status: 413, details: "Payload Too Large" }),
      expected: "refusal",
    },
    {
      name: "HttpRequestError without status (connection refused)",
      error: wrapped(new HttpRequestError({ url })),
      expected: undefined,
    },
    { name: "a plain TypeError", error: new TypeError("fetch failed"), expected: undefined },
    { name: "not an error at all", error: "boom", expected: undefined },
    { name: "undefined", error: undefined, expected: undefined },
  ];

  test.each(cases)("behavior: $name", ({ error, expected }) => {
    expect(suggestedLogRange(error)).toEqual(expected);
  });
});
