// The Container Manager against the real Docker engine, with the example echo image.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, writeFileSync } from "node:fs";
import { networkInterfaces, tmpdir } from "node:os";
import { join } from "node:path";
import { addLogSink, createLog, type LogRecord } from "../../../src/lib/log.ts";
import { createContainers } from "../../../src/orchestration/docker/containers.ts";
import type { ContainerService } from "../../../src/orchestration/docker/remote.ts";
import { LABEL_HASH, LABEL_MANAGED } from "../../../src/orchestration/docker/spec.ts";
import {
  cleanupRun,
  createRun,
  ECHO_IMAGE,
  ensureEchoImage,
  testConfig,
  testDocker,
} from "../../fixtures/docker.ts";
import { freePort, waitFor } from "../../fixtures/net.ts";

const run = createRun("mgr");
const docker = testDocker();
const logs: LogRecord[] = [];
const removeSink = addLogSink((record) => {
  if (record.component === run.id) logs.push(record);
});

beforeAll(async () => {
  await ensureEchoImage();
});

afterAll(async () => {
  removeSink();
  await cleanupRun(run.id);
});

interface Started {
  manager: ContainerService;
  stop(): Promise<void>;
}

/** Sets a manager up and starts its run loop, as runServices would. */
async function start(
  raw: Record<string, unknown>,
  extra: { checkIntervalMs?: number } = {},
): Promise<Started> {
  const config = testConfig(raw);
  const manager = createContainers({
    config,
    log: createLog(run.id),
    host: "127.0.0.1",
    labels: run.labels,
    stopTimeoutS: 5,
    restartDelayMs: 300,
    checkIntervalMs: extra.checkIntervalMs ?? 1000,
  });
  const controller = new AbortController();
  await manager.setup?.(controller.signal);
  const running = manager.run?.(controller.signal);
  return {
    manager,
    async stop() {
      controller.abort();
      await running;
      await manager.close?.();
    },
  };
}

function echo(id: string, port: number, more: Record<string, unknown> = {}) {
  return { id, image: ECHO_IMAGE, port, ...more };
}

async function getJson(url: string): Promise<unknown> {
  const res = await fetch(url);
  return res.json();
}

describe("container manager", () => {
  test("default", async () => {
    const id = run.name("default");
    const port = freePort();
    const node = await start({ containers: [echo(id, port)] });
    try {
      expect(node.manager.statuses()).toMatchObject([{ id, state: "ready", ready: true }]);
      expect(node.manager.endpoint(id)).toEqual({ baseUrl: `http://127.0.0.1:${port}`, headers: {} });
      expect(node.manager.health?.()).toMatchObject({ ok: true });
      const res = await fetch(`http://127.0.0.1:${port}/service_output`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ source: 1, destination: 1, data: { hello: "world" }, requires_proof: false }),
      });
      expect(await res.json()).toMatchObject({ echo: { hello: "world" } });

      const info = await docker.getContainer(id).inspect();
      expect(info.Name).toBe(`/${id}`);
      expect(info.Config.Labels[LABEL_MANAGED]).toBe("true");
      expect(info.Config.Labels[LABEL_HASH]).toMatch(/^[0-9a-f]{32}$/);
      expect(info.HostConfig.RestartPolicy).toEqual({ Name: "on-failure", MaximumRetryCount: 5 });
      expect(info.HostConfig.Init).toBe(true);
      // Published on loopback only (the reference used 0.0.0.0).
      expect(info.HostConfig.PortBindings).toEqual({
        "3000/tcp": [{ HostIp: "127.0.0.1", HostPort: String(port) }],
      });
      expect(logs.some((r) => r.msg === `Started new container '${id}' on port ${port}`)).toBe(true);
      // No registry here: the pull failed and the local image was used, with the registry error logged.
      const fallback = logs.find((r) => r.msg === `Image ${ECHO_IMAGE} already exists locally`);
      expect(fallback?.pull_error).toBeString();
    } finally {
      await node.stop();
    }
  });

  test("behavior: the service port is not reachable on the host's other addresses", async () => {
    const id = run.name("loopback");
    const port = freePort();
    const node = await start({ containers: [echo(id, port)] });
    try {
      const external = Object.values(networkInterfaces())
        .flat()
        .find((nic) => nic && nic.family === "IPv4" && !nic.internal)?.address;
      expect(external).toBeString();
      expect((await fetch(`http://127.0.0.1:${port}/`)).status).toBe(200);
      const direct = await fetch(`http://${external}:${port}/`, { signal: AbortSignal.timeout(3000) }).then(
        () => "reached",
        () => "refused",
      );
      expect(direct).toBe("refused");
    } finally {
      await node.stop();
    }
  });

  test("behavior: env, command, volumes and the init process are honoured inside the container", async () => {
    const id = run.name("settings");
    const port = freePort();
    const dir = mkdtempSync(join(tmpdir(), "infernet-vol-"));
    writeFileSync(join(dir, "hello.txt"), "from the host\n");
    const node = await start({
      containers: [
        echo(id, port, {
          env: { GREETING: "hi there", FLAG: true, COUNT: 7 },
          command: `--mode 'two words' "double \\"quoted\\"" plain\\ escaped`,
          volumes: [`${dir}:/data:ro`],
        }),
      ],
    });
    try {
      const base = node.manager.endpoint(id)?.baseUrl;
      const env = (await getJson(`${base}/env`)) as Record<string, string>;
      expect(env).toMatchObject({ GREETING: "hi there", FLAG: "True", COUNT: "7" });
      const argv = (await getJson(`${base}/argv`)) as string[];
      expect(argv.slice(-4)).toEqual(["--mode", "two words", 'double "quoted"', "plain escaped"]);
      expect(await (await fetch(`${base}/file?path=/data/hello.txt`)).text()).toBe("from the host\n");
      expect(await getJson(`${base}/pid1`)).toMatchObject({ init: true });
    } finally {
      await node.stop();
    }
  });

  test("behavior: a matching container is reused, a changed one is replaced", async () => {
    const id = run.name("reuse");
    const port = freePort();
    const first = await start({ containers: [echo(id, port, { env: { V: "1" } })] });
    const firstId = (await docker.getContainer(id).inspect()).Id;
    // Still running: the next node adopts it as is.
    const second = await start({ containers: [echo(id, port, { env: { V: "1" } })] });
    expect((await docker.getContainer(id).inspect()).Id).toBe(firstId);
    expect(logs.some((r) => r.msg === `Using running container '${id}' on port ${port}`)).toBe(true);
    await second.stop();
    await first.stop();
    expect((await docker.getContainer(id).inspect()).State.Running).toBe(false);

    // Stopped but matching: started again, same container.
    const third = await start({ containers: [echo(id, port, { env: { V: "1" } })] });
    expect((await docker.getContainer(id).inspect()).Id).toBe(firstId);
    expect(third.manager.statuses()[0]?.ready).toBe(true);
    await third.stop();

    // The env changed: replaced by a new container that has the new env.
    const fourth = await start({ containers: [echo(id, port, { env: { V: "2" } })] });
    try {
      const info = await docker.getContainer(id).inspect();
      expect(info.Id).not.toBe(firstId);
      expect(info.Config.Env).toContain("V=2");
      expect(logs.some((r) => r.msg === `Replacing container '${id}': its configuration changed`)).toBe(true);
      expect(fourth.manager.statuses()[0]?.ready).toBe(true);
    } finally {
      await fourth.stop();
    }
  });

  test("behavior: setup waits until the service answers HTTP, and reports one that never does", async () => {
    const slow = run.name("slow");
    const deaf = run.name("deaf");
    const slowPort = freePort();
    const deafPort = freePort();
    const node = await start({
      container_ready_timeout: 3,
      containers: [
        echo(slow, slowPort, { env: { STARTUP_DELAY_MS: 1500 } }),
        // Listens on the wrong port inside: the published port never answers.
        echo(deaf, deafPort, { env: { PORT: 4000 } }),
      ],
    });
    try {
      // Right after setup the slow one answers: readiness waited for it, not a fixed sleep.
      expect((await fetch(`http://127.0.0.1:${slowPort}/`)).status).toBe(200);
      const [slowStatus, deafStatus] = node.manager.statuses();
      expect(slowStatus).toMatchObject({ id: slow, state: "ready", ready: true });
      expect(deafStatus).toMatchObject({ id: deaf, state: "starting", ready: false });
      expect(node.manager.health?.()).toMatchObject({ ok: false });
      expect(String(node.manager.health?.().detail)).toContain(deaf);
      const complete = logs.find(
        (r) =>
          r.msg === "Container manager setup complete" && Array.isArray(r.ready) && r.ready.includes(slow),
      );
      expect(complete?.not_ready).toEqual([deaf]);
    } finally {
      await node.stop();
    }
  });

  test("behavior: a container that keeps crashing at start is reported without waiting for the whole timeout", async () => {
    const id = run.name("crash");
    const node = await start({
      container_ready_timeout: 120,
      containers: [echo(id, freePort(), { env: { EXIT_BEFORE_LISTEN: 1, EXIT_CODE: 3 } })],
    });
    try {
      const [status] = node.manager.statuses();
      expect(status?.ready).toBe(false);
      const complete = logs.find(
        (r) =>
          r.msg === "Container manager setup complete" &&
          Array.isArray(r.not_ready) &&
          r.not_ready.includes(id),
      );
      expect(complete).toBeDefined();
      expect(logs.some((r) => r.id === id && String(r.reason).includes("exit code 3"))).toBe(true);
    } finally {
      await node.stop();
    }
  });

  test("behavior: a container killed from outside is reported and comes back", async () => {
    const id = run.name("kill");
    const port = freePort();
    const node = await start({ containers: [echo(id, port)] });
    try {
      await docker.getContainer(id).kill();
      await waitFor("the failure to be reported", () => node.manager.statuses()[0]?.state === "stopped");
      expect(node.manager.statuses()[0]?.detail).toContain("137");
      expect(node.manager.health?.().ok).toBe(false);
      await waitFor("the container to come back", () => node.manager.statuses()[0]?.ready);
      expect((await docker.getContainer(id).inspect()).State.Running).toBe(true);
      expect((await fetch(`http://127.0.0.1:${port}/`)).status).toBe(200);
      // Every failure is logged with the id and the reason (a probe may notice the dead port before the event).
      const failures = logs.filter(
        (r) => r.id === id && r.level === "warn" && r.msg.includes("failed / exited / crashed"),
      );
      expect(failures.some((r) => String(r.reason).includes("137"))).toBe(true);
      expect(logs.some((r) => r.msg === `Container '${id}' back up`)).toBe(true);
    } finally {
      await node.stop();
    }
  });

  test("behavior: a container removed from under the node is recreated", async () => {
    const id = run.name("removed");
    const port = freePort();
    const node = await start({ containers: [echo(id, port)] });
    try {
      const before = (await docker.getContainer(id).inspect()).Id;
      await docker.getContainer(id).remove({ force: true });
      await waitFor("the removal to be reported", () => node.manager.statuses()[0]?.state !== "ready");
      await waitFor("the container to be recreated", () => node.manager.statuses()[0]?.ready);
      const after = await docker.getContainer(id).inspect();
      expect(after.Id).not.toBe(before);
      expect(after.State.Running).toBe(true);
      expect(logs.some((r) => r.msg === `Recreating container '${id}'`)).toBe(true);
    } finally {
      await node.stop();
    }
  });

  test("behavior: shutdown stops every managed container and keeps them for the next start", async () => {
    const ids = [run.name("stop-a"), run.name("stop-b"), run.name("stop-c")];
    const node = await start({ containers: ids.map((id) => echo(id, freePort())) });
    expect(node.manager.statuses().every((s) => s.ready)).toBe(true);
    await node.stop();
    for (const id of ids) {
      const info = await docker.getContainer(id).inspect();
      expect(info.State.Running).toBe(false);
    }
    expect(node.manager.statuses().map((s) => s.state)).toEqual(["stopped", "stopped", "stopped"]);
    expect(
      logs.filter(
        (r) => typeof r.msg === "string" && ids.some((id) => r.msg === `Stopped container '${id}'`),
      ),
    ).toHaveLength(3);
  });
});
