// Replies serialised like the reference's Flask JSON provider: keys sorted, compact separators, non-ASCII as
// \uXXXX, a trailing newline, Content-Type application/json. Big integers (bigint) are written as plain numbers.
import type { Context } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { AppEnv } from "./context.ts";

const NON_ASCII = /[\u0080-\uffff]/g;
const HAS_NON_ASCII = /[\u0080-\uffff]/;

function escapeNonAscii(char: string): string {
  return `\\u${char.charCodeAt(0).toString(16).padStart(4, "0")}`;
}

// Built by string concatenation (JSC ropes) rather than an array of parts joined at the end: every GET /api/jobs
// poll serialises a reply, and this is measurably cheaper per call.
function write(value: unknown): string {
  switch (typeof value) {
    case "string":
      return JSON.stringify(value);
    case "number":
      return Number.isFinite(value) ? String(value) : "null";
    case "bigint":
      return value.toString();
    case "boolean":
      return value ? "true" : "false";
    case "object": {
      if (value === null) return "null";
      if (Array.isArray(value)) {
        let out = "[";
        for (let i = 0; i < value.length; i++) {
          if (i > 0) out += ",";
          const item: unknown = value[i];
          out += write(item === undefined ? null : item);
        }
        return `${out}]`;
      }
      const record = value as Record<string, unknown>;
      const keys = sortedKeys(record);
      let out = "{";
      let first = true;
      for (const key of keys) {
        const item = record[key];
        if (item === undefined || typeof item === "function") continue;
        if (!first) out += ",";
        first = false;
        out += `${JSON.stringify(key)}:${write(item)}`;
      }
      return `${out}}`;
    }
    default:
      return "null";
  }
}

/** Object.keys in code-unit order (as Python's sort_keys); skips the sort call when already in order. */
function sortedKeys(record: Record<string, unknown>): string[] {
  const keys = Object.keys(record);
  for (let i = 1; i < keys.length; i++) {
    if ((keys[i - 1] as string) > (keys[i] as string)) return keys.sort();
  }
  return keys;
}

/** The reply body: sorted keys, compact, ASCII-only, newline-terminated. */
export function toFlaskJson(value: unknown): string {
  const text = write(value);
  return `${HAS_NON_ASCII.test(text) ? text.replace(NON_ASCII, escapeNonAscii) : text}\n`;
}

const JSON_HEADERS = { "Content-Type": "application/json" };

/** `headers` plus the request's reply headers (RateLimit-*), which every reply carries. */
export function withReplyHeaders(
  c: Context<AppEnv>,
  headers: Record<string, string>,
): Record<string, string> {
  return mergeReplyHeaders(c.get("replyHeaders"), headers);
}

function mergeReplyHeaders(
  shared: Record<string, string> | undefined,
  headers: Record<string, string>,
): Record<string, string> {
  return shared ? { ...shared, ...headers } : headers;
}

/**
 * A Flask-style JSON reply carrying `replyHeaders` (the request's RateLimit-*), for callers without a hono
 * Context (the native routes in app.ts); sendJson is this with the Context's reply headers.
 */
export function jsonReply(
  replyHeaders: Record<string, string> | undefined,
  value: unknown,
  status: ContentfulStatusCode = 200,
  headers: Record<string, string> = JSON_HEADERS,
): Response {
  return new Response(toFlaskJson(value), { status, headers: mergeReplyHeaders(replyHeaders, headers) });
}

/** The error shape of every non-2xx reply, for callers without a hono Context (see jsonReply). */
export function errorReply(
  replyHeaders: Record<string, string> | undefined,
  status: ContentfulStatusCode,
  error: string,
  params: Record<string, unknown> = {},
  headers?: Record<string, string>,
): Response {
  return jsonReply(replyHeaders, { error, params }, status, headers && { ...headers, ...JSON_HEADERS });
}

/**
 * Sends `value` as a Flask-style JSON reply with the request's reply headers. A plain Response rather than
 * c.body(): with more than one header hono builds a Headers object and sets each one from JS, which is a
 * measurable share of a GET /api/jobs poll.
 */
export function sendJson(
  c: Context<AppEnv>,
  value: unknown,
  status: ContentfulStatusCode = 200,
  headers: Record<string, string> = JSON_HEADERS,
): Response {
  return jsonReply(c.get("replyHeaders"), value, status, headers);
}

/** The error shape of every non-2xx reply: {"error": ..., "params": {...}}. */
export function sendError(
  c: Context<AppEnv>,
  status: ContentfulStatusCode,
  error: string,
  params: Record<string, unknown> = {},
  headers?: Record<string, string>,
): Response {
  return errorReply(c.get("replyHeaders"), status, error, params, headers);
}
