// manage_containers: false — no Docker client is ever constructed; services are reached (and probed) over HTTP.
import { afterAll, describe, expect, test } from "bun:test";
import type Docker from "dockerode";
import { addLogSink, createLog, type LogRecord } from "../../../src/lib/log.ts";
import { createContainers } from "../../../src/orchestration/docker/containers.ts";
import { createRemoteContainers } from "../../../src/orchestration/docker/remote.ts";
import { testConfig } from "../../fixtures/docker.ts";
import { freePort, waitFor } from "../../fixtures/net.ts";

const logs: LogRecord[] = [];
const removeSink = addLogSink((record) => {
  if (record.component === "unmanaged-test") logs.push(record);
});
afterAll(() => removeSink());

/** A stand-in remote service that records the Authorization header of every request. */
function remoteService() {
  const seen: (string | null)[] = [];
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch(req) {
      seen.push(req.headers.get("authorization"));
      return Response.json({ status: "ok" });
    },
  });
  return { server, seen, url: `http://127.0.0.1:${server.port}` };
}

describe("unmanaged containers", () => {
  test("default", async () => {
    const remote = remoteService();
    let dockerCalls = 0;
    // createContainers hands this factory to the unmanaged backend too, so a Docker call there would count.
    const countingFactory = (): Docker => {
      dockerCalls++;
      throw new Error("unmanaged mode must not construct a Docker client");
    };
    const localPort = freePort();
    const config = testConfig({
      manage_containers: false,
      startup_wait: 30,
      containers: [
        { id: "remote", url: `${remote.url}/`, bearer: "remote-token-123" },
        { id: "local", port: localPort },
      ],
    });
    const containers = createContainers({
      config,
      log: createLog("unmanaged-test"),
      host: "127.0.0.1",
      docker: countingFactory,
      checkIntervalMs: 100,
    });
    const controller = new AbortController();
    // No startup_wait sleep in unmanaged mode (30 s configured above): setup returns at once.
    await containers.setup?.(controller.signal);
    expect(logs.some((r) => r.msg === "Skipping container manager setup, containers are not managed")).toBe(
      true,
    );
    const running = containers.run?.(controller.signal);
    try {
      expect(containers.endpoint("remote")).toEqual({
        baseUrl: remote.url,
        headers: { Authorization: "Bearer remote-token-123" },
      });
      expect(containers.endpoint("local")).toEqual({ baseUrl: `http://127.0.0.1:${localPort}`, headers: {} });
      expect(containers.endpoint("nope")).toBeUndefined();

      // The remote one answers (with the bearer token sent), the local port has nothing behind it.
      await waitFor("the probes", () => containers.statuses().every((s) => s.detail !== "not probed yet"));
      await waitFor("the remote probe", () => remote.seen.length > 0);
      expect(remote.seen[0]).toBe("Bearer remote-token-123");
      expect(containers.statuses()).toMatchObject([
        { id: "remote", state: "remote", ready: true, detail: "HTTP 200" },
        { id: "local", state: "remote", ready: false },
      ]);
      expect(containers.health?.()).toMatchObject({ ok: false, mode: "unmanaged" });

      // The remote service goes away: reported, with its id and the reason.
      remote.server.stop(true);
      await waitFor("the remote failure", () => containers.statuses()[0]?.ready === false);
      expect(logs.some((r) => r.msg === "Container not reachable" && r.id === "remote")).toBe(true);
    } finally {
      controller.abort();
      await running;
      await containers.close?.();
      remote.server.stop(true);
    }
    expect(dockerCalls).toBe(0);
  });

  test("behavior: any HTTP reply counts as alive, only no reply means down", async () => {
    // Services without a `/` handler: 404, 405, 500 are still answers from a running server.
    const statuses = [404, 405, 500];
    const services = statuses.map((status) =>
      Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response("no", { status }) }),
    );
    // Accepts the connection and never replies: down once the probe times out.
    const silent = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    const containers = createRemoteContainers({
      config: testConfig({
        manage_containers: false,
        containers: [
          ...services.map((service, i) => ({
            id: `s${statuses[i]}`,
            url: `http://127.0.0.1:${service.port}`,
          })),
          { id: "silent", url: `http://127.0.0.1:${silent.port}` },
          { id: "refused", port: freePort() },
        ],
      }),
      log: createLog("unmanaged-test"),
      host: "127.0.0.1",
      checkIntervalMs: 50,
      probeTimeoutMs: 300,
    });
    const controller = new AbortController();
    const running = containers.run?.(controller.signal);
    try {
      await waitFor("the probes", () => containers.statuses().every((s) => s.detail !== "not probed yet"));
      expect(containers.statuses()).toMatchObject([
        { id: "s404", ready: true, detail: "HTTP 404" },
        { id: "s405", ready: true, detail: "HTTP 405" },
        { id: "s500", ready: true, detail: "HTTP 500" },
        { id: "silent", ready: false, detail: "no reply within 300 ms" },
        { id: "refused", ready: false },
      ]);
      expect(String(containers.health?.().detail)).toStartWith("silent: no reply within 300 ms; refused: ");
    } finally {
      controller.abort();
      await running;
      for (const service of services) service.stop(true);
      silent.stop(true);
    }
  });
});
