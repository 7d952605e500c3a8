// Settings both job store implementations share, resolved once from the config (seconds → milliseconds, the
// instance id derived when not set) so the stores themselves never read config.json shapes.
import { hostname } from "node:os";
import type { Config } from "../config/schema.ts";
import type { Logger } from "../lib/log.ts";

export interface StoreOptions {
  /** Owner of the jobs this node marks running; recovery fails only this owner's leftovers. */
  instanceId: string;
  pendingTtlMs: number;
  /** 0 → completed results do not expire (they are still bounded by maxCompleted). */
  completedTtlMs: number;
  /** Global cap on completed results; the least recently used are evicted beyond it. */
  maxCompleted: number;
  log: Logger;
}

/**
 * `store.instance_id`, or a default that is stable across restarts of the same node. The embedded file is one
 * node's alone, so `embedded:<server.port>` names it: a hostname would change with every re-created Docker
 * container, whose interrupted jobs would then never be marked failed. On a shared Redis the default stays
 * `<hostname>:<server.port>`, unique per replica; the jobs of an id that is gone for good (a re-created
 * container) are failed by any live node once that id's lease runs out (redis.ts).
 */
export function resolveInstanceId(config: Config): string {
  if (config.store.instance_id) return config.store.instance_id;
  return config.redis ? `${hostname()}:${config.server.port}` : `embedded:${config.server.port}`;
}

export function resolveStoreOptions(config: Config, log: Logger): StoreOptions {
  return {
    instanceId: resolveInstanceId(config),
    pendingTtlMs: Math.round(config.store.pending_ttl * 1000),
    completedTtlMs: Math.round(config.store.completed_ttl * 1000),
    maxCompleted: config.store.max_completed_jobs,
    log,
  };
}
