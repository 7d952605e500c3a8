// Registry (Infernet SDK v1): five immutable getters, each `() → address`. Hand-written from
// chain-interface.md §1; selectors are pinned in test/unit/chain/abi-selectors.test.ts.
export const registryAbi = [
  {
    type: "function",
    name: "COORDINATOR",
    stateMutability: "view",
    inputs: [],
    outputs: [{ type: "address" }],
  },
  { type: "function", name: "INBOX", stateMutability: "view", inputs: [], outputs: [{ type: "address" }] },
  { type: "function", name: "READER", stateMutability: "view", inputs: [], outputs: [{ type: "address" }] },
  { type: "function", name: "FEE", stateMutability: "view", inputs: [], outputs: [{ type: "address" }] },
  {
    type: "function",
    name: "WALLET_FACTORY",
    stateMutability: "view",
    inputs: [],
    outputs: [{ type: "address" }],
  },
] as const;
