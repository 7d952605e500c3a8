// The Container Manager against a stand-in Docker engine on a unix socket (injected at the client edge): the
// cases a real engine cannot be made to show on demand — a hung engine, a registry that checks credentials, a
// foreign container appearing under our name — and proof of which requests reach the engine at all.
import { afterAll, describe, expect, test } from "bun:test";
import type Docker from "dockerode";
import { StartupError } from "../../../src/lib/errors.ts";
import { addLogSink, createLog, type LogRecord } from "../../../src/lib/log.ts";
import { createContainers } from "../../../src/orchestration/docker/containers.ts";
import { desiredContainer, LABEL_HASH, LABEL_MANAGED } from "../../../src/orchestration/docker/spec.ts";
import { type EngineRequest, type StandInEngine, standInEngine, testConfig } from "../../fixtures/docker.ts";
import { freePort, waitFor } from "../../fixtures/net.ts";

const records: LogRecord[] = [];
const removeSink = addLogSink((record) => records.push(record));
afterAll(() => removeSink());

const IMAGE = "acme/svc:1";
const IMAGE_ID = "sha256:0123456789ab";

/** What the stand-in engine knows: the one container it holds, and whether it has stopped answering. */
interface EngineState {
  container: Record<string, unknown> | undefined;
  hung: boolean;
  /** Ends the open event stream from the engine's side. */
  dropEvents?: () => void;
}

/** An engine holding one running container named `id`, created by infernet-node from `config` (same hash). */
function engineWithContainer(config: ReturnType<typeof testConfig>): {
  engine: StandInEngine;
  state: EngineState;
  ours: Record<string, unknown>;
} {
  const container = config.containers[0];
  if (!container) throw new Error("one container expected");
  const { hash } = desiredContainer(container, { bindAddress: config.container_bind_address });
  const ours = {
    Id: "c0ffee",
    Name: `/${container.id}`,
    Image: IMAGE_ID,
    Config: { Labels: { [LABEL_MANAGED]: "true", [LABEL_HASH]: hash } },
    State: { Running: true, Status: "running", ExitCode: 0 },
  };
  const state: EngineState = { container: ours, hung: false };
  const never = () => new Promise<Response>(() => {});
  const engine = standInEngine((req: EngineRequest) => {
    const { method, path } = req;
    if (path === "/_ping") return new Response("OK");
    if (method === "POST" && path === "/images/create")
      return new Response(`${JSON.stringify({ status: `Status: Image is up to date for ${IMAGE}` })}\n`);
    if (method === "GET" && path === `/images/${IMAGE}/json`) return Response.json({ Id: IMAGE_ID });
    // The event stream opens (a blank line gets the headers out) and stays quiet; a hung engine drops it and
    // never answers the reconnect.
    if (path === "/events") {
      if (state.hung) return never();
      const stream = new ReadableStream<Uint8Array>({
        start: (controller) => {
          controller.enqueue(new TextEncoder().encode("\n"));
          state.dropEvents = () => controller.close();
        },
      });
      return new Response(stream);
    }
    if (method === "GET" && path === `/containers/${container.id}/json`) {
      if (state.hung) return never();
      return state.container
        ? Response.json(state.container)
        : Response.json({ message: "No such container" }, { status: 404 });
    }
    if (method === "POST" && path.endsWith("/stop"))
      return state.hung ? never() : new Response(null, { status: 204 });
    return Response.json({ message: "not implemented" }, { status: 404 });
  });
  return { engine, state, ours };
}

/** Sets a manager up against `engine` and starts its run loop, as runServices would. */
async function start(config: ReturnType<typeof testConfig>, factory: () => Docker) {
  const manager = createContainers({
    config,
    log: createLog("stand-in-engine-test"),
    host: "127.0.0.1",
    docker: factory,
    checkIntervalMs: 50,
    dockerTimeoutMs: 200,
    stopTimeoutS: 1,
    progress: { isTTY: false, write: () => {} },
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

/** A stand-in for the service inside the container, on the port the manager probes. */
function service(port: number) {
  return Bun.serve({ hostname: "127.0.0.1", port, fetch: () => Response.json({ status: "ok" }) });
}

describe("container manager against a stand-in engine", () => {
  test("behavior: a hung engine is reported as not responding and does not stall the periodic check", async () => {
    const port = freePort();
    const svc = service(port);
    const config = testConfig({ containers: [{ id: "svc", image: IMAGE, port }] });
    const { engine, state } = engineWithContainer(config);
    const node = await start(config, engine.factory);
    const inspects = () => engine.requests.filter((r) => r.path === "/containers/svc/json").length;
    try {
      await waitFor("the container to be ready", () => node.manager.statuses()[0]?.ready);
      expect(node.manager.health?.()).toMatchObject({ ok: true });

      state.hung = true;
      state.dropEvents?.();
      await waitFor("the engine to be reported", () => node.manager.health?.().ok === false);
      const health = node.manager.health?.();
      expect(String(health?.detail)).toStartWith(
        "Docker engine not responding: inspect container 'svc': the Docker engine did not reply within 200 ms",
      );
      // The loop keeps going: more inspects are sent (and time out) while the engine stays hung.
      const seen = inspects();
      await waitFor("further checks", () => inspects() >= seen + 2);

      state.hung = false;
      await waitFor("the engine to be healthy again", () => node.manager.health?.().ok === true);
      // The event stream, dropped while the engine hung, is open again (its reopen attempts had a deadline).
      await waitFor("the event stream to reopen", () => node.manager.health?.().events === "connected");

      // Shutdown against a hung engine (event stream reconnect included) ends within the stop deadline
      // (1 s + 200 ms), not never.
      state.hung = true;
      state.dropEvents?.();
      await waitFor(
        "the event stream to reconnect",
        () => engine.requests.filter((r) => r.path === "/events").length >= 3,
      );
      const stopping = Date.now();
      await node.stop();
      expect(Date.now() - stopping).toBeLessThan(4000);
      expect(engine.requests.some((r) => r.method === "POST" && r.path === "/containers/c0ffee/stop")).toBe(
        true,
      );
    } finally {
      svc.stop(true);
      engine.stop();
    }
  });

  test("behavior: a container under our name that infernet-node did not create is reported and never removed", async () => {
    const port = freePort();
    const svc = service(port);
    const config = testConfig({ containers: [{ id: "svc", image: IMAGE, port }] });
    const { engine, state } = engineWithContainer(config);
    const node = await start(config, engine.factory);
    try {
      await waitFor("the container to be ready", () => node.manager.statuses()[0]?.ready);
      // Somebody removes ours and runs their own container under the same name.
      const before = engine.requests.length;
      state.container = {
        Id: "f0reign",
        Name: "/svc",
        Image: "sha256:other",
        Config: { Labels: { "com.example.owner": "operator" } },
        State: { Running: true, Status: "running", ExitCode: 0 },
      };
      await waitFor(
        "the foreign container to be reported",
        () => node.manager.statuses()[0]?.state === "missing",
      );
      expect(node.manager.statuses()[0]?.detail).toBe(
        "a container that infernet-node did not create took its name; left alone: remove or rename it (docker rm -f svc)",
      );
      // Several more checks happen; none of them removes, creates or starts anything.
      await Bun.sleep(300);
      const after = engine.requests.slice(before);
      expect(after.filter((r) => r.path === "/containers/svc/json").length).toBeGreaterThanOrEqual(3);
      expect(after.filter((r) => r.method !== "GET")).toEqual([]);
    } finally {
      await node.stop();
      svc.stop(true);
      engine.stop();
    }
  });

  test("behavior: registry credentials reach the engine in X-Registry-Auth and never reach a log", async () => {
    const password = "s3cret-Registry-pw";
    const from = records.length;
    // The registry refuses, and the engine's error even repeats the password.
    const engine = standInEngine((req) => {
      if (req.path === "/_ping") return new Response("OK");
      if (req.method === "POST" && req.path === "/images/create") {
        const message = `unauthorized: incorrect username or password (hub-user:${password})`;
        return new Response(`${JSON.stringify({ errorDetail: { message }, error: message })}\n`);
      }
      return Response.json({ message: "No such image" }, { status: 404 });
    });
    try {
      const config = testConfig({
        docker: { username: "hub-user", password, server_address: "" },
        containers: [{ id: "private", image: "acme/private:2", port: freePort() }],
      });
      const manager = createContainers({
        config,
        log: createLog("stand-in-engine-test"),
        host: "127.0.0.1",
        docker: engine.factory,
        progress: { isTTY: false, write: () => {} },
      });
      const error = await manager.setup?.(new AbortController().signal).then(
        () => undefined,
        (e: unknown) => e,
      );
      await manager.close?.();
      expect(error).toBeInstanceOf(StartupError);

      const pull = engine.requests.find((r) => r.method === "POST" && r.path === "/images/create");
      expect(pull?.search.get("fromImage")).toBe("acme/private");
      const header = pull?.headers.get("x-registry-auth") ?? "";
      const decoded = JSON.parse(Buffer.from(header, "base64url").toString("utf8"));
      expect(decoded).toEqual({
        username: "hub-user",
        password,
        serveraddress: "https://index.docker.io/v1/",
      });

      // The pull failure is logged and reported, without the password.
      const logged = records.slice(from);
      expect(logged.some((r) => r.msg === "Error pulling image acme/private:2")).toBe(true);
      for (const record of logged) expect(JSON.stringify(record)).not.toContain(password);
      expect((error as StartupError).message).not.toContain(password);
    } finally {
      engine.stop();
    }
  });

  test("behavior: with no containers, managed mode makes no Docker call at all", async () => {
    const engine = standInEngine();
    let constructed = 0;
    const factory = () => {
      constructed++;
      return engine.factory();
    };
    try {
      const node = await start(testConfig({ manage_containers: true, containers: [] }), factory);
      await Bun.sleep(200);
      expect(node.manager.health?.()).toMatchObject({ ok: true, mode: "managed" });
      expect(node.manager.statuses()).toEqual([]);
      await node.stop();
      expect(constructed).toBe(0);
      expect(engine.requests).toEqual([]);
    } finally {
      engine.stop();
    }
  });
});
