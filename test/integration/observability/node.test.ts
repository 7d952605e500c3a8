// Observability through the release binary: the Metric Sender's records at a real Fluent Forward receiver,
// /health and /ready with remote containers up and down, /metrics read strictly, Redis going away and back.
// Containers here are remote services (manage_containers false) run by this test on loopback: no Docker.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildBinary } from "../../fixtures/binary.ts";
import { type FluentEntry, startFluentReceiver } from "../../fixtures/fluent.ts";
import { freePort, waitFor } from "../../fixtures/net.ts";
import { histogramCount, parseExposition, sampleValue } from "../../fixtures/prometheus.ts";
import { startPrivateRedis } from "../../fixtures/redis.ts";
import { finishedJob, type NodeProcess, postJson, runNodeBinary } from "../server/node-process.ts";

let binary: string;
beforeAll(async () => {
  binary = await buildBinary();
}, 120_000);

/** A container service on 127.0.0.1:port that echoes its input. */
function startService(port = 0) {
  return Bun.serve({
    hostname: "127.0.0.1",
    port,
    async fetch(req) {
      if (new URL(req.url).pathname !== "/service_output") return new Response("ok");
      const input = (await req.json()) as { data: unknown };
      return Response.json({ echo: input.data });
    },
  });
}
const services: Array<ReturnType<typeof startService>> = [];
afterAll(() => {
  for (const service of services) service.stop(true);
});

async function startNode(config: Record<string, unknown>): Promise<NodeProcess> {
  const dir = mkdtempSync(join(tmpdir(), "infernet-obs-"));
  const port = freePort();
  const full = {
    manage_containers: false,
    startup_wait: 0,
    shutdown_timeout: 10,
    server: { port, host: "127.0.0.1", rate_limit: { num_requests: 1_000_000, period: 1 } },
    log: { path: join(dir, "node.log") },
    store: { path: join(dir, "jobs.sqlite") },
    ...config,
  };
  const path = join(dir, "config.json");
  writeFileSync(path, JSON.stringify(full, null, 2));
  return runNodeBinary(binary, path, dir, `http://127.0.0.1:${port}`, { ready: "any" });
}

async function json(url: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(url);
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

async function scrape(url: string) {
  const res = await fetch(`${url}/metrics`);
  expect(res.status).toBe(200);
  return parseExposition(await res.text());
}

async function runJob(url: string, container: string, data: unknown): Promise<Record<string, unknown>> {
  const res = await postJson(`${url}/api/jobs`, { containers: [container], data });
  expect(res.status).toBe(200);
  const { id } = (await res.json()) as { id: string };
  return finishedJob(url, id);
}

describe("observability through the binary", () => {
  test("default: stats records, /health and /ready with a remote container down then up, /metrics moving", async () => {
    await using receiver = startFluentReceiver();
    const up = startService();
    services.push(up);
    const latePort = freePort();
    const node = await startNode({
      forward_stats: true,
      stats: { host: "127.0.0.1", port: receiver.port, live_interval: 0.2 },
      containers: [
        { id: "up", url: `http://127.0.0.1:${up.port}` },
        { id: "late", url: `http://127.0.0.1:${latePort}` },
      ],
    });
    try {
      // One of two containers down: still healthy (infernet_client's check), the container named.
      const health = await waitFor("late to be seen down", async () => {
        const reply = await json(`${node.url}/health`);
        return (reply.body.degraded as string[]).includes("containers.late") ? reply : undefined;
      });
      expect(health.status).toBe(200);
      expect(health.body.status).toBe("healthy");
      expect(health.body.degraded).toEqual(["containers.late"]);
      const notReady = await json(`${node.url}/ready`);
      expect(notReady.status).toBe(503);
      expect(notReady.body.reasons).toEqual([expect.stringMatching(/^container late: remote \(/)]);

      // A job moves the counters and histograms; the strict reader accepts the exposition.
      const before = await scrape(node.url);
      const secret = "secret-input-7f3a91";
      const job = await runJob(node.url, "up", { prompt: secret });
      expect(job.status).toBe("success");
      const after = await scrape(node.url);
      const moved = (name: string, labels: Record<string, string>) =>
        (sampleValue(after, name, labels) ?? 0) - (sampleValue(before, name, labels) ?? 0);
      expect(moved("infernet_jobs_total", { kind: "offchain", status: "success" })).toBe(1);
      expect(
        moved("infernet_http_requests_total", { route: "/api/jobs", method: "POST", status: "200" }),
      ).toBe(1);
      const calls = (m: typeof after) =>
        histogramCount(m, "infernet_container_call_duration_seconds", { container: "up" })?.count ?? 0;
      expect(calls(after) - calls(before)).toBe(1);
      expect(
        histogramCount(after, "infernet_store_operation_duration_seconds", { op: "set_done" })?.count,
      ).toBeGreaterThan(0);
      expect(sampleValue(after, "infernet_container_up", { container: "late" })).toBe(0);
      expect(
        sampleValue(after, "infernet_container_probe_failures_total", { container: "late" }),
      ).toBeGreaterThan(0);
      expect(sampleValue(after, "infernet_stats_records_total", { outcome: "sent" })).toBeGreaterThan(0);

      // The late service comes up: the node sees it and is ready within 2 s (probed every second while down).
      services.push(startService(latePort));
      const startedAt = performance.now();
      await waitFor("ready", async () => (await fetch(`${node.url}/ready`)).status === 200, 2_000);
      console.log(`late container ready after ${Math.round(performance.now() - startedAt)} ms`);
      expect((await json(`${node.url}/health`)).body.degraded).toEqual([]);

      await waitFor("a live record", () => receiver.entries.some((e) => e.tag === "stats.live"));
    } finally {
      expect(await node.stop()).toBe(0);
    }

    const nodes = () => receiver.entries.filter((e: FluentEntry) => e.tag === "stats.node");
    await waitFor("the final node record", () => nodes().length >= 2);
    expect(receiver.errors).toEqual([]);
    const boot = nodes()[0]?.record ?? {};
    const last = nodes().at(-1)?.record ?? {};
    expect(boot).toMatchObject({ version: "1.4.0", address: null, chain_id: null });
    expect((boot.containers as Array<{ id: string }>).map((c) => c.id)).toEqual(["up", "late"]);
    expect(last.counters).toMatchObject({
      jobs: { offchain: { success: 1, failed: 0 } },
      containers: { up: { success: 1, failed: 0 } },
    });
    const live = receiver.entries.find((e) => e.tag === "stats.live")?.record;
    expect(live).toMatchObject({ uid: boot.uid, jobs_pending: { offchain: 0, onchain: 0 } });
    // No job input or output, and no client address, in any byte the receiver got.
    const bytes = new TextDecoder().decode(receiver.bytes());
    expect(bytes).not.toContain("secret-input");
    expect(bytes).not.toContain("127.0.0.1");
    console.log(
      `stats: ${receiver.entries.length} records, ${receiver.bytes().length} bytes; node record ${JSON.stringify(boot).length} JSON chars`,
    );
  });

  test("behavior: forward_stats false opens no connection, from start to shutdown", async () => {
    await using receiver = startFluentReceiver();
    const service = startService();
    services.push(service);
    const node = await startNode({
      forward_stats: false,
      stats: { host: "127.0.0.1", port: receiver.port, live_interval: 0.1 },
      containers: [{ id: "svc", url: `http://127.0.0.1:${service.port}` }],
    });
    expect((await runJob(node.url, "svc", { n: 1 })).status).toBe("success");
    expect(await node.stop()).toBe(0);
    expect(receiver.connections()).toBe(0);
    expect(receiver.bytes().length).toBe(0);
  });

  test("behavior: a dead receiver delays no job, the queue stays bounded, and shutdown is clean", async () => {
    const service = startService();
    services.push(service);
    const node = await startNode({
      forward_stats: true,
      stats: { host: "127.0.0.1", port: freePort(), live_interval: 0.1, max_queue: 2 },
      containers: [{ id: "svc", url: `http://127.0.0.1:${service.port}` }],
    });
    try {
      const latencies: number[] = [];
      for (let n = 0; n < 5; n++) {
        const startedAt = performance.now();
        expect((await runJob(node.url, "svc", { n })).status).toBe("success");
        latencies.push(Math.round(performance.now() - startedAt));
      }
      console.log(`job latency (submit to result) with a dead receiver, ms: ${latencies.join(", ")}`);
      const stats = await waitFor("records dropped", async () => {
        const check = (
          (await json(`${node.url}/health`)).body.checks as Record<string, Record<string, unknown>>
        ).stats;
        const dropped = (check?.records as { dropped?: number } | undefined)?.dropped ?? 0;
        return dropped > 0 ? check : undefined;
      });
      expect(stats?.ok).toBe(false);
      expect(stats?.queued as number).toBeLessThanOrEqual(2);
      const health = await json(`${node.url}/health`);
      expect(health.status).toBe(200);
      expect(health.body.degraded).toEqual(["stats"]);
      // Telemetry never makes the node unready.
      expect((await fetch(`${node.url}/ready`)).status).toBe(200);
    } finally {
      expect(await node.stop()).toBe(0);
    }
  });

  test("behavior: /health goes 503 while Redis is stopped and back to 200 when it returns", async () => {
    await using redis = await startPrivateRedis();
    const service = startService();
    services.push(service);
    const node = await startNode({
      forward_stats: false,
      redis: { host: redis.host, port: redis.port },
      containers: [{ id: "svc", url: `http://127.0.0.1:${service.port}` }],
    });
    try {
      expect((await fetch(`${node.url}/health`)).status).toBe(200);
      await redis.stop();
      const down = await waitFor("503", async () => {
        const reply = await json(`${node.url}/health`);
        return reply.status === 503 ? reply : undefined;
      });
      expect(down.body).toMatchObject({
        status: "unhealthy",
        error: "Node unhealthy",
        params: { failing: ["store"] },
      });
      await redis.start();
      await waitFor("200 again", async () => (await fetch(`${node.url}/health`)).status === 200, 30_000);
      expect((await runJob(node.url, "svc", { n: 1 })).status).toBe("success");
    } finally {
      expect(await node.stop()).toBe(0);
    }
  });
});
