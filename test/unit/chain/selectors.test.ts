// Pins every selector, event topic, error selector and EIP-712 type hash of chain-interface.md to the literal
// values in the spec, computed from the ABIs our own Solidity contracts (test/fixtures/contracts) compile to.
import { describe, expect, test } from "bun:test";
import {
  type Abi,
  type AbiParameter,
  type Hex,
  keccak256,
  toBytes,
  toEventSelector,
  toFunctionSelector,
} from "viem";
import { containerIdOf } from "../../fixtures/chain-helpers.ts";
import { compileContracts } from "../../fixtures/contracts/compile.ts";

const contracts = compileContracts();

function abiOf(name: string): Abi {
  const c = contracts[name];
  if (!c) throw new Error(`contract ${name} not compiled`);
  return c.abi;
}

function canonicalType(p: AbiParameter): string {
  if (p.type.startsWith("tuple")) {
    const components = (p as { components: readonly AbiParameter[] }).components;
    return `(${components.map(canonicalType).join(",")})${p.type.slice("tuple".length)}`;
  }
  return p.type;
}

/** Canonical signatures of every item of `kind` named `name` in the contract's ABI. */
function signaturesOf(contract: string, kind: "function" | "event" | "error", name: string): string[] {
  return abiOf(contract)
    .filter((i) => i.type === kind && i.name === name)
    .map((i) => {
      const inputs = (i as { inputs: readonly AbiParameter[] }).inputs;
      return `${name}(${inputs.map(canonicalType).join(",")})`;
    });
}

/** The single canonical signature of `name` in the ABI (fails if missing or overloaded). */
function signatureOf(contract: string, kind: "function" | "event" | "error", name: string): string {
  const sigs = signaturesOf(contract, kind, name);
  expect(sigs).toHaveLength(1);
  return sigs[0] ?? "";
}

const SUB_TUPLE = "(address,uint32,uint32,uint32,uint16,bytes32,bool,address,uint256,address,address)";

// [contract, function name, selector from the spec]
const FUNCTIONS: [string, string, Hex][] = [
  // Registry
  ["Registry", "COORDINATOR", "0x3b2bcbf1"],
  ["Registry", "INBOX", "0xb7010697"],
  ["Registry", "READER", "0x698eec44"],
  ["Registry", "FEE", "0xc57981b5"],
  ["Registry", "WALLET_FACTORY", "0x0e2009f4"],
  // Coordinator / EIP712Coordinator: views
  ["EIP712Coordinator", "id", "0xaf640d0f"],
  ["EIP712Coordinator", "getSubscription", "0xa17b920b"],
  ["EIP712Coordinator", "getSubscriptionInterval", "0x836a6cc9"],
  ["EIP712Coordinator", "redundancyCount", "0xbc85694f"],
  ["EIP712Coordinator", "nodeResponded", "0x298f7bdc"],
  ["EIP712Coordinator", "proofRequests", "0xc34cf5c7"],
  ["EIP712Coordinator", "maxSubscriberNonce", "0x7fb61b27"],
  ["EIP712Coordinator", "delegateCreatedIds", "0x60ed0f61"],
  ["EIP712Coordinator", "EIP712_NAME", "0x3b2fb7a8"],
  ["EIP712Coordinator", "EIP712_VERSION", "0xeccec5a8"],
  ["EIP712Coordinator", "eip712Domain", "0x84b0196e"],
  // Coordinator: mutating
  ["EIP712Coordinator", "createSubscription", "0x84050893"],
  ["EIP712Coordinator", "cancelSubscription", "0x31e451a9"],
  ["EIP712Coordinator", "deliverCompute", "0xc509543d"],
  ["EIP712Coordinator", "finalizeProofVerification", "0x196ab123"],
  ["EIP712Coordinator", "createSubscriptionDelegatee", "0x9c092514"],
  ["EIP712Coordinator", "deliverComputeDelegatee", "0x9fff314a"],
  // Reader
  ["Reader", "readSubscriptionBatch", "0x3ddc29f5"],
  ["Reader", "readRedundancyCountBatch", "0x757f1c84"],
  // Inbox
  ["Inbox", "write", "0x198896dd"],
  ["Inbox", "writeViaCoordinator", "0x76a87949"],
  ["Inbox", "read", "0x586a6094"],
  ["Inbox", "items", "0x93eaef1f"],
  // Fee + Ownable surface
  ["Fee", "FEE", "0xc57981b5"],
  ["Fee", "FEE_RECIPIENT", "0xebd09054"],
  ["Fee", "updateFee", "0x2c6cda93"],
  ["Fee", "owner", "0x8da5cb5b"],
  ["Fee", "transferOwnership", "0xf2fde38b"],
  ["Fee", "renounceOwnership", "0x715018a6"],
  ["Fee", "requestOwnershipHandover", "0x25692962"],
  ["Fee", "cancelOwnershipHandover", "0x54d1f13d"],
  ["Fee", "completeOwnershipHandover", "0xf04e283e"],
  ["Fee", "ownershipHandoverExpiresAt", "0xfee81cf4"],
  // WalletFactory
  ["WalletFactory", "createWallet", "0xb054a9e8"],
  ["WalletFactory", "isValidWallet", "0x439a3012"],
  // Wallet
  ["Wallet", "approve", "0xe1f21c67"],
  ["Wallet", "withdraw", "0xf3fef3a3"],
  ["Wallet", "allowance", "0xdd62ed3e"],
  ["Wallet", "cTransfer", "0x0d67cfd9"],
  ["Wallet", "cLock", "0xd0729347"],
  ["Wallet", "cUnlock", "0xc7048369"],
  ["Wallet", "owner", "0x8da5cb5b"],
  ["Wallet", "transferOwnership", "0xf2fde38b"],
  ["Wallet", "renounceOwnership", "0x715018a6"],
  ["Wallet", "requestOwnershipHandover", "0x25692962"],
  ["Wallet", "cancelOwnershipHandover", "0x54d1f13d"],
  ["Wallet", "completeOwnershipHandover", "0xf04e283e"],
  ["Wallet", "ownershipHandoverExpiresAt", "0xfee81cf4"],
  // IVerifier (and the mock implementing it)
  ["IVerifier", "getWallet", "0x13299604"],
  ["IVerifier", "isSupportedToken", "0x240028e8"],
  ["IVerifier", "fee", "0x6fcca69b"],
  ["IVerifier", "requestProofVerification", "0x81e79a90"],
  ["MockVerifier", "getWallet", "0x13299604"],
  ["MockVerifier", "isSupportedToken", "0x240028e8"],
  ["MockVerifier", "fee", "0x6fcca69b"],
  ["MockVerifier", "requestProofVerification", "0x81e79a90"],
  // Consumers and patterns
  ["BaseConsumer", "rawReceiveCompute", "0x7a411a8d"],
  ["BaseConsumer", "getContainerInputs", "0x962fad75"],
  ["CallbackConsumer", "getContainerInputs", "0x962fad75"],
  ["Delegator", "getSigner", "0x7ac3c02f"],
  ["Allowlist", "isAllowedNode", "0xa136e529"],
  ["TestCallbackConsumer", "rawReceiveCompute", "0x7a411a8d"],
  ["TestSubscriptionConsumer", "getContainerInputs", "0x962fad75"],
  ["TestDelegatorConsumer", "getSigner", "0x7ac3c02f"],
  ["TestAllowlistConsumer", "isAllowedNode", "0xa136e529"],
  // ERC20 used by the node for balances
  ["MockToken", "balanceOf", "0x70a08231"],
];

// [contract, event name, topic0 from the spec]
const EVENTS: [string, string, Hex][] = [
  [
    "EIP712Coordinator",
    "SubscriptionCreated",
    "0x04344ed7a67fec80c444d56ee1cee242f3f75b91fecc8dbce8890069c82eb48e",
  ],
  [
    "EIP712Coordinator",
    "SubscriptionCancelled",
    "0xf4126e31c182db4c4109605c6d50470fc7e8ca90d62d44fd25cbe049fb9cac3e",
  ],
  [
    "EIP712Coordinator",
    "SubscriptionFulfilled",
    "0xc68fb0ae5cea2793405d29014d881bcda18f67122e0bcd7d0a577e118b64e4c8",
  ],
  [
    "EIP712Coordinator",
    "ProofVerified",
    "0xaf1556610075709bf885e17681512d329b1a40f799ee5196f79461e89b656454",
  ],
  ["Inbox", "NewInboxItem", "0xac56b74ea9119b4c4e424d8ed4c3cec0c84d1f6b02200df5a8cd27eb756994d1"],
  ["Fee", "OwnershipTransferred", "0x8be0079c531659141344cd1fd0a4f28419497f9722a3daafe3b4186f6b6457e0"],
  ["Fee", "OwnershipHandoverRequested", "0xdbf36a107da19e49527a7176a1babf963b4b0ff8cde35ee35d6cd8f1f9ac7e1d"],
  ["Fee", "OwnershipHandoverCanceled", "0xfa7b8eab7da67f412cc9575ed43464468f9bfbae89d1675917346ca6d8fe3c92"],
  ["WalletFactory", "WalletCreated", "0xca0b7dde26052d34217ef1a0cee48085a07ca32da0a918609937a307d496bbf5"],
  ["Wallet", "Approval", "0x8c5be1e5ebec7d5bd14f71427d1e84f3dd0314c0f7b2291e5b200ac8c7c3b925"],
  ["Wallet", "Escrow", "0x813582499997f00ba0142c7813740a6e381df71a63d11d8c8f208f66b7795d26"],
  ["Wallet", "Transfer", "0xd1398bee19313d6bf672ccb116e51f4a1a947e91c757907f51fbb5b5e56c698f"],
  ["Wallet", "Withdrawl", "0x65ac0d8bb8cbc0e989ebd02ddc5161d7c499f7c21792e43fcf170314fe6bcc3f"],
  ["Wallet", "OwnershipTransferred", "0x8be0079c531659141344cd1fd0a4f28419497f9722a3daafe3b4186f6b6457e0"],
];

// [contract whose ABI declares it, error name, selector from the spec]
const ERRORS: [string, string, Hex][] = [
  ["EIP712Coordinator", "InvalidWallet", "0x23455ba1"],
  ["EIP712Coordinator", "IntervalMismatch", "0x4db310c3"],
  ["EIP712Coordinator", "IntervalCompleted", "0x2f4ca85b"],
  ["EIP712Coordinator", "UnauthorizedVerifier", "0xb9857aa1"],
  ["EIP712Coordinator", "NodeRespondedAlready", "0x88a21e4f"],
  ["EIP712Coordinator", "SubscriptionNotFound", "0x1a00354f"],
  ["EIP712Coordinator", "ProofRequestNotFound", "0x1d68b37c"],
  ["EIP712Coordinator", "NotSubscriptionOwner", "0xa7fba711"],
  ["EIP712Coordinator", "SubscriptionCompleted", "0xae6704a7"],
  ["EIP712Coordinator", "SubscriptionNotActive", "0xefb74efe"],
  ["EIP712Coordinator", "UnsupportedVerifierToken", "0xe2372799"],
  ["EIP712Coordinator", "SignerMismatch", "0x10c74b03"],
  ["EIP712Coordinator", "SignatureExpired", "0x0819bdcd"],
  ["EIP712Coordinator", "Reentrancy", "0xab143c06"],
  ["ECDSA", "InvalidSignature", "0x8baa579f"],
  ["Inbox", "NotCoordinator", "0x9ec853e6"],
  ["Wallet", "NotCoordinator", "0x9ec853e6"],
  ["BaseConsumer", "NotCoordinator", "0x9ec853e6"],
  ["Wallet", "InsufficientFunds", "0x356680b7"],
  ["Wallet", "InsufficientAllowance", "0x13be252b"],
  ["MockToken", "InsufficientAllowance", "0x13be252b"],
  ["MockToken", "InsufficientBalance", "0xf4d678b8"],
  ["Allowlist", "NodeNotAllowed", "0x42764946"],
  ["TestAllowlistConsumer", "NodeNotAllowed", "0x42764946"],
  ["SafeTransfer", "TransferFailed", "0x90b8ec18"],
  ["SafeTransfer", "ETHTransferFailed", "0xb12d13eb"],
  ["SafeTransfer", "TransferFromFailed", "0x7939f424"],
  ["Fee", "Unauthorized", "0x82b42900"],
  ["Fee", "NewOwnerIsZeroAddress", "0x7448fbae"],
  ["Fee", "NoHandoverRequest", "0x6f5e8818"],
  ["Fee", "AlreadyInitialized", "0x0dc149f0"],
  ["Wallet", "Unauthorized", "0x82b42900"],
];

describe("selectors", () => {
  test.each(FUNCTIONS)("default: %s.%s is %s", (contract, name, selector) => {
    expect(toFunctionSelector(signatureOf(contract, "function", name))).toBe(selector);
  });

  test.each(EVENTS)("default: event %s.%s has topic0 %s", (contract, name, topic) => {
    expect(toEventSelector(signatureOf(contract, "event", name))).toBe(topic);
  });

  test.each(ERRORS)("default: error %s.%s is %s", (contract, name, selector) => {
    expect(toFunctionSelector(signatureOf(contract, "error", name))).toBe(selector);
  });

  test("behavior: delegatee functions use the canonical Subscription tuple", () => {
    expect(signatureOf("EIP712Coordinator", "function", "createSubscriptionDelegatee")).toBe(
      `createSubscriptionDelegatee(uint32,uint32,${SUB_TUPLE},uint8,bytes32,bytes32)`,
    );
    expect(signatureOf("EIP712Coordinator", "function", "deliverComputeDelegatee")).toBe(
      `deliverComputeDelegatee(uint32,uint32,${SUB_TUPLE},uint8,bytes32,bytes32,uint32,bytes,bytes,bytes,address)`,
    );
  });

  test("behavior: getSubscription and readSubscriptionBatch return the Subscription tuple", () => {
    const outputs = (contract: string, name: string) => {
      const item = abiOf(contract).find((i) => i.type === "function" && i.name === name);
      return (item as { outputs: readonly AbiParameter[] }).outputs.map(canonicalType);
    };
    expect(outputs("EIP712Coordinator", "getSubscription")).toEqual([SUB_TUPLE]);
    expect(outputs("Reader", "readSubscriptionBatch")).toEqual([`${SUB_TUPLE}[]`]);
    expect(outputs("Reader", "readRedundancyCountBatch")).toEqual(["uint16[]"]);
    expect(outputs("EIP712Coordinator", "proofRequests")).toEqual(["uint32", "address", "uint256"]);
    expect(outputs("EIP712Coordinator", "id")).toEqual(["uint32"]);
    expect(outputs("Inbox", "read")).toEqual(["(uint32,uint32,uint32,bytes,bytes,bytes)"]);
    expect(outputs("Inbox", "items")).toEqual(["uint32", "uint32", "uint32", "bytes", "bytes", "bytes"]);
    expect(outputs("EIP712Coordinator", "eip712Domain")).toEqual([
      "bytes1",
      "string",
      "string",
      "uint256",
      "address",
      "bytes32",
      "uint256[]",
    ]);
  });

  test("behavior: no Coordinator function is payable", () => {
    const payable = abiOf("EIP712Coordinator").filter(
      (i) => i.type === "function" && i.stateMutability === "payable",
    );
    expect(payable).toEqual([]);
  });
});

describe("EIP-712 type hashes", () => {
  const DOMAIN = "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)";
  const SUBSCRIPTION =
    "Subscription(address owner,uint32 activeAt,uint32 period,uint32 frequency,uint16 redundancy,bytes32 containerId,bool lazy,address verifier,uint256 paymentAmount,address paymentToken,address wallet)";
  const DELEGATE = `DelegateSubscription(uint32 nonce,uint32 expiry,Subscription sub)${SUBSCRIPTION}`;
  const HASHES: [string, string, Hex][] = [
    ["EIP712Domain", DOMAIN, "0x8b73c3c69bb8fe3d512ecc4cf759cc79239f7b179b0ffacaa9a75d522b39400f"],
    ["Subscription", SUBSCRIPTION, "0x3da81ed66ee47395e568c52867826ec137777eef9c1bdfb6bf972dd4385bc5a9"],
    ["DelegateSubscription", DELEGATE, "0xba9ff1aef2b048b42767aade2b901745a3acf14f698a9ec13952098cfd03d0b6"],
  ];

  test.each(HASHES)("default: %s type hash", (_name, typeString, hash) => {
    expect(keccak256(toBytes(typeString))).toBe(hash);
  });

  test.each(HASHES)(
    "behavior: the EIP712Coordinator bytecode embeds the %s type hash",
    (_name, _type, hash) => {
      const code = contracts.EIP712Coordinator?.deployedBytecode.toLowerCase() ?? "";
      // PUSH32 <hash>
      expect(code.includes(`7f${hash.slice(2)}`)).toBe(true);
    },
  );
});

describe("container ids", () => {
  test("default: keccak256(abi.encode(string)) of the comma-joined ids", () => {
    expect(containerIdOf("hello-world")).toBe(
      "0x5768661526084c7b4d30f7224ed6c74ade98db3c6c395c55400a17f34a547e22",
    );
    expect(containerIdOf(["A", "B"])).toBe(
      "0xed76aa63268e9d816365e0b3c94f7ea57c80b3b404d41ca7a65a492ff9d0526e",
    );
    expect(containerIdOf("a")).toBe("0x61121a9e6ec8e98f21038631472bc3010b0f7858699630bbbd5294dca02ef29e");
    expect(containerIdOf(["a", "b"])).toBe(
      "0x0deeac3a841600829c99f8116bb997da266d4c47a720b00e6ace9594de82dd54",
    );
    expect(containerIdOf("b,a")).toBe("0x73ede0fe4b30aa8027db6b64635734b367776b05dc0bcf986c744c6bcbf6892e");
  });
});
