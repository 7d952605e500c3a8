import { afterAll, describe, expect, test } from "bun:test";
import { Redis } from "ioredis";
import { createLogger } from "../../../src/lib/log.ts";
import { createRedisStore, type RedisJobStore, type RedisStoreOptions } from "../../../src/store/redis.ts";
import { waitFor } from "../../fixtures/net.ts";
import { type RedisEndpoint, sharedRedis, startPrivateRedis, uniqueKeyPrefix } from "../../fixtures/redis.ts";
import {
  jobStoreContract,
  type OpenedStore,
  running,
  type StoreHarness,
  type StoreOverrides,
  succeeded,
  TIMEOUT_MS,
} from "../../unit/store/contract.ts";

const log = createLogger({ component: "store" });

function options(endpoint: RedisEndpoint, keyPrefix: string, overrides: Partial<RedisStoreOptions> = {}) {
  return {
    redis: { host: endpoint.host, port: endpoint.port, db: 0, keyPrefix, password: null },
    instanceId: "test-node",
    pendingTtlMs: 60_000,
    completedTtlMs: 0,
    maxCompleted: 1000,
    log,
    ...overrides,
  } satisfies RedisStoreOptions;
}

async function opened(store: RedisJobStore): Promise<RedisJobStore> {
  await store.setup?.(AbortSignal.timeout(20_000));
  return store;
}

async function redisHarness(): Promise<StoreHarness> {
  const endpoint = await sharedRedis();
  const prefix = uniqueKeyPrefix("redis-store");
  const stores: OpenedStore[] = [];
  return {
    async open(overrides: StoreOverrides = {}) {
      const store = await opened(createRedisStore(options(endpoint, prefix, overrides)));
      stores.push(store);
      return store;
    },
    async [Symbol.asyncDispose]() {
      for (const store of stores) await store.close?.();
    },
  };
}

jobStoreContract("redis", redisHarness);

describe("redis job store", () => {
  const cleanup: (() => Promise<void>)[] = [];
  afterAll(async () => {
    for (const fn of cleanup.reverse()) await fn();
  });

  test(
    "behavior: keys live under the prefix and the configured db, and each client has its own index",
    async () => {
      const endpoint = await sharedRedis();
      const prefix = uniqueKeyPrefix("layout");
      const store = await opened(
        createRedisStore({
          ...options(endpoint, prefix),
          redis: { ...options(endpoint, prefix).redis, db: 3 },
        }),
      );
      cleanup.push(() => store.close?.() ?? Promise.resolve());
      await store.setRunning("::1", running("r"));
      await store.setDone("::1", succeeded("d"));
      const raw = new Redis({ host: endpoint.host, port: endpoint.port, db: 3 });
      try {
        const keys = (await raw.keys("*")).filter((key) => key.startsWith(prefix)).sort();
        expect(keys.length).toBeGreaterThan(0);
        expect(await raw.ttl(`${prefix}p:${encodeURIComponent("::1")}:r`)).toBeGreaterThan(0);
        expect(await raw.zrange(`${prefix}di:${encodeURIComponent("::1")}`, 0, "-1")).toEqual(["d"]);
        await raw.select(0);
        expect((await raw.keys(`${prefix}*`)).length).toBe(0);
      } finally {
        raw.disconnect();
      }
    },
    TIMEOUT_MS,
  );

  test(
    "behavior: listing and counting never scan the keyspace",
    async () => {
      await using server = await startPrivateRedis();
      const store = await opened(createRedisStore(options(server, uniqueKeyPrefix("noscan"))));
      try {
        for (let i = 0; i < 20; i++) await store.setRunning(`10.0.0.${i % 3}`, running(`p${i}`));
        for (let i = 0; i < 20; i++) await store.setDone(`10.0.0.${i % 3}`, succeeded(`p${i}`));
        expect(await store.listIds("10.0.0.1", "all")).toHaveLength(7);
        expect(await store.get("10.0.0.1", ["p1", "p4"])).toHaveLength(2);
        await waitFor("no pending jobs", () => store.pendingCount() === 0, 10_000);
        const raw = new Redis({ host: server.host, port: server.port });
        try {
          const stats = await raw.info("commandstats");
          expect(stats).not.toMatch(/cmdstat_(scan|keys|dbsize|flushdb)\b/);
        } finally {
          raw.disconnect();
        }
      } finally {
        await store.close?.();
      }
    },
    TIMEOUT_MS,
  );

  test(
    "behavior: redis.password is sent; a wrong one reports unhealthy instead of failing start-up",
    async () => {
      await using server = await startPrivateRedis({ args: ["--requirepass", "s3cret-pass"] });
      const prefix = uniqueKeyPrefix("auth");
      const good = await opened(
        createRedisStore({
          ...options(server, prefix),
          redis: { ...options(server, prefix).redis, password: "s3cret-pass" },
        }),
      );
      try {
        await good.setDone("::1", succeeded("a"));
        expect(await good.get("::1", ["a"])).toEqual([succeeded("a")]);
        expect(good.health().ok).toBe(true);
      } finally {
        await good.close?.();
      }
      const bad = createRedisStore({
        ...options(server, prefix),
        redis: { ...options(server, prefix).redis, password: "wrong-pass" },
        connectWaitMs: 300,
      });
      try {
        await bad.setup?.(AbortSignal.timeout(10_000));
        expect(bad.health().ok).toBe(false);
        await waitFor(
          "the auth failure in health",
          () => /WRONGPASS|NOAUTH|invalid/i.test(bad.health().detail ?? ""),
          10_000,
        );
        expect(bad.health().detail).not.toContain("wrong-pass");
      } finally {
        await bad.close?.();
      }
    },
    TIMEOUT_MS,
  );

  test(
    "behavior: a Redis restart mid-run loses no accepted job",
    async () => {
      await using server = await startPrivateRedis({ persistent: true });
      const prefix = uniqueKeyPrefix("restart");
      const store = await opened(createRedisStore({ ...options(server, prefix), writeWaitMs: 200 }));
      try {
        await store.setRunning("1.2.3.4", running("before"));
        await store.setDone("1.2.3.4", succeeded("done-before"));
        await server.stop();
        await waitFor("the store to report the outage", () => !store.health().ok, 10_000);
        // Accepted while Redis is down: these resolve (queued), and read back from the queued writes; reads of
        // what only Redis holds fail fast with a 503.
        await store.setRunning("1.2.3.4", running("during"));
        await store.setDone("1.2.3.4", succeeded("before"));
        await store.setDone("::1", succeeded("v6"));
        expect(store.queuedWrites()).toBeGreaterThan(0);
        expect(store.health()).toMatchObject({ ok: false });
        expect(await store.get("1.2.3.4", ["before"])).toEqual([succeeded("before")]);
        await expect(store.get("1.2.3.4", ["done-before"])).rejects.toMatchObject({ status: 503 });
        await server.start();
        await waitFor(
          "the queued writes to land",
          () => store.health().ok && store.queuedWrites() === 0,
          20_000,
        );
        expect(await store.listIds("1.2.3.4", "all")).toEqual(["during", "done-before", "before"]);
        expect(await store.get("::1", ["v6"])).toEqual([succeeded("v6")]);
        // A fresh client (another replica) sees the same.
        const other = await opened(createRedisStore({ ...options(server, prefix), instanceId: "other" }));
        try {
          expect(await other.get("1.2.3.4", ["before", "during"])).toEqual([
            succeeded("before"),
            running("during"),
          ]);
        } finally {
          await other.close?.();
        }
      } finally {
        await store.close?.();
      }
    },
    TIMEOUT_MS,
  );

  test(
    "behavior: setup does not wait forever when Redis is down at boot, and catches up later",
    async () => {
      await using server = await startPrivateRedis({ persistent: true });
      const prefix = uniqueKeyPrefix("boot");
      // A previous run of this instance left a job running.
      const previous = await opened(createRedisStore(options(server, prefix)));
      await previous.setRunning("1.2.3.4", running("left"), { containers: ["c1"] });
      await previous.close?.();
      await server.stop();

      const store = createRedisStore({ ...options(server, prefix), connectWaitMs: 300, writeWaitMs: 100 });
      try {
        await store.setup?.(AbortSignal.timeout(20_000));
        expect(store.health().ok).toBe(false);
        expect(store.pendingCount()).toBe(0);
        await store.setRunning("1.2.3.4", running("new"));
        await server.start();
        await waitFor(
          "the queued writes to land",
          () => store.health().ok && store.queuedWrites() === 0,
          20_000,
        );
        // Recovery ran before the queued write, so only the old job was failed.
        const jobs = await store.get("1.2.3.4", ["left", "new"]);
        expect(jobs.map((job) => [job.id, job.status])).toEqual([
          ["left", "failed"],
          ["new", "running"],
        ]);
        expect(store.pendingCount()).toBe(1);
      } finally {
        await store.close?.();
      }
    },
    TIMEOUT_MS,
  );

  test(
    "error: reads fail fast with a 503 while Redis is down",
    async () => {
      await using server = await startPrivateRedis();
      const store = await opened(createRedisStore(options(server, uniqueKeyPrefix("down"))));
      try {
        await server.stop();
        await waitFor("the store to report the outage", () => !store.health().ok, 10_000);
        await expect(store.listIds("1.2.3.4", "all")).rejects.toMatchObject({ status: 503 });
        expect(store.health().detail).toContain("unreachable");
      } finally {
        await store.close?.();
      }
    },
    TIMEOUT_MS,
  );

  test(
    "error: writes are refused once the outage queue is full",
    async () => {
      await using server = await startPrivateRedis();
      const store = await opened(
        createRedisStore({
          ...options(server, uniqueKeyPrefix("full")),
          writeWaitMs: 50,
          maxQueuedWrites: 2,
          closeDrainMs: 100,
        }),
      );
      try {
        await server.stop();
        await waitFor("the store to report the outage", () => !store.health().ok, 10_000);
        await store.setRunning("1.2.3.4", running("a"));
        await store.setRunning("1.2.3.4", running("b"));
        await expect(store.setRunning("1.2.3.4", running("c"))).rejects.toMatchObject({ status: 503 });
      } finally {
        await store.close?.();
      }
    },
    TIMEOUT_MS,
  );

  test(
    "behavior: a node instance that is gone for good (a recreated container) has its running jobs failed by a live one",
    async () => {
      const endpoint = await sharedRedis();
      const prefix = uniqueKeyPrefix("orphans");
      const lease = { leaseMs: 600, refreshEveryMs: 100 };
      // The old container: its instance id was its hostname, which the recreated container does not share.
      const gone = await opened(
        createRedisStore({ ...options(endpoint, prefix, lease), instanceId: "old-host:4000" }),
      );
      await gone.setRunning("1.2.3.4", running("orphan"), { containers: ["c1"] });
      await gone.close?.();
      // Another replica, alive and renewing its lease, with a job of its own.
      const stop = new AbortController();
      const replica = await opened(
        createRedisStore({ ...options(endpoint, prefix, lease), instanceId: "replica" }),
      );
      const replicaRun = replica.run?.(stop.signal);
      await replica.setRunning("5.6.7.8", running("busy"));
      const fresh = await opened(
        createRedisStore({ ...options(endpoint, prefix, lease), instanceId: "new-host:4000" }),
      );
      const freshRun = fresh.run?.(stop.signal);
      try {
        const [failed] = await waitFor("the orphaned job to be failed", async () => {
          const jobs = await fresh.get("1.2.3.4", ["orphan"]);
          return jobs[0]?.status === "failed" ? jobs : undefined;
        });
        expect(failed?.result).toEqual({ container: "c1", error: "node stopped while the job was running" });
        // Several leases later (time has to pass for a lease to run out) the live replica's job is untouched.
        await Bun.sleep(lease.leaseMs * 3);
        expect((await fresh.get("5.6.7.8", ["busy"]))[0]?.status).toBe("running");
      } finally {
        stop.abort();
        await Promise.all([replicaRun, freshRun]);
        await replica.close?.();
        await fresh.close?.();
      }
    },
    TIMEOUT_MS,
  );
});
