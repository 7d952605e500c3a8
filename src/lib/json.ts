// JSON that keeps integers above 2^53 exact: request bodies carry signature r/s and wei amounts that large,
// and container outputs are relayed byte-faithfully. Big integers parse to bigint and stringify back as numbers.
import {
  isInteger,
  isSafeNumber,
  parse as parseLossless,
  stringify as stringifyLossless,
} from "lossless-json";

/** Parses JSON; integers outside the safe range become bigint, every other number a plain number. */
export function parseJson(text: string): unknown {
  return parseLossless(text, null, (value: string) =>
    isInteger(value) && !isSafeNumber(value) ? BigInt(value) : Number(value),
  );
}

/** Stringifies JSON with bigints written as plain integers (not strings). Compact separators. */
export function stringifyJson(value: unknown): string {
  return stringifyLossless(value) ?? "null";
}

// Integers of 16+ digits may be above 2^53; only then is the (slower) lossless parser needed.
const LONG_DIGITS = /\d{16}/;

/** parseJson, with JSON.parse as the fast path when the text cannot hold an integer above 2^53. */
export function parseJsonFast(text: string): unknown {
  return LONG_DIGITS.test(text) ? parseJson(text) : JSON.parse(text);
}

/** stringifyJson, with JSON.stringify as the fast path when the value holds no bigint. */
export function stringifyJsonFast(value: unknown): string {
  try {
    return JSON.stringify(value) ?? "null";
  } catch (error) {
    if (error instanceof TypeError) return stringifyJson(value);
    throw error;
  }
}
