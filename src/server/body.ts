// Reading request bodies safely: a size cap (checked on Content-Length and while reading chunked bodies),
// an optional JSON content-type requirement, a nesting-depth cap and a lossless JSON parse. Every failure is a
// value naming the reason, which the routes reply as 400 with {"error","params"} — never a 413 or a 500.
import type { Context } from "hono";
import { parseJsonFast } from "../lib/json.ts";

export type BodyResult =
  | { ok: true; value: unknown }
  | { ok: false; status: 400; error: string; params: Record<string, unknown> };

/**
 * Deepest nesting of arrays/objects accepted in a request body. JSON.parse copes with far deeper input, but
 * the reply serializer and the job store walk values recursively: 100,000 levels of `[` would be accepted and
 * then fail with a RangeError (a 500) when the result is read back. Real job inputs are a few levels deep.
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

const JSON_TYPE = /^application\/(?:[\w.+-]+\+)?json\s*(?:;|$)/i;

async function readCapped(request: Request, maxBytes: number): Promise<string | undefined> {
  const declared = request.headers.get("content-length");
  if (declared !== null) {
    if (Number(declared) > maxBytes) return undefined;
    return request.text();
  }
  if (!request.body) return "";
  const parts: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of request.body) {
    size += chunk.byteLength;
    if (size > maxBytes) return undefined;
    parts.push(chunk);
  }
  return Buffer.concat(parts).toString("utf8");
}

export async function readJsonBody(
  c: Context,
  options: { requireJsonType: boolean; maxBytes: number },
): Promise<BodyResult> {
  if (options.requireJsonType) {
    const type = c.req.header("content-type") ?? "";
    if (!JSON_TYPE.test(type)) {
      return {
        ok: false,
        status: 400,
        error: "Unsupported content type",
        params: { content_type: type, expected: "application/json" },
      };
    }
  }
  let text: string | undefined;
  try {
    text = await readCapped(c.req.raw, options.maxBytes);
  } catch (error) {
    return {
      ok: false,
      status: 400,
      error: "Could not read request body",
      params: { reason: error instanceof Error ? error.message : String(error) },
    };
  }
  if (text === undefined) {
    return {
      ok: false,
      status: 400,
      error: "Request body too large",
      params: { max_bytes: options.maxBytes, field: "" },
    };
  }
  if (jsonNestingExceeds(text, MAX_JSON_DEPTH)) {
    return {
      ok: false,
      status: 400,
      error: "Invalid JSON body",
      params: { reason: `nested deeper than ${MAX_JSON_DEPTH} levels` },
    };
  }
  try {
    return { ok: true, value: parseJsonFast(text) };
  } catch (error) {
    return {
      ok: false,
      status: 400,
      error: "Invalid JSON body",
      params: { reason: error instanceof Error ? error.message : String(error) },
    };
  }
}
