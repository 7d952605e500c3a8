import { Database } from "bun:sqlite";
import { describe, expect, test } from "bun:test";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { createLogger } from "../../../src/lib/log.ts";
import { createEmbeddedStore } from "../../../src/store/embedded.ts";
import { waitFor } from "../../fixtures/net.ts";
import { jobStoreContract, type OpenedStore, running, type StoreHarness, succeeded } from "./contract.ts";

let counter = 0;

async function embeddedHarness(): Promise<StoreHarness> {
  const dir = join(process.env.INFERNET_TEST_TMP ?? "/tmp", `store-${process.pid}-${counter++}`);
  const path = join(dir, "jobs.sqlite");
  const opened: OpenedStore[] = [];
  return {
    async open(overrides = {}) {
      const store = createEmbeddedStore({
        path,
        instanceId: "test-node",
        pendingTtlMs: 60_000,
        completedTtlMs: 0,
        maxCompleted: 1000,
        log: createLogger({ component: "store" }),
        ...overrides,
      });
      await store.setup?.(AbortSignal.timeout(10_000));
      opened.push(store);
      return store;
    },
    async [Symbol.asyncDispose]() {
      for (const store of opened) await store.close?.();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

jobStoreContract("embedded", embeddedHarness);

describe("embedded job store", () => {
  test("error: a path that cannot be opened fails setup with the path in the message", async () => {
    const store = createEmbeddedStore({
      path: "/proc/no-such-dir/jobs.sqlite",
      instanceId: "n",
      pendingTtlMs: 1000,
      completedTtlMs: 0,
      maxCompleted: 10,
      log: createLogger({ component: "store" }),
    });
    await expect(store.setup?.(AbortSignal.timeout(5_000))).rejects.toThrow(
      "cannot open the job store file /proc/no-such-dir/jobs.sqlite",
    );
    expect(store.health?.().ok).toBe(false);
    await expect(store.get("::1", ["x"])).rejects.toMatchObject({ status: 503 });
  });

  test("behavior: run() sweeps expired rows and stops when aborted", async () => {
    let now = 1_000_000;
    const store = createEmbeddedStore({
      path: ":memory:",
      instanceId: "n",
      pendingTtlMs: 1000,
      completedTtlMs: 1000,
      maxCompleted: 10,
      log: createLogger({ component: "store" }),
      now: () => now,
      sweepEveryMs: 5,
    });
    await store.setup?.(AbortSignal.timeout(5_000));
    await store.setRunning("::1", running("p"));
    await store.setDone("::1", succeeded("d"));
    expect(await store.listIds("::1", "all")).toEqual(["p", "d"]);
    now += 2000;
    const stop = new AbortController();
    const loop = store.run?.(stop.signal);
    await waitFor("no pending jobs", () => store.pendingCount() === 0, 10_000);
    stop.abort();
    await loop;
    now -= 2000;
    // Rows are gone, not merely hidden by the read filter.
    expect(await store.listIds("::1", "all")).toEqual([]);
    await store.close?.();
  });
});

describe("embedded job store: failed transactions", () => {
  test("behavior: a write that rolls back (disk full) leaves the completed count, and so the cap, exact", async () => {
    const dir = join(process.env.INFERNET_TEST_TMP ?? "/tmp", `store-rollback-${process.pid}-${counter++}`);
    const path = join(dir, "jobs.sqlite");
    const store = createEmbeddedStore({
      path,
      instanceId: "n",
      pendingTtlMs: 60_000,
      completedTtlMs: 0,
      maxCompleted: 3,
      log: createLogger({ component: "store" }),
    });
    await store.setup?.(AbortSignal.timeout(10_000));
    // A second connection on the file makes storing ids that start with "full" fail as a full disk does.
    const other = new Database(path);
    try {
      other.exec(
        "CREATE TRIGGER disk_full BEFORE INSERT ON completed WHEN NEW.id LIKE 'full%' " +
          "BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END;",
      );
      for (let i = 0; i < 3; i++) {
        // One group commit: the first result's insert counts, then the second fails and both roll back.
        const outcomes = await Promise.allSettled([
          store.setDone("c", succeeded(`lost-${i}`)),
          store.setDone("c", succeeded(`full-${i}`)),
        ]);
        expect(outcomes.map((outcome) => outcome.status)).toEqual(["rejected", "rejected"]);
      }
      other.exec("DROP TRIGGER disk_full");
      expect(await store.get("c", ["lost-0", "lost-1", "lost-2"])).toEqual([]);
      // Three results fit under the cap of three; with the count off by the rolled-back inserts, each new
      // result evicted the one before.
      for (const id of ["a", "b", "d"]) await store.setDone("c", succeeded(id));
      expect((await store.get("c", ["a", "b", "d"])).map((job) => job.id)).toEqual(["a", "b", "d"]);
    } finally {
      other.close();
      await store.close?.();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
