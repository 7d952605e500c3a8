// A stand-in SubscriptionSink until the chain processor exists: it only remembers the subscriptions the
// listener relayed, by id, and reports counts for /health.
// NOT BUILT YET: executing subscriptions (running containers) and delivering results on-chain
// (deliverCompute) belong to the processor, a later issue. Nothing here runs a job or sends a transaction.
import type { Logger } from "../lib/log.ts";
import type { Service, ServiceHealth } from "../lib/service.ts";
import type { Subscription } from "../shared/subscription.ts";
import type { SubscriptionSink } from "../shared/subscriptions.ts";

export interface SubscriptionTracker extends SubscriptionSink, Service {
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
  let relayed = 0;
  return {
    name: "subscriptions",
    track(sub) {
      relayed++;
      // Idempotent by id: a re-relayed subscription replaces the old copy, as the reference's dict did.
      tracked.set(sub.id, sub);
      log.debug("Tracked new subscription!", { id: sub.id, total: tracked.size });
    },
    get: (id) => tracked.get(id),
    ids: () => [...tracked.keys()],
    count: () => tracked.size,
    relayedCount: () => relayed,
    health: () => ({
      ok: true,
      tracked: tracked.size,
      relayed,
      detail: "subscriptions are tracked only; execution and on-chain delivery are not built yet",
    }),
  };
}
