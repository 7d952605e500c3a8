// Guardian checks for off-chain jobs (reference §4.2), in the reference's order with its exact strings. Pure:
// (message, rules) → undefined when admitted, or the rejection the REST layer renders as 405 {error, params}.
import type { RuleTable } from "./rules.ts";

export interface GuardianError {
  error: string;
  params: Record<string, unknown>;
}

export interface OffchainJobRequest {
  containers: readonly string[];
  requires_proof: boolean;
  /** The client address the node determined (never from the body). */
  ip: string;
}

export function checkOffchainJob(job: OffchainJobRequest, rules: RuleTable): GuardianError | undefined {
  const { containers } = job;
  const first = containers[0];
  if (first === undefined) return { error: "No containers specified", params: {} };
  for (const id of containers) {
    if (!rules.has(id)) return { error: "Container not supported", params: { container: id } };
  }
  if (!rules.get(first)?.external) {
    return { error: "First container must be external", params: { first_container: first } };
  }
  const last = containers[containers.length - 1] ?? first;
  if (job.requires_proof && !rules.get(last)?.generatesProofs) {
    return { error: "Container does not generate proof", params: { container: last } };
  }
  for (const id of containers) {
    if (!rules.get(id)?.ipAllowed(job.ip)) {
      return { error: "Container not allowed for address", params: { container: id, address: job.ip } };
    }
  }
  return undefined;
}
