import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { ServiceHealth } from "../../../src/lib/service.ts";
import { histogramCount, parseExposition, sampleValue } from "../../fixtures/prometheus.ts";
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
let t: TestApp;

beforeAll(async () => {
  stub = startStubContainer("a");
  t = await makeTestApp(
    makeConfig({
      manage_containers: true,
      containers: [
        { id: "a", image: "img-a", description: "first" },
        { id: "b", image: "img-b", external: false },
        { id: "gone", image: "img-c" },
      ],
      server: { rate_limit: { num_requests: 100000, period: 1 } },
    }),
    staticDirectory({ a: stub.url, b: "http://127.0.0.1:1", gone: stub.url }, {}, { gone: "stopped" }),
  );
});

afterAll(async () => {
  await t[Symbol.asyncDispose]();
  await stub[Symbol.asyncDispose]();
});

describe("GET /health", () => {
  test("default: one container of three down keeps it healthy and names it in degraded", async () => {
    const res = await t.request("/health");
    expect(res.status).toBe(200);
    const body = (await res.json()) as { status: string; degraded: string[] };
    expect(body.status).toBe("healthy");
    expect(body.degraded).toEqual(["containers.gone"]);
  });

  test("behavior: a failing part that does not stop work (chain, stats) is degraded, not unhealthy", async () => {
    await using app = await makeTestApp(makeConfig(), staticDirectory({ a: "http://127.0.0.1:1" }), {
      health: () => ({
        store: { ok: true },
        rest: { ok: true },
        chain: { ok: false, detail: "sync failing" },
        stats: { ok: false, detail: "cannot send" },
      }),
    });
    const res = await app.request("/health");
    expect(res.status).toBe(200);
    expect(((await res.json()) as { degraded: string[] }).degraded).toEqual(["chain", "stats"]);
  });

  test("error: a failing store makes it 503 naming the check", async () => {
    await using sick = await makeTestApp(makeConfig(), staticDirectory({}), {
      health: () => ({ store: { ok: false, detail: "redis down" }, rest: { ok: true } }),
    });
    const res = await sick.request("/health");
    expect(res.status).toBe(503);
    expect(await res.json()).toEqual({
      checks: { rest: { ok: true }, store: { detail: "redis down", ok: false } },
      degraded: [],
      error: "Node unhealthy",
      params: { failing: ["store"] },
      status: "unhealthy",
    });
  });

  test("error: no usable container (of those configured) or shutting down makes it 503", async () => {
    await using none = await makeTestApp(
      makeConfig(),
      staticDirectory({ a: "x", b: "y" }, {}, { a: "stopped", b: "missing" }),
    );
    const res = await none.request("/health");
    expect(res.status).toBe(503);
    expect(((await res.json()) as { params: unknown }).params).toEqual({ failing: ["containers"] });
    await using stopping = await makeTestApp(makeConfig(), staticDirectory({}), {
      health: () => ({ store: { ok: true }, rest: { ok: false, detail: "shutting down" } }),
    });
    expect((await stopping.request("/health")).status).toBe(503);
  });
});

describe("GET /ready", () => {
  test("error: 503 with the reasons while a container is down", async () => {
    const res = await t.request("/ready");
    expect(res.status).toBe(503);
    const body = (await res.json()) as { status: string; reasons: string[]; error: string };
    expect(body.status).toBe("not ready");
    expect(body.error).toBe("Node not ready");
    expect(body.reasons).toEqual(["container gone: stopped (not ready)"]);
  });

  test("default: 200 when every part and container is ready", async () => {
    await using app = await makeTestApp(makeConfig(), staticDirectory({ a: "http://127.0.0.1:1" }));
    const res = await app.request("/ready");
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ reasons: [], status: "ready" });
  });

  test("behavior: the chain must be live (snapshot at the head) and the RPC answering; stats do not count", async () => {
    const chain = (sync: Record<string, unknown>, rpc: Record<string, unknown> = {}) => ({
      store: { ok: true },
      rest: { ok: true },
      stats: { ok: false, detail: "receiver down" },
      chain: { ok: true, sync, rpc },
    });
    const config = makeConfig({
      chain: {
        enabled: true,
        rpc_url: "http://127.0.0.1:1",
        registry_address: "0x5FbDB2315678afecb367f032d93F642f64180aa3",
        wallet: { private_key: `0x${"11".repeat(32)}` },
      },
    });
    const ready = async (health: Record<string, unknown>) => {
      await using app = await makeTestApp(config, staticDirectory({}), {
        health: () => health as Record<string, ServiceHealth>,
      });
      const res = await app.request("/ready");
      return { status: res.status, reasons: ((await res.json()) as { reasons: string[] }).reasons };
    };
    expect(await ready(chain({ phase: "snapshot" }))).toEqual({
      status: 503,
      reasons: ["chain: the snapshot sync has not reached the head yet"],
    });
    expect((await ready(chain({ phase: "live" }))).status).toBe(200);
    const recent = chain({ phase: "live" }, { lastError: "HTTP 502", lastErrorAt: new Date().toISOString() });
    const failing = await ready(recent);
    expect(failing.status).toBe(503);
    expect(failing.reasons[0]).toStartWith("chain: the RPC failed ");
    const old = chain(
      { phase: "live" },
      { lastError: "HTTP 502", lastErrorAt: new Date(Date.now() - 60_000).toISOString() },
    );
    expect((await ready(old)).status).toBe(200);
  });
});

describe("GET /info", () => {
  test("default", async () => {
    const res = await t.request("/info");
    expect(await res.text()).toBe(
      '{"chain":{"address":"","enabled":false},"containers":[{"description":"first","external":true,"id":"a","image":"img-a"},{"description":"","external":false,"id":"b","image":"img-b"}],"pending":{"offchain":0,"onchain":0},"version":"1.4.0"}\n',
    );
  });

  test("behavior: pending.offchain counts running jobs", async () => {
    const res = await t.request(
      "/api/jobs",
      jsonInit("POST", { containers: ["a"], data: { sleep_ms: 300 } }),
    );
    const { id } = (await res.json()) as { id: string };
    const info = (await (await t.request("/info")).json()) as { pending: { offchain: number } };
    expect(info.pending.offchain).toBe(1);
    await waitForJob(t, id);
  });
});

describe("GET /resources", () => {
  test("default", async () => {
    const res = await t.request("/resources");
    expect(await res.json()).toEqual({ a: { service_id: "a" }, gone: { service_id: "a" } });
  });

  test("behavior: model_id is passed URL-encoded", async () => {
    const res = await t.request("/resources?model_id=a%20b");
    expect(await res.json()).toEqual({
      a: { model: "a b", supported: false },
      gone: { model: "a b", supported: false },
    });
    expect(stub.requests.some((r) => r.path === "/service-resources?model_id=a%20b")).toBe(true);
  });
});

describe("unknown paths and methods", () => {
  test("error: 404 and 405 are JSON", async () => {
    const missing = await t.request("/nope");
    expect(missing.status).toBe(404);
    expect(await missing.json()).toEqual({ error: "Not found", params: { path: "/nope" } });
    const wrong = await t.request("/api/jobs", { method: "DELETE" });
    expect(wrong.status).toBe(405);
    expect(wrong.headers.get("allow")).toBe("GET, HEAD, POST, OPTIONS");
    expect(((await wrong.json()) as { error: string }).error).toBe("Method not allowed");
    const options = await t.request("/api/status", { method: "OPTIONS" });
    expect(options.status).toBe(204);
    expect(options.headers.get("allow")).toBe("PUT, OPTIONS");
  });
});

describe("PUT /api/status", () => {
  const put = (body: unknown, peer?: string) =>
    t.request("/api/status", { ...jsonInit("PUT", body), ...(peer ? { peer } : {}) });

  test("default", async () => {
    const running = await put({ id: "s1", status: "running", containers: ["a"], data: {} });
    expect(running.status).toBe(200);
    expect(await running.text()).toBe("null\n");
    expect(await (await t.request("/api/jobs?pending=true")).json()).toContain("s1");
    const done = await put({ id: "s1", status: "success", containers: ["unknown-is-fine"] });
    expect(await done.text()).toBe("null\n");
    expect(await (await t.request("/api/jobs?id=s1")).json()).toEqual([
      { id: "s1", result: null, status: "success" },
    ]);
    expect(await (await t.request("/api/jobs?pending=true")).json()).not.toContain("s1");
  });

  test("behavior: accepted from ::1 and Docker's default bridge", async () => {
    for (const peer of ["::1", "172.17.0.5", "127.0.0.2", "::ffff:127.0.0.1"]) {
      const res = await put({ id: `ok-${peer}`, status: "failed", containers: [] }, peer);
      expect(res.status).toBe(200);
    }
  });

  test("error: refused from other addresses", async () => {
    for (const peer of ["10.0.0.5", "172.20.0.2", "192.168.1.10"]) {
      const res = await put({ id: "x", status: "success", containers: [] }, peer);
      expect(res.status).toBe(403);
      expect(await res.json()).toEqual({ error: "Unauthorized", params: {} });
    }
  });

  test("error: invalid status and missing fields are 400", async () => {
    const bad = await put({ id: "x", status: "done", containers: [] });
    expect(bad.status).toBe(400);
    expect(await bad.json()).toEqual({ error: "Status is invalid", params: { status: "done" } });
    const clientCase = await put({ id: "x", status: "invalid" });
    expect(((await clientCase.json()) as { error: string }).error).toBe("Status is invalid");
    const missing = await put({ status: "success", containers: [] });
    expect(missing.status).toBe(400);
    expect(await missing.json()).toMatchObject({
      error: "Could not store job status",
      params: { field: "id" },
    });
    const garbage = await t.request("/api/status", { method: "PUT", body: "nope" });
    expect(garbage.status).toBe(400);
  });

  test("behavior: configured status_allowed_ips replaces the default", async () => {
    await using custom = await makeTestApp(
      makeConfig({ server: { status_allowed_ips: ["10.9.0.0/16"] } }),
      staticDirectory({}),
    );
    const init = jsonInit("PUT", { id: "c", status: "running", containers: [] });
    expect((await custom.request("/api/status", { ...init, peer: "10.9.1.1" })).status).toBe(200);
    expect((await custom.request("/api/status", { ...init, peer: "127.0.0.1" })).status).toBe(403);
  });
});

describe("rate limiting", () => {
  test("default", async () => {
    let now = 1_000_000;
    await using limited = await makeTestApp(
      makeConfig({ containers: [{ id: "a" }], server: { rate_limit: { num_requests: 3, period: 3 } } }),
      staticDirectory({ a: stub.url }),
      { now: () => now },
    );
    for (let i = 0; i < 3; i++) {
      const res = await limited.request("/info");
      expect(res.status).toBe(200);
      expect(res.headers.get("ratelimit-limit")).toBe("3");
      expect(res.headers.get("ratelimit-remaining")).toBe(String(2 - i));
    }
    const refused = await limited.request("/info");
    expect(refused.status).toBe(429);
    expect(refused.headers.get("retry-after")).toBe("1");
    expect(await refused.json()).toEqual({
      error: "Too many requests",
      params: { limit: 3, period: 3, retry_after: 1 },
    });
    // Buckets are per endpoint and per client.
    expect((await limited.request("/health")).status).toBe(200);
    expect((await limited.request("/info", { peer: "192.0.2.1" })).status).toBe(200);
    // One more request is admitted every period/num_requests.
    now += 1000;
    expect((await limited.request("/info")).status).toBe(200);
    expect((await limited.request("/info")).status).toBe(429);
    // PUT /api/status is never limited.
    for (let i = 0; i < 5; i++) {
      const res = await limited.request(
        "/api/status",
        jsonInit("PUT", { id: `r${i}`, status: "running", containers: [] }),
      );
      expect(res.status).toBe(200);
    }
    // A batch costs one token.
    const batch = await limited.request(
      "/api/jobs/batch",
      jsonInit("POST", [
        { containers: ["a"], data: {} },
        { containers: ["a"], data: {} },
        { containers: ["a"], data: {} },
        { containers: ["a"], data: {} },
      ]),
    );
    expect(batch.headers.get("ratelimit-remaining")).toBe("2");
  });

  test("behavior: X-Forwarded-For counts only from a trusted proxy", async () => {
    const cfg = (trusted: string[]) =>
      makeConfig({
        containers: [{ id: "a" }],
        server: { rate_limit: { num_requests: 1, period: 60 }, trusted_proxies: trusted },
      });
    await using direct = await makeTestApp(cfg([]), staticDirectory({ a: stub.url }));
    expect((await direct.request("/info", { headers: { "x-forwarded-for": "1.1.1.1" } })).status).toBe(200);
    // A forged header from an untrusted peer does not give a fresh bucket.
    expect((await direct.request("/info", { headers: { "x-forwarded-for": "2.2.2.2" } })).status).toBe(429);

    await using proxied = await makeTestApp(cfg(["127.0.0.1"]), staticDirectory({ a: stub.url }));
    expect(
      (await proxied.request("/info", { headers: { "x-forwarded-for": "9.9.9.9, 1.1.1.1" } })).status,
    ).toBe(200);
    // The client may prepend anything; the right-most untrusted entry (appended by our proxy) is the key.
    expect(
      (await proxied.request("/info", { headers: { "x-forwarded-for": "8.8.8.8, 1.1.1.1" } })).status,
    ).toBe(429);
    expect((await proxied.request("/info", { headers: { "x-forwarded-for": "1.1.1.2" } })).status).toBe(200);
    // And the job owner is that address too.
    const res = await proxied.request("/api/jobs", {
      ...jsonInit("POST", { containers: ["a"], data: {} }),
      headers: { "content-type": "application/json", "x-forwarded-for": "203.0.113.9" },
    });
    const { id } = (await res.json()) as { id: string };
    const seen = await proxied.request(`/api/jobs?id=${id}`, {
      headers: { "x-forwarded-for": "203.0.113.9" },
    });
    expect(((await seen.json()) as unknown[]).length).toBe(1);
  });
});

describe("GET /metrics", () => {
  const scrape = async () => {
    const res = await t.request("/metrics");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/plain; version=0.0.4; charset=utf-8");
    return parseExposition(await res.text());
  };

  test("default: counters and histograms move when a job runs and a request is refused", async () => {
    const before = await scrape();
    const job = await t.request("/api/jobs", jsonInit("POST", { containers: ["a"], data: { n: 1 } }));
    const { id } = (await job.json()) as { id: string };
    await waitForJob(t, id);
    await t.request("/api/jobs", jsonInit("POST", { containers: ["nope"], data: {} }));
    const after = await scrape();
    const moved = (name: string, labels: Record<string, string>) =>
      (sampleValue(after, name, labels) ?? 0) - (sampleValue(before, name, labels) ?? 0);
    const movedCount = (name: string, labels: Record<string, string>) =>
      (histogramCount(after, name, labels)?.count ?? 0) - (histogramCount(before, name, labels)?.count ?? 0);
    expect(moved("infernet_jobs_total", { kind: "offchain", status: "success" })).toBe(1);
    expect(moved("infernet_container_jobs_total", { container: "a", status: "success" })).toBe(1);
    expect(movedCount("infernet_job_duration_seconds", { kind: "offchain", status: "success" })).toBe(1);
    expect(
      movedCount("infernet_container_call_duration_seconds", { container: "a", status: "success" }),
    ).toBe(1);
    expect(moved("infernet_http_requests_total", { route: "/api/jobs", method: "POST", status: "200" })).toBe(
      1,
    );
    expect(moved("infernet_http_requests_total", { route: "/api/jobs", method: "POST", status: "405" })).toBe(
      1,
    );
    expect(movedCount("infernet_http_request_duration_seconds", { route: "/api/jobs", method: "POST" })).toBe(
      2,
    );
    expect(
      moved("infernet_guardian_rejections_total", { kind: "offchain", reason: "Container not supported" }),
    ).toBe(1);
    expect(sampleValue(after, "infernet_container_up", { container: "gone" })).toBe(0);
    expect(sampleValue(after, "infernet_jobs_pending", { kind: "offchain" })).toBe(0);
  });

  test("behavior: unknown paths are counted under route=other, so label values stay bounded", async () => {
    for (const path of ["/a1", "/b2", "/c3"]) expect((await t.request(path)).status).toBe(404);
    const metrics = await scrape();
    expect(
      sampleValue(metrics, "infernet_http_requests_total", { route: "other", status: "404" }),
    ).toBeGreaterThanOrEqual(3);
    expect(
      [...(metrics.get("infernet_http_requests_total")?.samples ?? [])].some((s) => s.labels.route === "/a1"),
    ).toBe(false);
  });

  test("error: a client outside server.metrics_allowed_ips gets a JSON 403 naming the setting", async () => {
    const res = await t.request("/metrics", { peer: "203.0.113.9" });
    expect(res.status).toBe(403);
    expect(await res.json()).toEqual({
      error: "Unauthorized",
      params: { setting: "server.metrics_allowed_ips" },
    });
    await using open = await makeTestApp(
      makeConfig({ server: { metrics_allowed_ips: ["203.0.113.0/24"] } }),
      staticDirectory({}),
    );
    expect((await open.request("/metrics", { peer: "203.0.113.9" })).status).toBe(200);
    expect((await open.request("/metrics")).status).toBe(403);
  });
});
