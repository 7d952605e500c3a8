// The result of a job the Redis store accepted is never given up. With the outage queue at its bound, new jobs
// are refused (503) but an accepted job's result is still queued and lands when Redis is back; with Redis
// refusing writes (maxmemory), new jobs are refused but the result is kept and retried until memory is back.
// Before the fix both refused the final write like any other: the job stayed "running" in Redis until
// pending_ttl and then vanished, accepted and lost.
import { describe, expect, test } from "bun:test";
import { Redis } from "ioredis";
import { createLogger } from "../../../src/lib/log.ts";
import { createRedisStore, type RedisStoreOptions } from "../../../src/store/redis.ts";
import { waitFor } from "../../fixtures/net.ts";
import { type RedisEndpoint, startPrivateRedis, uniqueKeyPrefix } from "../../fixtures/redis.ts";
import { running, succeeded, TIMEOUT_MS } from "../../unit/store/contract.ts";

const log = createLogger({ component: "store" });
const CLIENT = "1.2.3.4";

function openStore(server: RedisEndpoint, name: string, overrides: Partial<RedisStoreOptions>) {
  const store = createRedisStore({
    redis: { host: server.host, port: server.port, db: 0, keyPrefix: uniqueKeyPrefix(name) },
    instanceId: name,
    pendingTtlMs: 60_000,
    completedTtlMs: 0,
    maxCompleted: 1000,
    log,
    closeDrainMs: 100,
    ...overrides,
  });
  return store;
}

describe("redis job store: the result of a job it accepted is never given up", () => {
  test(
    "behavior: new jobs are refused with 503, results of accepted jobs are still queued and land",
    async () => {
      await using server = await startPrivateRedis();
      const store = openStore(server, "full-queue", { writeWaitMs: 50, maxQueuedWrites: 2 });
      await store.setup?.(AbortSignal.timeout(20_000));
      try {
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
        expect(await store.get(CLIENT, ["a", "b", "c", "external"])).toEqual([
          succeeded("a"),
          succeeded("b"),
        ]);
        expect(await store.listIds(CLIENT, "pending")).toEqual([]);
      } finally {
        await store.close?.();
      }
    },
    TIMEOUT_MS,
  );

  test(
    "behavior: at maxmemory, new jobs are refused with 503 and an accepted job's result is kept until it lands",
    async () => {
      await using server = await startPrivateRedis({ args: ["--maxmemory-policy", "noeviction"] });
      const store = openStore(server, "oom-result", { writeWaitMs: 200 });
      await store.setup?.(AbortSignal.timeout(20_000));
      const admin = new Redis({ host: server.host, port: server.port });
      try {
        await store.setRunning(CLIENT, running("accepted"));
        // Any limit below what is in use: every command that adds data is refused with OOM from now on.
        await admin.config("SET", "maxmemory", "1");
        await expect(store.setRunning(CLIENT, running("new"))).rejects.toMatchObject({
          status: 503,
          message: expect.stringContaining("OOM"),
        });
        // The accepted job's result is not refused: it stays queued and retried.
        await store.setDone(CLIENT, succeeded("accepted"));
        expect(store.queuedWrites()).toBe(1);
        expect(await store.get(CLIENT, ["accepted"])).toEqual([running("accepted")]);
        await admin.config("SET", "maxmemory", "0");
        await waitFor("the kept result to land", () => store.queuedWrites() === 0, 20_000);
        expect(await store.get(CLIENT, ["accepted", "new"])).toEqual([succeeded("accepted")]);
      } finally {
        admin.disconnect();
        await store.close?.();
      }
    },
    TIMEOUT_MS,
  );
});
