// Reader (Infernet SDK v1): batch views over the Coordinator (chain-interface.md §5).
import { subscriptionComponents } from "./subscription.ts";

export const readerAbi = [
  {
    type: "function",
    name: "readSubscriptionBatch",
    stateMutability: "view",
    inputs: [
      { name: "startId", type: "uint32" },
      { name: "endId", type: "uint32" },
    ],
    outputs: [{ name: "", type: "tuple[]", components: subscriptionComponents }],
  },
  {
    type: "function",
    name: "readRedundancyCountBatch",
    stateMutability: "view",
    inputs: [
      { name: "ids", type: "uint32[]" },
      { name: "intervals", type: "uint32[]" },
    ],
    outputs: [{ name: "", type: "uint16[]" }],
  },
] as const;
