// Reading request bodies safely: a size cap (checked on Content-Length and while reading chunked bodies),
// an optional JSON content-type requirement, a nesting-depth cap and a lossless JSON parse. Every failure is a
// value naming the reason, which the routes reply as 400 with {"error","params"} — never a 413 or a 500.
import type { Context } from "hono";
import { jsonNestingExceeds, MAX_JSON_DEPTH, parseJsonFast } from "../lib/json.ts";

export type BodyResult =
  | { ok: true; value: unknown }
  | { ok: false; status: 400; error: string; params: Record<string, unknown> };

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

export interface BodyOptions {
  requireJsonType: boolean;
  maxBytes: number;
}

export function readJsonBody(c: Context, options: BodyOptions): Promise<BodyResult> {
  return readJsonRequest(c.req.raw, options);
}

/** readJsonBody on the request itself, for the native routes in app.ts that have no hono Context. */
export async function readJsonRequest(request: Request, options: BodyOptions): Promise<BodyResult> {
  if (options.requireJsonType) {
    const type = request.headers.get("content-type") ?? "";
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
    text = await readCapped(request, options.maxBytes);
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
