import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Config } from "../../../src/config/schema.ts";
import {
  jsonInit,
  makeConfig,
  makeTestApp,
  type StubContainer,
  startStubContainer,
  staticDirectory,
  type TestApp,
  waitForJob,
} from "./fixtures.ts";

let stub: StubContainer;
let config: Config;
let t: TestApp;

beforeAll(async () => {
  stub = startStubContainer("a");
  config = makeConfig({
    containers: [
      { id: "a" },
      { id: "b", external: false },
      { id: "p", generates_proofs: true },
      { id: "lan", allowed_ips: ["10.0.0.0/8"] },
    ],
    server: { rate_limit: { num_requests: 100000, period: 1 } },
  });
  t = await makeTestApp(config, staticDirectory({ a: stub.url, b: stub.url, p: stub.url, lan: stub.url }));
});

afterAll(async () => {
  await t[Symbol.asyncDispose]();
  await stub[Symbol.asyncDispose]();
});

const post = (body: unknown, peer?: string) =>
  t.request("/api/jobs", { ...jsonInit("POST", body), ...(peer ? { peer } : {}) });

describe("POST /api/jobs", () => {
  test("default", async () => {
    const res = await post({ containers: ["a"], data: { hello: "world" } });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/json");
    const text = await res.text();
    expect(text).toMatch(
      /^\{"id":"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"\}\n$/,
    );
    const { id } = JSON.parse(text) as { id: string };
    const job = await waitForJob(t, id);
    expect(job).toEqual({
      id,
      status: "success",
      result: { container: "a", output: { container: "a", echo: { hello: "world" }, step: 1 } },
    });
    const sent = stub.requests.find((r) => r.body.includes('"hello"'));
    expect(sent?.body).toBe('{"source":1,"destination":1,"data":{"hello":"world"},"requires_proof":false}');
    expect(sent?.headers["content-type"]).toBe("application/json");
  });

  test("behavior: chained job keeps intermediate results, sorted keys on the wire", async () => {
    const res = await post({ containers: ["a", "b", "a"], data: { step: 0 }, requires_proof: null });
    const { id } = (await res.json()) as { id: string };
    await waitForJob(t, id);
    const full = await t.request(`/api/jobs?id=${id}&intermediate=true`);
    const text = await full.text();
    expect(text).toBe(
      `[{"id":"${id}","intermediate_results":[{"container":"a","output":{"container":"a","echo":{"step":0},"step":1}},{"container":"b","output":{"container":"a","echo":{"container":"a","echo":{"step":0},"step":1},"step":2}}],"result":{"container":"a","output":{"container":"a","echo":{"container":"a","echo":{"container":"a","echo":{"step":0},"step":1},"step":2},"step":3}},"status":"success"}]\n`,
    );
  });

  test("behavior: body cannot set id or ip", async () => {
    const res = await post({ containers: ["lan"], data: {}, id: "mine", ip: "10.1.2.3" }, "192.0.2.7");
    expect(res.status).toBe(405);
    expect(await res.json()).toEqual({
      error: "Container not allowed for address",
      params: { container: "lan", address: "192.0.2.7" },
    });
    const ok = await post({ containers: ["a"], data: {}, id: "mine", ip: "10.1.2.3" }, "192.0.2.7");
    const { id } = (await ok.json()) as { id: string };
    expect(id).not.toBe("mine");
    expect(await (await t.request(`/api/jobs?id=${id}`, { peer: "10.1.2.3" })).json()).toEqual([]);
    expect(
      ((await (await t.request(`/api/jobs?id=${id}`, { peer: "192.0.2.7" })).json()) as unknown[]).length,
    ).toBe(1);
  });

  test("behavior: explicit numeric type 0 is accepted", async () => {
    const res = await post({ type: 0, containers: ["a"], data: {} });
    expect(res.status).toBe(200);
  });

  test("behavior: allowed_ips CIDR admits addresses inside the range", async () => {
    const res = await post({ containers: ["lan"], data: {} }, "10.200.3.4");
    expect(res.status).toBe(200);
  });

  test("error: guardian rejections in the reference's order", async () => {
    const cases: [unknown, unknown][] = [
      [
        { containers: [], data: {} },
        { error: "No containers specified", params: {} },
      ],
      [
        { containers: ["a", "zz", "yy"], data: {} },
        { error: "Container not supported", params: { container: "zz" } },
      ],
      [
        { containers: ["b", "a"], data: {} },
        { error: "First container must be external", params: { first_container: "b" } },
      ],
      [
        { containers: ["lan"], data: {}, requires_proof: true },
        { error: "Container does not generate proof", params: { container: "lan" } },
      ],
      [
        { containers: ["a", "lan", "p"], data: {}, requires_proof: true },
        { error: "Container not allowed for address", params: { address: "127.0.0.1", container: "lan" } },
      ],
    ];
    for (const [body, expected] of cases) {
      const res = await post(body);
      expect(res.status).toBe(405);
      expect(await res.json()).toEqual(expected);
    }
  });

  test("error: bad bodies are 400 naming the field and the reason", async () => {
    const cases: [RequestInit, string, Record<string, unknown>][] = [
      [jsonInit("POST", "{not json"), "Invalid JSON body", {}],
      [jsonInit("POST", "[1,2]"), "Invalid request body", { field: "", reason: "expected a JSON object" }],
      [jsonInit("POST", { containers: ["a"] }), "Invalid request body", { field: "data" }],
      [
        jsonInit("POST", { containers: ["a"], data: [1] }),
        "Invalid request body",
        { field: "data", reason: "expected a JSON object" },
      ],
      [jsonInit("POST", { containers: "a", data: {} }), "Invalid request body", { field: "containers" }],
      [
        jsonInit("POST", { containers: ["a"], data: {}, requires_proof: "yes" }),
        "Invalid request body",
        { field: "requires_proof" },
      ],
      [jsonInit("POST", { type: 7, containers: ["a"], data: {} }), "Invalid request body", { field: "type" }],
      [
        { method: "POST", headers: { "content-type": "text/plain" }, body: "{}" },
        "Unsupported content type",
        { content_type: "text/plain" },
      ],
      [{ method: "POST", body: '{"containers":["a"],"data":{}}' }, "Unsupported content type", {}],
    ];
    for (const [init, error, params] of cases) {
      const res = await t.request("/api/jobs", init);
      expect(res.status).toBe(400);
      const body = (await res.json()) as { error: string; params: Record<string, unknown> };
      expect(body.error).toBe(error);
      expect(body.params).toMatchObject(params);
    }
  });

  test("error: oversize body is 400 with a JSON error", async () => {
    await using small = await makeTestApp(
      makeConfig({ containers: [{ id: "a" }], server: { max_body_bytes: 100 } }),
      staticDirectory({ a: stub.url }),
    );
    const res = await small.request(
      "/api/jobs",
      jsonInit("POST", { containers: ["a"], data: { pad: "x".repeat(200) } }),
    );
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({
      error: "Request body too large",
      params: { max_bytes: 100, field: "" },
    });
  });

  test("behavior: application/*+json content type and big integers are accepted", async () => {
    const res = await t.request("/api/jobs", {
      method: "POST",
      headers: { "content-type": "application/vnd.test+json; charset=utf-8" },
      body: '{"containers":["a"],"data":{"big":123456789012345678901234567890}}',
    });
    const { id } = (await res.json()) as { id: string };
    const job = await waitForJob(t, id);
    expect(stub.requests.some((r) => r.body.includes('"big":123456789012345678901234567890'))).toBe(true);
    expect(JSON.stringify(job)).toContain("step");
  });
});

describe("GET /api/jobs", () => {
  test("default", async () => {
    const peer = "198.51.100.1";
    const ids: string[] = [];
    for (let i = 0; i < 2; i++) {
      const res = await post({ containers: ["a"], data: { i } }, peer);
      ids.push(((await res.json()) as { id: string }).id);
    }
    for (const id of ids) await waitForJob(t, id, "", peer);
    const all = (await (await t.request("/api/jobs", { peer })).json()) as string[];
    expect(all.sort()).toEqual([...ids].sort());
    expect(await (await t.request("/api/jobs?pending=true", { peer })).json()).toEqual([]);
    expect(
      ((await (await t.request("/api/jobs?pending=false", { peer })).json()) as string[]).sort(),
    ).toEqual([...ids].sort());
    expect(await (await t.request("/api/jobs", { peer: "198.51.100.2" })).json()).toEqual([]);
    const both = (await (
      await t.request(`/api/jobs?id=${ids[0]}&id=unknown&id=${ids[1]}`, { peer })
    ).json()) as {
      id: string;
    }[];
    expect(both.map((job) => job.id)).toEqual(ids);
  });

  test("behavior: a running job reads as running with a null result", async () => {
    const res = await post({ containers: ["a"], data: { sleep_ms: 300 } });
    const { id } = (await res.json()) as { id: string };
    const now = await (await t.request(`/api/jobs?id=${id}&intermediate=true`)).text();
    expect(now).toBe(`[{"id":"${id}","intermediate_results":[],"result":null,"status":"running"}]\n`);
    await waitForJob(t, id);
  });
});

describe("POST /api/jobs/batch", () => {
  test("default", async () => {
    const res = await t.request(
      "/api/jobs/batch",
      jsonInit("POST", [
        { containers: ["a"], data: { n: 1 } },
        { containers: ["nope"], data: {} },
        { containers: ["a"] },
        "garbage",
        { containers: ["a"], data: { n: 2 } },
      ]),
    );
    expect(res.status).toBe(200);
    const items = (await res.json()) as Record<string, unknown>[];
    expect(items).toHaveLength(5);
    expect(items[0]).toEqual({ id: expect.any(String) });
    expect(items[1]).toEqual({ error: "Container not supported", params: { container: "nope" } });
    expect(items[2]).toMatchObject({ error: "Invalid request body", params: { index: 2, field: "data" } });
    expect(items[3]).toMatchObject({ error: "Invalid request body", params: { index: 3, field: "" } });
    expect(items[4]).toEqual({ id: expect.any(String) });
    expect(items[0]?.id).not.toBe(items[4]?.id);
    for (const item of [items[0], items[4]]) {
      expect((await waitForJob(t, String(item?.id))).status).toBe("success");
    }
  });

  test("behavior: empty list and any content type", async () => {
    const res = await t.request("/api/jobs/batch", { method: "POST", body: "[]" });
    expect(res.status).toBe(200);
    expect(await res.text()).toBe("[]\n");
  });

  test("error: not a list", async () => {
    const res = await t.request("/api/jobs/batch", jsonInit("POST", { containers: ["a"], data: {} }));
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({ error: "Expected a list", params: { type: "object" } });
    const bad = await t.request("/api/jobs/batch", jsonInit("POST", "[{"));
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: string }).error).toBe("Invalid JSON body");
  });
});

describe("POST /api/jobs/stream", () => {
  test("default", async () => {
    const res = await t.request(
      "/api/jobs/stream",
      jsonInit("POST", { containers: ["a"], data: { chunks: ["hel", "lo"] } }),
    );
    expect(res.status).toBe(200);
    const text = await res.text();
    const [id, rest] = [text.slice(0, 36), text.slice(36)];
    expect(rest).toBe("\nhello");
    expect(res.headers.get("x-job-id")).toBe(id);
    const job = await waitForJob(t, id);
    expect(job).toEqual({ id, status: "success", result: { container: "a", output: { output: "hello" } } });
    const sent = stub.requests.find((r) => r.body.includes('"chunks":["hel","lo"]'));
    expect(sent?.body).toBe('{"source":1,"destination":2,"data":{"chunks":["hel","lo"]}}');
  });

  test("error: guardian and delegated rejections", async () => {
    const res = await t.request("/api/jobs/stream", jsonInit("POST", { containers: ["zz"], data: {} }));
    expect(res.status).toBe(405);
    expect(await res.json()).toEqual({ error: "Container not supported", params: { container: "zz" } });
  });

  test("error: container failure before output stores the job failed", async () => {
    const res = await t.request(
      "/api/jobs/stream",
      jsonInit("POST", { containers: ["a"], data: { status: 500 } }),
    );
    expect(res.status).toBe(200);
    const reader = res.body?.getReader();
    const first = await reader?.read();
    const id = new TextDecoder().decode(first?.value).trim();
    await reader?.read().catch(() => undefined);
    const job = await waitForJob(t, id);
    expect(job.status).toBe("failed");
    expect(JSON.stringify(job.result)).toContain("HTTP 500");
  });
});
