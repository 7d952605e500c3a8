// What the node calls on subscription owners (chain-interface.md §5 "Consumers and patterns"): the container
// input of an interval, and, for delegated subscriptions, the signer the owner delegates to.
export const consumerAbi = [
  {
    type: "function",
    name: "getContainerInputs",
    stateMutability: "view",
    inputs: [
      { name: "subscriptionId", type: "uint32" },
      { name: "interval", type: "uint32" },
      { name: "timestamp", type: "uint32" },
      { name: "caller", type: "address" },
    ],
    outputs: [{ name: "", type: "bytes" }],
  },
  {
    type: "function",
    name: "getSigner",
    stateMutability: "view",
    inputs: [],
    outputs: [{ name: "", type: "address" }],
  },
] as const;
