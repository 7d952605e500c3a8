// PUT /api/status: a container (or anything local) records a job status, as infernet_client.record_status
// does. Accepted only from server.status_allowed_ips — by default loopback and Docker's default bridge, where
// managed containers live — not from a whole LAN range as in the reference. Not rate limited.
import { Hono } from "hono";
import { describeError } from "../../lib/errors.ts";
import { createIpMatcher } from "../../lib/ip.ts";
import { parseStatusUpdate } from "../../shared/messages.ts";
import { readJsonBody } from "../body.ts";
import type { AppDeps, AppEnv } from "../context.ts";
import { sendError, sendJson } from "../json-response.ts";

/** Default for server.status_allowed_ips: loopback (IPv4 and IPv6) and Docker's default bridge network. */
export const DEFAULT_STATUS_ALLOWED_IPS = ["127.0.0.0/8", "::1/128", "172.17.0.0/16"] as const;

export function createStatusRoutes(deps: AppDeps): Hono<AppEnv> {
  const { config, store, log, orchestrator } = deps;
  const allowed = createIpMatcher(config.server.status_allowed_ips ?? DEFAULT_STATUS_ALLOWED_IPS);
  const app = new Hono<AppEnv>();

  app.put("/api/status", async (c) => {
    const client = c.get("client");
    if (!allowed(client)) {
      log.warn("Unauthorized attempt to store job status", { ip: client });
      return sendError(c, 403, "Unauthorized");
    }
    const body = await readJsonBody(c, { requireJsonType: false, maxBytes: config.server.max_body_bytes });
    if (!body.ok) return sendError(c, body.status, body.error, body.params);
    const parsed = parseStatusUpdate(body.value);
    if (!parsed.ok) {
      const { field, reason } = parsed.problem;
      if (field === "status") {
        const status = (body.value as Record<string, unknown>).status;
        return sendError(c, 400, "Status is invalid", { status: status ?? null });
      }
      return sendError(c, 400, "Could not store job status", { field, reason });
    }
    const { id, status, containers } = parsed.update;
    // As in the reference, `data` is not stored: the job is recorded with empty results.
    const job = { id, status, intermediate_results: [], result: null };
    deps.runner.forget(client, id);
    try {
      if (status === "running") await store.setRunning(client, job, { containers });
      else {
        await store.setDone(client, job);
        orchestrator.recordOffchain(status, containers);
      }
    } catch (err) {
      log.error("could not store job status", { id, error: describeError(err) });
      return sendError(c, 503, "Could not store job status", { reason: describeError(err) });
    }
    return sendJson(c, null);
  });

  return app;
}
