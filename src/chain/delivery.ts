// One due interval of one subscription, from container input to a transaction in the mempool: pre-flight
// simulation, container input, the pipeline through the node's one orchestrator, output serialisation, then
// the simulated and sent delivery (for a proof subscription, inside its escrow). Each way it can end is a value
// the processor acts on; nothing here throws for an expected failure, and nothing here decides about retries.
import { type Address, encodeFunctionData, type Hex } from "viem";
import { describeError } from "../lib/errors.ts";
import type { Logger } from "../lib/log.ts";
import type { OrchestratorJob } from "../orchestration/orchestrator.ts";
import type { ContainerResult } from "../shared/jobs.ts";
import { type DelegatedSubscriptionMessage, JobLocation } from "../shared/messages.ts";
import type { Subscription } from "../shared/subscription.ts";
import { coordinatorAbi } from "./abi/coordinator.ts";
import { delegatedSubscriptionTuple, signatureParts } from "./delegated-signature.ts";
import type { DecodedRevert } from "./infernet-errors.ts";
import type { ReadInputs } from "./input-reads.ts";
import { MalformedOutputError, outputReportsError, serializeContainerOutput } from "./output.ts";
import { type PaymentWallet, PaymentWalletError } from "./payment-wallet.ts";
import type { ChainClient } from "./rpc.ts";
import type { SentTx } from "./transactions.ts";
import { GasLimitError, SimulationRevertedError, type Wallet } from "./wallet.ts";

export interface DeliveryTarget {
  sub: Subscription;
  interval: number;
  containers: readonly string[];
  /** Set for a delegated subscription not yet created on-chain (deliverComputeDelegatee). */
  delegated?: DelegatedSubscriptionMessage;
}

export type DeliveryResult =
  | { kind: "sent"; tx: SentTx }
  /** The chain refuses this delivery (simulation reverted): no point in trying the interval again. */
  | { kind: "refused"; revert: DecodedRevert; stage: "preflight" | "delivery" }
  /** The containers failed or produced an output that cannot be delivered. */
  | { kind: "container-failed"; error: string }
  /** Something local or transient (RPC down, payment wallet trouble, gas cap): may work later. */
  | { kind: "failed"; error: string; retryable: boolean };

export interface DeliveryDeps {
  client: ChainClient;
  coordinator: Address;
  wallet: Wallet;
  paymentWallet: PaymentWallet;
  run(job: OrchestratorJob, signal?: AbortSignal): Promise<ContainerResult[]>;
  log: Logger;
  /** Seconds since the epoch. */
  now(): number;
  /** The consumer's getContainerInputs (gathered with other deliveries' into one call: input-reads.ts). */
  readInputs: ReadInputs;
}

/** 32 zero bytes: the pre-flight's stand-in output (the reference's 1.4.0 fix for consumers decoding it). */
const PREFLIGHT_OUTPUT: Hex = `0x${"00".repeat(32)}`;

export function encodeDelivery(
  target: DeliveryTarget,
  bytes: { input: Hex; output: Hex; proof: Hex },
  nodeWallet: Address,
): Hex {
  if (target.delegated) {
    const { v, r, s } = signatureParts(target.delegated);
    return encodeFunctionData({
      abi: coordinatorAbi,
      functionName: "deliverComputeDelegatee",
      args: [
        target.delegated.signature.nonce,
        target.delegated.signature.expiry,
        delegatedSubscriptionTuple(target.delegated),
        v,
        r,
        s,
        target.interval,
        bytes.input,
        bytes.output,
        bytes.proof,
        nodeWallet,
      ],
    });
  }
  return encodeFunctionData({
    abi: coordinatorAbi,
    functionName: "deliverCompute",
    args: [target.sub.id, target.interval, bytes.input, bytes.output, bytes.proof, nodeWallet],
  });
}

/** getContainerInputs(id, interval, now, node) as unprefixed hex; "" when the consumer reverts (as the reference). */
async function containerInputs(deps: DeliveryDeps, target: DeliveryTarget): Promise<string> {
  const inputs = await deps.readInputs({
    owner: target.sub.owner,
    id: target.sub.id,
    interval: target.interval,
    timestamp: deps.now(),
    node: deps.wallet.address,
  });
  if (inputs === undefined) {
    deps.log.debug("getContainerInputs failed; using empty input", { id: target.sub.id });
    return "";
  }
  return inputs.slice(2);
}

export async function deliverInterval(
  deps: DeliveryDeps,
  target: DeliveryTarget,
  signal?: AbortSignal,
): Promise<DeliveryResult> {
  const { sub } = target;
  const labels = { id: sub.id, interval: target.interval, delegated: target.delegated !== undefined };
  const nodeWallet = deps.wallet.paymentAddress;
  try {
    // 1. Pre-flight: would the chain take a delivery at all? Saves running containers for nothing. Skipped for
    //    proof subscriptions (the escrow is not approved yet, so it would fail for the wrong reason).
    if (!sub.requiresProof) {
      const probe = encodeDelivery(
        target,
        { input: "0x", output: PREFLIGHT_OUTPUT, proof: "0x" },
        nodeWallet,
      );
      try {
        await deps.wallet.simulate(deps.coordinator, probe);
      } catch (error) {
        // Only Infernet's own errors speak for the delivery; a consumer may revert on the stand-in output.
        if (!(error instanceof SimulationRevertedError)) throw error;
        if (error.revert.infernet) return { kind: "refused", revert: error.revert, stage: "preflight" };
      }
    }

    // 2. Input and containers.
    const data = target.delegated ? target.delegated.data : await containerInputs(deps, target);
    const results = await deps.run(
      {
        containers: target.containers,
        data,
        source: target.delegated ? JobLocation.OFFCHAIN : JobLocation.ONCHAIN,
        destination: JobLocation.ONCHAIN,
        requiresProof: sub.requiresProof,
        label: `${target.delegated ? `delegated ${sub.owner}` : `subscription ${sub.id}`} #${target.interval}`,
      },
      signal,
    );
    const last = results.at(-1);
    if (!last) return { kind: "container-failed", error: "Container results empty" };
    if ("error" in last) return { kind: "container-failed", error: last.error };
    if (outputReportsError(last.output)) {
      return {
        kind: "container-failed",
        error: `container ${last.container} reported code ${JSON.stringify((last.output as { code: unknown }).code)}`,
      };
    }
    const bytes = serializeContainerOutput(last.output);
    deps.log.info("Container execution succeeded", labels);

    // 3. The delivery itself: simulated against the pending block, then sent through the nonce manager.
    const send = () =>
      deps.wallet.execute(deps.coordinator, encodeDelivery(target, bytes, nodeWallet), labels);
    if (!sub.requiresProof) return { kind: "sent", tx: await send() };

    // 4. Proof escrow: the node stakes the payment from its own wallet, so its EOA is approved first; the
    //    payment wallet sees to it that escrows in the same token in flight at once do not take each other's
    //    allowance (see payment-wallet.ts).
    deps.log.info("Escrowing reward in wallet", {
      ...labels,
      token: sub.paymentToken,
      amount: sub.paymentAmount.toString(),
    });
    const tx = await deps.paymentWallet.escrow(sub.paymentToken, sub.paymentAmount, send);
    return { kind: "sent", tx };
  } catch (error) {
    if (error instanceof SimulationRevertedError) {
      return { kind: "refused", revert: error.revert, stage: "delivery" };
    }
    if (error instanceof MalformedOutputError) return { kind: "container-failed", error: error.shortMessage };
    if (error instanceof GasLimitError || error instanceof PaymentWalletError) {
      return { kind: "failed", error: error.shortMessage, retryable: false };
    }
    return { kind: "failed", error: describeError(error), retryable: true };
  }
}
