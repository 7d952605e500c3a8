// Guardian checks for an on-chain subscription found by the listener (node-behavior §4.4), in the reference's
// order and with its exact error strings and params, followed by the payment requirements. Pure: the caller
// logs. Differences from the reference (bugs §11.17): tokens are compared case-insensitively (rules.ts keys
// are lower-cased), so a checksummed or lower-case `accepted_payments` key both work.
import type { Subscription } from "../shared/subscription.ts";
import type { RuleTable } from "./rules.ts";

export type GuardianVerdict =
  | { ok: true }
  | {
      ok: false;
      error: string;
      params: Record<string, unknown>;
      /** Why the payment was rejected, as the reference logs it after `Skipping subscription: <id>: `. */
      detail?: string;
    };

export interface SubscriptionCheckContext {
  rules: RuleTable;
  /** The node's payment Wallet (chain.wallet.payment_address); null when not configured. */
  paymentAddress: string | null;
  /** Seconds since the epoch; defaults to the subscription's clock. */
  now?: number;
}

const PASS: GuardianVerdict = { ok: true };

export function checkSubscription(sub: Subscription, context: SubscriptionCheckContext): GuardianVerdict {
  const { rules } = context;
  // 1. Already fulfilled (needs the redundancy count of the last interval cached on the subscription)
  if (sub.isCompleted(context.now)) return { ok: false, error: "Subscription completed", params: {} };

  // 2. The container-set hash must resolve to a pipeline of configured containers
  const containers = sub.containers;
  const first = containers[0];
  if (first === undefined || containers.some((id) => !rules.has(id))) {
    return {
      ok: false,
      error: "Container-set not supported",
      params: { containers_hash: sub.containersHash },
    };
  }

  // 3. The pipeline's entry point must accept external input
  if (!rules.get(first)?.external) {
    return { ok: false, error: "First container must be external", params: { first_container: first } };
  }

  // 4. Owner allowed by every container (address before proof here; the delegated order is the opposite)
  for (const id of containers) {
    if (!rules.get(id)?.addressAllowed(sub.owner)) {
      return {
        ok: false,
        error: "Container not allowed for address",
        params: { container: id, address: sub.owner },
      };
    }
  }

  // 5. A proof is required and the last container cannot produce one
  const last = containers[containers.length - 1] ?? first;
  if (sub.requiresProof && !rules.get(last)?.generatesProofs) {
    return { ok: false, error: "Container does not generate proof", params: { container: last } };
  }

  // 6. Payment requirements
  const detail = paymentProblem(sub, context);
  if (detail !== undefined) {
    return { ok: false, error: "Invalid payment", params: { subscription_id: sub.id }, detail };
  }
  return PASS;
}

/**
 * The reference's `matches_payment_requirements`: undefined when met, else the reason it logs. A container with
 * an empty `accepted_payments` accepts anything (free included); one with entries accepts only those tokens,
 * so a free subscription (token 0x0) is refused by a container that lists only other tokens.
 */
export function paymentProblem(sub: Subscription, context: SubscriptionCheckContext): string | undefined {
  if (!context.paymentAddress && sub.paymentAmount > 0n) return "No payment address provided for the node";
  const token = sub.paymentToken.toLowerCase();
  let minimum = 0n;
  for (const id of sub.containers) {
    const accepted = context.rules.get(id)?.acceptedPayments;
    if (!accepted || accepted.size === 0) continue;
    const price = accepted.get(token);
    if (price === undefined) return `Token ${sub.paymentToken} not accepted for container ${id}.`;
    minimum += price;
  }
  if (sub.paymentAmount < minimum) return `Token ${sub.paymentToken} below minimum payment requirements`;
  return undefined;
}
