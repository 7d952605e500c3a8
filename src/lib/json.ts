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

/**
 * Deepest nesting of arrays/objects accepted in a request body or a container reply. JSON.parse copes with
 * far deeper input, but the reply serializer and the job store walk values recursively: 100,000 levels of `[`
 * would be accepted and then fail with a RangeError (a 500) when the result is read back. Real job inputs
 * are a few levels deep.
 */
export const MAX_JSON_DEPTH = 512;

/**
 * True when `text` opens more than `max` arrays/objects at once. One linear pass over the text, counting
 * brackets outside strings (escapes inside strings are skipped); it does not validate, so malformed text
 * is left to the parser.
 */
export function jsonNestingExceeds(text: string, max: number): boolean {
  let depth = 0;
  const length = text.length;
  for (let i = 0; i < length; i++) {
    const code = text.charCodeAt(i);
    if (code === 0x22) {
      // A string: jump to its closing quote, skipping escaped characters.
      for (i++; i < length; i++) {
        const inner = text.charCodeAt(i);
        if (inner === 0x5c) i++;
        else if (inner === 0x22) break;
      }
    } else if (code === 0x5b || code === 0x7b) {
      if (++depth > max) return true;
    } else if (code === 0x5d || code === 0x7d) {
      depth--;
    }
  }
  return false;
}
