// Rate limiting, body limits, every off-chain guardian rejection and JSON errors over real HTTP, through the
// release binary.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { type NodeFixture, postJson, startNode } from "./node-process.ts";

let f: NodeFixture;
let url = "";

beforeAll(async () => {
  f = await startNode("limits", {
    store: "embedded",
    extra: { server: { rate_limit: { num_requests: 3, period: 60 }, max_body_bytes: 1024 } },
    containers: { echo2: { allowed_ips: ["10.0.0.0/8"] }, inner: { generates_proofs: true } },
  });
  url = f.node.url;
}, 180_000);

afterAll(async () => {
  await f?.[Symbol.asyncDispose]();
});

describe("limits through the binary", () => {
  test("default: a burst of num_requests, then 429 with Retry-After; other buckets unaffected", async () => {
    // startNode's readiness polling used /health, so test /info.
    for (let i = 0; i < 3; i++) {
      const res = await fetch(`${url}/info`);
      expect(res.status).toBe(200);
      expect(res.headers.get("ratelimit-limit")).toBe("3");
      expect(res.headers.get("ratelimit-remaining")).toBe(String(2 - i));
    }
    const refused = await fetch(`${url}/info`, { headers: { "x-forwarded-for": "203.0.113.1" } });
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get("retry-after"))).toBeGreaterThan(0);
    expect(await refused.json()).toMatchObject({
      error: "Too many requests",
      params: { limit: 3, period: 60 },
    });
    expect((await fetch(`${url}/api/jobs`)).status).toBe(200);
    const put = await fetch(`${url}/api/status`, {
      method: "PUT",
      body: JSON.stringify({ id: "x", status: "running", containers: [] }),
    });
    expect(put.status).toBe(200);
  });

  test("error: oversize bodies, chunked or not, of any size, get a JSON 400", async () => {
    const big = { containers: [f.ids.echo], data: { pad: "x".repeat(4096) } };
    const expected = { error: "Request body too large", params: { max_bytes: 1024, field: "" } };
    // PUT /api/status is not rate limited, so these do not spend tokens of the limited endpoints.
    const res = await fetch(`${url}/api/status`, { method: "PUT", body: JSON.stringify([big]) });
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual(expected);
    const chunks = [
      new TextEncoder().encode("["),
      new TextEncoder().encode(JSON.stringify(big)),
      new TextEncoder().encode("]"),
    ];
    const chunked = await fetch(`${url}/api/status`, {
      method: "PUT",
      body: new ReadableStream({
        pull(controller) {
          const next = chunks.shift();
          if (next) controller.enqueue(next);
          else controller.close();
        },
      }),
    });
    expect(chunked.status).toBe(400);
    expect(await chunked.json()).toEqual(expected);
    // Far beyond the limit (8 MiB): still our JSON 400, not an empty 413 from the HTTP server underneath.
    const huge = await fetch(`${url}/api/status`, { method: "PUT", body: "x".repeat(8 * 1024 * 1024) });
    expect(huge.status).toBe(400);
    expect(await huge.json()).toEqual(expected);
    expect((await fetch(`${url}/api/status`, { method: "PUT", body: "{}" })).status).toBe(400);
  });

  test("error: every off-chain guardian rejection, in the reference's order", async () => {
    const { echo, echo2, inner } = f.ids;
    const cases: [Record<string, unknown>, unknown][] = [
      [
        { containers: [], data: {} },
        { error: "No containers specified", params: {} },
      ],
      [
        { containers: [echo, "nope"], data: {} },
        { error: "Container not supported", params: { container: "nope" } },
      ],
      [
        { containers: [inner], data: {} },
        { error: "First container must be external", params: { first_container: inner } },
      ],
      [
        { containers: [echo, echo2], data: {}, requires_proof: true },
        { error: "Container does not generate proof", params: { container: echo2 } },
      ],
      [
        { containers: [echo, echo2, inner], data: {}, requires_proof: true },
        { error: "Container not allowed for address", params: { address: "127.0.0.1", container: echo2 } },
      ],
      // The body cannot claim an allowed address.
      [
        { containers: [echo2], data: {}, ip: "10.1.1.1" },
        { error: "Container not allowed for address", params: { address: "127.0.0.1", container: echo2 } },
      ],
    ];
    // The rate limit here is 3 per minute: one batch (one token) carries every case.
    const res = await postJson(
      `${url}/api/jobs/batch`,
      cases.map(([body]) => body),
    );
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual(cases.map(([, expected]) => expected));
  });

  test("error: unknown path and wrong method are JSON", async () => {
    const missing = await fetch(`${url}/api/nothing`);
    expect(missing.status).toBe(404);
    expect(await missing.json()).toEqual({ error: "Not found", params: { path: "/api/nothing" } });
    const wrong = await fetch(`${url}/api/jobs/stream`);
    expect(wrong.status).toBe(405);
    expect(wrong.headers.get("allow")).toBe("POST, OPTIONS");
  });
});
