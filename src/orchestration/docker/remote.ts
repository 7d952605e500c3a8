// Unmanaged containers (manage_containers: false): services somebody else runs, reached at their `url` (with
// the bearer token) or at container_host:port. No Docker client is constructed and nothing waits at start-up;
// a background loop probes each service over HTTP so statuses() and health() report whether it answers: one
// that is up every checkIntervalMs (10 s), one seen down every downIntervalMs (1 s), so a service that comes
// up after the node is usable within about a second. A job call that gets any HTTP reply marks it up at once.
import type { Config } from "../../config/schema.ts";
import type { Logger } from "../../lib/log.ts";
import type { Service, ServiceHealth } from "../../lib/service.ts";
import { sleep } from "../../lib/time.ts";
import type { ContainerDirectory, ContainerEndpoint, ContainerStatus } from "../../shared/containers.ts";
import type { DockerClientFactory } from "./client.ts";
import { endpointFor } from "./endpoint.ts";
import { probeHttp } from "./readiness.ts";

export interface RemoteContainersDeps {
  config: Pick<Config, "containers">;
  log: Logger;
  /** Resolved container host (see resolveContainerHost). */
  host: string;
  /** Time between liveness probes of a service that is up; default 10 s. */
  checkIntervalMs?: number;
  /** Time between probes of a service seen down; default 1 s. */
  downIntervalMs?: number;
  /** Per-probe timeout; default 3 s. */
  probeTimeoutMs?: number;
  /**
   * Accepted so one injected factory serves both modes, and never called: unmanaged mode makes no Docker call.
   * Tests inject a factory that fails the test when called.
   */
  docker?: DockerClientFactory;
}

export type ContainerService = Service & ContainerDirectory;

export function createRemoteContainers(deps: RemoteContainersDeps): ContainerService {
  const { log } = deps;
  const interval = deps.checkIntervalMs ?? 10_000;
  const downInterval = Math.min(interval, deps.downIntervalMs ?? 1000);
  const probeTimeout = deps.probeTimeoutMs ?? 3000;
  const endpoints = new Map<string, ContainerEndpoint>();
  const statuses = new Map<string, ContainerStatus>();
  /** performance.now() of each service's last probe (0: never); drives the up/down probe intervals. */
  const probedAt = new Map<string, number>();
  const probeFailures = new Map<string, number>();
  const now = () => new Date().toISOString();
  for (const container of deps.config.containers) {
    endpoints.set(container.id, endpointFor(container, deps.host));
    // Until the first probe, assume it is up, as the reference does for every unmanaged container.
    statuses.set(container.id, {
      id: container.id,
      state: "remote",
      ready: true,
      detail: "not probed yet",
      since: now(),
    });
  }

  function setReady(id: string, ok: boolean, detail: string): void {
    const previous = statuses.get(id);
    const changed = !previous || previous.ready !== ok;
    statuses.set(id, {
      id,
      state: "remote",
      ready: ok,
      detail,
      since: changed ? now() : previous.since,
      probe_failures: probeFailures.get(id) ?? 0,
    });
  }

  /** Probes the services that are due: down ones every downInterval, up ones every interval. */
  async function probeDue(signal: AbortSignal): Promise<void> {
    const at = performance.now();
    const due = [...endpoints].filter(([id]) => {
      const wait = statuses.get(id)?.ready ? interval : downInterval;
      return at - (probedAt.get(id) ?? Number.NEGATIVE_INFINITY) >= wait - 5;
    });
    await Promise.all(
      due.map(async ([id, endpoint]) => {
        probedAt.set(id, performance.now());
        // Any HTTP reply (a 404 or 405 from a service without a `/` handler, even a 500) means the server is up;
        // only a refused/reset connection or no reply within probeTimeout counts as down.
        const result = await probeHttp(`${endpoint.baseUrl}/`, endpoint.headers, probeTimeout, signal);
        if (signal.aborted) return;
        if (!result.ok) probeFailures.set(id, (probeFailures.get(id) ?? 0) + 1);
        const previous = statuses.get(id);
        if (previous && previous.ready !== result.ok) {
          if (result.ok) log.info("Container back up", { id, url: endpoint.baseUrl, reply: result.detail });
          else log.warn("Container not reachable", { id, url: endpoint.baseUrl, reason: result.detail });
        }
        setReady(id, result.ok, result.detail);
      }),
    );
  }

  return {
    name: "containers",
    async setup() {
      log.info("Skipping container manager setup, containers are not managed", {
        containers: [...endpoints.keys()],
      });
    },
    async run(signal) {
      while (!signal.aborted) {
        await probeDue(signal);
        await sleep(downInterval, signal);
      }
    },
    health(): ServiceHealth {
      const down = [...statuses.values()].filter((status) => !status.ready);
      return down.length === 0
        ? { ok: true, mode: "unmanaged" }
        : {
            ok: false,
            mode: "unmanaged",
            detail: down.map((status) => `${status.id}: ${status.detail ?? "not reachable"}`).join("; "),
          };
    },
    statuses: () => [...statuses.values()].map((status) => ({ ...status })),
    endpoint: (id) => endpoints.get(id),
    reportAlive(id) {
      const status = statuses.get(id);
      if (!status || status.ready) return;
      log.info("Container back up", {
        id,
        url: endpoints.get(id)?.baseUrl,
        reply: "a job call was answered",
      });
      probedAt.set(id, performance.now());
      setReady(id, true, "a job call was answered");
    },
  };
}
