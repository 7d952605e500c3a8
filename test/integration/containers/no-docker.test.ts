// The whole node, run from source, with DOCKER_HOST pointing at a stand-in engine that records every request:
// when it has no Docker work to do (containers not managed, or none configured) not one request reaches it.
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { repoRoot } from "../../fixtures/binary.ts";
import { standInEngine } from "../../fixtures/docker.ts";
import { freePort, waitFor } from "../../fixtures/net.ts";

const engine = standInEngine();
afterAll(() => engine.stop());

/**
 * Runs `bun run src/main.ts` with `overrides` on the sample config until /health and /info have answered, then
 * stops it with SIGTERM. Throws with the node's output when it exits on its own (a failed start-up).
 */
async function runNode(overrides: Record<string, unknown>) {
  const dir = mkdtempSync(join(tmpdir(), "infernet-nodocker-"));
  const port = freePort();
  const sample = JSON.parse(readFileSync(join(repoRoot, "config.sample.json"), "utf8"));
  const config = {
    ...sample,
    server: { ...sample.server, port, host: "127.0.0.1" },
    log: { ...sample.log, path: join(dir, "node.log") },
    store: { ...sample.store, path: join(dir, "jobs.sqlite") },
    ...overrides,
  };
  const path = join(dir, "config.json");
  writeFileSync(path, JSON.stringify(config));
  const proc = Bun.spawn(["bun", "run", join(repoRoot, "src/main.ts"), "--config", path], {
    cwd: dir,
    env: { ...process.env, DOCKER_HOST: `unix://${engine.socketPath}`, LOG_LEVEL: "info" },
    stdout: "pipe",
    stderr: "pipe",
  });
  const stderr = new Response(proc.stderr).text();
  const served = waitFor("GET /health", async () => {
    if (proc.exitCode !== null) return { exited: proc.exitCode };
    const res = await fetch(`http://127.0.0.1:${port}/health`);
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  });
  const health = await served.catch((error: unknown) => ({ error }));
  if (!("status" in health)) {
    proc.kill("SIGKILL");
    await proc.exited;
    throw new Error(`the node did not serve /health (${JSON.stringify(health)}): ${await stderr}`);
  }
  const info = (await (await fetch(`http://127.0.0.1:${port}/info`)).json()) as {
    containers: { id: string }[];
  };
  proc.kill("SIGTERM");
  expect(await proc.exited).toBe(0);
  return { health, info };
}

describe("a node without Docker work", () => {
  test("behavior: manage_containers false makes no Docker request", async () => {
    const echo = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => Response.json({ status: "ok" }) });
    try {
      const before = engine.requests.length;
      const { health, info } = await runNode({
        manage_containers: false,
        containers: [{ id: "remote", url: `http://127.0.0.1:${echo.port}` }],
      });
      expect(health.status).toBe(200);
      expect(health.body).toMatchObject({ status: "healthy", checks: { containers: { mode: "unmanaged" } } });
      expect(info.containers.map((c) => c.id)).toEqual(["remote"]);
      expect(engine.requests.slice(before)).toEqual([]);
    } finally {
      echo.stop(true);
    }
  });

  test("behavior: managed mode with no containers makes no Docker request", async () => {
    const before = engine.requests.length;
    const { health } = await runNode({ manage_containers: true, containers: [] });
    expect(health.status).toBe(200);
    expect(health.body).toMatchObject({ status: "healthy", checks: { containers: { mode: "managed" } } });
    expect(engine.requests.slice(before)).toEqual([]);
  });

  test("behavior: the stand-in engine does record a node's Docker requests", async () => {
    // Proves the two tests above can fail: a managed container makes the node talk to DOCKER_HOST.
    const before = engine.requests.length;
    const error = await runNode({
      manage_containers: true,
      containers: [{ id: "echo", image: "infernet-echo:latest", port: freePort() }],
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Error);
    expect(engine.requests.slice(before).map((r) => r.path)).toContain("/_ping");
  });
});
