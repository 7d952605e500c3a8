// Revert data → names and the reference's exact messages (node-behavior §8.4), and where viem hides the data.
import { describe, expect, test } from "bun:test";
import { encodeAbiParameters, type Hex, toFunctionSelector } from "viem";
import {
  decodeRevertData,
  findRevertData,
  INFERNET_ERRORS,
  revertText,
} from "../../../src/chain/infernet-errors.ts";

describe("Infernet errors", () => {
  test("default: every selector in the table is the keccak of its error's signature", () => {
    for (const [selector, info] of INFERNET_ERRORS) {
      expect(toFunctionSelector(`${info.name}()`)).toBe(selector as Hex);
    }
    expect(INFERNET_ERRORS.size).toBe(18);
  });

  test("behavior: exact messages and levels for the ones Ritual's suite matches", () => {
    expect(decodeRevertData("0x88a21e4f").infernet?.message).toBe("Node already responded for this interval");
    expect(decodeRevertData("0x88a21e4f").infernet?.level).toBe("info");
    expect(decodeRevertData("0x356680b7").infernet?.message).toContain(
      "escrow `amount > unlockedBalance`or attempting",
    );
    expect(decodeRevertData("0x13be252b").infernet?.message).toBe("Insufficient allowance.");
  });

  test("behavior: Error(string), Panic and unknown selectors are named", () => {
    const error = `0x08c379a0${encodeAbiParameters([{ type: "string" }], ["reverting"]).slice(2)}` as Hex;
    expect(decodeRevertData(error).reason).toBe('Error("reverting")');
    expect(revertText(decodeRevertData(error)).toLowerCase()).toContain("reverting");
    const panic = `0x4e487b71${encodeAbiParameters([{ type: "uint256" }], [17n]).slice(2)}` as Hex;
    expect(decodeRevertData(panic).reason).toBe("Panic(0x11)");
    expect(decodeRevertData("0x8baa579f").reason).toBe("InvalidSignature()");
    expect(decodeRevertData("0xdeadbeef").reason).toBe("custom error 0xdeadbeef");
    expect(decodeRevertData("0x").reason).toBe("reverted without a reason");
  });

  test("behavior: revert data is found at any depth of a cause chain; non-reverts give undefined", () => {
    const rpc = { code: 3, data: "0x88a21e4f", details: "execution reverted" };
    const wrapped = { details: "execution reverted: custom error", cause: { cause: rpc } };
    expect(findRevertData(wrapped)).toBe("0x88a21e4f");
    expect(findRevertData({ details: "execution reverted" })).toBe("0x");
    expect(findRevertData(new TypeError("fetch failed"))).toBeUndefined();
  });
});
