// The reason a traced transaction failed, read from the callTracer's frames: the top frame's revert data, the
// deepest failed call's when the top carries none, the tracer's own error text for a failure without data.
import { describe, expect, test } from "bun:test";
import { encodeAbiParameters, type Hex } from "viem";
import { type CallFrame, revertOfTrace } from "../../../src/chain/revert-reason.ts";

const errorString = (text: string) =>
  `0x08c379a0${encodeAbiParameters([{ type: "string" }], [text]).slice(2)}` as Hex;

describe("revertOfTrace", () => {
  const cases: Array<[name: string, frame: CallFrame, reason: string | undefined]> = [
    ["a call that did not fail", { output: "0x" }, undefined],
    ["no failure although output looks like revert data", { output: "0x13be252b" }, undefined],
    [
      "an Infernet error in the top frame",
      { error: "execution reverted", output: "0x13be252b" },
      "InsufficientAllowance()",
    ],
    [
      "Error(string) in the top frame",
      { error: "execution reverted", output: errorString("reverting") },
      'Error("reverting")',
    ],
    [
      "a bare revert above a failed call with data: the callee's reason",
      {
        error: "execution reverted",
        output: "0x",
        calls: [
          { output: "0x" },
          {
            error: "execution reverted",
            output: "0x",
            calls: [{ error: "execution reverted", output: "0x88a21e4f" }],
          },
        ],
      },
      "NodeRespondedAlready()",
    ],
    [
      "a bare revert with no data anywhere",
      { error: "execution reverted", calls: [{ output: "0x" }] },
      "reverted without a reason",
    ],
    ["out of gas: the tracer's error text", { error: "out of gas" }, "out of gas"],
    [
      "output that is not hex is ignored",
      { error: "execution reverted", output: "oops" },
      "reverted without a reason",
    ],
  ];
  for (const [name, frame, reason] of cases) {
    test(`behavior: ${name}`, () => {
      expect(revertOfTrace(frame)).toBe(reason);
    });
  }
});
