// Guardian checks for delegated subscriptions arriving over REST (reference §4.3), in the reference's order
// with its exact strings. Differences, all fixes: `Chain not enabled` / `Signature expired` are real 405s (the
// reference crashed serialising them into 500s), and an unknown container-set hash is a 405 naming the hash
// (the reference's `list index out of range` 500). Payments are not checked here, as in the reference; the chain
// side applies the payment checks before executing.
// viem only for the pure EIP-55 checksum of the owner in `params.address` (no client, no I/O); the rest of
// viem stays in chain/.
import { getAddress } from "viem";
import type { ContainerSetLookup } from "../shared/delegated.ts";
import type { DelegatedSubscriptionMessage } from "../shared/messages.ts";
import type { GuardianError } from "./offchain.ts";
import type { RuleTable } from "./rules.ts";

const ZERO_ADDRESS = /^0x0{40}$/i;

export interface DelegatedGuardianContext {
  rules: RuleTable;
  chainEnabled: boolean;
  /** Seconds since the epoch. */
  now: number;
  lookup: ContainerSetLookup;
}

export type DelegatedCheck =
  | { ok: true; containers: readonly string[] }
  | { ok: false; error: GuardianError };

/** The message as the reference meant to show it in `params.delegated_subscription` (type 1 = Delegated). */
export function describeDelegated(msg: DelegatedSubscriptionMessage): Record<string, unknown> {
  return {
    id: msg.id,
    ip: msg.ip,
    type: 1,
    subscription: msg.subscription,
    signature: msg.signature,
    data: msg.data,
    requires_proof: msg.requires_proof,
  };
}

export function checkDelegatedSubscription(
  msg: DelegatedSubscriptionMessage,
  ctx: DelegatedGuardianContext,
): DelegatedCheck {
  const reject = (error: string, params: Record<string, unknown>): DelegatedCheck => ({
    ok: false,
    error: { error, params },
  });
  if (!ctx.chainEnabled)
    return reject("Chain not enabled", { delegated_subscription: describeDelegated(msg) });
  if (msg.signature.expiry < Math.floor(ctx.now)) {
    return reject("Signature expired", { delegated_subscription: describeDelegated(msg) });
  }
  const hash = msg.subscription.containers.toLowerCase();
  const containers = ctx.lookup(hash);
  const first = containers?.[0];
  if (!containers || first === undefined) {
    return reject("Container-set not supported", { containers_hash: hash });
  }
  for (const id of containers) {
    if (!ctx.rules.has(id)) return reject("Container not supported", { container: id });
  }
  if (!ctx.rules.get(first)?.external)
    return reject("First container must be external", { first_container: first });
  const last = containers[containers.length - 1] ?? first;
  if (!ZERO_ADDRESS.test(msg.subscription.verifier) && !ctx.rules.get(last)?.generatesProofs) {
    return reject("Container does not generate proof", { container: last });
  }
  const owner = msg.subscription.owner;
  for (const id of containers) {
    if (!ctx.rules.get(id)?.delegateAllowed(owner)) {
      return reject("Container not allowed for address", {
        container: id,
        address: getAddress(owner.toLowerCase()),
      });
    }
  }
  return { ok: true, containers };
}
