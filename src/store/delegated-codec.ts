// How a delegated subscription is kept in the journal: the request as it was accepted (with the id and client
// address the node gave it), big integers exact, and read back through the same schema as a request body.
import { parseJson, stringifyJson } from "../lib/json.ts";
import { type DelegatedSubscriptionMessage, MessageType, parseJobMessage } from "../shared/messages.ts";

export function encodeDelegated(msg: DelegatedSubscriptionMessage): string {
  const { id, ip, subscription, signature, data, requires_proof } = msg;
  return stringifyJson({ id, ip, body: { subscription, signature, data, requires_proof } });
}

/** The stored text back as a message, or undefined when it no longer reads as one (logged by the caller). */
export function decodeDelegated(text: string): DelegatedSubscriptionMessage | undefined {
  try {
    const entry = parseJson(text) as { id?: unknown; ip?: unknown; body?: Record<string, unknown> };
    if (typeof entry.id !== "string" || typeof entry.ip !== "string" || !entry.body) return undefined;
    const parsed = parseJobMessage(
      { ...entry.body, type: MessageType.DelegatedSubscription },
      entry.id,
      entry.ip,
    );
    return parsed.ok && parsed.message.kind === "delegated" ? parsed.message : undefined;
  } catch {
    return undefined;
  }
}
