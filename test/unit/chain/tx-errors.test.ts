// What a node's answer to eth_sendRawTransaction means, for the phrasings of several clients, table-driven.
import { describe, expect, test } from "bun:test";
import { BaseError, HttpRequestError, RpcRequestError, TimeoutError, TransactionExecutionError } from "viem";
import { RpcUnavailableError } from "../../../src/chain/rpc.ts";
import { type BroadcastVerdict, classifyBroadcastError } from "../../../src/chain/tx-errors.ts";

const rpcError = (code: number, message: string) =>
  new RpcRequestError({ body: {}, url: "http://rpc.invalid", error: { code, message } });

describe("classifyBroadcastError", () => {
  const cases: Array<[string, unknown, BroadcastVerdict]> = [
    ["geth: already known", rpcError(-32000, "already known"), "known"],
    ["anvil: transaction already imported", rpcError(-32003, "transaction already imported"), "known"],
    [
      "Nethermind / Parity: known transaction",
      rpcError(-32010, "Transaction with the same hash was already imported. known transaction"),
      "known",
    ],
    ["geth: nonce too low", rpcError(-32000, "nonce too low: next nonce 5, tx nonce 4"), "nonce-too-low"],
    [
      "wrapped by viem",
      new BaseError("failed", { cause: rpcError(-32000, "nonce too low") }),
      "nonce-too-low",
    ],
    [
      "geth: replacement underpriced",
      rpcError(-32000, "replacement transaction underpriced"),
      "replacement-underpriced",
    ],
    ["below the pool floor", rpcError(-32000, "transaction underpriced"), "underpriced"],
    [
      "a proxy's 502 (lost reply)",
      new HttpRequestError({ url: "http://rpc.invalid", status: 502 }),
      "unknown",
    ],
    ["a timeout (lost reply)", new TimeoutError({ body: {}, url: "http://rpc.invalid" }), "unknown"],
    [
      "the RPC layer gave up",
      new RpcUnavailableError("RPC request eth_sendRawTransaction failed after 1 attempt", {
        retryable: true,
      }),
      "unknown",
    ],
    ["insufficient funds", rpcError(-32000, "insufficient funds for gas * price + value"), "refused"],
    ["intrinsic gas too low", rpcError(-32000, "intrinsic gas too low"), "refused"],
    ["not 'known': unknown transaction type", rpcError(-32000, "unknown transaction type"), "refused"],
  ];
  for (const [name, error, verdict] of cases)
    test(`behavior: ${name} → ${verdict}`, () => expect(classifyBroadcastError(error)).toBe(verdict));

  test("default: viem's own wrapping of a node error is read through its cause chain", () => {
    const wrapped = new TransactionExecutionError(
      new BaseError("Missing or invalid parameters.", { details: "already known" }),
      { account: null },
    );
    expect(classifyBroadcastError(wrapped)).toBe("known");
  });
});
