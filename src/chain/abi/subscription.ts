// The on-chain `Subscription` struct as an ABI tuple, in struct order (chain-interface.md §2). Shared by the
// Coordinator and Reader ABIs so the field order is written down exactly once.
export const subscriptionComponents = [
  { name: "owner", type: "address" },
  { name: "activeAt", type: "uint32" },
  { name: "period", type: "uint32" },
  { name: "frequency", type: "uint32" },
  { name: "redundancy", type: "uint16" },
  { name: "containerId", type: "bytes32" },
  { name: "lazy", type: "bool" },
  { name: "verifier", type: "address" },
  { name: "paymentAmount", type: "uint256" },
  { name: "paymentToken", type: "address" },
  { name: "wallet", type: "address" },
] as const;
