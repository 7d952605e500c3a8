// GET /health, GET /info, GET /metrics, GET /resources: what the node is and whether it works.
import { Hono } from "hono";
import { describeError } from "../../lib/errors.ts";
import { parseJsonFast } from "../../lib/json.ts";
import type { ContainerState } from "../../shared/containers.ts";
import { COMPAT_VERSION, NODE_VERSION } from "../../version.ts";
import type { AppDeps, AppEnv, LimitFor } from "../context.ts";
import { sendJson } from "../json-response.ts";
import { renderMetrics } from "../metrics.ts";

/** Docker states that count as "running" for /info in managed mode (the reference listed status=running). */
const LISTED_STATES: ReadonlySet<ContainerState> = new Set(["ready", "starting", "unhealthy", "remote"]);
const RESOURCES_TIMEOUT_MS = 5_000;

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

  // Healthy only when every part is: the store, the containers, the chain (when enabled) and this server.
  // infernet_client's health() checks status == "healthy" after raise_for_status().
  app.get("/health", limit("health"), (c) => {
    const checks = deps.health();
    const failing = Object.entries(checks)
      .filter(([, check]) => !check.ok)
      .map(([name]) => name);
    if (failing.length === 0) return sendJson(c, { status: "healthy", checks });
    return sendJson(c, { status: "unhealthy", checks, error: "Node unhealthy", params: { failing } }, 503);
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
  // PUT /api/status): scrapers poll it on a schedule, and it carries no job data, addresses or secrets.
  app.get("/metrics", (c) => {
    const text = renderMetrics({
      version: NODE_VERSION,
      compatVersion: COMPAT_VERSION,
      health: deps.health(),
      pending: { offchain: deps.store.pendingCount(), onchain: deps.orchestrator.pendingOnchain() },
      counters: deps.orchestrator.counters(),
      containers: directory.statuses(),
      uptimeSeconds: process.uptime(),
      residentBytes: process.memoryUsage.rss(),
    });
    return c.body(text, 200, { "Content-Type": "text/plain; version=0.0.4; charset=utf-8" });
  });

  return app;
}
