// Chooses the job store from the config: Redis when `redis` is present, the embedded SQLite file otherwise.
import type { Config } from "../config/schema.ts";
import type { Logger } from "../lib/log.ts";
import type { Service } from "../lib/service.ts";
import type { JobStore } from "../shared/jobs.ts";
import { createEmbeddedStore } from "./embedded.ts";
import { resolveStoreOptions } from "./options.ts";
import { createRedisStore } from "./redis.ts";

export interface CreateJobStoreDeps {
  config: Config;
  log: Logger;
}

/**
 * The node's job store. As a Service, setup opens it and fails the jobs this instance left running at its
 * last stop; with Redis down at boot, setup returns after a few seconds and the store reports unhealthy
 * while it reconnects (accepted writes are queued meanwhile).
 */
export function createJobStore(deps: CreateJobStoreDeps): JobStore & Service {
  const { config, log } = deps;
  const options = resolveStoreOptions(config, log);
  if (!config.redis) return createEmbeddedStore({ ...options, path: config.store.path });
  const { host, port, password, db, key_prefix } = config.redis;
  return createRedisStore({ ...options, redis: { host, port, password, db, keyPrefix: key_prefix } });
}
