// readJsonBody: the size cap (declared and chunked), the content-type check and the nesting-depth cap, all as
// 400 {"error","params"} values; jsonNestingExceeds on its own.
import { describe, expect, test } from "bun:test";
import { Hono } from "hono";
import { jsonNestingExceeds, MAX_JSON_DEPTH } from "../../../src/lib/json.ts";
import { readJsonBody } from "../../../src/server/body.ts";

function bodyApp(options: { requireJsonType: boolean; maxBytes: number }): Hono {
  const app = new Hono();
  app.post("/", async (c) => c.json(await readJsonBody(c, options)));
  return app;
}

async function read(
  body: string | ReadableStream<Uint8Array>,
  options = { requireJsonType: true, maxBytes: 4 * 1024 * 1024 },
  type = "application/json",
): Promise<unknown> {
  const res = await bodyApp(options).request("/", {
    method: "POST",
    headers: { "content-type": type },
    body,
  });
  return res.json();
}

const nested = (levels: number, open = "[", close = "]") => open.repeat(levels) + close.repeat(levels);

describe("jsonNestingExceeds", () => {
  test("default", () => {
    expect(jsonNestingExceeds('{"a":[1,{"b":[]}]}', 4)).toBe(false);
    expect(jsonNestingExceeds('{"a":[1,{"b":[]}]}', 3)).toBe(true);
    expect(jsonNestingExceeds(nested(512), 512)).toBe(false);
    expect(jsonNestingExceeds(nested(513), 512)).toBe(true);
  });

  test("behavior: brackets inside strings, escaped quotes included, do not count", () => {
    const text = JSON.stringify({ s: `${"[".repeat(1000)}\\"{{{{\\"${"{".repeat(1000)}` });
    expect(jsonNestingExceeds(text, 1)).toBe(false);
    expect(jsonNestingExceeds(`["\\\\",${nested(3)}]`, 3)).toBe(true);
    expect(jsonNestingExceeds(`["\\\\",${nested(2)}]`, 3)).toBe(false);
  });

  test("behavior: siblings do not add up; only the depth open at once counts", () => {
    expect(jsonNestingExceeds(`[${Array.from({ length: 1000 }, () => nested(5)).join(",")}]`, 6)).toBe(false);
  });
});

describe("readJsonBody", () => {
  test("default", async () => {
    expect(await read('{"a":[1,2,{"b":null}]}')).toEqual({ ok: true, value: { a: [1, 2, { b: null }] } });
  });

  test("behavior: 512 levels are accepted", async () => {
    expect(await read(nested(MAX_JSON_DEPTH))).toMatchObject({ ok: true });
  });

  test("error: nesting deeper than 512 levels is a 400 Invalid JSON body", async () => {
    const expected = {
      ok: false,
      status: 400,
      error: "Invalid JSON body",
      params: { reason: "nested deeper than 512 levels" },
    };
    expect(await read(nested(MAX_JSON_DEPTH + 1))).toEqual(expected);
    // 100,000 levels: what used to be accepted and later crash the reply serializer.
    expect(await read(nested(100_000, "{", "}"))).toEqual(expected);
    expect(await read(`{"a":${nested(100_000)}}`)).toEqual(expected);
  });

  test("error: oversize bodies are 400 naming max_bytes, declared or chunked", async () => {
    const options = { requireJsonType: false, maxBytes: 64 };
    const expected = {
      ok: false,
      status: 400,
      error: "Request body too large",
      params: { max_bytes: 64, field: "" },
    };
    const big = JSON.stringify({ pad: "x".repeat(100) });
    expect(await read(big, options)).toEqual(expected);
    const chunks = [big.slice(0, 40), big.slice(40)].map((part) => new TextEncoder().encode(part));
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        const next = chunks.shift();
        if (next) controller.enqueue(next);
        else controller.close();
      },
    });
    expect(await read(stream, options)).toEqual(expected);
  });

  test("error: wrong content type and malformed JSON are 400", async () => {
    expect(await read("{}", undefined, "text/plain")).toEqual({
      ok: false,
      status: 400,
      error: "Unsupported content type",
      params: { content_type: "text/plain", expected: "application/json" },
    });
    expect(await read("{")).toMatchObject({ ok: false, status: 400, error: "Invalid JSON body" });
  });
});
