// How the REST server hands a delegated subscription (already through the guardian) to the chain side, which
// verifies the EIP-712 signature asynchronously, tracks it and delivers with deliverComputeDelegatee.
import type { DelegatedSubscriptionMessage } from "./messages.ts";

export interface DelegatedSubscriptionSink {
  /** Accepts the subscription for tracking; resolves once it is queued (not once it is delivered). */
  submit(msg: DelegatedSubscriptionMessage): Promise<void>;
}

/**
 * The container-set lookup: `keccak256(abi.encode(string))` of the comma-joined ordered ids (lower-case 0x hex)
 * → those ids; undefined for a hash no configured pipeline produces.
 */
export type ContainerSetLookup = (hash: string) => readonly string[] | undefined;
