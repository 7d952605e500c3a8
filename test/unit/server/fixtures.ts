// Shared pieces for the REST and orchestrator tests: a typed config from raw JSON, a stand-in compute container
// on loopback (same controls as examples/containers/echo), a static ContainerDirectory, and an app built from
// real parts (embedded job store, orchestrator, job runner) with an injectable peer address.
import { mkdtempSync } from "node:fs";
import { join } from "node:path";
import * as v from "valibot";
import { type Config, ConfigSchema } from "../../../src/config/schema.ts";
import { buildRuleTable } from "../../../src/guardian/rules.ts";
import { createLog } from "../../../src/lib/log.ts";
import type { Service, ServiceHealth } from "../../../src/lib/service.ts";
import { createNodeMetrics, type NodeMetrics } from "../../../src/metrics/node-metrics.ts";
import { createOrchestrator, type Orchestrator } from "../../../src/orchestration/orchestrator.ts";
import { createApp } from "../../../src/server/app.ts";
import type { AppDeps } from "../../../src/server/context.ts";
import { createJobRunner, type JobRunner } from "../../../src/server/job-runner.ts";
import type { ContainerDirectory, ContainerStatus } from "../../../src/shared/containers.ts";
import type { JobStore } from "../../../src/shared/jobs.ts";
import { createJobStore } from "../../../src/store/create.ts";
import { waitFor } from "../../fixtures/net.ts";

export function makeConfig(raw: Record<string, unknown> = {}): Config {
  return v.parse(ConfigSchema, { manage_containers: false, forward_stats: false, ...raw });
}

export interface RecordedRequest {
  path: string;
  body: string;
  headers: Record<string, string>;
}

export interface StubContainer extends AsyncDisposable {
  url: string;
  requests: RecordedRequest[];
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * A compute container on 127.0.0.1 speaking the container protocol, steered by the job data like the example
 * echo image: {"sleep_ms"}, {"status"}, {"text"}, {"invalid_json"}, {"empty"}, {"chunks","chunk_delay_ms"},
 * {"fail_after_chunks"} (stream: reset the connection after the chunks).
 */
export function startStubContainer(name = "stub"): StubContainer {
  const requests: RecordedRequest[] = [];
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    idleTimeout: 255,
    async fetch(req) {
      const url = new URL(req.url);
      const body = await req.text();
      requests.push({ path: `${url.pathname}${url.search}`, body, headers: Object.fromEntries(req.headers) });
      if (url.pathname === "/service-resources") {
        const model = url.searchParams.get("model_id");
        return Response.json(model !== null ? { supported: model === "echo", model } : { service_id: name });
      }
      const input = JSON.parse(body) as { destination: number; data: Record<string, unknown> };
      const d = input.data ?? {};
      if (typeof d.sleep_ms === "number") await sleep(d.sleep_ms);
      if (typeof d.text === "string")
        return new Response(d.text, { headers: { "content-type": "text/plain" } });
      if (d.invalid_json)
        return new Response('{"broken": ', { headers: { "content-type": "application/json" } });
      if (d.empty) return new Response("", { headers: { "content-type": "application/json" } });
      if (typeof d.status === "number")
        return Response.json({ code: String(d.status) }, { status: d.status });
      if (input.destination === 2) {
        const chunks = (d.chunks as string[] | undefined) ?? ["echo"];
        const delay = Number(d.chunk_delay_ms ?? 0);
        const failAfter = Boolean(d.fail_after_chunks);
        return new Response(
          new ReadableStream({
            type: "direct",
            async pull(controller) {
              for (const chunk of chunks) {
                controller.write(chunk);
                await controller.flush();
                if (delay) await sleep(delay);
              }
              if (failAfter) return Promise.reject(undefined);
              controller.close();
            },
          }),
          { headers: { "content-type": "text/plain" } },
        );
      }
      return Response.json({ container: name, echo: input.data, step: (Number(d.step) || 0) + 1 });
    },
  });
  return {
    url: `http://127.0.0.1:${server.port}`,
    requests,
    async [Symbol.asyncDispose]() {
      await server.stop(true);
    },
  };
}

/** Every id reachable at `baseUrl`, all ready; `headers` for bearer tests. */
export function staticDirectory(
  endpoints: Record<string, string>,
  headers: Record<string, string> = {},
  states: Record<string, ContainerStatus["state"]> = {},
): ContainerDirectory {
  return {
    statuses: () =>
      Object.keys(endpoints).map((id) => ({
        id,
        state: states[id] ?? "ready",
        ready: (states[id] ?? "ready") === "ready",
        since: new Date(0).toISOString(),
      })),
    endpoint: (id) => {
      const baseUrl = endpoints[id];
      return baseUrl === undefined ? undefined : { baseUrl, headers };
    },
  };
}

export async function openTestStore(config: Config): Promise<JobStore & Service> {
  const dir = mkdtempSync(join(process.env.INFERNET_TEST_TMP ?? "/tmp", "rest-"));
  const store = createJobStore({
    config: { ...config, store: { ...config.store, path: join(dir, "jobs.sqlite") } },
    log: createLog("store"),
  });
  await store.setup?.(new AbortController().signal);
  return store;
}

export interface TestApp extends AsyncDisposable {
  app: ReturnType<typeof createApp>;
  store: JobStore & Service;
  orchestrator: Orchestrator;
  runner: JobRunner;
  /** The real metrics module, observing this app's requests, jobs and calls (as node.ts wires it). */
  metrics: NodeMetrics;
  /** Sends a request as `peer` (default 127.0.0.1). */
  request(path: string, init?: RequestInit & { peer?: string }): Promise<Response>;
}

export async function makeTestApp(
  config: Config,
  directory: ContainerDirectory,
  overrides: Partial<AppDeps> = {},
): Promise<TestApp> {
  const log = createLog("rest");
  const store = await openTestStore(config);
  const health = (): Record<string, ServiceHealth> => ({ store: store.health(), rest: { ok: true } });
  const metrics = createNodeMetrics({
    version: "test",
    compatVersion: "1.4.0",
    health: overrides.health ?? health,
    pending: () => ({ offchain: store.pendingCount(), onchain: orchestrator.pendingOnchain() }),
    counters: () => orchestrator.counters(),
    containers: () => directory.statuses(),
  });
  const orchestrator = createOrchestrator({
    directory,
    jobTimeoutMs: config.job_timeout * 1000,
    log,
    observe: metrics,
  });
  const runner = createJobRunner({
    store,
    orchestrator,
    stream: { directory, streamTimeoutMs: config.stream_timeout * 1000 },
    log,
  });
  const app = createApp({
    config,
    log,
    store,
    directory,
    orchestrator,
    runner,
    rules: buildRuleTable(config.containers),
    chain: { enabled: false, address: () => "" },
    health,
    peerAddress: (c) => c.req.header("x-test-peer") ?? "127.0.0.1",
    observe: metrics,
    metrics,
    ...overrides,
  });
  return {
    app,
    store,
    orchestrator,
    runner,
    metrics,
    request(path, init = {}) {
      const { peer, ...rest } = init;
      const headers = new Headers(rest.headers);
      headers.set("x-test-peer", peer ?? "127.0.0.1");
      return Promise.resolve(app.request(path, { ...rest, headers }));
    },
    async [Symbol.asyncDispose]() {
      await runner.drain(5_000);
      await store.close();
    },
  };
}

export const jsonInit = (method: string, body: unknown): RequestInit => ({
  method,
  headers: { "content-type": "application/json" },
  body: typeof body === "string" ? body : JSON.stringify(body),
});

/** GET /api/jobs?id=… until the job is no longer running; returns the job. */
export async function waitForJob(
  t: Pick<TestApp, "request">,
  id: string,
  query = "",
  peer?: string,
): Promise<Record<string, unknown>> {
  return waitFor(
    `job ${id} to finish`,
    async () => {
      const res = await t.request(`/api/jobs?id=${id}${query}`, peer ? { peer } : {});
      const list = (await res.json()) as Record<string, unknown>[];
      const job = list[0];
      return job && job.status !== "running" ? job : undefined;
    },
    10_000,
  );
}
