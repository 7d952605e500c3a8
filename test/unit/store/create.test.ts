import { expect, test } from "bun:test";
import { hostname } from "node:os";
import { join } from "node:path";
import * as v from "valibot";
import { ConfigSchema } from "../../../src/config/schema.ts";
import { createLogger } from "../../../src/lib/log.ts";
import { createJobStore } from "../../../src/store/create.ts";
import { resolveInstanceId, resolveStoreOptions } from "../../../src/store/options.ts";

const log = createLogger({ component: "store" });

test("default", async () => {
  const path = join(process.env.INFERNET_TEST_TMP ?? "/tmp", `create-${process.pid}`, "jobs.sqlite");
  const config = v.parse(ConfigSchema, { store: { path } });
  const store = createJobStore({ config, log });
  await store.setup?.(AbortSignal.timeout(10_000));
  try {
    expect(store.name).toBe("store");
    expect(store.health?.()).toEqual({ ok: true, detail: `embedded (${path})` });
    await store.setDone("::1", { id: "x", status: "failed", intermediate_results: [], result: null });
    expect(await store.listIds("::1", "all")).toEqual(["x"]);
  } finally {
    await store.close?.();
  }
});

test("behavior: options come from store.* in milliseconds", () => {
  const config = v.parse(ConfigSchema, {
    server: { port: 4100 },
    store: { pending_ttl: 1.5, completed_ttl: 60, max_completed_jobs: 7 },
  });
  const { log: _, ...options } = resolveStoreOptions(config, log);
  expect(options).toEqual({
    instanceId: "embedded:4100",
    pendingTtlMs: 1500,
    completedTtlMs: 60_000,
    maxCompleted: 7,
  });
});

test("behavior: store.instance_id overrides the derived id", () => {
  const config = v.parse(ConfigSchema, { store: { instance_id: "replica-1" } });
  expect(resolveInstanceId(config)).toBe("replica-1");
  const redis = { host: "127.0.0.1", port: 1 };
  expect(resolveInstanceId(v.parse(ConfigSchema, { redis }))).toBe(`${hostname()}:4000`);
});

test("behavior: the embedded default id has no hostname, so a re-created container recovers its own jobs", async () => {
  // In Docker the hostname is the container id, new with every re-created container; the file (a volume)
  // outlives it, and its running jobs must still be recognised as this node's.
  const config = v.parse(ConfigSchema, {
    store: { path: join(process.env.INFERNET_TEST_TMP ?? "/tmp", `recreated-${process.pid}`, "jobs.sqlite") },
  });
  expect(resolveInstanceId(config)).toBe("embedded:4000");
  const before = createJobStore({ config, log });
  await before.setup?.(AbortSignal.timeout(10_000));
  await before.setRunning("1.2.3.4", { id: "j", status: "running", intermediate_results: [], result: null });
  await before.close?.();
  const after = createJobStore({ config, log });
  await after.setup?.(AbortSignal.timeout(10_000));
  try {
    expect((await after.get("1.2.3.4", ["j"]))[0]?.status).toBe("failed");
  } finally {
    await after.close?.();
  }
});

test("behavior: a redis section selects the Redis store without blocking when it is unreachable", async () => {
  const config = v.parse(ConfigSchema, { redis: { host: "127.0.0.1", port: 1, key_prefix: "t:" } });
  const store = createJobStore({ config, log });
  expect(store.health?.()).toEqual({ ok: false, detail: "job store not open" });
  expect(store.pendingCount()).toBe(0);
});
