// The Metric Sender as a Service: records at boot, on its intervals and at shutdown, against a real receiver.
import { describe, expect, test } from "bun:test";
import type { Config } from "../../../src/config/schema.ts";
import { createLog } from "../../../src/lib/log.ts";
import type { JobCounters } from "../../../src/orchestration/orchestrator.ts";
import { createStatsService, LIVE_TAG, NODE_TAG, type StatsServiceDeps } from "../../../src/stats/service.ts";
import { startFluentReceiver } from "../../fixtures/fluent.ts";
import { waitFor } from "../../fixtures/net.ts";
import { makeConfig } from "../server/fixtures.ts";

function counters(success: number): JobCounters {
  return {
    jobs: { offchain: { success, failed: 1 }, onchain: { success: 0, failed: 0 } },
    containers: { echo: { success, failed: 1 } },
  };
}

/** The service with this config; chain id, counters and pending counts as given (defaults: none, zero). */
function statsService(config: Config, overrides: Partial<StatsServiceDeps> = {}) {
  return createStatsService({
    config,
    log: createLog("stats"),
    version: "0.1.0",
    compatVersion: "1.4.0",
    address: null,
    chainId: () => null,
    counters: () => counters(0),
    pending: () => ({ offchain: 0, onchain: 0 }),
    ...overrides,
  });
}

describe("stats service", () => {
  test("default: a node record at boot, live records on live_interval, a final node record with the counts since", async () => {
    await using receiver = startFluentReceiver();
    const config = makeConfig({
      forward_stats: true,
      stats: { host: "127.0.0.1", port: receiver.port, live_interval: 0.1, node_interval: 3600 },
      containers: [
        { id: "echo", allowed_ips: ["10.1.2.3/32"], allowed_addresses: ["0xabc"], generates_proofs: true },
      ],
      server: { port: 4321 },
    });
    let totals = counters(2);
    const service = statsService(config, {
      chainId: () => 31337,
      counters: () => totals,
      pending: () => ({ offchain: 3, onchain: 1 }),
    });
    const controller = new AbortController();
    const running = service.run?.(controller.signal);
    await waitFor("a live record", () => receiver.entries.some((e) => e.tag === LIVE_TAG));
    totals = counters(7);
    controller.abort();
    await running;
    await service.close?.();

    const nodeRecords = () => receiver.entries.filter((e) => e.tag === NODE_TAG).map((e) => e.record);
    await waitFor("the final node record", () => nodeRecords().length === 2);
    expect(receiver.errors).toEqual([]);
    const nodes = nodeRecords();
    const boot = nodes[0] as Record<string, unknown>;
    expect(boot.uid).toMatch(/^[0-9a-f]{32,64}$/);
    expect(boot).toMatchObject({
      version: "1.4.0",
      node_version: "0.1.0",
      address: null,
      chain_id: 31337,
      port: 4321,
      containers: [
        {
          id: "echo",
          external: true,
          generates_proofs: true,
          allowed_addresses: ["0xabc"],
          allowed_delegate_addresses: [],
          allowed_ips_count: 1,
        },
      ],
      // Counted since the service started: nothing yet at boot.
      counters: {
        jobs: { offchain: { success: 0, failed: 0 } },
        containers: { echo: { success: 0, failed: 0 } },
      },
    });
    const resources = boot.resources as { cpu: { cores: number }; memory: { total_bytes: number } };
    expect(resources.cpu.cores).toBeGreaterThan(0);
    expect(resources.memory.total_bytes).toBeGreaterThan(0);
    // The final record carries what finished since the boot record.
    expect((nodes[1] as { counters: JobCounters }).counters.jobs.offchain).toEqual({ success: 5, failed: 0 });
    const live = receiver.entries.find((e) => e.tag === LIVE_TAG)?.record as Record<string, unknown>;
    expect(live.uid).toBe(boot.uid);
    expect(live.jobs_pending).toEqual({ offchain: 3, onchain: 1 });
    const utilization = live.utilization as Record<string, unknown>;
    expect(Object.keys(utilization).sort()).toEqual(["cpu", "disk", "gpu", "load", "memory"]);
    expect(typeof utilization.memory).toBe("number");
    // The configured allowed_ips never leave the node: only their number does.
    expect(new TextDecoder().decode(receiver.bytes())).not.toContain("10.1.2.3");
    expect(service.health?.()).toMatchObject({
      ok: true,
      records: { sent: receiver.entries.length, dropped: 0 },
    });
  });

  test("error: a dead receiver is reported in health, and close returns within its bound", async () => {
    const config = makeConfig({
      forward_stats: true,
      stats: { host: "127.0.0.1", port: 1, live_interval: 0.1 },
    });
    const service = statsService(config);
    const controller = new AbortController();
    const running = service.run?.(controller.signal);
    await waitFor("the failure in health", () => service.health?.().ok === false);
    expect(service.health?.().detail).toStartWith("cannot send to 127.0.0.1:1: ");
    controller.abort();
    await running;
    await service.close?.();
    expect(service.health?.()).toMatchObject({ queued: 0, records: { sent: 0 } });
  });
});
