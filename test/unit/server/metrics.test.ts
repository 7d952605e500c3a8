import { describe, expect, test } from "bun:test";
import { renderMetrics } from "../../../src/server/metrics.ts";

const base = {
  version: "0.1.0",
  compatVersion: "1.4.0",
  pending: { offchain: 2, onchain: 0 },
  counters: {
    jobs: { offchain: { success: 5, failed: 1 }, onchain: { success: 0, failed: 0 } },
    containers: { echo: { success: 5, failed: 1 } },
  },
  containers: [{ id: "echo", state: "ready" as const, ready: true, since: "2026-01-01T00:00:00.000Z" }],
  uptimeSeconds: 12.4,
  residentBytes: 1024,
};

describe("renderMetrics", () => {
  test("default: node state in the Prometheus text format", () => {
    const text = renderMetrics({ ...base, health: { store: { ok: true }, containers: { ok: false } } });
    expect(text).toBe(
      [
        "# HELP infernet_build_info Build information.",
        "# TYPE infernet_build_info gauge",
        'infernet_build_info{version="0.1.0",compat_version="1.4.0"} 1',
        "# HELP infernet_up Whether each part of the node reports itself healthy (1) or not (0), as in /health.",
        "# TYPE infernet_up gauge",
        'infernet_up{part="store"} 1',
        'infernet_up{part="containers"} 0',
        "# HELP infernet_jobs_pending Jobs currently running, by kind.",
        "# TYPE infernet_jobs_pending gauge",
        'infernet_jobs_pending{kind="offchain"} 2',
        'infernet_jobs_pending{kind="onchain"} 0',
        "# HELP infernet_jobs_total Finished jobs, by kind and outcome.",
        "# TYPE infernet_jobs_total counter",
        'infernet_jobs_total{kind="offchain",status="success"} 5',
        'infernet_jobs_total{kind="offchain",status="failed"} 1',
        'infernet_jobs_total{kind="onchain",status="success"} 0',
        'infernet_jobs_total{kind="onchain",status="failed"} 0',
        "# HELP infernet_container_jobs_total Container calls, by container and outcome.",
        "# TYPE infernet_container_jobs_total counter",
        'infernet_container_jobs_total{container="echo",status="success"} 5',
        'infernet_container_jobs_total{container="echo",status="failed"} 1',
        "# HELP infernet_container_ready Whether each configured container can take jobs (1) or not (0).",
        "# TYPE infernet_container_ready gauge",
        'infernet_container_ready{container="echo",state="ready"} 1',
        "# HELP infernet_process_uptime_seconds Seconds since the node started.",
        "# TYPE infernet_process_uptime_seconds gauge",
        "infernet_process_uptime_seconds 12",
        "# HELP infernet_process_resident_memory_bytes Resident memory of the node process.",
        "# TYPE infernet_process_resident_memory_bytes gauge",
        "infernet_process_resident_memory_bytes 1024",
        "",
      ].join("\n"),
    );
  });

  test("behavior: chain sync progress, RPC counters and tracked subscriptions come from the chain's health", () => {
    const text = renderMetrics({
      ...base,
      health: {
        chain: {
          ok: true,
          rpc: { byMethod: { eth_call: 7, eth_blockNumber: 3 }, failures: 1, exhausted: 0, failovers: 0 },
          sync: {
            head_block: 120,
            last_synced_block: 119,
            head_sub_id: 40,
            last_sub_id: 40,
            relayed: 30,
            ignored: 10,
          },
        },
        processor: { ok: true, tracked: 30, delegated: 2 },
      },
    });
    expect(text).toContain('infernet_rpc_requests_total{method="eth_call"} 7\n');
    expect(text).toContain('infernet_rpc_requests_total{method="eth_blockNumber"} 3\n');
    expect(text).toContain("infernet_rpc_failures_total 1\n");
    expect(text).toContain("infernet_chain_head_block 120\n");
    expect(text).toContain("infernet_chain_synced_block 119\n");
    expect(text).toContain("infernet_chain_synced_subscription_id 40\n");
    expect(text).toContain("infernet_subscriptions_relayed_total 30\n");
    expect(text).toContain("infernet_subscriptions_ignored_total 10\n");
    expect(text).toContain("infernet_subscriptions_tracked 30\n");
    expect(text).toContain("infernet_delegated_subscriptions_tracked 2\n");
  });

  test("behavior: label values are escaped", () => {
    const text = renderMetrics({
      ...base,
      health: {},
      counters: { ...base.counters, containers: { 'we"ird\\id': { success: 1, failed: 0 } } },
    });
    expect(text).toContain('infernet_container_jobs_total{container="we\\"ird\\\\id",status="success"} 1\n');
  });
});
