// Pins the selectors of the node's hand-written ABIs to the values in chain-interface.md, so a typo in a type
// or a name cannot silently change what the node calls.
import { describe, expect, test } from "bun:test";
import { type AbiFunction, toEventSelector, toFunctionSelector } from "viem";
import { coordinatorAbi } from "../../../src/chain/abi/coordinator.ts";
import { erc20Abi } from "../../../src/chain/abi/erc20.ts";
import { readerAbi } from "../../../src/chain/abi/reader.ts";
import { registryAbi } from "../../../src/chain/abi/registry.ts";
import { walletFactoryAbi } from "../../../src/chain/abi/wallet-factory.ts";

function selectors(abi: readonly { type: string }[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of abi) {
    if (item.type !== "function") continue;
    const fn = item as AbiFunction;
    out[fn.name] = toFunctionSelector(fn);
  }
  return out;
}

describe("hand-written ABIs", () => {
  test("default: Registry getters", () => {
    expect(selectors(registryAbi)).toEqual({
      COORDINATOR: "0x3b2bcbf1",
      INBOX: "0xb7010697",
      READER: "0x698eec44",
      FEE: "0xc57981b5",
      WALLET_FACTORY: "0x0e2009f4",
    });
  });

  test("default: Coordinator functions", () => {
    expect(selectors(coordinatorAbi)).toEqual({
      id: "0xaf640d0f",
      getSubscription: "0xa17b920b",
      getSubscriptionInterval: "0x836a6cc9",
      redundancyCount: "0xbc85694f",
      nodeResponded: "0x298f7bdc",
      proofRequests: "0xc34cf5c7",
      maxSubscriberNonce: "0x7fb61b27",
      delegateCreatedIds: "0x60ed0f61",
      EIP712_NAME: "0x3b2fb7a8",
      EIP712_VERSION: "0xeccec5a8",
      createSubscription: "0x84050893",
      cancelSubscription: "0x31e451a9",
      deliverCompute: "0xc509543d",
      finalizeProofVerification: "0x196ab123",
      createSubscriptionDelegatee: "0x9c092514",
      deliverComputeDelegatee: "0x9fff314a",
    });
  });

  test("default: Coordinator events and errors", () => {
    const events = Object.fromEntries(
      coordinatorAbi
        .filter((item) => item.type === "event")
        .map((item) => [item.name, toEventSelector(item)]),
    );
    expect(events).toEqual({
      SubscriptionCreated: "0x04344ed7a67fec80c444d56ee1cee242f3f75b91fecc8dbce8890069c82eb48e",
      SubscriptionCancelled: "0xf4126e31c182db4c4109605c6d50470fc7e8ca90d62d44fd25cbe049fb9cac3e",
      SubscriptionFulfilled: "0xc68fb0ae5cea2793405d29014d881bcda18f67122e0bcd7d0a577e118b64e4c8",
    });
    const errors = Object.fromEntries(
      coordinatorAbi
        .filter((item) => item.type === "error")
        .map((item) => [item.name, toFunctionSelector(`${item.name}()`)]),
    );
    expect(errors).toEqual({
      InvalidWallet: "0x23455ba1",
      IntervalMismatch: "0x4db310c3",
      IntervalCompleted: "0x2f4ca85b",
      UnauthorizedVerifier: "0xb9857aa1",
      NodeRespondedAlready: "0x88a21e4f",
      SubscriptionNotFound: "0x1a00354f",
      ProofRequestNotFound: "0x1d68b37c",
      NotSubscriptionOwner: "0xa7fba711",
      SubscriptionCompleted: "0xae6704a7",
      SubscriptionNotActive: "0xefb74efe",
      UnsupportedVerifierToken: "0xe2372799",
      SignerMismatch: "0x10c74b03",
      SignatureExpired: "0x0819bdcd",
    });
  });

  test("default: Reader, WalletFactory, ERC20", () => {
    expect(selectors(readerAbi)).toEqual({
      readSubscriptionBatch: "0x3ddc29f5",
      readRedundancyCountBatch: "0x757f1c84",
    });
    expect(selectors(walletFactoryAbi)).toEqual({ isValidWallet: "0x439a3012", createWallet: "0xb054a9e8" });
    expect(selectors(erc20Abi)).toEqual({ balanceOf: "0x70a08231" });
  });
});
