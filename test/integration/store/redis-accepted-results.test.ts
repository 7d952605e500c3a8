// What the Redis store accepted is neither given up nor unreadable while Redis is away or refusing writes.
// With the outage queue at its bound, new jobs are refused (503) but an accepted job's result is still queued
// and lands when Redis is back; with Redis refusing writes (maxmemory), new jobs are refused but the result is
// kept and retried until memory is back. Before the fix both refused the final write like any other: the job
// stayed "running" in Redis until pending_ttl and then vanished, accepted and lost. And a job whose writes
// wait for Redis reads back (and is listed) from those writes, where reads used to fail with a 503 during the
// outage, and miss the job or show it stale while the backlog landed. Closing during an outage logs the writes
// it drops in one line (it was one error line per write).
import { describe, expect, test } from "bun:test";
import { Redis } from "ioredis";
import { createLogger, type Logger } from "../../../src/lib/log.ts";
import { createRedisStore, type RedisJobStore, type RedisStoreOptions } from "../../../src/store/redis.ts";
import { waitFor } from "../../fixtures/net.ts";
import { type RedisEndpoint, startPrivateRedis, uniqueKeyPrefix } from "../../fixtures/redis.ts";
import { running, succeeded, TIMEOUT_MS } from "../../unit/store/contract.ts";

const log = createLogger({ component: "store" });
const CLIENT = "1.2.3.4";

/** An opened store on `server` under `prefix`, closed on dispose. */
async function openStore(
  server: RedisEndpoint,
  prefix: string,
  overrides: Partial<RedisStoreOptions> = {},
): Promise<RedisJobStore & AsyncDisposable> {
  const store = createRedisStore({
    redis: { host: server.host, port: server.port, db: 0, keyPrefix: prefix },
    instanceId: "accepted-results",
    pendingTtlMs: 60_000,
    completedTtlMs: 0,
    maxCompleted: 1000,
    log,
    closeDrainMs: 100,
    ...overrides,
  });
  await store.setup?.(AbortSignal.timeout(20_000));
  return Object.assign(store, { [Symbol.asyncDispose]: async () => store.close?.() });
}

describe("redis job store: what it accepted is kept and readable while Redis is away or refusing", () => {
  test(
    "behavior: with the outage queue full, new jobs are refused with 503, results of accepted jobs still land",
    async () => {
      await using server = await startPrivateRedis();
      await using store = await openStore(server, uniqueKeyPrefix("full-queue"), {
        writeWaitMs: 50,
        maxQueuedWrites: 2,
      });
      await server.stop();
      await waitFor("the store to report the outage", () => !store.health().ok, 10_000);
      // Two jobs accepted (their running writes queued); the queue is now at its bound.
      await store.setRunning(CLIENT, running("a"));
      await store.setRunning(CLIENT, running("b"));
      await expect(store.setRunning(CLIENT, running("c"))).rejects.toMatchObject({
        status: 503,
        message: expect.stringContaining("too many writes waiting"),
      });
      // The accepted jobs finish during the outage: their results are queued beyond the bound.
      await store.setDone(CLIENT, succeeded("a"));
      await store.setDone(CLIENT, succeeded("b"));
      expect(store.queuedWrites()).toBe(4);
      // A result for a job this store never accepted (PUT /api/status) is still held to the bound.
      await expect(store.setDone(CLIENT, succeeded("external"))).rejects.toMatchObject({ status: 503 });

      await server.start();
      await waitFor(
        "the queued writes to land",
        () => store.health().ok && store.queuedWrites() === 0,
        20_000,
      );
      expect(await store.get(CLIENT, ["a", "b", "c", "external"])).toEqual([succeeded("a"), succeeded("b")]);
      expect(await store.listIds(CLIENT, "pending")).toEqual([]);
    },
    TIMEOUT_MS,
  );

  test(
    "behavior: at maxmemory, new jobs are refused with 503 and an accepted job's result is kept until it lands",
    async () => {
      await using server = await startPrivateRedis({ args: ["--maxmemory-policy", "noeviction"] });
      const prefix = uniqueKeyPrefix("oom-result");
      await using store = await openStore(server, prefix, { writeWaitMs: 200 });
      const admin = new Redis({ host: server.host, port: server.port });
      await using _admin = { [Symbol.asyncDispose]: async () => admin.disconnect() };
      await store.setRunning(CLIENT, running("accepted"));
      // Any limit below what is in use: every command that adds data is refused with OOM from now on.
      await admin.config("SET", "maxmemory", "1");
      await expect(store.setRunning(CLIENT, running("new"))).rejects.toMatchObject({
        status: 503,
        message: expect.stringContaining("OOM"),
      });
      // The accepted job's result is not refused: it stays queued and retried, and reads (and listings)
      // already answer it, while Redis itself still holds the job as running.
      await store.setDone(CLIENT, succeeded("accepted"));
      expect(store.queuedWrites()).toBe(1);
      expect(await store.get(CLIENT, ["accepted", "new"])).toEqual([succeeded("accepted")]);
      expect(await store.listIds(CLIENT, "pending")).toEqual([]);
      expect(await store.listIds(CLIENT, "completed")).toEqual(["accepted"]);
      await admin.config("SET", "maxmemory", "0");
      await waitFor("the kept result to land", () => store.queuedWrites() === 0, 20_000);
      // In Redis now: another replica on the same keys reads it.
      await using other = await openStore(server, prefix, { instanceId: "other" });
      expect(await other.get(CLIENT, ["accepted", "new"])).toEqual([succeeded("accepted")]);
    },
    TIMEOUT_MS,
  );

  test(
    "behavior: jobs whose writes wait for Redis read back from the store during the outage and after it",
    async () => {
      await using server = await startPrivateRedis({ persistent: true });
      const prefix = uniqueKeyPrefix("unlanded");
      await using store = await openStore(server, prefix, { writeWaitMs: 50 });
      await store.setDone(CLIENT, succeeded("landed"));
      await server.stop();
      await waitFor("the store to report the outage", () => !store.health().ok, 10_000);
      await store.setRunning(CLIENT, running("a"));
      await store.setDone(CLIENT, succeeded("a"));
      await store.setRunning(CLIENT, running("b"));
      // Answered from the queued writes, without Redis (this was a 503).
      expect(await store.get(CLIENT, ["b", "a"])).toEqual([succeeded("a"), running("b")]);
      // What only Redis holds still needs Redis: a 503 as before.
      await expect(store.get(CLIENT, ["a", "landed"])).rejects.toMatchObject({ status: 503 });
      await expect(store.listIds(CLIENT, "all")).rejects.toMatchObject({ status: 503 });

      await server.start();
      await waitFor(
        "the queued writes to land",
        () => store.health().ok && store.queuedWrites() === 0,
        20_000,
      );
      expect(await store.get(CLIENT, ["b", "a", "landed"])).toEqual([
        succeeded("a"),
        succeeded("landed"),
        running("b"),
      ]);
      expect(await store.listIds(CLIENT, "pending")).toEqual(["b"]);
      expect((await store.listIds(CLIENT, "completed")).sort()).toEqual(["a", "landed"]);
    },
    TIMEOUT_MS,
  );

  test(
    "error: Redis refusing the connection (a wrong password) refuses a new job with 503 at once, not queued",
    async () => {
      await using server = await startPrivateRedis({ args: ["--requirepass", "right-pass"] });
      const prefix = uniqueKeyPrefix("refused");
      const wrongPassword = {
        host: server.host,
        port: server.port,
        db: 0,
        keyPrefix: prefix,
        password: "wrong",
      };
      await using store = await openStore(server, prefix, { redis: wrongPassword, connectWaitMs: 300 });
      // Writes wait for the connection while Redis is away, but this one is not coming back by itself.
      await expect(store.setRunning(CLIENT, running("a"))).rejects.toMatchObject({ status: 503 });
      expect(store.queuedWrites()).toBe(0);
    },
    TIMEOUT_MS,
  );
});

describe("redis job store closing during an outage", () => {
  test(
    "behavior: the writes it drops are logged once in all, not one error line each",
    async () => {
      const lines: { level: string; msg: string; fields?: Record<string, unknown> }[] = [];
      const record: Logger = {
        debug: (msg, fields) => lines.push({ level: "debug", msg, fields }),
        info: (msg, fields) => lines.push({ level: "info", msg, fields }),
        warn: (msg, fields) => lines.push({ level: "warn", msg, fields }),
        error: (msg, fields) => lines.push({ level: "error", msg, fields }),
        child: () => record,
      };
      await using server = await startPrivateRedis();
      const store = await openStore(server, uniqueKeyPrefix("close-down"), { writeWaitMs: 50, log: record });
      await server.stop();
      await waitFor("the store to report the outage", () => !store.health().ok, 10_000);
      await Promise.all(Array.from({ length: 50 }, (_, i) => store.setRunning(CLIENT, running(`j${i}`))));
      await store.close?.();
      // The dropped writes settle after close returns.
      await waitFor("the dropped writes to settle", () => store.queuedWrites() === 0, 10_000);
      const errors = lines.filter((line) => line.level === "error");
      expect(errors).toEqual([
        { level: "error", msg: "job store closing with writes still queued", fields: { queued: 50 } },
      ]);
    },
    TIMEOUT_MS,
  );
});
