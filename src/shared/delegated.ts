// How the REST server hands a delegated subscription (already through the guardian) to the chain side, which
// verifies the EIP-712 signature asynchronously, tracks it and delivers with deliverComputeDelegatee.
import type { DelegatedSubscriptionMessage } from "./messages.ts";

export interface DelegatedSubscriptionSink {
  /** Accepts the subscription for tracking; resolves once it is queued (not once it is delivered). */
  submit(msg: DelegatedSubscriptionMessage): Promise<void>;
}

/**
 * Where accepted delegated subscriptions are kept until they are delivered or dropped, so that neither a restart
 * nor a take-over by a hot standby loses one the REST server answered 200 for.
 */
export interface DelegatedJournal {
  /** Stores it under `key`, replacing an older copy; rejects when it cannot be stored (the request is refused). */
  save(key: string, msg: DelegatedSubscriptionMessage): Promise<void>;
  remove(key: string): Promise<void>;
  /** Everything stored: at start-up, and when this process takes over the chain lease. */
  load(): Promise<Array<{ key: string; msg: DelegatedSubscriptionMessage }>>;
  /**
   * Shared journals (Redis) only: what any process sharing it saved since the last call, for the lease holder
   * to pick up the subscriptions a standby's REST server accepted.
   */
  takeNew?(): Promise<Array<{ key: string; msg: DelegatedSubscriptionMessage }>>;
}

/**
 * The container-set lookup: `keccak256(abi.encode(string))` of the comma-joined ordered ids (lower-case 0x hex)
 * → those ids; undefined for a hash no configured pipeline produces.
 */
export type ContainerSetLookup = (hash: string) => readonly string[] | undefined;
