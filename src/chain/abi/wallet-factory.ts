// WalletFactory (Infernet SDK v1): only wallets it created count as valid (chain-interface.md §5).
export const walletFactoryAbi = [
  {
    type: "function",
    name: "isValidWallet",
    stateMutability: "view",
    inputs: [{ name: "wallet", type: "address" }],
    outputs: [{ name: "", type: "bool" }],
  },
  {
    type: "function",
    name: "createWallet",
    stateMutability: "nonpayable",
    inputs: [{ name: "initialOwner", type: "address" }],
    outputs: [{ name: "", type: "address" }],
  },
] as const;
