// The Hono application: client resolution, rate limiting, the routes by resource, JSON 404/405 and one
// onError. Built from interfaces only (`createApp(deps)`), so tests drive it with `app.request()`.
// createServerApp also returns the hottest routes (POST and GET /api/jobs: a submit and a few polls per job)
// as Bun.serve `routes` handlers: Bun matches the exact path natively and they skip hono's routing, Context
// and middleware chain, while calling the same client resolution, rate limiter (the same buckets), handlers
// and error reply as the hono routes, so the replies are the same bytes.
import type { Server } from "bun";
import { Hono } from "hono";
import { HTTPException } from "hono/http-exception";
import { describeError } from "../lib/errors.ts";
import { secondsSince } from "../shared/observe.ts";
import { bunPeerAddress, createClientIpResolver, createClientResolver } from "./client-ip.ts";
import type { AppDeps, AppEnv, LimitFor } from "./context.ts";
import { createDashboardRoutes } from "./dashboard/routes.ts";
import { errorReply, sendError } from "./json-response.ts";
import { createRateLimiter, type RateLimitDecision } from "./rate-limit.ts";
import { createJobRoutes, type JobHandler } from "./routes/jobs.ts";
import { createNodeRoutes } from "./routes/node.ts";
import { createStatusRoutes } from "./routes/status.ts";

/** Methods served per path, for 405 + Allow and OPTIONS (HEAD comes with GET). */
const ROUTES: Record<string, readonly string[]> = {
  "/health": ["GET", "HEAD"],
  "/ready": ["GET", "HEAD"],
  "/info": ["GET", "HEAD"],
  "/metrics": ["GET", "HEAD"],
  "/resources": ["GET", "HEAD"],
  "/api/jobs": ["GET", "HEAD", "POST"],
  "/api/jobs/batch": ["POST"],
  "/api/jobs/stream": ["POST"],
  "/api/status": ["PUT"],
  "/dashboard": ["GET", "HEAD"],
  "/dashboard/data": ["GET", "HEAD"],
  "/dashboard/app.js": ["GET", "HEAD"],
  "/dashboard/style.css": ["GET", "HEAD"],
};

const METHODS = new Set(["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]);

/** Metric labels for a request: a known path and method, or "other", so label values stay bounded. */
function requestLabels(path: string, method: string): [string, string] {
  return [ROUTES[path] ? path : "other", METHODS.has(method) ? method : "other"];
}

/** A Bun.serve `routes` handler. */
export type NativeHandler = (request: Request, server: Server<undefined>) => Response | Promise<Response>;

export interface ServerApp {
  app: Hono<AppEnv>;
  /** Bun.serve `routes`: exact paths served natively; any other path or method goes to `app.fetch`. */
  routes: Record<string, Record<string, NativeHandler>>;
}

export function createApp(deps: AppDeps): Hono<AppEnv> {
  return createServerApp(deps).app;
}

export function createServerApp(deps: AppDeps): ServerApp {
  const { config, log } = deps;
  const now = deps.now ?? Date.now;
  const resolveClient = createClientIpResolver(
    config.server.trusted_proxies,
    deps.peerAddress ?? bunPeerAddress,
  );
  const limiter = createRateLimiter({
    numRequests: config.server.rate_limit.num_requests,
    period: config.server.rate_limit.period,
    ipv6Prefix: config.server.rate_limit.ipv6_prefix,
    now,
  });
  const noClient = "Could not get client IP address";
  const tooMany = (decision: RateLimitDecision) =>
    errorReply(decision.headers, 429, "Too many requests", {
      limit: config.server.rate_limit.num_requests,
      period: config.server.rate_limit.period,
      retry_after: decision.retryAfter,
    });
  /** A route that threw (hono's onError, and the native routes' catch). */
  const failed = (
    error: Error,
    method: string,
    path: string,
    replyHeaders: Record<string, string> | undefined,
  ): Response => {
    if (error instanceof HTTPException) return error.getResponse();
    log.error("request failed", { method, path, error });
    return errorReply(replyHeaders, 500, "Internal server error", { reason: describeError(error) });
  };

  const app = new Hono<AppEnv>();
  const observe = deps.observe;

  // First, so every reply is counted: client errors and rate-limit refusals included.
  if (observe) {
    app.use(async (c, next) => {
      const startedAt = performance.now();
      await next();
      observe.http(...requestLabels(c.req.path, c.req.method), c.res.status, secondsSince(startedAt));
    });
  }

  app.use(async (c, next) => {
    const client = resolveClient(c);
    if (client === undefined) return sendError(c, 400, noClient);
    c.set("client", client);
    await next();
  });

  /** Rate limit per (endpoint, client), as the reference's per-view buckets. */
  const limit: LimitFor = (endpoint) => async (c, next) => {
    const decision = limiter.check(endpoint, c.get("client"));
    c.set("replyHeaders", decision.headers);
    if (!decision.allowed) return tooMany(decision);
    await next();
  };

  app.route("/", createNodeRoutes(deps, limit));
  const jobs = createJobRoutes({ ...deps, now }, limit);
  app.route("/", jobs.app);
  app.route("/", createStatusRoutes(deps));
  if (deps.dashboard) app.route("/", createDashboardRoutes(deps, deps.dashboard));

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

  app.onError((error, c) => failed(error, c.req.method, c.req.path, c.get("replyHeaders")));

  // The native routes see the peer from Bun.serve, as bunPeerAddress does; an injected peerAddress (tests)
  // only applies to app.fetch, which is what tests drive.
  const resolveNative = createClientResolver(config.server.trusted_proxies);
  const native =
    (endpoint: string, path: string, handler: JobHandler): NativeHandler =>
    async (request, server) => {
      if (!observe) return serveNative(endpoint, path, handler, request, server);
      const startedAt = performance.now();
      const response = await serveNative(endpoint, path, handler, request, server);
      observe.http(path, request.method, response.status, secondsSince(startedAt));
      return response;
    };
  async function serveNative(
    endpoint: string,
    path: string,
    handler: JobHandler,
    request: Request,
    server: Server<undefined>,
  ): Promise<Response> {
    // Set once the limiter has answered, as the hono middleware sets replyHeaders.
    let replyHeaders: Record<string, string> | undefined;
    try {
      const client = resolveNative(server.requestIP(request)?.address, () =>
        request.headers.get("x-forwarded-for"),
      );
      if (client === undefined) return errorReply(undefined, 400, noClient);
      const decision = limiter.check(endpoint, client);
      replyHeaders = decision.headers;
      if (!decision.allowed) return tooMany(decision);
      return await handler(request, client, replyHeaders);
    } catch (error) {
      // As hono: an Error is a JSON 500, anything else goes on to Bun.serve's error handler.
      if (!(error instanceof Error)) throw error;
      return failed(error, request.method, path, replyHeaders);
    }
  }
  // HEAD goes through hono, which answers it as GET without a body (Bun would otherwise run GET for it).
  const viaApp: NativeHandler = (request, server) => app.fetch(request, { server });

  return {
    app,
    routes: {
      "/api/jobs": {
        GET: native("get_job", "/api/jobs", jobs.list),
        HEAD: viaApp,
        POST: native("create_job", "/api/jobs", jobs.submit),
      },
    },
  };
}
