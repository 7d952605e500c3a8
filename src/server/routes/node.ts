// GET /health, GET /ready, GET /info, GET /metrics, GET /resources: what the node is and whether it works.
import { Hono } from "hono";
import { describeError } from "../../lib/errors.ts";
import { createIpMatcher } from "../../lib/ip.ts";
import { parseJsonFast } from "../../lib/json.ts";
import type { ContainerState } from "../../shared/containers.ts";
import { COMPAT_VERSION } from "../../version.ts";
import type { AppDeps, AppEnv, LimitFor } from "../context.ts";
import { healthVerdict, readinessProblems } from "../health.ts";
import { sendError, sendJson } from "../json-response.ts";

/** Docker states that count as "running" for /info in managed mode (the reference listed status=running). */
const LISTED_STATES: ReadonlySet<ContainerState> = new Set(["ready", "starting", "unhealthy", "remote"]);
const RESOURCES_TIMEOUT_MS = 5_000;
/** Default for server.metrics_allowed_ips: loopback only. */
export const DEFAULT_METRICS_ALLOWED_IPS = ["127.0.0.0/8", "::1/128"] as const;

export function createNodeRoutes(deps: AppDeps, limit: LimitFor): Hono<AppEnv> {
  const { config, directory, log } = deps;
  const app = new Hono<AppEnv>();
  const doFetch = deps.fetch ?? fetch;
  const infoContainers = config.containers.map((container) => ({
    description: container.description,
    external: container.external,
    id: container.id,
    image: container.image,
  }));

  // 200 "healthy" while the node can take work, with the parts that are down named in `degraded`; 503 only
  // when it can take none (see health.ts). infernet_client's health() checks status == "healthy" after
  // raise_for_status(), so a node that serves is never called dead for one failing part.
  app.get("/health", limit("health"), (c) => {
    const checks = deps.health();
    const { healthy, failing, degraded } = healthVerdict(checks, directory.statuses());
    if (healthy) return sendJson(c, { status: "healthy", checks, degraded });
    return sendJson(
      c,
      { status: "unhealthy", checks, degraded, error: "Node unhealthy", params: { failing } },
      503,
    );
  });

  // Strict readiness: every container, the chain sync at the head, the RPC answering. Not rate limited:
  // orchestrators poll it, and it is answered from memory.
  app.get("/ready", (c) => {
    const reasons = readinessProblems(deps.health(), directory.statuses(), config.chain.enabled, Date.now());
    if (reasons.length === 0) return sendJson(c, { status: "ready", reasons });
    return sendJson(c, { status: "not ready", reasons, error: "Node not ready", params: { reasons } }, 503);
  });

  // Answered from memory: never waits on Docker, Redis or the chain.
  app.get("/info", limit("info"), (c) => {
    let containers = infoContainers;
    if (config.manage_containers) {
      const listed = new Set<string>();
      for (const status of directory.statuses()) if (LISTED_STATES.has(status.state)) listed.add(status.id);
      containers = infoContainers.filter((container) => listed.has(container.id));
    }
    return sendJson(c, {
      chain: { address: deps.chain.enabled ? deps.chain.address() : "", enabled: deps.chain.enabled },
      containers,
      pending: { offchain: deps.store.pendingCount(), onchain: deps.orchestrator.pendingOnchain() },
      version: COMPAT_VERSION,
    });
  });

  // Fans out to every container's /service-resources (through its real endpoint, url and bearer included —
  // the reference ignored them) and returns {id: reply} for those that answered JSON.
  app.get("/resources", limit("resources"), async (c) => {
    const modelId = c.req.query("model_id");
    const query = modelId ? `?model_id=${encodeURIComponent(modelId)}` : "";
    const entries = await Promise.all(
      config.containers.map(async ({ id }): Promise<[string, unknown] | undefined> => {
        const endpoint = directory.endpoint(id);
        if (!endpoint) return undefined;
        const url = `${endpoint.baseUrl}/service-resources${query}`;
        try {
          const response = await doFetch(url, {
            headers: endpoint.headers,
            signal: AbortSignal.timeout(RESOURCES_TIMEOUT_MS),
          });
          if (!response.ok) throw new Error(`HTTP ${response.status}`);
          return [id, parseJsonFast(await response.text())];
        } catch (error) {
          log.warn(`Error fetching data from ${url}: ${describeError(error)}`);
          return undefined;
        }
      }),
    );
    const out: Record<string, unknown> = {};
    for (const entry of entries) if (entry) out[entry[0]] = entry[1];
    return sendJson(c, out);
  });

  // Prometheus text format, from the same in-memory sources as /health and /info. Not rate limited (like
  // PUT /api/status): scrapers poll it on a schedule. It carries no job data or secrets, but does show what
  // the node runs and how busy it is, so only server.metrics_allowed_ips (loopback by default) may read it.
  const metricsAllowed = createIpMatcher(config.server.metrics_allowed_ips ?? DEFAULT_METRICS_ALLOWED_IPS);
  app.get("/metrics", async (c) => {
    const metrics = deps.metrics;
    if (!metrics) return sendError(c, 404, "Not found", { path: "/metrics" });
    if (!metricsAllowed(c.get("client"))) {
      return sendError(c, 403, "Unauthorized", { setting: "server.metrics_allowed_ips" });
    }
    return c.body(await metrics.render(), 200, { "Content-Type": metrics.contentType });
  });

  return app;
}
