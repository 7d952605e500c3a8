// REST server service: builds the app from the node's parts and serves it with Bun.serve on
// server.host:server.port. On shutdown it stops accepting connections, lets requests and jobs in flight finish
// within the shutdown deadline, and cancels (records as failed) whatever is still running after that.
import type { Config } from "../config/schema.ts";
import { buildRuleTable } from "../guardian/rules.ts";
import type { Logger } from "../lib/log.ts";
import type { Service, ServiceHealth } from "../lib/service.ts";
import type { Orchestrator } from "../orchestration/orchestrator.ts";
import type { ContainerDirectory } from "../shared/containers.ts";
import type { ContainerSetLookup, DelegatedSubscriptionSink } from "../shared/delegated.ts";
import type { JobStore } from "../shared/jobs.ts";
import type { HttpObserver } from "../shared/observe.ts";
import { createServerApp } from "./app.ts";
import type { ChainInfo, DashboardDeps, MetricsEndpoint } from "./context.ts";
import { createJobRunner } from "./job-runner.ts";

export interface RestServerDeps {
  config: Config;
  log: Logger;
  store: JobStore;
  directory: ContainerDirectory;
  orchestrator: Orchestrator;
  chain: ChainInfo;
  /** Set by the chain side when chain.enabled; otherwise delegated requests get 405 "Chain not enabled". */
  delegated?: { sink: DelegatedSubscriptionSink; lookup: ContainerSetLookup } | undefined;
  health: () => Record<string, ServiceHealth>;
  /** Serves GET /dashboard when set. */
  dashboard?: DashboardDeps;
  /**
   * How long in-flight jobs may run on after SIGTERM before they are cancelled and recorded failed. The node
   * passes what is left of shutdown_timeout once the later shutdown steps (stopping containers, closing the
   * store) have their share, so the whole shutdown ends inside the deadline.
   */
  drainMs?: number;
  observe?: HttpObserver;
  metrics?: MetricsEndpoint;
}

/** Time kept back from the shutdown deadline to record cancelled jobs and close the store. */
const SHUTDOWN_MARGIN_MS = 3_000;

export function createRestServer(deps: RestServerDeps): Service & { port(): number | undefined } {
  const { config, log } = deps;
  const runner = createJobRunner({
    store: deps.store,
    orchestrator: deps.orchestrator,
    stream: { directory: deps.directory, streamTimeoutMs: config.stream_timeout * 1000 },
    log,
  });
  const { app, routes } = createServerApp({ ...deps, runner, rules: buildRuleTable(config.containers) });
  let server: ReturnType<typeof Bun.serve> | undefined;
  // Set at SIGTERM: the port closes and jobs drain; /health says 503 to whoever still asks.
  let stopping = false;

  return {
    name: "rest",
    async setup() {
      server = Bun.serve({
        hostname: config.server.host,
        port: config.server.port,
        // Long container calls and streams must not be cut by Bun's 10 s default idle timeout.
        idleTimeout: 255,
        // Production mode whatever NODE_ENV says: no development error pages or extra checks per request.
        development: false,
        // Our own reader (body.ts) enforces max_body_bytes with a JSON 400, whatever the size: Bun streams request
        // bodies and nothing else reads them, so Bun's own cap (an empty 413) is lifted rather than answering first.
        maxRequestBodySize: Number.MAX_SAFE_INTEGER,
        // POST and GET /api/jobs natively (see createServerApp); every other path and method through hono.
        routes,
        fetch: (req, srv) => app.fetch(req, { server: srv }),
        // Last resort (hono's onError handles route errors): still a JSON error body, never Bun's HTML page.
        error(error) {
          log.error("request failed outside the app", { error });
          return new Response('{"error":"Internal server error","params":{}}\n', {
            status: 500,
            headers: { "Content-Type": "application/json" },
          });
        },
      });
      log.info("REST server listening", { host: config.server.host, port: server.port });
    },
    async run(signal) {
      if (!signal.aborted) {
        await new Promise<void>((resolve) =>
          signal.addEventListener("abort", () => resolve(), { once: true }),
        );
      }
      // Stop accepting; requests already in flight (streams included) carry on.
      stopping = true;
      void server?.stop(false);
      const graceMs = Math.max(1_000, deps.drainMs ?? config.shutdown_timeout * 1000 - SHUTDOWN_MARGIN_MS);
      await runner.drain(graceMs);
      // Every job has been recorded; idle keep-alive connections would otherwise hold stop() for minutes.
      await server?.stop(true);
    },
    async close() {
      await server?.stop(true);
      server = undefined;
    },
    health: () => {
      if (!server) return { ok: false, detail: "not listening" };
      if (stopping) return { ok: false, detail: "shutting down", jobs_in_flight: runner.inFlight() };
      return { ok: true, jobs_in_flight: runner.inFlight() };
    },
    port: () => server?.port,
  };
}
