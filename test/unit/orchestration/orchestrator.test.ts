import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createLog } from "../../../src/lib/log.ts";
import { createOrchestrator } from "../../../src/orchestration/orchestrator.ts";
import { JobLocation } from "../../../src/shared/messages.ts";
import { rawServer } from "../../fixtures/raw-http.ts";
import { type StubContainer, startStubContainer, staticDirectory } from "../server/fixtures.ts";

let stub: StubContainer;
const log = createLog("orchestrator");

beforeAll(() => {
  stub = startStubContainer("s");
});
afterAll(async () => {
  await stub[Symbol.asyncDispose]();
});

const offchain = (containers: string[], data: unknown, requiresProof = false) => ({
  containers,
  data,
  source: JobLocation.OFFCHAIN,
  destination: JobLocation.OFFCHAIN,
  requiresProof,
});

describe("orchestrator.run", () => {
  test("default", async () => {
    const o = createOrchestrator({ directory: staticDirectory({ s: stub.url }), jobTimeoutMs: 5000, log });
    const results = await o.run(offchain(["s"], { tag: "default" }));
    expect(results).toEqual([
      { container: "s", output: { container: "s", echo: { tag: "default" }, step: 1 } },
    ]);
    expect(stub.requests.at(-1)?.body).toBe(
      '{"source":1,"destination":1,"data":{"tag":"default"},"requires_proof":false}',
    );
    expect(o.counters().jobs.offchain).toEqual({ success: 1, failed: 0 });
  });

  test("behavior: 3-container on-chain pipeline payloads", async () => {
    const o = createOrchestrator({
      directory: staticDirectory({ x: stub.url, y: stub.url, z: stub.url }),
      jobTimeoutMs: 5000,
      log,
    });
    const before = stub.requests.length;
    let seen = 0;
    const run = o.run({
      containers: ["x", "y", "z"],
      data: "deadbeef",
      source: 0,
      destination: 0,
      requiresProof: true,
    });
    seen = o.pendingOnchain();
    const results = await run;
    expect(seen).toBe(1);
    expect(o.pendingOnchain()).toBe(0);
    const bodies = stub.requests.slice(before).map((r) => r.body);
    expect(bodies[0]).toBe('{"source":0,"destination":1,"data":"deadbeef","requires_proof":true}');
    expect(bodies[1]).toBe(
      '{"source":1,"destination":1,"data":{"container":"s","echo":"deadbeef","step":1},"requires_proof":true}',
    );
    expect(bodies[2]).toStartWith(
      '{"source":1,"destination":0,"data":{"container":"s","echo":{"container":"s"',
    );
    expect(results).toHaveLength(3);
    expect(o.counters().jobs.onchain.success).toBe(1);
  });

  test("behavior: bearer headers from the directory, HTTP 500 with JSON is an output, empty JSON is null", async () => {
    const o = createOrchestrator({
      directory: staticDirectory({ s: stub.url }, { Authorization: "Bearer sekret" }),
      jobTimeoutMs: 5000,
      log,
    });
    expect(await o.run(offchain(["s"], { status: 500 }))).toEqual([
      { container: "s", output: { code: "500" } },
    ]);
    expect(stub.requests.at(-1)?.headers.authorization).toBe("Bearer sekret");
    expect(await o.run(offchain(["s"], { empty: true }))).toEqual([{ container: "s", output: null }]);
  });

  test("error: a failure stops the pipeline and keeps earlier outputs", async () => {
    const o = createOrchestrator({
      directory: staticDirectory({ s: stub.url, t: stub.url }),
      jobTimeoutMs: 5000,
      log,
    });
    const before = stub.requests.length;
    const results = await o.run(offchain(["s", "t", "s"], { text: "plain words" }));
    expect(stub.requests.length - before).toBe(1);
    expect(results).toEqual([
      {
        container: "s",
        error: 'Container s replied with non-JSON content (HTTP 200, Content-Type "text/plain"): plain words',
      },
    ]);
    const invalid = await o.run(offchain(["s"], { invalid_json: true }));
    expect(invalid).toEqual([
      { container: "s", error: 'Container s replied with invalid JSON (HTTP 200): {"broken": ' },
    ]);
    expect(o.counters().jobs.offchain.failed).toBe(2);
    expect(o.counters().containers.s).toEqual({ success: 0, failed: 2 });
  });

  test("error: a container that takes the request whole and then drops the connection (killed mid-job)", async () => {
    using server = rawServer(() => "close");
    const o = createOrchestrator({
      directory: staticDirectory({ gone: server.url }),
      jobTimeoutMs: 5000,
      log,
    });
    expect(await o.run(offchain(["gone"], {}))).toEqual([
      {
        container: "gone",
        error:
          "Lost the connection to container gone before it replied (it stopped, crashed or was restarted during the job): the container closed the connection without replying",
      },
    ]);
    // Reached: the request arrived whole, once (not "Cannot reach", which points at the network).
    expect(server.requests).toHaveLength(1);
  });

  test("error: unreachable, timed out, unknown and cancelled", async () => {
    const o = createOrchestrator({
      directory: staticDirectory({ s: stub.url, dead: "http://127.0.0.1:1" }),
      jobTimeoutMs: 200,
      log,
    });
    const [dead] = await o.run(offchain(["dead"], {}));
    expect(dead && "error" in dead ? dead.error : "").toStartWith(
      "Cannot reach container dead at http://127.0.0.1:1/service_output: ",
    );
    expect(await o.run(offchain(["s"], { sleep_ms: 2000 }))).toEqual([
      { container: "s", error: "Container s did not reply within 0.2 s" },
    ]);
    expect(await o.run(offchain(["missing"], {}))).toEqual([
      { container: "missing", error: "Container missing is not available" },
    ]);
    const controller = new AbortController();
    const pending = o.run(offchain(["s"], { sleep_ms: 2000 }), controller.signal);
    controller.abort(new Error("the node is shutting down"));
    expect(await pending).toEqual([
      { container: "s", error: "Job cancelled before container s replied: the node is shutting down" },
    ]);
  });
});

describe("orchestrator.run: output bounds", () => {
  test("error: a reply nested deeper than 512 levels is a container error, not a later 500", async () => {
    const deep = `${"[".repeat(2000)}${"]".repeat(2000)}`;
    using server = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      fetch: () => new Response(deep, { headers: { "content-type": "application/json" } }),
    });
    const o = createOrchestrator({
      directory: staticDirectory({ deep: `http://127.0.0.1:${server.port}` }),
      jobTimeoutMs: 5000,
      log,
    });
    expect(await o.run(offchain(["deep"], {}))).toEqual([
      { container: "deep", error: "Container deep replied with JSON nested deeper than 512 levels" },
    ]);
  });
});
