// The native Bun.serve routes of createServerApp (POST and GET /api/jobs) against the same app served by
// hono alone: the same request sequence to both servers must give the same reply bytes (Date aside, and the
// fresh job id), through client resolution (a trusted proxy's X-Forwarded-For), rate limiting, body limits,
// the guardian, and the methods that fall through to hono.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { connect } from "node:net";
import { buildRuleTable } from "../../../src/guardian/rules.ts";
import { createLog } from "../../../src/lib/log.ts";
import type { Service } from "../../../src/lib/service.ts";
import { createOrchestrator } from "../../../src/orchestration/orchestrator.ts";
import { createServerApp } from "../../../src/server/app.ts";
import { createJobRunner, type JobRunner } from "../../../src/server/job-runner.ts";
import type { JobStore } from "../../../src/shared/jobs.ts";
import {
  makeConfig,
  openTestStore,
  type StubContainer,
  startStubContainer,
  staticDirectory,
} from "./fixtures.ts";

let stub: StubContainer;
let store: JobStore & Service;
let runner: JobRunner;
const servers: ReturnType<typeof Bun.serve>[] = [];
let nativePort = 0;
let honoPort = 0;

beforeAll(async () => {
  stub = startStubContainer("a");
  const config = makeConfig({
    containers: [{ id: "a" }],
    server: {
      rate_limit: { num_requests: 3, period: 60 },
      max_body_bytes: 256,
      trusted_proxies: ["127.0.0.1"],
    },
  });
  const log = createLog("rest");
  const directory = staticDirectory({ a: stub.url });
  store = await openTestStore(config);
  const orchestrator = createOrchestrator({ directory, jobTimeoutMs: 10_000, log });
  runner = createJobRunner({ store, orchestrator, stream: { directory, streamTimeoutMs: 10_000 }, log });
  // Two apps (so two rate limiters) over the same parts: one served with its native routes, one by hono only.
  const deps = {
    config,
    log,
    store,
    directory,
    orchestrator,
    runner,
    rules: buildRuleTable(config.containers),
    chain: { enabled: false, address: () => "" },
    health: () => ({}),
  };
  const native = createServerApp(deps);
  const hono = createServerApp(deps).app;
  const withNative = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    development: false,
    routes: native.routes,
    fetch: (req, srv) => native.app.fetch(req, { server: srv }),
  });
  const honoOnly = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    development: false,
    fetch: (req, srv) => hono.fetch(req, { server: srv }),
  });
  servers.push(withNative, honoOnly);
  nativePort = withNative.port ?? 0;
  honoPort = honoOnly.port ?? 0;
});

afterAll(async () => {
  for (const server of servers) await server.stop(true);
  await runner.drain(5_000);
  await store.close();
  await stub[Symbol.asyncDispose]();
});

/** The raw reply bytes of one request on its own connection, without the Date line. */
function exchange(port: number, head: string, body = ""): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1", () => {
      socket.write(
        `${head}\r\nHost: node\r\nConnection: close\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
      );
    });
    let reply = "";
    socket.setEncoding("utf8");
    socket.on("data", (chunk: string) => {
      reply += chunk;
    });
    socket.on("error", reject);
    socket.on("end", () => resolve(reply.replace(/^Date: .*\r\n/im, "")));
  });
}

const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g;

describe("native /api/jobs routes", () => {
  test("behavior: replies are byte-identical to the hono routes", async () => {
    const json = "Content-Type: application/json";
    const from = (ip: string) => `X-Forwarded-For: 198.51.100.9, ${ip}`;
    const valid = JSON.stringify({ containers: ["a"], data: { x: 1 } });
    const requests: [string, string?][] = [
      [`POST /api/jobs HTTP/1.1\r\nContent-Type: text/plain\r\n${from("10.0.0.1")}`, "{}"],
      [`POST /api/jobs HTTP/1.1\r\n${json}\r\n${from("10.0.0.1")}`, `{"pad":"${"x".repeat(300)}"}`],
      [`POST /api/jobs HTTP/1.1\r\n${json}\r\n${from("10.0.0.1")}`, "{bad"],
      // 10.0.0.1 has used its burst of 3: refused with Retry-After.
      [`POST /api/jobs HTTP/1.1\r\n${json}\r\n${from("10.0.0.1")}`, valid],
      [`POST /api/jobs HTTP/1.1\r\n${json}\r\n${from("10.0.0.2")}`, valid],
      [`POST /api/jobs HTTP/1.1\r\n${json}\r\n${from("10.0.0.2")}`, '{"containers":["nope"],"data":{}}'],
      [`POST /api/jobs HTTP/1.1\r\n${json}\r\n${from("10.0.0.2")}`, "[1]"],
      [`GET /api/jobs?id=missing&id=other&intermediate=true HTTP/1.1\r\n${from("10.0.0.3")}`],
      [`GET /api/jobs?pending=true HTTP/1.1\r\n${from("10.0.0.3")}`],
      [`GET /api/jobs HTTP/1.1\r\n${from("10.0.0.3")}`],
      [`GET /api/jobs?id=x HTTP/1.1\r\n${from("10.0.0.3")}`],
      [`HEAD /api/jobs HTTP/1.1\r\n${from("10.0.0.4")}`],
      [`PUT /api/jobs HTTP/1.1\r\n${from("10.0.0.4")}`],
      ["OPTIONS /api/jobs HTTP/1.1"],
      ["GET /api/jobs/ HTTP/1.1"],
      ["GET /api/jobs?id=y HTTP/1.1"],
    ];
    for (const [head, body] of requests) {
      const [native, hono] = await Promise.all([
        exchange(nativePort, head, body),
        exchange(honoPort, head, body),
      ]);
      expect(native.replace(UUID, "<id>")).toBe(hono.replace(UUID, "<id>"));
    }
    // The sequence did reach every kind of reply (not, say, a 400 for everything).
    const refused = await exchange(nativePort, `GET /api/jobs HTTP/1.1\r\n${from("10.0.0.3")}`);
    expect(refused).toStartWith("HTTP/1.1 429");
    expect(refused).toContain("Retry-After: ");
    expect(refused).toContain('{"error":"Too many requests","params":{"limit":3,"period":60,"retry_after":');
  });
});
