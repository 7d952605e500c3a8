// REST server service: binds server.host:server.port with Bun.serve and serves the Hono app.
import { Hono } from "hono";
import type { Config } from "../config/schema.ts";
import type { Logger } from "../lib/log.ts";
import type { Service, ServiceHealth } from "../lib/service.ts";

export interface RestServerDeps {
  config: Config;
  log: Logger;
  health: () => Record<string, ServiceHealth>;
}

export function createRestServer(deps: RestServerDeps): Service {
  const { config, log } = deps;
  const app = new Hono();
  app.get("/health", (c) => {
    const checks = deps.health();
    const ok = Object.values(checks).every((check) => check.ok);
    return c.json({ status: ok ? "healthy" : "unhealthy", checks }, ok ? 200 : 503);
  });
  let server: ReturnType<typeof Bun.serve> | undefined;
  return {
    name: "rest",
    async setup() {
      server = Bun.serve({
        hostname: config.server.host,
        port: config.server.port,
        idleTimeout: 255,
        fetch: (req, srv) => app.fetch(req, { server: srv }),
      });
      log.info("REST server listening", { host: config.server.host, port: server.port });
    },
    async run(signal) {
      await new Promise<void>((resolve) => signal.addEventListener("abort", () => resolve(), { once: true }));
      await server?.stop(false);
    },
    async close() {
      server?.stop(true);
    },
    health: () => ({ ok: server !== undefined }),
  };
}
