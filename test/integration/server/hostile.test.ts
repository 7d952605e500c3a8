// Hostile input through the release binary: 10,000 generated requests (a seeded generator, so a failure
// reproduces) on every body route — malformed JSON, wrong types, huge strings and arrays, deep nesting, lone
// surrogates, integers beyond 2^64, negative and fractional numbers, unknown fields, missing or wrong content
// types, oversize bodies — plus a slow-loris sender and many idle connections. Zero 5xx, every error reply JSON
// with an `error`, the node still serving and its memory back near where it started. Loopback only.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { connect, type Socket } from "node:net";
import { residentKb } from "../../fixtures/proc-status.ts";
import { type NodeFixture, startNode } from "./node-process.ts";

const REQUESTS = 10_000;
const CONCURRENCY = 32;
const MAX_BODY = 256 * 1024;
let f: NodeFixture;
let url = "";

beforeAll(async () => {
  f = await startNode("hostile", {
    store: "embedded",
    extra: { server: { max_body_bytes: MAX_BODY } },
  });
  url = f.node.url;
}, 180_000);

afterAll(async () => {
  await f?.[Symbol.asyncDispose]();
});

/** Mulberry32: small, seeded, good enough to vary inputs reproducibly. */
function rng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    int: (n: number) => Math.floor(next() * n),
    pick: <T>(items: readonly T[]) => items[Math.floor(next() * items.length)] as T,
  };
}

type Gen = ReturnType<typeof rng>;

/** A value of a random hostile kind (as JSON text). */
function hostileValue(r: Gen, depth = 0): string {
  const kinds = [
    () => "null",
    () => "true",
    () => String(r.int(1000) - 500),
    () => `${r.int(1e6)}.${r.int(1000)}`, // fractional
    () => "-1",
    () => "18446744073709551617", // 2^64 + 1
    () => "-1e400",
    () => `"${"x".repeat(r.int(4) === 0 ? 100_000 : 10)}"`,
    () => '"\\ud800"', // lone surrogate
    () => '"\\udfff\\ud800"',
    () => `[${Array.from({ length: r.int(4) === 0 ? 5_000 : 3 }, () => "1").join(",")}]`,
    () => `${"[".repeat(600)}${"]".repeat(600)}`, // deeper than the 512-level bound
    () => (depth < 3 ? `{"k":${hostileValue(r, depth + 1)}}` : "{}"),
    () => '"0x"',
    () => `"${"0x".padEnd(42, "f")}"`,
  ];
  return r.pick(kinds)();
}

/** A whole body: valid-looking shapes with hostile fields, or broken JSON. */
function hostileBody(r: Gen, containers: string[]): string {
  const field = () => hostileValue(r);
  const shapes = [
    () => `{"containers":${field()},"data":${field()}}`,
    () => `{"containers":["${r.pick(containers)}"],"data":${field()},"requires_proof":${field()}}`,
    () =>
      `{"containers":["${r.pick(containers)}"],"data":{"x":1},"unknown":${field()},"id":"mine","ip":"1.2.3.4"}`,
    () => `{"subscription":${field()},"signature":${field()},"data":{}}`,
    () =>
      `{"subscription":{"owner":${field()},"active_at":${field()},"period":${field()},"frequency":1,"redundancy":1,"containers":${field()},"lazy":false,"verifier":${field()},"payment_amount":${field()},"payment_token":${field()},"wallet":${field()}},"signature":{"nonce":${field()},"expiry":${field()},"v":${field()},"r":${field()},"s":${field()}},"data":{}}`,
    () => `{"type":${field()},"containers":["${r.pick(containers)}"],"data":{}}`,
    () => `[${field()},${field()}]`,
    () => `{"containers":["${r.pick(containers)}"],"data":{"a":1}`, // truncated
    () => "{'containers': ['x']}", // Python repr
    () => "",
    () => "\u0000\u0001\u0002",
    () => `{"id":${field()},"status":${field()},"containers":${field()}}`,
    () => `"${"y".repeat(MAX_BODY)}"`, // over max_body_bytes
  ];
  return r.pick(shapes)();
}

const CONTENT_TYPES = [
  "application/json",
  "application/json; charset=utf-8",
  "text/plain",
  "application/x-www-form-urlencoded",
  "",
  "application/json; charset=latin1",
] as const;

interface Outcome {
  status: number;
  contentType: string;
  body: string;
  route: string;
}

async function send(r: Gen, containers: string[]): Promise<Outcome> {
  const route = r.pick([
    "POST /api/jobs",
    "POST /api/jobs/batch",
    "POST /api/jobs/stream",
    "PUT /api/status",
    "GET /api/jobs",
  ] as const);
  const [method, path] = route.split(" ") as [string, string];
  const headers: Record<string, string> = {};
  const type = r.pick(CONTENT_TYPES);
  if (type) headers["content-type"] = type;
  let target = `${url}${path}`;
  let body: string | undefined;
  if (method === "GET") {
    const q = [
      "id=%ZZ",
      `id=${"a".repeat(5_000)}`,
      "pending=maybe",
      "intermediate=1",
      "id=",
      "id=x&id=y&id=\u00e9",
    ];
    target += `?${r.pick(q)}`;
  } else {
    body = hostileBody(r, containers);
  }
  const res = await fetch(target, { method, headers, ...(body === undefined ? {} : { body }) });
  const text = await res.text();
  return { status: res.status, contentType: res.headers.get("content-type") ?? "", body: text, route };
}

/** The node's resident memory in KiB (it is running: a missing reading is a test failure). */
function rssKb(pid: number): number {
  const kb = residentKb(pid);
  if (kb === undefined) throw new Error(`no VmRSS for pid ${pid}`);
  return kb;
}

describe("hostile input through the binary", () => {
  test(`error: ${REQUESTS} generated hostile requests: no 5xx, every error JSON with an error, memory back`, async () => {
    const pid = f.node.pid();
    if (pid === undefined) throw new Error("node not running");
    const containers = [f.ids.echo, f.ids.echo2, f.ids.inner, "nope"];
    const r = rng(20261204);
    const before = rssKb(pid);
    const bad: Outcome[] = [];
    const statuses = new Map<number, number>();
    let sent = 0;
    const worker = async () => {
      while (sent < REQUESTS) {
        sent++;
        const outcome = await send(r, containers);
        statuses.set(outcome.status, (statuses.get(outcome.status) ?? 0) + 1);
        const isError = outcome.status >= 400;
        const jsonError = (() => {
          try {
            const parsed = JSON.parse(outcome.body) as { error?: unknown };
            return typeof parsed.error === "string";
          } catch {
            return false;
          }
        })();
        if (outcome.status >= 500 || (isError && (!outcome.contentType.includes("json") || !jsonError))) {
          if (bad.length < 10) bad.push({ ...outcome, body: outcome.body.slice(0, 300) });
          else bad.length++;
        }
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    console.log(`statuses: ${JSON.stringify(Object.fromEntries(statuses))}`);
    expect(bad).toEqual([]);
    expect([...statuses.values()].reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(REQUESTS);
    expect((await fetch(`${url}/health`)).status).toBe(200);
    // Memory: back near where it started once the jobs it accepted are done (a generous bound: no leak of the
    // 10,000 bodies, some of them 100 KB+).
    Bun.gc(true);
    await Bun.sleep(2_000);
    const after = rssKb(pid);
    console.log(`RSS before ${before} kB, after ${after} kB`);
    expect(after - before).toBeLessThan(128 * 1024);
  }, 300_000);

  test("behavior: a slow-loris sender and 200 idle connections do not stop the node from serving", async () => {
    const { hostname, port } = new URL(url);
    const sockets: Socket[] = [];
    const open = () =>
      new Promise<Socket>((resolve, reject) => {
        const socket = connect({ host: hostname, port: Number(port) }, () => resolve(socket));
        socket.on("error", reject);
        sockets.push(socket);
      });
    try {
      for (let i = 0; i < 200; i++) await open();
      const loris = await open();
      loris.on("error", () => {});
      loris.write(
        "POST /api/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{",
      );
      const drip = setInterval(() => {
        if (!loris.destroyed) loris.write('"');
      }, 100);
      try {
        for (let i = 0; i < 20; i++) {
          const res = await fetch(`${url}/health`);
          expect(res.status).toBe(200);
          const job = await fetch(`${url}/api/jobs`, {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: JSON.stringify({ containers: [f.ids.echo], data: { i } }),
          });
          expect(job.status).toBe(200);
          await Bun.sleep(50);
        }
      } finally {
        clearInterval(drip);
      }
    } finally {
      for (const socket of sockets) socket.destroy();
    }
  }, 120_000);
});
