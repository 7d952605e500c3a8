import { describe, expect, test } from "bun:test";
import { createNodeMetrics, type MetricsSources } from "../../../src/metrics/node-metrics.ts";
import { snapshotRegistry } from "../../../src/metrics/snapshot.ts";
import { histogramCount, parseExposition, sampleValue } from "../../fixtures/prometheus.ts";
import { FULL_HEALTH } from "./fixtures.ts";

const base = {
  version: "0.1.0",
  compatVersion: "1.4.0",
  pending: { offchain: 2, onchain: 0 },
  counters: {
    jobs: { offchain: { success: 5, failed: 1 }, onchain: { success: 0, failed: 0 } },
    containers: { echo: { success: 5, failed: 1 } },
  },
  containers: [
    {
      id: "echo",
      state: "ready" as const,
      ready: true,
      since: "2026-01-01T00:00:00.000Z",
      restarts: 2,
      probe_failures: 3,
    },
  ],
  uptimeSeconds: 12.4,
  residentBytes: 1024,
};

const render = async (health: Parameters<typeof snapshotRegistry>[0]["health"], extra = {}) =>
  parseExposition(await snapshotRegistry({ ...base, health, ...extra }).metrics());

describe("snapshot metrics", () => {
  test("default: node state parses as the Prometheus text format", async () => {
    const m = await render({ store: { ok: true }, containers: { ok: false } });
    expect(sampleValue(m, "infernet_build_info", { version: "0.1.0", compat_version: "1.4.0" })).toBe(1);
    expect(sampleValue(m, "infernet_up", { part: "store" })).toBe(1);
    expect(sampleValue(m, "infernet_up", { part: "containers" })).toBe(0);
    expect(sampleValue(m, "infernet_jobs_pending", { kind: "offchain" })).toBe(2);
    expect(sampleValue(m, "infernet_jobs_total", { kind: "offchain", status: "failed" })).toBe(1);
    expect(sampleValue(m, "infernet_container_jobs_total", { container: "echo", status: "success" })).toBe(5);
    expect(sampleValue(m, "infernet_container_up", { container: "echo" })).toBe(1);
    expect(sampleValue(m, "infernet_container_restarts_total", { container: "echo" })).toBe(2);
    expect(sampleValue(m, "infernet_container_probe_failures_total", { container: "echo" })).toBe(3);
    expect(sampleValue(m, "infernet_process_uptime_seconds")).toBe(12);
    expect(m.get("infernet_jobs_total")?.type).toBe("counter");
    // No chain, no processor, no stats: those families are absent rather than a misleading 0.
    expect(m.has("infernet_chain_synced_block")).toBe(false);
    expect(m.has("infernet_deliveries_total")).toBe(false);
    expect(m.has("infernet_stats_records_total")).toBe(false);
  });

  test("behavior: chain sync and lag, RPC counters, processor deliveries and stats records", async () => {
    const m = await render(FULL_HEALTH);
    expect(sampleValue(m, "infernet_rpc_requests_total", { method: "eth_call" })).toBe(7);
    expect(sampleValue(m, "infernet_rpc_errors_total", { method: "eth_call" })).toBe(1);
    expect(sampleValue(m, "infernet_chain_synced_block")).toBe(117);
    expect(sampleValue(m, "infernet_chain_sync_lag_blocks")).toBe(3);
    expect(sampleValue(m, "infernet_subscriptions_ignored_total")).toBe(10);
    expect(sampleValue(m, "infernet_subscriptions_tracked")).toBe(30);
    expect(sampleValue(m, "infernet_delegated_subscriptions_tracked")).toBe(2);
    expect(sampleValue(m, "infernet_deliveries_total", { outcome: "reverted" })).toBe(1);
    expect(sampleValue(m, "infernet_deliveries_total", { outcome: "replaced" })).toBe(1);
    expect(sampleValue(m, "infernet_pending_transactions")).toBe(1);
    expect(sampleValue(m, "infernet_wallet_balance_wei")).toBe(1e18);
    expect(sampleValue(m, "infernet_stats_records_total", { outcome: "dropped" })).toBe(1);
  });

  test("behavior: RPC errors are counted per method, with no catch-all sample", async () => {
    const m = await render({
      chain: { ok: true, rpc: { byMethod: {}, failures: 2, failuresByMethod: { eth_call: 2 } } },
    });
    expect(sampleValue(m, "infernet_rpc_errors_total", { method: "eth_call" })).toBe(2);
    expect(sampleValue(m, "infernet_rpc_errors_total", { method: "all" })).toBeUndefined();
  });

  test("behavior: label values with quotes, backslashes and newlines are escaped", async () => {
    const odd = 'we"ird\\id\nx';
    const m = await render(
      {},
      { counters: { ...base.counters, containers: { [odd]: { success: 1, failed: 0 } } } },
    );
    expect(sampleValue(m, "infernet_container_jobs_total", { container: odd, status: "success" })).toBe(1);
  });
});

describe("node metrics", () => {
  const sources: MetricsSources = {
    version: "0.1.0",
    compatVersion: "1.4.0",
    health: () => ({ rest: { ok: true } }),
    pending: () => ({ offchain: 0, onchain: 0 }),
    counters: () => base.counters,
    containers: () => [],
  };

  test("default: observed requests, jobs, calls, rejections and store operations become histograms and counters", async () => {
    const metrics = createNodeMetrics(sources);
    metrics.http("/api/jobs", "POST", 200, 0.002);
    metrics.http("/api/jobs", "POST", 200, 0.004);
    metrics.http("other", "GET", 404, 0.0001);
    metrics.job("offchain", true, 0.05);
    metrics.containerCall("echo", false, 1.5);
    metrics.guardianRejection("offchain", "Container not supported");
    metrics.storeOp("set_running", true, 0.0003);
    const m = parseExposition(await metrics.render());
    expect(
      sampleValue(m, "infernet_http_requests_total", { route: "/api/jobs", method: "POST", status: "200" }),
    ).toBe(2);
    expect(histogramCount(m, "infernet_http_request_duration_seconds", { route: "/api/jobs" })).toEqual({
      count: 2,
      sum: 0.006,
    });
    expect(
      histogramCount(m, "infernet_job_duration_seconds", { kind: "offchain", status: "success" })?.count,
    ).toBe(1);
    expect(
      histogramCount(m, "infernet_container_call_duration_seconds", { container: "echo", status: "failed" }),
    ).toEqual({
      count: 1,
      sum: 1.5,
    });
    expect(sampleValue(m, "infernet_guardian_rejections_total", { reason: "Container not supported" })).toBe(
      1,
    );
    expect(histogramCount(m, "infernet_store_operation_duration_seconds", { op: "set_running" })?.count).toBe(
      1,
    );
    expect(sampleValue(m, "infernet_up", { part: "rest" })).toBe(1);
    expect(metrics.contentType).toStartWith("text/plain; version=0.0.4");
  });

  test("error: the exposition checker refuses malformed text", () => {
    expect(() => parseExposition('# TYPE a counter\na{b="c} 1\n')).toThrow("unterminated label value");
    expect(() => parseExposition('# TYPE a counter\na{b="\\x"} 1\n')).toThrow("bad escape");
    expect(() => parseExposition("# TYPE a counter\na one\n")).toThrow("bad value");
    expect(() => parseExposition("a 1\n")).toThrow("before its TYPE line");
    expect(() =>
      parseExposition('# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 1\n'),
    ).toThrow("not cumulative");
  });
});
