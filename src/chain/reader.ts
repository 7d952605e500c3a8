// Reader: many subscriptions, or many redundancy counts, in one eth_call (reference chain/reader.py).
import type { Address } from "viem";
import type { SubscriptionFields } from "../shared/subscription.ts";
import { readerAbi } from "./abi/reader.ts";
import { toSubscriptionFields } from "./coordinator.ts";
import type { ChainClient } from "./rpc.ts";

export interface Reader {
  readonly address: Address;
  /** Subscriptions with ids start … endExclusive − 1; ids that do not exist come back with owner 0x0. */
  readSubscriptionBatch(
    start: number,
    endExclusive: number,
    blockNumber: bigint,
  ): Promise<SubscriptionFields[]>;
  /** Redundancy counts for (ids[i], intervals[i]) pairs. */
  readRedundancyCountBatch(ids: number[], intervals: number[], blockNumber: bigint): Promise<number[]>;
}

export function createReader(client: ChainClient, address: Address): Reader {
  return {
    address,
    async readSubscriptionBatch(start, endExclusive, blockNumber) {
      // The contract panics on endId < startId (uint32 underflow); never send a reversed range.
      if (endExclusive <= start) return [];
      const raw = await client.readContract({
        address,
        abi: readerAbi,
        functionName: "readSubscriptionBatch",
        args: [start, endExclusive],
        blockNumber,
      });
      return raw.map(toSubscriptionFields);
    },
    async readRedundancyCountBatch(ids, intervals, blockNumber) {
      if (ids.length !== intervals.length) throw new Error("ids and intervals must have the same length");
      if (ids.length === 0) return [];
      const counts = await client.readContract({
        address,
        abi: readerAbi,
        functionName: "readRedundancyCountBatch",
        args: [ids, intervals],
        blockNumber,
      });
      return [...counts];
    },
  };
}
