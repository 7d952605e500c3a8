// A stand-in SubscriptionSink (for the listener) and DelegatedSubscriptionSink (for REST) until the chain
// processor exists: it only remembers the subscriptions it is handed, and reports counts for /health.
// NOT BUILT YET: executing subscriptions (running containers) and delivering results on-chain
// (deliverCompute) belong to the processor, a later issue. Nothing here runs a job or sends a transaction.
import type { Logger } from "../lib/log.ts";
import type { Service, ServiceHealth } from "../lib/service.ts";
import type { DelegatedSubscriptionSink } from "../shared/delegated.ts";
import type { DelegatedSubscriptionMessage } from "../shared/messages.ts";
import type { Subscription } from "../shared/subscription.ts";
import type { SubscriptionSink } from "../shared/subscriptions.ts";

export interface SubscriptionTracker extends SubscriptionSink, DelegatedSubscriptionSink, Service {
  /** Delegated subscriptions handed in over REST, by (owner, nonce). */
  delegated(owner: string, nonce: number): DelegatedSubscriptionMessage | undefined;
  get(id: number): Subscription | undefined;
  ids(): number[];
  /** Distinct subscriptions tracked. */
  count(): number;
  /** track() calls, repeats included (equal to count() when the listener relays each id once). */
  relayedCount(): number;
  health(): ServiceHealth;
}

export function createSubscriptionTracker(options: { log: Logger }): SubscriptionTracker {
  const { log } = options;
  const tracked = new Map<number, Subscription>();
  // Keyed like the reference's delegate_subscriptions: (owner, nonce); a resubmission replaces the old copy.
  const delegatedSubs = new Map<string, DelegatedSubscriptionMessage>();
  const delegatedKey = (owner: string, nonce: number) => `${owner.toLowerCase()}:${nonce}`;
  let relayed = 0;
  return {
    name: "subscriptions",
    track(sub) {
      relayed++;
      // Idempotent by id: a re-relayed subscription replaces the old copy, as the reference's dict did.
      tracked.set(sub.id, sub);
      log.debug("Tracked new subscription!", { id: sub.id, total: tracked.size });
    },
    async submit(msg) {
      // Not verified yet: recovering the EIP-712 signer and checking the owner's getSigner() is the processor's
      // first step, as in the reference (which also answered {} before verifying anything).
      delegatedSubs.set(delegatedKey(msg.subscription.owner, msg.signature.nonce), msg);
      log.info("Relayed delegated subscription", {
        owner: msg.subscription.owner,
        nonce: msg.signature.nonce,
        total: delegatedSubs.size,
      });
    },
    delegated: (owner, nonce) => delegatedSubs.get(delegatedKey(owner, nonce)),
    get: (id) => tracked.get(id),
    ids: () => [...tracked.keys()],
    count: () => tracked.size,
    relayedCount: () => relayed,
    health: () => ({
      ok: true,
      tracked: tracked.size,
      relayed,
      delegated: delegatedSubs.size,
      detail: "subscriptions are tracked only; execution and on-chain delivery are not built yet",
    }),
  };
}
