// deploy/grafana-dashboard.json is built on the metrics the node exports: every metric it queries must exist.
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { createNodeMetrics } from "../../../src/metrics/node-metrics.ts";
import { repoRoot } from "../../fixtures/binary.ts";
import { parseExposition } from "../../fixtures/prometheus.ts";
import { FULL_HEALTH } from "./fixtures.ts";

/** Every family, with each optional source present (chain, processor, stats) and each histogram observed. */
async function exportedNames(): Promise<Set<string>> {
  const metrics = createNodeMetrics({
    version: "0.1.0",
    compatVersion: "1.4.0",
    health: () => ({ rest: { ok: true }, ...FULL_HEALTH }),
    pending: () => ({ offchain: 0, onchain: 0 }),
    counters: () => ({
      jobs: { offchain: { success: 1, failed: 0 }, onchain: { success: 0, failed: 0 } },
      containers: { echo: { success: 1, failed: 0 } },
    }),
    containers: () => [
      { id: "echo", state: "ready", ready: true, since: "", restarts: 0, probe_failures: 0 },
    ],
  });
  metrics.http("/health", "GET", 200, 0.001);
  metrics.job("offchain", true, 1);
  metrics.containerCall("echo", true, 1);
  metrics.guardianRejection("offchain", "Container not supported");
  metrics.storeOp("get", true, 0.001);
  return new Set(parseExposition(await metrics.render()).keys());
}

describe("grafana dashboard", () => {
  test("default: every metric the dashboard queries is one the node exports", async () => {
    const dashboard = await Bun.file(join(repoRoot, "deploy/grafana-dashboard.json")).json();
    const exprs: string[] = JSON.stringify(dashboard).match(/infernet_[a-z_]+/g) ?? [];
    const queried = new Set(exprs.map((name) => name.replace(/_(bucket|sum|count)$/, "")));
    const exported = await exportedNames();
    expect([...queried].filter((name) => !exported.has(name))).toEqual([]);
    expect(queried.size).toBeGreaterThan(20);
  });
});
