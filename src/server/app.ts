// The Hono application: client resolution, rate limiting, the routes by resource, JSON 404/405 and one
// onError. Built from interfaces only (`createApp(deps)`), so tests drive it with `app.request()`.
import { Hono } from "hono";
import { HTTPException } from "hono/http-exception";
import { describeError } from "../lib/errors.ts";
import { bunPeerAddress, createClientIpResolver } from "./client-ip.ts";
import type { AppDeps, AppEnv, LimitFor } from "./context.ts";
import { sendError } from "./json-response.ts";
import { createRateLimiter } from "./rate-limit.ts";
import { createJobRoutes } from "./routes/jobs.ts";
import { createNodeRoutes } from "./routes/node.ts";
import { createStatusRoutes } from "./routes/status.ts";

/** Methods served per path, for 405 + Allow and OPTIONS (HEAD comes with GET). */
const ROUTES: Record<string, readonly string[]> = {
  "/health": ["GET", "HEAD"],
  "/info": ["GET", "HEAD"],
  "/metrics": ["GET", "HEAD"],
  "/resources": ["GET", "HEAD"],
  "/api/jobs": ["GET", "HEAD", "POST"],
  "/api/jobs/batch": ["POST"],
  "/api/jobs/stream": ["POST"],
  "/api/status": ["PUT"],
};

export function createApp(deps: AppDeps): Hono<AppEnv> {
  const { config, log } = deps;
  const now = deps.now ?? Date.now;
  const resolveClient = createClientIpResolver(
    config.server.trusted_proxies,
    deps.peerAddress ?? bunPeerAddress,
  );
  const limiter = createRateLimiter({
    numRequests: config.server.rate_limit.num_requests,
    period: config.server.rate_limit.period,
    now,
  });

  const app = new Hono<AppEnv>();

  app.use(async (c, next) => {
    const client = resolveClient(c);
    if (client === undefined) return sendError(c, 400, "Could not get client IP address");
    c.set("client", client);
    await next();
  });

  /** Rate limit per (endpoint, client), as the reference's per-view buckets. */
  const limit: LimitFor = (endpoint) => async (c, next) => {
    const decision = limiter.check(endpoint, c.get("client"));
    c.set("replyHeaders", decision.headers);
    if (!decision.allowed) {
      return sendError(c, 429, "Too many requests", {
        limit: config.server.rate_limit.num_requests,
        period: config.server.rate_limit.period,
        retry_after: decision.retryAfter,
      });
    }
    await next();
  };

  app.route("/", createNodeRoutes(deps, limit));
  app.route("/", createJobRoutes({ ...deps, now }, limit));
  app.route("/", createStatusRoutes(deps));

  app.notFound((c) => {
    const allowed = ROUTES[c.req.path];
    if (!allowed) return sendError(c, 404, "Not found", { path: c.req.path });
    const allow = { Allow: [...allowed, "OPTIONS"].join(", ") };
    if (c.req.method === "OPTIONS") return new Response(null, { status: 204, headers: allow });
    return sendError(
      c,
      405,
      "Method not allowed",
      { method: c.req.method, allowed: [...allowed, "OPTIONS"] },
      allow,
    );
  });

  app.onError((error, c) => {
    if (error instanceof HTTPException) return error.getResponse();
    log.error("request failed", { method: c.req.method, path: c.req.path, error });
    return sendError(c, 500, "Internal server error", { reason: describeError(error) });
  });

  return app;
}
