// Picks the container backend from the config: the Docker Container Manager when manage_containers is true,
// otherwise remote services reached over HTTP, for which no Docker client is ever constructed.
import type { Config } from "../../config/schema.ts";
import type { Logger } from "../../lib/log.ts";
import type { DockerClientFactory } from "./client.ts";
import { createContainerManager } from "./manager.ts";
import type { ProgressOutput } from "./pull.ts";
import { type ContainerService, createRemoteContainers } from "./remote.ts";

export interface ContainersDeps {
  config: Config;
  log: Logger;
  /** Resolved host of published ports: resolveContainerHost(config.container_host, env.RUNTIME). */
  host: string;
  /** Docker client factory, passed to both modes; only managed mode ever calls it. Default: the local engine. */
  docker?: DockerClientFactory;
  /** `docker stop` timeout per container at shutdown, seconds. */
  stopTimeoutS?: number;
  /** Managed: periodic check; unmanaged: liveness probe interval. */
  checkIntervalMs?: number;
  restartDelayMs?: number;
  /** Managed: deadline of one quick Docker call (see ContainerManagerDeps.dockerTimeoutMs). */
  dockerTimeoutMs?: number;
  labels?: Record<string, string>;
  progress?: ProgressOutput;
}

export function createContainers(deps: ContainersDeps): ContainerService {
  const { config, log, host } = deps;
  const common = deps.checkIntervalMs === undefined ? {} : { checkIntervalMs: deps.checkIntervalMs };
  const docker = deps.docker ? { docker: deps.docker } : {};
  if (!config.manage_containers) return createRemoteContainers({ config, log, host, ...common, ...docker });
  return createContainerManager({
    config,
    log,
    host,
    ...common,
    ...docker,
    ...(deps.stopTimeoutS === undefined ? {} : { stopTimeoutS: deps.stopTimeoutS }),
    ...(deps.restartDelayMs === undefined ? {} : { restartDelayMs: deps.restartDelayMs }),
    ...(deps.dockerTimeoutMs === undefined ? {} : { dockerTimeoutMs: deps.dockerTimeoutMs }),
    ...(deps.labels ? { labels: deps.labels } : {}),
    ...(deps.progress ? { progress: deps.progress } : {}),
  });
}
