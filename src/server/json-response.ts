// Replies serialised like the reference's Flask JSON provider: keys sorted, compact separators, non-ASCII as
// \uXXXX, a trailing newline, Content-Type application/json. Big integers (bigint) are written as plain numbers.
import type { Context } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";

const NON_ASCII = /[\u0080-\uffff]/g;
const HAS_NON_ASCII = /[\u0080-\uffff]/;

function escapeNonAscii(char: string): string {
  return `\\u${char.charCodeAt(0).toString(16).padStart(4, "0")}`;
}

function write(value: unknown, out: string[]): void {
  switch (typeof value) {
    case "string":
      out.push(JSON.stringify(value));
      return;
    case "number":
      out.push(Number.isFinite(value) ? String(value) : "null");
      return;
    case "bigint":
      out.push(value.toString());
      return;
    case "boolean":
      out.push(value ? "true" : "false");
      return;
    case "object": {
      if (value === null) {
        out.push("null");
        return;
      }
      if (Array.isArray(value)) {
        out.push("[");
        for (let i = 0; i < value.length; i++) {
          if (i > 0) out.push(",");
          const item: unknown = value[i];
          write(item === undefined ? null : item, out);
        }
        out.push("]");
        return;
      }
      const record = value as Record<string, unknown>;
      const keys = Object.keys(record).sort();
      out.push("{");
      let first = true;
      for (const key of keys) {
        const item = record[key];
        if (item === undefined || typeof item === "function") continue;
        if (!first) out.push(",");
        first = false;
        out.push(JSON.stringify(key), ":");
        write(item, out);
      }
      out.push("}");
      return;
    }
    default:
      out.push("null");
  }
}

/** The reply body: sorted keys, compact, ASCII-only, newline-terminated. */
export function toFlaskJson(value: unknown): string {
  const out: string[] = [];
  write(value, out);
  const text = out.join("");
  return `${HAS_NON_ASCII.test(text) ? text.replace(NON_ASCII, escapeNonAscii) : text}\n`;
}

const JSON_HEADERS = { "Content-Type": "application/json" };

/** Sends `value` as a Flask-style JSON reply through hono (keeps headers set earlier, e.g. RateLimit-*). */
export function sendJson(c: Context, value: unknown, status: ContentfulStatusCode = 200): Response {
  return c.body(toFlaskJson(value), status, JSON_HEADERS);
}

/** The error shape of every non-2xx reply: {"error": ..., "params": {...}}. */
export function sendError(
  c: Context,
  status: ContentfulStatusCode,
  error: string,
  params: Record<string, unknown> = {},
): Response {
  return sendJson(c, { error, params }, status);
}
