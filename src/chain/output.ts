// A container's last output → the (input, output, proof) bytes of deliverCompute (node-behavior §8.10.6).
// - An object with all five keys raw_input, processed_input, raw_output, processed_output, proof: each is null
//   (empty bytes) or hex, with or without 0x (the reference refused 0x); input = abi.encode(bytes, bytes) of the
//   raw and processed inputs, output likewise, proof raw. This is the form Ritual's consumers decode, byte for byte.
// - Any other object: empty input and proof, output = abi.encode(string JSON.stringify(object)) (the reference
//   used Python's repr here; JSON is what a consumer can parse).
// - Anything that is not an object is a malformed output: a container error, never a crash.
import { encodeAbiParameters, type Hex } from "viem";
import { NodeError } from "../lib/errors.ts";
import { stringifyJsonFast } from "../lib/json.ts";

export interface DeliveryBytes {
  input: Hex;
  output: Hex;
  proof: Hex;
}

export class MalformedOutputError extends NodeError {
  override name = "MalformedOutputError";
}

const FIVE_KEYS = ["raw_input", "processed_input", "raw_output", "processed_output", "proof"] as const;
const BYTES_PAIR = [{ type: "bytes" }, { type: "bytes" }] as const;

function hexField(output: Record<string, unknown>, key: string): Hex {
  const value = output[key];
  if (value === null || value === undefined) return "0x";
  if (typeof value !== "string") {
    throw new MalformedOutputError(`container output field ${key} must be a hex string or null`);
  }
  // Python's bytes.fromhex tolerates whitespace between byte pairs; so do we.
  const digits = value.replace(/\s+/g, "").replace(/^0x/i, "");
  if (!/^(?:[0-9a-fA-F]{2})*$/.test(digits)) {
    throw new MalformedOutputError(
      `container output field ${key} is not hex of whole bytes: ${JSON.stringify(value.slice(0, 40))}`,
    );
  }
  return `0x${digits.toLowerCase()}`;
}

export function serializeContainerOutput(output: unknown): DeliveryBytes {
  if (typeof output !== "object" || output === null || Array.isArray(output)) {
    throw new MalformedOutputError(
      `container output must be a JSON object, got ${output === null ? "null" : Array.isArray(output) ? "an array" : typeof output}`,
    );
  }
  const record = output as Record<string, unknown>;
  if (FIVE_KEYS.every((key) => key in record)) {
    return {
      input: encodeAbiParameters(BYTES_PAIR, [
        hexField(record, "raw_input"),
        hexField(record, "processed_input"),
      ]),
      output: encodeAbiParameters(BYTES_PAIR, [
        hexField(record, "raw_output"),
        hexField(record, "processed_output"),
      ]),
      proof: hexField(record, "proof"),
    };
  }
  return {
    input: "0x",
    output: encodeAbiParameters([{ type: "string" }], [stringifyJsonFast(record)]),
    proof: "0x",
  };
}

/**
 * An on-chain result that reports an error: a `code` key that is not null and not "200". Unlike the reference,
 * the integer 200 counts as success too.
 */
export function outputReportsError(output: unknown): boolean {
  if (typeof output !== "object" || output === null || Array.isArray(output)) return false;
  if (!("code" in output)) return false;
  const code = (output as { code: unknown }).code;
  return code !== null && code !== "200" && code !== 200;
}
