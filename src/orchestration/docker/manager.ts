// The Container Manager (managed mode): pulls the images, runs one container per configured id, waits until
// each answers HTTP, then keeps them alive for the node's whole life (Docker events + a periodic check,
// restarting or recreating what fails, unpausing a paused one, killing and restarting one that stopped answering)
// and stops them all at shutdown. The rest of the node reads state through
// ContainerDirectory (statuses, endpoint) and health(); it never talks to Docker.
import type { ContainerInspectInfo } from "dockerode";
import type { Config, ContainerConfig } from "../../config/schema.ts";
import { describeError, StartupError } from "../../lib/errors.ts";
import type { Logger } from "../../lib/log.ts";
import type { ServiceHealth } from "../../lib/service.ts";
import { backoffMs, sleep } from "../../lib/time.ts";
import type { ContainerEndpoint, ContainerState, ContainerStatus } from "../../shared/containers.ts";
import {
  createDockerClient,
  type DockerClient,
  type DockerClientFactory,
  DockerTimeoutError,
  dockerMessage,
  dockerStatus,
  withTimeout,
} from "./client.ts";
import { endpointFor } from "./endpoint.ts";
import { type ContainerEvent, followEvents } from "./events.ts";
import { hostPortProblem, isPortConflict } from "./host-port.ts";
import { type ProgressOutput, pullImages } from "./pull.ts";
import { probeHttp, waitForHttp } from "./readiness.ts";
import type { ContainerService } from "./remote.ts";
import {
  type DesiredContainer,
  desiredContainer,
  foreignContainerError,
  isManaged,
  mismatchReason,
} from "./spec.ts";

export interface ContainerManagerDeps {
  config: Pick<
    Config,
    | "containers"
    | "docker"
    | "container_bind_address"
    | "container_ready_timeout"
    | "startup_wait"
    | "job_timeout"
  >;
  log: Logger;
  /** Host where published ports are reached (see resolveContainerHost). */
  host: string;
  /** Constructs the Docker client, once, at setup. Default: the local engine. */
  docker?: DockerClientFactory;
  /** Extra labels on every container (tests add a run id); not part of the config hash. */
  labels?: Record<string, string>;
  /** Periodic check of every container; default 5 s. Events make most detections immediate. */
  checkIntervalMs?: number;
  /** Time Docker's restart policy gets after a container dies before the manager starts it; default 1 s. */
  restartDelayMs?: number;
  /** `docker stop` timeout per container at shutdown; default 10 s. */
  stopTimeoutS?: number;
  /**
   * Deadline for one quick Docker call (ping, inspect, remove); create and start get 6× (they do real work),
   * stop gets stopTimeoutS on top. Default 10 s. Past it the engine is reported as not responding.
   */
  dockerTimeoutMs?: number;
  /** Pull progress output; default stderr. */
  progress?: ProgressOutput;
  /** Base for relative volume paths; default process.cwd(). */
  cwd?: string;
}

interface Managed {
  config: ContainerConfig;
  endpoint: ContainerEndpoint;
  probeUrl: string;
  desired?: DesiredContainer;
  dockerId?: string;
  status: ContainerStatus;
  /** A failure was reported and no recovery yet: the next "ready" is logged as "back up". */
  down: boolean;
  /** The manager itself is creating/replacing/starting it: events about that are expected, not failures. */
  busy: boolean;
  /**
   * When its HTTP probe first failed after it had been serving (cleared by an answer or a restart): a running
   * container silent for longer than the hang limit is killed and restarted.
   */
  silentSince?: number;
  /** Consecutive restarts by the manager without reaching "ready" (drives the backoff). */
  restarts: number;
  /** Restarts and recreations since the node started, and failed HTTP probes (for /metrics). */
  totalRestarts: number;
  probeFailures: number;
  nextStartAt: number;
  deathsDuringSetup: number;
  queue: Promise<void>;
  checkQueued: boolean;
  timer?: ReturnType<typeof setTimeout>;
  timerAt: number;
}

const FAILED: ContainerState[] = ["stopped", "missing", "unhealthy"];
/** A container is never declared hung in less than this, whatever job_timeout says. */
const MIN_HANG_LIMIT_MS = 5_000;

export function createContainerManager(deps: ContainerManagerDeps): ContainerService {
  const { config, log } = deps;
  const checkInterval = deps.checkIntervalMs ?? 5000;
  const restartDelay = deps.restartDelayMs ?? 1000;
  const stopTimeoutS = deps.stopTimeoutS ?? 10;
  const dockerTimeout = deps.dockerTimeoutMs ?? 10_000;
  // Creating or starting a container does real work (layers, volumes, GPUs): a longer deadline than a lookup.
  const slowCall = dockerTimeout * 6;
  // No job may take longer than job_timeout, so a service silent for longer is not busy with one: it is hung.
  // A floor keeps a short job_timeout from restarting a service that misses a probe or two under load.
  const hangLimitMs = Math.max(config.job_timeout * 1000, MIN_HANG_LIMIT_MS);
  const now = () => new Date().toISOString();
  const managed: Managed[] = config.containers.map((container) => ({
    config: container,
    endpoint: endpointFor(container, deps.host),
    probeUrl: `${endpointFor({ ...container, url: "" }, deps.host).baseUrl}/`,
    status: { id: container.id, state: "starting", ready: false, detail: "not started yet", since: now() },
    down: false,
    busy: false,
    restarts: 0,
    totalRestarts: 0,
    probeFailures: 0,
    nextStartAt: 0,
    deathsDuringSetup: 0,
    queue: Promise.resolve(),
    checkQueued: false,
    timerAt: 0,
  }));
  const byName = new Map(managed.map((m) => [m.config.id, m]));
  const imageIds = new Map<string, string>();
  let docker: DockerClient | undefined;
  let engine: { ok: boolean; detail?: string } = { ok: true };
  let eventsConnected = false;
  let inSetup = true;
  let stopping = false;
  const events = new AbortController();
  let eventsDone: Promise<void> = Promise.resolve();

  const client = (): DockerClient => {
    docker ??= (deps.docker ?? createDockerClient)();
    return docker;
  };

  /**
   * One bounded Docker call. A timeout also marks the engine as not responding, so /health says so while the
   * check loop keeps running; the next successful inspect clears it.
   */
  async function call<T>(
    what: string,
    work: (signal: AbortSignal) => Promise<T>,
    ms = dockerTimeout,
  ): Promise<T> {
    try {
      return await withTimeout(what, ms, work);
    } catch (error) {
      if (error instanceof DockerTimeoutError) engine = { ok: false, detail: error.message };
      throw error;
    }
  }

  function setState(m: Managed, state: ContainerState, detail: string): void {
    const previous = m.status;
    if (previous.state === state && previous.detail === detail) return;
    m.status = {
      id: m.config.id,
      state,
      ready: state === "ready",
      detail,
      since: previous.state === state ? previous.since : now(),
    };
    if (previous.state === state || stopping) return;
    const fields = { id: m.config.id, state, reason: detail };
    if (state === "ready") {
      if (m.down) log.info(`Container '${m.config.id}' back up`, fields);
      else log.info(`Container '${m.config.id}' ready`, fields);
      m.down = false;
      m.restarts = 0;
    } else if (FAILED.includes(state)) {
      log.warn(`Container '${m.config.id}' failed / exited / crashed: ${detail}`, fields);
      m.down = true;
    } else log.info(`Container '${m.config.id}' ${state}: ${detail}`, fields);
  }

  /** Serialises every Docker operation on one container (setup, checks, restarts, stop). */
  function enqueue(m: Managed, work: () => Promise<void>): Promise<void> {
    const next = m.queue.then(work);
    m.queue = next.catch(() => undefined);
    return next;
  }

  function requestCheck(m: Managed): Promise<void> {
    if (m.checkQueued || stopping) return m.queue;
    m.checkQueued = true;
    return enqueue(m, async () => {
      m.checkQueued = false;
      await check(m);
    }).catch((error) => log.warn("container check failed", { id: m.config.id, error: describeError(error) }));
  }

  function schedule(m: Managed, delayMs: number): void {
    if (stopping) return;
    const at = Date.now() + delayMs;
    if (m.timer && m.timerAt <= at) return;
    if (m.timer) clearTimeout(m.timer);
    m.timerAt = at;
    m.timer = setTimeout(() => {
      m.timer = undefined;
      void requestCheck(m);
    }, delayMs);
  }

  async function inspect(name: string): Promise<ContainerInspectInfo | undefined> {
    try {
      return await call(`inspect container '${name}'`, (abortSignal) =>
        client().getContainer(name).inspect({ abortSignal }),
      );
    } catch (error) {
      if (dockerStatus(error) === 404) return undefined;
      throw error;
    }
  }

  /** Makes the container exist, match the config and run. Throws StartupError with a one-line reason. */
  async function ensureRunning(m: Managed): Promise<"existing" | "started" | "created"> {
    const { id, port, image } = m.config;
    const desired = m.desired as DesiredContainer;
    m.busy = true;
    try {
      let info = await inspect(desired.name);
      // Never remove what another party created: it may be the operator's own service or state.
      if (info && !isManaged(info)) throw foreignContainerError(id);
      if (info) {
        const reason = mismatchReason(info, desired, imageIds.get(image));
        if (reason) {
          log.info(`Replacing container '${id}': ${reason}`, { id });
          const stale = client().getContainer(info.Id);
          await call(`remove container '${id}'`, () => stale.remove({ force: true }));
          info = undefined;
        }
      }
      if (info?.State.Running) {
        m.dockerId = info.Id;
        log.info(`Using running container '${id}' on port ${port}`, { id, port });
        return "existing";
      }
      const bind = config.container_bind_address;
      const portProblem = hostPortProblem(bind, port);
      if (portProblem) {
        throw new StartupError(`container '${id}': cannot publish port ${port}: ${portProblem}`, {
          meta: { container: id, port, address: bind },
        });
      }
      const created = !info;
      const container = info
        ? client().getContainer(info.Id)
        : await call(
            `create container '${id}'`,
            () => client().createContainer(desired.create),
            slowCall,
          ).catch((error) => {
            throw new StartupError(
              `container '${id}': could not create it from image ${image}: ${dockerMessage(error)}`,
              { meta: { container: id, image }, cause: error },
            );
          });
      m.dockerId = container.id;
      try {
        await call(`start container '${id}'`, (abortSignal) => container.start({ abortSignal }), slowCall);
      } catch (error) {
        const message = dockerMessage(error);
        if (created)
          await call(`remove container '${id}'`, () => container.remove({ force: true })).catch(
            () => undefined,
          );
        const what = isPortConflict(message)
          ? `cannot publish port ${port} on ${bind}: the port is already in use on this host`
          : "could not start it";
        throw new StartupError(`container '${id}': ${what} (${message})`, {
          meta: { container: id, port, image },
          cause: error,
        });
      }
      log.info(`Started ${created ? "new" : "existing"} container '${id}' on port ${port}`, { id, port });
      return created ? "created" : "started";
    } finally {
      m.busy = false;
    }
  }

  function exitReason(state: ContainerInspectInfo["State"]): string {
    if (state.OOMKilled) return `killed: out of memory (exit code ${state.ExitCode})`;
    if (state.Error) return `failed: ${state.Error}`;
    if (state.Status === "created") return "created but not started";
    return `exited (exit code ${state.ExitCode})`;
  }

  /** One look at a container: recreate it if gone, start it if stopped, probe it if running. */
  async function check(m: Managed): Promise<void> {
    if (stopping || !m.desired) return;
    let info: ContainerInspectInfo | undefined;
    try {
      info = await inspect(m.config.id);
      engine = { ok: true };
    } catch (error) {
      engine = {
        ok: false,
        detail:
          error instanceof DockerTimeoutError
            ? `Docker engine not responding: ${error.message}`
            : `Docker engine not reachable: ${dockerMessage(error)}`,
      };
      return;
    }
    if (info && !isManaged(info)) {
      // Ours was replaced by a container we did not create: report it, and leave it alone (see ensureRunning).
      const id = m.config.id;
      setState(
        m,
        "missing",
        `a container that infernet-node did not create took its name; left alone: remove or rename it (docker rm -f ${id})`,
      );
      schedule(m, checkInterval);
      return;
    }
    if (!info || mismatchReason(info, m.desired, undefined)) {
      setState(
        m,
        "missing",
        info ? "replaced from outside the node; recreating" : "removed from Docker; recreating",
      );
      await restart(m, "recreate");
      return;
    }
    m.dockerId = info.Id;
    if (info.State.Paused) {
      // Frozen by `docker pause`: its port still accepts connections but nothing answers. Unpausing is the
      // smallest step that brings it back, and keeps what it holds in memory (a loaded model).
      setState(m, "unhealthy", "paused from outside the node (docker pause); unpausing");
      await unpause(m);
      return;
    }
    if (!info.State.Running) {
      const reason = exitReason(info.State);
      if (info.State.Restarting) {
        setState(m, "stopped", `${reason}; Docker is restarting it`);
        schedule(m, 500);
        return;
      }
      setState(m, "stopped", reason);
      await restart(m, "start");
      return;
    }
    const dockerHealth = info.State.Health?.Status;
    const probe = await probeHttp(m.probeUrl, {}, 2000);
    if (!probe.ok) m.probeFailures++;
    if (probe.ok) m.silentSince = undefined;
    if (probe.ok && dockerHealth !== "unhealthy") {
      setState(m, "ready", `answering HTTP on port ${m.config.port}`);
      return;
    }
    const detail = probe.ok ? "Docker health check reports unhealthy" : `not answering HTTP: ${probe.detail}`;
    // Never ready since its last start → still starting; otherwise it has stopped answering. Either way it is
    // looked at again soon (a second at most), so it is back in service about as soon as it answers.
    const starting =
      m.status.state === "starting" || m.status.state === "stopped" || m.status.state === "missing";
    if (!probe.ok && !starting) {
      m.silentSince ??= Date.now();
      const silentMs = Date.now() - m.silentSince;
      if (silentMs >= hangLimitMs) {
        await killHung(m, `not answering HTTP for ${Math.round(silentMs / 1000)} s (${probe.detail})`);
        return;
      }
    }
    setState(m, starting ? "starting" : "unhealthy", detail);
    schedule(m, starting ? 500 : Math.min(1000, checkInterval));
  }

  async function unpause(m: Managed): Promise<void> {
    const id = m.config.id;
    log.warn(`Unpausing container '${id}'`, { id, reason: "paused from outside the node" });
    try {
      await call(`unpause container '${id}'`, (abortSignal) =>
        client()
          .getContainer(m.dockerId ?? id)
          .unpause({ abortSignal }),
      );
      // Still "unhealthy" until it answers: a service that was hung before the pause is then killed as hung.
      setState(m, "unhealthy", "unpaused by the node");
    } catch (error) {
      log.error(`Could not unpause container '${id}'`, { id, error: describeError(error) });
    }
    schedule(m, 100);
  }

  /**
   * Running but silent past the hang limit (a deadlock, a frozen model loader): no job can get an answer from it,
   * and a graceful stop would wait for a process that handles no signal either, so it is killed and started.
   */
  async function killHung(m: Managed, detail: string): Promise<void> {
    const id = m.config.id;
    m.silentSince = undefined;
    log.warn(`Container '${id}' is hung: ${detail}; killing and restarting it`, { id, reason: detail });
    m.busy = true;
    try {
      await call(`kill container '${id}'`, (abortSignal) =>
        client()
          .getContainer(m.dockerId ?? id)
          .kill({ abortSignal }),
      );
    } catch (error) {
      // 409: it stopped by itself meanwhile; the start below handles that too.
      if (dockerStatus(error) !== 409)
        log.error(`Could not kill container '${id}'`, { id, error: describeError(error) });
    } finally {
      m.busy = false;
    }
    setState(m, "stopped", `killed by the node: ${detail}`);
    await restart(m, "start");
  }

  /** Starts (or recreates) a container the node wants running, with capped backoff between attempts. */
  async function restart(m: Managed, how: "start" | "recreate"): Promise<void> {
    const wait = m.nextStartAt - Date.now();
    if (wait > 0) {
      schedule(m, wait);
      return;
    }
    m.restarts++;
    m.totalRestarts++;
    m.silentSince = undefined;
    m.nextStartAt = Date.now() + backoffMs(m.restarts - 1, 1000, 60_000);
    log.warn(`${how === "recreate" ? "Recreating" : "Restarting"} container '${m.config.id}'`, {
      id: m.config.id,
      attempt: m.restarts,
      reason: m.status.detail,
    });
    try {
      await ensureRunning(m);
      setState(m, "starting", how === "recreate" ? "recreated by the node" : "restarted by the node");
      schedule(m, 100);
    } catch (error) {
      log.error(`Could not ${how} container '${m.config.id}'`, {
        id: m.config.id,
        error: describeError(error),
      });
      schedule(m, Math.max(500, m.nextStartAt - Date.now()));
    }
  }

  function onEvent(event: ContainerEvent): void {
    const m = byName.get(event.name);
    if (!m || stopping || m.busy) return;
    if (m.dockerId && event.dockerId && event.dockerId !== m.dockerId) return;
    const action = event.action;
    if (action === "die") {
      if (inSetup) m.deathsDuringSetup++;
      setState(m, "stopped", event.exitCode === undefined ? "died" : `died (exit code ${event.exitCode})`);
      // Let Docker's on-failure policy act first; the check restarts it if the policy does not.
      schedule(m, restartDelay);
    } else if (action === "pause") {
      // Paused from outside: the check sees it in Docker's state and unpauses it.
      schedule(m, 0);
    } else if (action === "oom") {
      log.warn(`Container '${m.config.id}' ran out of memory`, { id: m.config.id });
    } else if (action === "destroy") {
      m.dockerId = undefined;
      setState(m, "missing", "removed from Docker; recreating");
      schedule(m, 0);
    } else if (action === "start" || action === "restart") {
      if (m.status.state !== "ready") setState(m, "starting", "started");
      schedule(m, 100);
    } else if (action.startsWith("health_status")) {
      if (action.includes("unhealthy")) setState(m, "unhealthy", "Docker health check reports unhealthy");
      else schedule(m, 0);
    }
  }

  async function waitReady(m: Managed, deadline: number, signal: AbortSignal): Promise<void> {
    const result = await waitForHttp(m.probeUrl, {}, deadline, signal, () =>
      m.deathsDuringSetup >= 3 ? `keeps exiting (${m.status.detail})` : undefined,
    );
    if (result.ok) setState(m, "ready", `answering HTTP on port ${m.config.port}`);
    else if (m.status.state === "starting")
      setState(m, "starting", `not answering HTTP yet: ${result.detail}`);
  }

  async function stopOne(m: Managed): Promise<void> {
    if (!m.dockerId) return;
    const started = Date.now();
    try {
      const container = client().getContainer(m.dockerId);
      await call(
        `stop container '${m.config.id}'`,
        (abortSignal) => container.stop({ t: stopTimeoutS, abortSignal }),
        stopTimeoutS * 1000 + dockerTimeout,
      );
      log.info(`Stopped container '${m.config.id}'`, { id: m.config.id, ms: Date.now() - started });
    } catch (error) {
      // 304: it was not running.
      if (dockerStatus(error) !== 304 && dockerStatus(error) !== 404)
        log.warn(`Could not stop container '${m.config.id}'`, {
          id: m.config.id,
          error: dockerMessage(error),
        });
    }
    m.status = {
      id: m.config.id,
      state: "stopped",
      ready: false,
      detail: "stopped by the node",
      since: now(),
    };
  }

  /** Creates/starts every container, then waits until each answers HTTP (bounded). */
  async function startAndWait(signal: AbortSignal): Promise<void> {
    const results = await Promise.allSettled(
      managed.map((m) =>
        enqueue(m, async () => {
          await ensureRunning(m);
          setState(m, "starting", "started, waiting for HTTP");
        }),
      ),
    );
    const failures = results.flatMap((result) =>
      result.status === "rejected" ? [describeError(result.reason)] : [],
    );
    if (failures.length > 0) {
      throw new StartupError(failures.length === 1 ? (failures[0] as string) : failures.join("; "));
    }

    if (config.container_ready_timeout <= 0) {
      // Readiness checks turned off: the reference's blind wait.
      log.info("Waiting for container startup", { startup_wait_s: config.startup_wait });
      await sleep(config.startup_wait * 1000, signal);
      await Promise.all(managed.map((m) => requestCheck(m)));
    } else {
      // Give every container at least startup_wait seconds, as configured, but stop waiting as soon as all
      // of them answer.
      const timeoutS = Math.max(config.container_ready_timeout, config.startup_wait);
      log.info("Waiting for container startup", { timeout_s: timeoutS });
      const deadline = Date.now() + timeoutS * 1000;
      await Promise.all(managed.map((m) => waitReady(m, deadline, signal)));
    }
    inSetup = false;
    const ready = managed.filter((m) => m.status.ready).map((m) => m.config.id);
    const notReady = managed.filter((m) => !m.status.ready);
    for (const m of notReady) {
      log.warn(`Container '${m.config.id}' is not ready: ${m.status.detail}`, { id: m.config.id });
    }
    log.info("Container manager setup complete", {
      ready,
      not_ready: notReady.map((m) => m.config.id),
    });
  }

  return {
    name: "containers",

    async setup(signal) {
      if (managed.length === 0) {
        // No containers, no Docker: the node must start on a machine without a Docker engine.
        log.info("No containers configured; Docker is not used");
        return;
      }
      const docker = client();
      try {
        await call("ping", () => docker.ping());
      } catch (error) {
        throw new StartupError(`cannot reach the Docker engine: ${dockerMessage(error)}`, { cause: error });
      }
      for (const m of managed) {
        m.desired = desiredContainer(m.config, {
          bindAddress: config.container_bind_address,
          ...(deps.labels ? { labels: deps.labels } : {}),
          ...(deps.cwd ? { cwd: deps.cwd } : {}),
        });
      }
      const pulled = await pullImages(
        docker,
        managed.map((m) => m.config.image),
        {
          log,
          credentials: config.docker,
          progress: deps.progress ?? {
            isTTY: Boolean(process.stderr.isTTY),
            write: (t) => process.stderr.write(t),
          },
          signal,
        },
      );
      for (const [image, info] of pulled) imageIds.set(image, info.id);

      // Follow events from here on, so a container that crashes during start-up is noticed at once.
      eventsDone = followEvents(docker, {
        log,
        signal: events.signal,
        connectTimeoutMs: dockerTimeout,
        onEvent,
        onConnection: (connected, detail) => {
          eventsConnected = connected;
          if (!connected) log.debug("Docker event stream disconnected", { detail });
        },
      });

      // A setup that fails or is cut short is not closed by the lifecycle: stop the event stream here then.
      const abandon = () => events.abort();
      signal.addEventListener("abort", abandon, { once: true });
      try {
        await startAndWait(signal);
      } catch (error) {
        events.abort();
        throw error;
      } finally {
        signal.removeEventListener("abort", abandon);
      }
    },

    async run(signal) {
      while (!signal.aborted) {
        await Promise.all(managed.map((m) => requestCheck(m)));
        await sleep(checkInterval, signal);
      }
      events.abort();
      await eventsDone;
    },

    async close() {
      stopping = true;
      events.abort();
      for (const m of managed) if (m.timer) clearTimeout(m.timer);
      if (!docker) return;
      // Let an in-flight check or restart finish first, so nothing is started after it was stopped.
      const stops = managed.map(async (m) => {
        await Promise.race([m.queue, sleep(2000)]);
        await stopOne(m);
      });
      const bound = (stopTimeoutS + 5) * 1000;
      const finished = await Promise.race([
        Promise.allSettled(stops).then(() => true),
        sleep(bound).then(() => false),
      ]);
      if (!finished) log.warn("Some containers did not stop in time", { timeout_s: bound / 1000 });
      await Promise.race([eventsDone, sleep(1000)]);
    },

    health(): ServiceHealth {
      const notReady = managed.filter((m) => !m.status.ready);
      const details = notReady.map((m) => `${m.config.id}: ${m.status.state} (${m.status.detail ?? ""})`);
      if (!engine.ok) details.unshift(engine.detail ?? "Docker engine not reachable");
      return {
        ok: engine.ok && notReady.length === 0,
        mode: "managed",
        events: managed.length === 0 ? "not used" : eventsConnected ? "connected" : "disconnected",
        ...(details.length > 0 ? { detail: details.join("; ") } : {}),
      };
    },

    statuses: () =>
      managed.map((m) => ({ ...m.status, restarts: m.totalRestarts, probe_failures: m.probeFailures })),
    endpoint: (id) => byName.get(id)?.endpoint,
    reportAlive(id) {
      // Proof that it answers, but Docker's view (running? health check?) decides: check it now.
      const m = byName.get(id);
      if (m && !m.status.ready && m.status.state === "unhealthy") schedule(m, 0);
    },
  };
}
