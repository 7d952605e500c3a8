// EIP712Coordinator (Infernet SDK v1): the surface a node reads and calls, hand-written from
// chain-interface.md §3 and §7 (selectors pinned in test/unit/chain/abi-selectors.test.ts). The node does not
// depend on the test fixtures' compiled ABIs.
import { subscriptionComponents } from "./subscription.ts";

const subscriptionTuple = { name: "sub", type: "tuple", components: subscriptionComponents } as const;

export const coordinatorAbi = [
  // Views
  {
    type: "function",
    name: "id",
    stateMutability: "view",
    inputs: [],
    outputs: [{ name: "", type: "uint32" }],
  },
  {
    type: "function",
    name: "getSubscription",
    stateMutability: "view",
    inputs: [{ name: "subscriptionId", type: "uint32" }],
    outputs: [{ name: "", type: "tuple", components: subscriptionComponents }],
  },
  {
    type: "function",
    name: "getSubscriptionInterval",
    stateMutability: "view",
    inputs: [
      { name: "activeAt", type: "uint32" },
      { name: "period", type: "uint32" },
    ],
    outputs: [{ name: "", type: "uint32" }],
  },
  {
    type: "function",
    name: "redundancyCount",
    stateMutability: "view",
    inputs: [{ name: "", type: "bytes32" }],
    outputs: [{ name: "", type: "uint16" }],
  },
  {
    type: "function",
    name: "nodeResponded",
    stateMutability: "view",
    inputs: [{ name: "", type: "bytes32" }],
    outputs: [{ name: "", type: "bool" }],
  },
  {
    type: "function",
    name: "proofRequests",
    stateMutability: "view",
    inputs: [{ name: "", type: "bytes32" }],
    outputs: [
      { name: "expiry", type: "uint32" },
      { name: "nodeWallet", type: "address" },
      { name: "consumerEscrowed", type: "uint256" },
    ],
  },
  {
    type: "function",
    name: "maxSubscriberNonce",
    stateMutability: "view",
    inputs: [{ name: "", type: "address" }],
    outputs: [{ name: "", type: "uint32" }],
  },
  {
    type: "function",
    name: "delegateCreatedIds",
    stateMutability: "view",
    inputs: [{ name: "", type: "bytes32" }],
    outputs: [{ name: "", type: "uint32" }],
  },
  {
    type: "function",
    name: "EIP712_NAME",
    stateMutability: "view",
    inputs: [],
    outputs: [{ name: "", type: "string" }],
  },
  {
    type: "function",
    name: "EIP712_VERSION",
    stateMutability: "view",
    inputs: [],
    outputs: [{ name: "", type: "string" }],
  },
  // Mutating
  {
    type: "function",
    name: "createSubscription",
    stateMutability: "nonpayable",
    inputs: [
      { name: "containerId", type: "string" },
      { name: "frequency", type: "uint32" },
      { name: "period", type: "uint32" },
      { name: "redundancy", type: "uint16" },
      { name: "lazy", type: "bool" },
      { name: "paymentToken", type: "address" },
      { name: "paymentAmount", type: "uint256" },
      { name: "wallet", type: "address" },
      { name: "verifier", type: "address" },
    ],
    outputs: [{ name: "", type: "uint32" }],
  },
  {
    type: "function",
    name: "cancelSubscription",
    stateMutability: "nonpayable",
    inputs: [{ name: "subscriptionId", type: "uint32" }],
    outputs: [],
  },
  {
    type: "function",
    name: "deliverCompute",
    stateMutability: "nonpayable",
    inputs: [
      { name: "subscriptionId", type: "uint32" },
      { name: "deliveryInterval", type: "uint32" },
      { name: "input", type: "bytes" },
      { name: "output", type: "bytes" },
      { name: "proof", type: "bytes" },
      { name: "nodeWallet", type: "address" },
    ],
    outputs: [],
  },
  {
    type: "function",
    name: "finalizeProofVerification",
    stateMutability: "nonpayable",
    inputs: [
      { name: "subscriptionId", type: "uint32" },
      { name: "interval", type: "uint32" },
      { name: "node", type: "address" },
      { name: "valid", type: "bool" },
    ],
    outputs: [],
  },
  {
    type: "function",
    name: "createSubscriptionDelegatee",
    stateMutability: "nonpayable",
    inputs: [
      { name: "nonce", type: "uint32" },
      { name: "expiry", type: "uint32" },
      subscriptionTuple,
      { name: "v", type: "uint8" },
      { name: "r", type: "bytes32" },
      { name: "s", type: "bytes32" },
    ],
    outputs: [{ name: "", type: "uint32" }],
  },
  {
    type: "function",
    name: "deliverComputeDelegatee",
    stateMutability: "nonpayable",
    inputs: [
      { name: "nonce", type: "uint32" },
      { name: "expiry", type: "uint32" },
      subscriptionTuple,
      { name: "v", type: "uint8" },
      { name: "r", type: "bytes32" },
      { name: "s", type: "bytes32" },
      { name: "deliveryInterval", type: "uint32" },
      { name: "input", type: "bytes" },
      { name: "output", type: "bytes" },
      { name: "proof", type: "bytes" },
      { name: "nodeWallet", type: "address" },
    ],
    outputs: [],
  },
  // Events (the node polls instead of reading logs, but the topics are part of the surface)
  {
    type: "event",
    name: "SubscriptionCreated",
    inputs: [{ name: "id", type: "uint32", indexed: true }],
  },
  {
    type: "event",
    name: "SubscriptionCancelled",
    inputs: [{ name: "id", type: "uint32", indexed: true }],
  },
  {
    type: "event",
    name: "SubscriptionFulfilled",
    inputs: [
      { name: "id", type: "uint32", indexed: true },
      { name: "node", type: "address", indexed: true },
    ],
  },
  // Custom errors, so viem decodes reverts by name
  { type: "error", name: "InvalidWallet", inputs: [] },
  { type: "error", name: "IntervalMismatch", inputs: [] },
  { type: "error", name: "IntervalCompleted", inputs: [] },
  { type: "error", name: "UnauthorizedVerifier", inputs: [] },
  { type: "error", name: "NodeRespondedAlready", inputs: [] },
  { type: "error", name: "SubscriptionNotFound", inputs: [] },
  { type: "error", name: "ProofRequestNotFound", inputs: [] },
  { type: "error", name: "NotSubscriptionOwner", inputs: [] },
  { type: "error", name: "SubscriptionCompleted", inputs: [] },
  { type: "error", name: "SubscriptionNotActive", inputs: [] },
  { type: "error", name: "UnsupportedVerifierToken", inputs: [] },
  { type: "error", name: "SignerMismatch", inputs: [] },
  { type: "error", name: "SignatureExpired", inputs: [] },
] as const;
