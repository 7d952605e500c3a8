// GET /dashboard at the app level (peer address injected): who may open it, what /dashboard/data says (the
// chain section from the chain and processor health records), that no secret reaches it, and the bounded
// ring buffers behind its charts.
import { describe, expect, test } from "bun:test";
import type { ServiceHealth } from "../../../src/lib/service.ts";
import {
  BucketRing,
  createDashboardHistory,
  observeJobStore,
  RATE_BUCKETS,
  SampleRing,
} from "../../../src/server/dashboard-history.ts";
import type { ContainerStatus } from "../../../src/shared/containers.ts";
import { makeConfig, makeTestApp, startStubContainer, staticDirectory, waitForJob } from "./fixtures.ts";

const PRIVATE_KEY = `0x${"ab12".repeat(16)}`;
const SECRETS = {
  private_key: PRIVATE_KEY,
  bearer: "bearer-secret-9f8e7d",
  docker: "docker-password-5a4b3c",
  redis: "redis-password-1q2w3e",
};

const chainHealth: Record<string, ServiceHealth> = {
  chain: {
    ok: true,
    detail: "synced",
    chain_id: 31337,
    sync: { phase: "realtime", head_block: 120, last_synced_block: 117 },
    rpc: {
      requests: 42,
      byMethod: { eth_blockNumber: 30, eth_call: 12 },
      failures: 1,
      exhausted: 0,
      failovers: 0,
      url: "http://127.0.0.1:8545",
    },
  },
  processor: {
    ok: true,
    detail: "processing",
    tracked: 3,
    delegated: 1,
    pending_txs: 0,
    deliveries: { sent: 5, confirmed: 4, reverted: 1, replaced: 0, failed: 0 },
    address: "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
    balance_wei: "1500000000000000000",
  },
};

function history(statuses: ContainerStatus[] = [], health: Record<string, ServiceHealth> = {}) {
  return createDashboardHistory({ statuses: () => statuses, health: () => health });
}

describe("dashboard routes", () => {
  test("default: loopback gets the page, its assets and the data; others get 403 JSON", async () => {
    const config = makeConfig();
    const dashboard = { history: history(), warnings: [] };
    await using t = await makeTestApp(config, staticDirectory({}), { dashboard });
    for (const path of ["/dashboard", "/dashboard/app.js", "/dashboard/style.css", "/dashboard/data"]) {
      expect((await t.request(path, { peer: "127.0.0.1" })).status).toBe(200);
      expect((await t.request(path, { peer: "::1" })).status).toBe(200);
      const refused = await t.request(path, { peer: "203.0.113.7" });
      expect(refused.status).toBe(403);
      expect(await refused.json()).toEqual({
        error: "Forbidden",
        params: { reason: "the dashboard is served only to server.dashboard_allowed_ips" },
      });
      // The Docker bridge may PUT /api/status, but is not loopback.
      expect((await t.request(path, { peer: "172.17.0.2" })).status).toBe(403);
    }
    await dashboard.history.close?.();
  });

  test("behavior: server.dashboard_allowed_ips opens it to a trusted network (and only that)", async () => {
    const config = makeConfig({ server: { dashboard_allowed_ips: ["10.1.0.0/16"] } });
    const dashboard = { history: history(), warnings: [] };
    await using t = await makeTestApp(config, staticDirectory({}), { dashboard });
    expect((await t.request("/dashboard/data", { peer: "10.1.2.3" })).status).toBe(200);
    expect((await t.request("/dashboard/data", { peer: "10.2.0.1" })).status).toBe(403);
    expect((await t.request("/dashboard/data", { peer: "127.0.0.1" })).status).toBe(403);
    await dashboard.history.close?.();
  });

  test("behavior: read-only (405 for writes), strict CSP, gzip and ETag for the static files", async () => {
    const dashboard = { history: history(), warnings: [] };
    await using t = await makeTestApp(makeConfig(), staticDirectory({}), { dashboard });
    for (const method of ["POST", "PUT", "DELETE", "PATCH"]) {
      expect((await t.request("/dashboard/data", { method })).status).toBe(405);
      expect((await t.request("/dashboard", { method })).status).toBe(405);
    }
    const page = await t.request("/dashboard", { headers: { "accept-encoding": "gzip" } });
    expect(page.headers.get("content-security-policy")).toContain("default-src 'none'");
    expect(page.headers.get("content-type")).toBe("text/html; charset=utf-8");
    const etag = page.headers.get("etag") ?? "";
    expect((await t.request("/dashboard", { headers: { "if-none-match": etag } })).status).toBe(304);
    await dashboard.history.close?.();
  });

  test("behavior: the data names containers, jobs and the chain section, and carries no secret", async () => {
    await using stub = startStubContainer("echo");
    const raw = {
      chain: {
        enabled: true,
        rpc_url: "http://127.0.0.1:8545",
        registry_address: "0x5FbDB2315678afecb367f032d93F642f64180aa3",
        wallet: { private_key: SECRETS.private_key, payment_address: `0x${"12".repeat(20)}` },
      },
      docker: { username: "me", password: SECRETS.docker },
      containers: [
        { id: "echo", image: "x", url: stub.url, bearer: SECRETS.bearer },
        { id: "other", image: "y", port: 3999 },
      ],
    };
    // The app is told Redis is configured (its password is a secret to keep out); the test store is embedded.
    const config = makeConfig(raw);
    const shown = makeConfig({ ...raw, redis: { host: "127.0.0.1", password: SECRETS.redis } });
    const statuses: ContainerStatus[] = [
      { id: "echo", state: "remote", ready: true, since: new Date(0).toISOString() },
      {
        id: "other",
        state: "starting",
        ready: false,
        detail: "waiting for HTTP",
        since: new Date(0).toISOString(),
      },
    ];
    const directory = staticDirectory({ echo: stub.url }, { Authorization: `Bearer ${SECRETS.bearer}` });
    const h = history(statuses, chainHealth);
    const dashboard = { history: h, warnings: ["unknown key foo"] };
    await using t = await makeTestApp(
      config,
      { ...directory, statuses: () => statuses },
      {
        config: shown,
        dashboard,
        chain: { enabled: true, address: () => "0x70997970C51812dc3A010C7d01b50e0d17dc79C8" },
        health: () => ({ ...chainHealth, rest: { ok: true } }),
      },
    );
    // The node hands the REST server the observed store; here the test writes through it directly.
    const observed = observeJobStore(t.store, h);
    await observed.setRunning(
      "127.0.0.1",
      { id: "job-1", status: "running", intermediate_results: [], result: null },
      {
        containers: ["echo"],
      },
    );
    await observed.setDone("127.0.0.1", {
      id: "job-1",
      status: "success",
      intermediate_results: [],
      result: { container: "echo", output: { secret_output: "never-shown-output" } },
    });
    // A real job through the app, to the stub with its bearer.
    const submitted = await t.request("/api/jobs", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ containers: ["echo"], data: { hello: "never-shown-input" } }),
    });
    await waitForJob(t, ((await submitted.json()) as { id: string }).id);

    const text = await (await t.request("/dashboard/data")).text();
    for (const secret of Object.values(SECRETS)) {
      expect(text).not.toContain(secret);
      expect(text).not.toContain(secret.replace(/^0x/, ""));
    }
    expect(text).not.toContain("never-shown");
    const data = JSON.parse(text);
    expect(data.node).toMatchObject({
      store: "redis",
      chain_enabled: true,
      chain_id: 31337,
      warnings: ["unknown key foo"],
    });
    expect(data.containers.map((c: { id: string }) => c.id)).toEqual(["echo", "other"]);
    // The same reasons GET /ready gives (src/server/health.ts).
    expect(data.readiness).toEqual({
      ready: false,
      reasons: [
        "container other: starting (waiting for HTTP)",
        "chain: the snapshot sync has not reached the head yet",
      ],
    });
    expect(data.jobs.latest[0]).toMatchObject({
      id: "job-1",
      containers: ["echo"],
      status: "success",
      kind: "offchain",
    });
    expect(data.jobs.rate.succeeded).toHaveLength(RATE_BUCKETS);
    expect(data.chain).toMatchObject({
      chain_id: 31337,
      head_block: 120,
      synced_block: 117,
      lag_blocks: 3,
      tracked: 3,
      delegated: 1,
      deliveries: { sent: 5, confirmed: 4, reverted: 1 },
      wallet: { address: "0x70997970C51812dc3A010C7d01b50e0d17dc79C8", balance_wei: "1500000000000000000" },
      payment_wallet: { address: `0x${"12".repeat(20)}` },
      rpc: { requests: 42, failures: 1, by_method: { eth_blockNumber: 30, eth_call: 12 } },
    });
    await h.close?.();
  });
});

describe("dashboard history", () => {
  test("default: BucketRing keeps the last N buckets and forgets older ones", () => {
    const ring = new BucketRing(3, 10, 1);
    ring.add(0, 5); // bucket 0
    ring.add(0, 15, 2); // bucket 1
    ring.add(0, 25); // bucket 2
    expect(ring.snapshot(29)).toEqual({ bucket_s: 0.01, end: 30, series: [[1, 2, 1]] });
    ring.add(0, 35); // bucket 3 reuses bucket 0's slot
    expect(ring.snapshot(35).series).toEqual([[2, 1, 1]]);
    expect(ring.snapshot(1000).series).toEqual([[0, 0, 0]]);
  });

  test("default: SampleRing percentiles over the last samples only", () => {
    const ring = new SampleRing(100);
    expect(ring.percentile(50)).toBeNull();
    for (let i = 1; i <= 100; i++) ring.push(i);
    expect(ring.percentile(50)).toBe(50);
    expect(ring.percentile(99)).toBe(99);
    for (let i = 0; i < 100; i++) ring.push(1000);
    expect(ring.percentile(50)).toBe(1000);
    expect(ring.count()).toBe(100);
  });

  test("behavior: restarts from state changes, deliveries per minute from counter deltas, container errors without the reply", () => {
    let state: ContainerStatus["state"] = "ready";
    const health = structuredClone(chainHealth);
    let t = 60_000;
    const h = createDashboardHistory({
      statuses: () => [{ id: "a", state, ready: state === "ready", since: "" }],
      health: () => health,
      now: () => t,
    });
    h.sample();
    state = "stopped";
    h.sample();
    state = "ready";
    h.sample();
    expect(h.container("a").restarts).toBe(1);
    (health.processor as unknown as { deliveries: { sent: number } }).deliveries.sent = 8;
    t += 1_000;
    h.sample();
    expect(h.deliveryRate(t).sent.at(-1)).toBe(3);
    h.recordCall("a", 12, 'Container a replied with invalid JSON (HTTP 200): {"partial output');
    h.recordCall("unknown", 5, undefined); // not configured: ignored, nothing grows
    expect(h.container("a")).toMatchObject({
      failed: 1,
      p50_ms: 12,
      last_error: "Container a replied with invalid JSON (HTTP 200)",
    });
    for (let i = 0; i < 500; i++) {
      h.recordJob({
        id: `j${i}`,
        kind: "onchain",
        containers: ["a"],
        status: "success",
        duration_ms: 1,
        at: t,
      });
    }
    expect(h.latestJobs()).toHaveLength(50);
    expect(h.latestJobs()[0]?.id).toBe("j499");
    expect(h.totals().onchain.success).toBe(500);
    void h.close?.();
  });
});
