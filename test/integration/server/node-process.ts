// Runs the release binary (node_modules hidden) with a temp config.json and the example echo containers,
// managed by the node itself, and tears everything down: the node by its PID, the containers by name.
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildBinary, withoutNodeModules } from "../../fixtures/binary.ts";
import { ECHO_IMAGE, ensureEchoImage, testDocker } from "../../fixtures/docker.ts";
import { freePort, waitFor } from "../../fixtures/net.ts";
import { type RedisEndpoint, uniqueKeyPrefix } from "../../fixtures/redis.ts";

export interface NodeProcess {
  url: string;
  /** Everything the node wrote to stderr so far. */
  output(): string;
  /** Everything the node wrote to stdout so far. */
  stdout(): string;
  /** The node's process id while it runs (unshare and sh exec into the binary, so it is the binary's). */
  pid(): number | undefined;
  /** SIGTERM (or `signal`, e.g. SIGKILL for a crash), wait for exit; returns the exit code. */
  stop(signal?: "SIGTERM" | "SIGKILL"): Promise<number>;
  /** Starts the same binary and config again (same port, same store). */
  restart(): Promise<void>;
}

export interface NodeFixture extends AsyncDisposable {
  dir: string;
  config: Record<string, unknown>;
  /** Container ids in config order: echo (external), echo2 (external), inner (external: false). */
  ids: { echo: string; echo2: string; inner: string };
  node: NodeProcess;
}

const running = new Set<Bun.Subprocess>();
process.on("exit", () => {
  for (const child of running) child.kill("SIGKILL");
});

/**
 * A node with three echo containers. `store` "redis" points it at `redis` with a unique key prefix. `extra`
 * is merged into config.json at the top level (`server` is merged one level deep).
 */
export async function startNode(
  name: string,
  options: {
    store: "embedded" | "redis";
    redis?: RedisEndpoint;
    extra?: Record<string, unknown>;
    /** Extra settings per container (allowed_ips, generates_proofs…). */
    containers?: Partial<Record<"echo" | "echo2" | "inner", Record<string, unknown>>>;
  },
): Promise<NodeFixture> {
  const [binary] = await Promise.all([buildBinary(), ensureEchoImage()]);
  const dir = mkdtempSync(join(tmpdir(), `infernet-${name}-`));
  const run = `t-${name}-${Math.random().toString(36).slice(2, 8)}`;
  const ids = { echo: `${run}-echo`, echo2: `${run}-echo2`, inner: `${run}-inner` };
  const port = freePort();
  const { server: extraServer, ...extra } = (options.extra ?? {}) as { server?: Record<string, unknown> };
  const config: Record<string, unknown> = {
    manage_containers: true,
    forward_stats: false,
    startup_wait: 0,
    container_ready_timeout: 30,
    shutdown_timeout: 10,
    server: { port, host: "127.0.0.1", rate_limit: { num_requests: 1_000_000, period: 1 }, ...extraServer },
    log: { path: join(dir, "node.log") },
    store: { path: join(dir, "jobs.sqlite") },
    containers: [
      {
        id: ids.echo,
        image: ECHO_IMAGE,
        port: freePort(),
        description: "echo one",
        ...options.containers?.echo,
      },
      { id: ids.echo2, image: ECHO_IMAGE, port: freePort(), ...options.containers?.echo2 },
      { id: ids.inner, image: ECHO_IMAGE, port: freePort(), external: false, ...options.containers?.inner },
    ],
    ...(options.store === "redis" && options.redis
      ? { redis: { host: options.redis.host, port: options.redis.port, key_prefix: uniqueKeyPrefix(name) } }
      : {}),
    ...extra,
  };
  const configPath = join(dir, "config.json");
  writeFileSync(configPath, JSON.stringify(config, null, 2));
  const url = `http://127.0.0.1:${port}`;

  const node = await runNodeBinary(binary, configPath, dir, url);

  return {
    dir,
    config,
    ids,
    node,
    async [Symbol.asyncDispose]() {
      await node.stop();
      const docker = testDocker();
      await Promise.all(
        Object.values(ids).map((id) =>
          docker
            .getContainer(id)
            .remove({ force: true })
            .catch(() => undefined),
        ),
      );
    },
  };
}

/**
 * Runs the release binary (node_modules hidden) with this config until /health answers 200 (with
 * `ready: "any"`, any HTTP reply); stop() sends SIGTERM and returns the exit code.
 */
export async function runNodeBinary(
  binary: string,
  configPath: string,
  dir: string,
  url: string,
  options: { ready?: "healthy" | "any" } = {},
): Promise<NodeProcess> {
  let child: Bun.Subprocess<"ignore", "pipe", "pipe"> | undefined;
  let output = "";
  let stdout = "";
  async function launch(): Promise<void> {
    const proc = Bun.spawn(withoutNodeModules(binary, ["--config", configPath]), {
      cwd: dir,
      env: { ...process.env, LOG_LEVEL: "info", LOG_FORMAT: "json" },
      stdin: "ignore",
      stdout: "pipe",
      stderr: "pipe",
    });
    child = proc;
    running.add(proc);
    void proc.exited.then(() => running.delete(proc));
    void (async () => {
      for await (const chunk of proc.stderr) output += new TextDecoder().decode(chunk);
    })();
    void (async () => {
      for await (const chunk of proc.stdout) stdout += new TextDecoder().decode(chunk);
    })();
    await waitFor(
      `node on ${url}`,
      async () => {
        if (proc.exitCode !== null)
          throw new Error(`node exited with ${proc.exitCode}: ${output.slice(-2000)}`);
        const res = await fetch(`${url}/health`);
        return res.status === 200 || options.ready === "any" ? true : undefined;
      },
      60_000,
    );
  }

  const node: NodeProcess = {
    url,
    output: () => output,
    stdout: () => stdout,
    pid: () => child?.pid,
    async stop(signal = "SIGTERM") {
      if (!child) return 0;
      const proc = child;
      child = undefined;
      // unshare → sh → exec binary: the binary has the PID we spawned, so the signal reaches it.
      proc.kill(signal);
      return await proc.exited;
    },
    async restart() {
      await node.stop();
      await launch();
    },
  };
  await launch();
  return node;
}

export async function postJson(
  url: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<Response> {
  return fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
}

/** Polls GET /api/jobs?id= until the job has finished. */
export async function finishedJob(url: string, id: string, query = ""): Promise<Record<string, unknown>> {
  return waitFor(
    `job ${id}`,
    async () => {
      const list = (await (await fetch(`${url}/api/jobs?id=${id}${query}`)).json()) as Record<
        string,
        unknown
      >[];
      const job = list[0];
      return job && job.status !== "running" ? job : undefined;
    },
    60_000,
  );
}
