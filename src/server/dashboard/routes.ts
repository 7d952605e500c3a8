// GET /dashboard (the operator's page), its script and style, and GET /dashboard/data (the JSON snapshot the
// page polls every 2 s). The files are imported as text, so `bun build --compile` puts them inside the binary;
// the page loads nothing from anywhere else (a strict Content-Security-Policy says so to the browser too).
// Read-only (GET and HEAD only), not rate limited (like /metrics), and only for server.dashboard_allowed_ips:
// loopback by default; anyone else gets 403.
import { Hono, type MiddlewareHandler } from "hono";
import { createIpMatcher } from "../../lib/ip.ts";
import { COMPAT_VERSION, NODE_VERSION } from "../../version.ts";
import type { AppDeps, AppEnv, DashboardDeps } from "../context.ts";
import { sendError } from "../json-response.ts";
import script from "./app.js" with { type: "text" };
import { buildDashboardData } from "./data.ts";
import page from "./index.html" with { type: "text" };
import style from "./style.css" with { type: "text" };

/** Default for server.dashboard_allowed_ips: loopback only (IPv4 and IPv6). */
export const DEFAULT_DASHBOARD_ALLOWED_IPS = ["127.0.0.0/8", "::1/128"] as const;

const SECURITY_HEADERS = {
  "Content-Security-Policy":
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  "X-Content-Type-Options": "nosniff",
  "Referrer-Policy": "no-referrer",
  "X-Frame-Options": "DENY",
};

interface Asset {
  type: string;
  plain: Uint8Array;
  gzip: Uint8Array;
  etag: string;
}

function asset(type: string, text: string): Asset {
  const plain = new TextEncoder().encode(text);
  return {
    type,
    plain,
    gzip: Bun.gzipSync(plain, { level: 9 }),
    etag: `"${Bun.hash(plain).toString(36)}"`,
  };
}

// Imported as text (see the sibling .d.ts for app.js; bun's own typings call every .html import an HTMLBundle).
const ASSETS: Record<string, Asset> = {
  "/dashboard": asset("text/html; charset=utf-8", String(page)),
  "/dashboard/app.js": asset("text/javascript; charset=utf-8", script),
  "/dashboard/style.css": asset("text/css; charset=utf-8", String(style)),
};

function serveAsset(entry: Asset, request: Request): Response {
  const headers: Record<string, string> = {
    ...SECURITY_HEADERS,
    "Content-Type": entry.type,
    "Cache-Control": "no-cache",
    ETag: entry.etag,
    Vary: "Accept-Encoding",
  };
  if (request.headers.get("if-none-match") === entry.etag)
    return new Response(null, { status: 304, headers });
  if (/\bgzip\b/.test(request.headers.get("accept-encoding") ?? "")) {
    return new Response(entry.gzip, { headers: { ...headers, "Content-Encoding": "gzip" } });
  }
  return new Response(entry.plain, { headers });
}

export function createDashboardRoutes(deps: AppDeps, dashboard: DashboardDeps): Hono<AppEnv> {
  const { config, directory, log } = deps;
  const allowed = createIpMatcher(config.server.dashboard_allowed_ips ?? DEFAULT_DASHBOARD_ALLOWED_IPS);
  const app = new Hono<AppEnv>();

  const guard: MiddlewareHandler<AppEnv> = async (c, next) => {
    const client = c.get("client");
    if (!allowed(client)) {
      log.debug("dashboard refused", { ip: client });
      return sendError(c, 403, "Forbidden", {
        reason: "the dashboard is served only to server.dashboard_allowed_ips",
      });
    }
    await next();
  };
  app.use("/dashboard", guard);
  app.use("/dashboard/*", guard);

  for (const [path, entry] of Object.entries(ASSETS)) {
    app.get(path, (c) => serveAsset(entry, c.req.raw));
  }

  app.get("/dashboard/data", () => {
    const data = buildDashboardData({
      config,
      version: NODE_VERSION,
      compatVersion: COMPAT_VERSION,
      uptimeSeconds: process.uptime(),
      warnings: dashboard.warnings,
      chainAddress: deps.chain.enabled ? deps.chain.address() : "",
      health: deps.health(),
      statuses: directory.statuses(),
      pending: { offchain: deps.store.pendingCount(), onchain: deps.orchestrator.pendingOnchain() },
      history: dashboard.history,
      now: Date.now(),
    });
    return new Response(JSON.stringify(data), {
      headers: { ...SECURITY_HEADERS, "Content-Type": "application/json", "Cache-Control": "no-store" },
    });
  });

  return app;
}
