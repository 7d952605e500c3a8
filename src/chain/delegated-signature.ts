// EIP-712 recovery of a delegated subscription's signer (chain-interface.md §4), exactly as the
// EIP712Coordinator computes it: domain InfernetCoordinator / "1" / chain id / coordinator address, primary
// type DelegateSubscription(uint32 nonce, uint32 expiry, Subscription sub). infernet_client 1.4.0 signs with
// eth_account (v = 27/28) and sends r and s as JSON integers; both are taken as bigints here.
import { type Address, getAddress, type Hex, recoverTypedDataAddress, toHex } from "viem";
import { describeError } from "../lib/errors.ts";
import type { DelegatedSubscriptionMessage } from "../shared/messages.ts";
import { ZERO_ADDRESS } from "../shared/subscription.ts";
import { consumerAbi } from "./abi/consumer.ts";
import { subscriptionComponents } from "./abi/subscription.ts";
import { type ChainClient, isRetryableRpcError } from "./rpc.ts";

export const DELEGATE_SUBSCRIPTION_TYPES = {
  DelegateSubscription: [
    { name: "nonce", type: "uint32" },
    { name: "expiry", type: "uint32" },
    { name: "sub", type: "Subscription" },
  ],
  Subscription: subscriptionComponents.map(({ name, type }) => ({ name, type })),
} as const;

/** The subscription tuple as signed and as deliverComputeDelegatee takes it (struct order). */
export function delegatedSubscriptionTuple(msg: DelegatedSubscriptionMessage) {
  const s = msg.subscription;
  return {
    owner: getAddress(s.owner.toLowerCase()),
    activeAt: s.active_at,
    period: s.period,
    frequency: s.frequency,
    redundancy: s.redundancy,
    containerId: s.containers as Hex,
    lazy: s.lazy,
    verifier: getAddress(s.verifier.toLowerCase()),
    paymentAmount: s.payment_amount,
    paymentToken: getAddress(s.payment_token.toLowerCase()),
    wallet: getAddress(s.wallet.toLowerCase()),
  };
}

/** v as the contract's ecrecover wants it (27/28); a yParity 0/1 is lifted, which Solady would refuse. */
export function signatureParts(msg: DelegatedSubscriptionMessage): { v: number; r: Hex; s: Hex } {
  const v = msg.signature.v < 27 ? msg.signature.v + 27 : msg.signature.v;
  return { v, r: toHex(msg.signature.r, { size: 32 }), s: toHex(msg.signature.s, { size: 32 }) };
}

export async function recoverDelegatedSigner(
  msg: DelegatedSubscriptionMessage,
  chainId: number,
  coordinator: Address,
): Promise<Address> {
  const { v, r, s } = signatureParts(msg);
  return recoverTypedDataAddress({
    domain: { name: "InfernetCoordinator", version: "1", chainId, verifyingContract: coordinator },
    types: DELEGATE_SUBSCRIPTION_TYPES,
    primaryType: "DelegateSubscription",
    message: {
      nonce: msg.signature.nonce,
      expiry: msg.signature.expiry,
      sub: delegatedSubscriptionTuple(msg),
    },
    signature: { r, s, v: BigInt(v) },
  });
}

/** Why a delegated subscription's signature cannot be delivered: the log message, a reason, the details. */
export interface SignerProblem {
  message: string;
  reason: string;
  fields: Record<string, unknown>;
}

/**
 * The signature's signer against the owner contract's getSigner(), as deliverComputeDelegatee checks it;
 * undefined when they match. An owner without getSigner() (or whose getSigner reverts) counts as 0x0, as the
 * reference read it; an RPC outage is thrown, so that the caller tries again rather than drop the subscription.
 */
export async function delegatedSignerProblem(
  client: ChainClient,
  msg: DelegatedSubscriptionMessage,
  chainId: number,
  coordinator: Address,
): Promise<SignerProblem | undefined> {
  let recovered: Address;
  try {
    recovered = await recoverDelegatedSigner(msg, chainId, coordinator);
  } catch (error) {
    return {
      message: "Could not recover delegatee signer",
      reason: "signature not recoverable",
      fields: { error: describeError(error) },
    };
  }
  let signer: string = ZERO_ADDRESS;
  try {
    signer = await client.readContract({
      address: getAddress(msg.subscription.owner.toLowerCase()),
      abi: consumerAbi,
      functionName: "getSigner",
    });
  } catch (error) {
    if (isRetryableRpcError(error)) throw error;
  }
  if (signer.toLowerCase() === recovered.toLowerCase()) return undefined;
  return {
    message: "Subscription signer mismatch",
    reason: "signer mismatch",
    fields: { signer, recovered },
  };
}
