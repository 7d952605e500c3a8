// The seam between the chain listener and whatever executes subscriptions. The listener only hands over
// subscriptions that passed the guardian; the sink decides what to do with them. Tracking is idempotent by id.
import type { Subscription } from "./subscription.ts";

export interface SubscriptionSink {
  track(sub: Subscription): void;
}
