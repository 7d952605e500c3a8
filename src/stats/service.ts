// The Metric Sender (the reference's StatSender), a Service named "stats": a node record at boot, every
// stats.node_interval and at shutdown; a live record every stats.live_interval; both over the Fluent Forward
// protocol to stats.host:stats.port (tags stats.node and stats.live). The node builds it only when
// forward_stats is true, so with it off nothing is sent and no connection is ever opened.
//
// It never holds anything else up: set-up does no I/O beyond reading a few local files, records are queued
// and sent in the background, and shutdown waits at most SHUTDOWN_FLUSH_MS for the last record to go out.
import type { Config } from "../config/schema.ts";
import type { Logger } from "../lib/log.ts";
import type { Service, ServiceHealth } from "../lib/service.ts";
import { sleep } from "../lib/time.ts";
import type { JobCounters } from "../orchestration/orchestrator.ts";
import { createForwardClient, type ForwardClient } from "./forward.ts";
import { createUtilizationSampler, hardwareProfile, machineUid, systemUptimeSeconds } from "./hardware.ts";
import { countersSince, liveRecord, nodeRecord } from "./records.ts";

export const NODE_TAG = "stats.node";
export const LIVE_TAG = "stats.live";
/** How long shutdown waits for the final node record (and anything queued) to be written. */
export const SHUTDOWN_FLUSH_MS = 2_000;

export interface StatsServiceDeps {
  config: Pick<Config, "stats" | "containers" | "server">;
  log: Logger;
  version: string;
  compatVersion: string;
  /** The node's wallet address ("" or null with the chain off). */
  address: string | null;
  /** The chain id once the chain is connected, else null. */
  chainId(): number | null;
  /** Running job totals (the orchestrator's). */
  counters(): JobCounters;
  pending(): { offchain: number; onchain: number };
  /** Where the disk figures are read (the store's directory); default the working directory. */
  diskPath?: string;
  client?: ForwardClient;
}

export function createStatsService(deps: StatsServiceDeps): Service {
  const { config, log } = deps;
  const { host, port } = config.stats;
  const client = deps.client ?? createForwardClient({ host, port, maxQueue: config.stats.max_queue, log });
  const diskPath = deps.diskPath ?? ".";
  const uid = machineUid(config.server.port);
  const sample = createUtilizationSampler(diskPath);
  const startedAt = performance.now();
  let lastCounters = deps.counters();

  function sendNode(): void {
    const now = deps.counters();
    client.emit(
      NODE_TAG,
      nodeRecord({
        uid,
        version: deps.version,
        compatVersion: deps.compatVersion,
        address: deps.address || null,
        chainId: deps.chainId(),
        port: config.server.port,
        containers: config.containers,
        counters: countersSince(now, lastCounters),
        resources: hardwareProfile(diskPath),
        uptimeSeconds: systemUptimeSeconds(),
        nodeUptimeSeconds: Math.round((performance.now() - startedAt) / 1000),
      }),
    );
    lastCounters = now;
  }

  return {
    name: "stats",
    async run(signal) {
      log.info("Forwarding stats", { receiver: `${host}:${port}`, uid });
      sendNode();
      sample(); // primes the CPU reading, so the first live record covers one live_interval
      const liveMs = config.stats.live_interval * 1000;
      const nodeMs = config.stats.node_interval * 1000;
      let nextLive = performance.now() + liveMs;
      let nextNode = performance.now() + nodeMs;
      while (!signal.aborted) {
        await sleep(Math.min(nextLive, nextNode) - performance.now(), signal);
        if (signal.aborted) break;
        const now = performance.now();
        if (now >= nextLive) {
          client.emit(LIVE_TAG, liveRecord({ uid, pending: deps.pending(), utilization: sample() }));
          nextLive = now + liveMs;
        }
        if (now >= nextNode) {
          sendNode();
          nextNode = now + nodeMs;
        }
      }
    },
    async close() {
      // The last counts since the previous record; bounded, so a dead receiver cannot hold shutdown.
      sendNode();
      const flushed = await client.flush(SHUTDOWN_FLUSH_MS);
      client.close();
      if (!flushed)
        log.warn("Stats not sent before shutdown", { receiver: `${host}:${port}`, ...client.stats() });
    },
    health(): ServiceHealth {
      const stats = client.stats();
      const common = {
        receiver: `${host}:${port}`,
        records: { sent: stats.sent, dropped: stats.dropped },
        queued: stats.queued,
        connected: stats.connected,
      };
      if (stats.lastError) {
        return { ok: false, detail: `cannot send to ${host}:${port}: ${stats.lastError}`, ...common };
      }
      return { ok: true, ...common };
    },
  };
}
