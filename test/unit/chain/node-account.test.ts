import { describe, expect, test } from "bun:test";
import { nodeAddress } from "../../../src/chain/node-account.ts";

// anvil's dev account #0
const KEY = "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";

describe("nodeAddress", () => {
  test("default: the checksummed EOA of the key", () => {
    expect(nodeAddress(`0x${KEY}`)).toBe("0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266");
  });
  test("behavior: a key without 0x gives the same address", () => {
    expect(nodeAddress(KEY)).toBe("0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266");
  });
});
