// What every route module receives: the node parts it serves (as interfaces) and the per-app helpers.
import type { MiddlewareHandler } from "hono";
import type { Config } from "../config/schema.ts";
import type { RuleTable } from "../guardian/rules.ts";
import type { Logger } from "../lib/log.ts";
import type { ServiceHealth } from "../lib/service.ts";
import type { Orchestrator } from "../orchestration/orchestrator.ts";
import type { ContainerDirectory } from "../shared/containers.ts";
import type { ContainerSetLookup, DelegatedSubscriptionSink } from "../shared/delegated.ts";
import type { JobStore } from "../shared/jobs.ts";
import type { HttpObserver } from "../shared/observe.ts";
import type { PeerAddress } from "./client-ip.ts";
import type { DashboardHistory } from "./dashboard-history.ts";
import type { JobRunner } from "./job-runner.ts";

export interface ChainInfo {
  enabled: boolean;
  /** The node's checksummed EOA, "" when the chain is disabled. */
  address(): string;
}

export interface AppDeps {
  config: Config;
  log: Logger;
  store: JobStore;
  directory: ContainerDirectory;
  orchestrator: Orchestrator;
  runner: JobRunner;
  rules: RuleTable;
  chain: ChainInfo;
  /** Present when the chain side accepts delegated subscriptions (chain enabled). */
  delegated?: { sink: DelegatedSubscriptionSink; lookup: ContainerSetLookup } | undefined;
  /** Health of every node part, by name (the REST server's own included). */
  health: () => Record<string, ServiceHealth>;
  /** TCP peer of a request; defaults to Bun.serve's requestIP. Tests inject one. */
  peerAddress?: PeerAddress;
  /** Millisecond clock (rate limiting, signature expiry). */
  now?: () => number;
  /** For the /resources fan-out; defaults to the global fetch. */
  fetch?: typeof fetch;
  /** Request counts and latencies, Guardian rejections (for /metrics). */
  observe?: HttpObserver;
  /** GET /metrics renders this; without it the route answers 404. */
  metrics?: MetricsEndpoint;
  /** GET /dashboard and /dashboard/data are served when set (the node sets it; most tests do not need it). */
  dashboard?: DashboardDeps | undefined;
}

export interface DashboardDeps {
  history: DashboardHistory;
  /** Warnings from loading the config file (unknown keys and the like). */
  warnings: readonly string[];
}

export interface MetricsEndpoint {
  render(): Promise<string>;
  readonly contentType: string;
}

export interface AppEnv {
  Variables: {
    client: string;
    /**
     * Headers every reply of this request carries (the rate limiter's RateLimit-*). Replies are built with them
     * in one plain-object init instead of c.header(), which costs a Headers object and a native call per header.
     */
    replyHeaders?: Record<string, string>;
  };
}

/** Builds the rate-limit middleware for one endpoint (bucket name). */
export type LimitFor = (endpoint: string) => MiddlewareHandler<AppEnv>;
