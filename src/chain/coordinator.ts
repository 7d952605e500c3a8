// Coordinator reads the node needs, each pinned to a block when the caller cares about consistency.
// Storage keys follow the SDK: keccak256(abi.encode(...)), never packed encoding.
import { type Address, encodeAbiParameters, type Hex, keccak256 } from "viem";
import type { SubscriptionFields } from "../shared/subscription.ts";
import { coordinatorAbi } from "./abi/coordinator.ts";
import type { ChainClient } from "./rpc.ts";

export interface Coordinator {
  readonly address: Address;
  /** Highest existing subscription id at `blockNumber`: id() − 1 (the contract starts id at 1). */
  headSubscriptionId(blockNumber?: bigint): Promise<number>;
  getSubscription(subscriptionId: number, blockNumber?: bigint): Promise<SubscriptionFields>;
  redundancyCount(subscriptionId: number, interval: number, blockNumber?: bigint): Promise<number>;
  nodeResponded(
    subscriptionId: number,
    interval: number,
    node: Address,
    blockNumber?: bigint,
  ): Promise<boolean>;
  /** Id of the delegated subscription created for (owner, nonce), or 0 when not created yet. */
  delegateCreatedId(owner: Address, nonce: number, blockNumber?: bigint): Promise<number>;
}

export function redundancyKey(subscriptionId: number, interval: number): Hex {
  return keccak256(encodeAbiParameters([{ type: "uint32" }, { type: "uint32" }], [subscriptionId, interval]));
}

export function nodeRespondedKey(subscriptionId: number, interval: number, node: Address): Hex {
  return keccak256(
    encodeAbiParameters(
      [{ type: "uint32" }, { type: "uint32" }, { type: "address" }],
      [subscriptionId, interval, node],
    ),
  );
}

export function delegateKey(owner: Address, nonce: number): Hex {
  return keccak256(encodeAbiParameters([{ type: "address" }, { type: "uint32" }], [owner, nonce]));
}

/**
 * viem's decoded struct → the model's plain fields (containerId lower-cased for table lookups). Copies only the
 * struct's fields, in struct order, so extra keys on the decoded value never leak into the model.
 */
export function toSubscriptionFields(raw: SubscriptionFields): SubscriptionFields {
  const { owner, activeAt, period, frequency, redundancy, containerId, lazy, verifier } = raw;
  const { paymentAmount, paymentToken, wallet } = raw;
  return {
    owner,
    activeAt,
    period,
    frequency,
    redundancy,
    containerId: containerId.toLowerCase(),
    lazy,
    verifier,
    paymentAmount,
    paymentToken,
    wallet,
  };
}

export function createCoordinator(client: ChainClient, address: Address): Coordinator {
  const at = (blockNumber?: bigint) => (blockNumber === undefined ? {} : { blockNumber });
  return {
    address,
    async headSubscriptionId(blockNumber) {
      const next = await client.readContract({
        address,
        abi: coordinatorAbi,
        functionName: "id",
        ...at(blockNumber),
      });
      return next - 1;
    },
    async getSubscription(subscriptionId, blockNumber) {
      const raw = await client.readContract({
        address,
        abi: coordinatorAbi,
        functionName: "getSubscription",
        args: [subscriptionId],
        ...at(blockNumber),
      });
      return toSubscriptionFields(raw);
    },
    redundancyCount(subscriptionId, interval, blockNumber) {
      return client.readContract({
        address,
        abi: coordinatorAbi,
        functionName: "redundancyCount",
        args: [redundancyKey(subscriptionId, interval)],
        ...at(blockNumber),
      });
    },
    nodeResponded(subscriptionId, interval, node, blockNumber) {
      return client.readContract({
        address,
        abi: coordinatorAbi,
        functionName: "nodeResponded",
        args: [nodeRespondedKey(subscriptionId, interval, node)],
        ...at(blockNumber),
      });
    },
    delegateCreatedId(owner, nonce, blockNumber) {
      return client.readContract({
        address,
        abi: coordinatorAbi,
        functionName: "delegateCreatedIds",
        args: [delegateKey(owner, nonce)],
        ...at(blockNumber),
      });
    },
  };
}
