// The REST job routes on a Redis that is up but refusing writes (at its memory limit with noeviction, or a
// read-only replica) or down: a job that cannot be stored is refused with a 503 within the write deadline
// (2 s), a completed job can still be read, and a batch during an outage answers within one deadline.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { waitFor, within } from "../../fixtures/net.ts";
import { type PrivateRedis, startPrivateRedis, uniqueKeyPrefix } from "../../fixtures/redis.ts";
import {
  jsonInit,
  makeConfig,
  makeTestApp,
  type StubContainer,
  startStubContainer,
  staticDirectory,
  type TestApp,
  waitForJob,
} from "../../unit/server/fixtures.ts";

/** The default write deadline (writeWaitMs) of the Redis store; assertions add generous slack to it. */
const WRITE_WAIT_MS = 2_000;
const SLACK_MS = 10_000;
const TIMEOUT_MS = 60_000;

let stub: StubContainer;
beforeAll(() => {
  stub = startStubContainer("echo");
});
afterAll(async () => {
  await stub[Symbol.asyncDispose]();
});

function appOn(redis: { host: string; port: number }, keyPrefix: string): Promise<TestApp> {
  const config = makeConfig({
    containers: [{ id: "echo", image: "echo:latest", url: stub.url }],
    redis: { host: redis.host, port: redis.port, key_prefix: keyPrefix },
  });
  return makeTestApp(config, staticDirectory({ echo: stub.url }));
}

async function submit(t: TestApp): Promise<Response> {
  return t.request("/api/jobs", jsonInit("POST", { containers: ["echo"], data: { n: 1 } }));
}

/** A job run to completion while Redis still takes writes. */
async function completedJob(t: TestApp): Promise<string> {
  const res = await submit(t);
  expect(res.status).toBe(200);
  const { id } = (await res.json()) as { id: string };
  expect((await waitForJob(t, id)).status).toBe("success");
  // Later reads must come from Redis, not the runner's memory of recent results.
  t.runner.forget("127.0.0.1", id);
  return id;
}

async function expectReadableButRefused(t: TestApp, id: string, reason: RegExp): Promise<void> {
  // Reads skip the recency update Redis refuses (they answered 503 before).
  const read = await within(SLACK_MS, t.request(`/api/jobs?id=${id}`));
  expect(read.status).toBe(200);
  expect(((await read.json()) as { status: string }[])[0]?.status).toBe("success");
  const listed = await t.request("/api/jobs");
  expect(listed.status).toBe(200);
  expect(await listed.json()).toContain(id);
  // A write Redis refuses is given up at the deadline (it hung, retried forever, before).
  const refused = await within(WRITE_WAIT_MS + SLACK_MS, submit(t));
  expect(refused.status).toBe(503);
  expect(JSON.stringify(await refused.json())).toMatch(reason);
}

describe("job routes on a Redis under pressure", () => {
  test(
    "error: at maxmemory with noeviction, a new job is refused with 503 in time and completed jobs stay readable",
    async () => {
      await using redis = await startPrivateRedis({ args: ["--maxmemory-policy", "noeviction"] });
      await using t = await appOn(redis, uniqueKeyPrefix("oom"));
      const id = await completedJob(t);
      const admin = new Redis({ host: redis.host, port: redis.port, lazyConnect: true });
      await admin.connect();
      try {
        // Any limit below what is in use: every command that adds data is refused with OOM from now on.
        await admin.config("SET", "maxmemory", "1");
        await expectReadableButRefused(t, id, /OOM/);
        // Memory back: jobs are accepted again (the refused write was given up, not left retrying).
        await admin.config("SET", "maxmemory", "0");
        expect((await submit(t)).status).toBe(200);
        await waitFor("the write queue to empty", () => t.runner.inFlight() === 0 || undefined);
      } finally {
        admin.disconnect();
      }
    },
    TIMEOUT_MS,
  );

  test(
    "error: on a read-only replica, a new job is refused with 503 in time and completed jobs stay readable",
    async () => {
      await using primary = await startPrivateRedis({ args: ["--repl-diskless-sync-delay", "0"] });
      const prefix = uniqueKeyPrefix("replica");
      let id: string;
      {
        await using t = await appOn(primary, prefix);
        id = await completedJob(t);
      }
      // The replica stores the primary's snapshot on disk while it syncs: in a temp dir, not the cwd.
      const dir = mkdtempSync(join(tmpdir(), "redis-replica-"));
      await using replica = await startPrivateRedis({
        args: ["--replicaof", primary.host, String(primary.port), "--replica-read-only", "yes", "--dir", dir],
      });
      await using _dir = { [Symbol.asyncDispose]: async () => rmSync(dir, { recursive: true, force: true }) };
      const probe = new Redis({ host: replica.host, port: replica.port });
      try {
        await waitFor("the replica to sync", async () => (await probe.keys(`${prefix}*`)).length > 0);
      } finally {
        probe.disconnect();
      }
      await using t = await appOn(replica, prefix);
      await expectReadableButRefused(t, id, /READONLY/);
    },
    TIMEOUT_MS,
  );

  test(
    "behavior: a batch during a Redis outage answers within one write deadline, not one per item",
    async () => {
      await using redis: PrivateRedis = await startPrivateRedis();
      await using t = await appOn(redis, uniqueKeyPrefix("batch"));
      await redis.stop();
      await waitFor("the store to report the outage", () => !t.store.health().ok, 10_000);
      const items = Array.from({ length: 30 }, (_, n) => ({ containers: ["echo"], data: { n } }));
      // One item at a time this took 30 × 2 s; together it is one deadline.
      const res = await within(
        WRITE_WAIT_MS + SLACK_MS,
        t.request("/api/jobs/batch", jsonInit("POST", items)),
      );
      expect(res.status).toBe(200);
      const out = (await res.json()) as { id?: string }[];
      expect(out).toHaveLength(30);
      expect(out.every((entry) => typeof entry.id === "string")).toBe(true);
      await redis.start();
      await waitFor("the queued writes to land", () => t.store.health().ok);
    },
    TIMEOUT_MS,
  );
});
