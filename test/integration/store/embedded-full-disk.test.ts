// The embedded job store on a real full disk (a small tmpfs filled by a filler file): new jobs are refused with a
// 503 naming SQLite's reason, results of jobs already accepted are held and written once there is room (never
// dropped), and health() says the truth throughout, recovering by itself when the space is back.
import { afterEach, describe, expect, test } from "bun:test";
import { createLogger } from "../../../src/lib/log.ts";
import { createEmbeddedStore, type EmbeddedJobStore } from "../../../src/store/embedded.ts";
import { waitFor } from "../../fixtures/net.ts";
import { mountTmpfs, type Tmpfs } from "../../fixtures/tmpfs.ts";
import { running, succeeded } from "../../unit/store/contract.ts";

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function storeOnTmpfs(name: string): Promise<{ disk: Tmpfs; store: EmbeddedJobStore }> {
  const disk = mountTmpfs(name, 2 * 1024 * 1024);
  cleanups.push(async () => {
    await disk[Symbol.asyncDispose]();
  });
  const store = createEmbeddedStore({
    path: `${disk.dir}/jobs.sqlite`,
    instanceId: "n",
    pendingTtlMs: 60_000,
    completedTtlMs: 0,
    maxCompleted: 1000,
    log: createLogger({ component: "store" }),
    writeWaitMs: 200,
    sweepEveryMs: 100,
  });
  await store.setup?.(AbortSignal.timeout(10_000));
  const controller = new AbortController();
  const loop = store.run?.(controller.signal);
  cleanups.push(async () => {
    controller.abort();
    await loop;
    await store.close?.();
  });
  return { disk, store };
}

describe("embedded job store on a full disk", () => {
  test("error: a new job is refused with a 503 naming the reason; health says so", async () => {
    const { disk, store } = await storeOnTmpfs("store-full");
    await store.setRunning("c", running("before"));
    expect(disk.fill()).toBeGreaterThan(0);

    await expect(store.setRunning("c", running("refused"))).rejects.toMatchObject({
      status: 503,
      message: "job store write failed: database or disk is full",
    });
    expect(store.health?.()).toMatchObject({
      ok: false,
      detail: expect.stringContaining("database or disk is full"),
    });
    // Reads keep working.
    expect(await store.get("c", ["before"])).toEqual([running("before")]);

    disk.free();
    // Nothing is waiting to be written: the periodic probe write finds out that writes work again.
    await waitFor("health to recover", () => store.health?.().ok);
    await store.setRunning("c", running("after"));
    expect(await store.get("c", ["refused", "after"])).toEqual([running("after")]);
  });

  test("behavior: the result of a job accepted before the disk filled is held, then stored when there is room", async () => {
    const { disk, store } = await storeOnTmpfs("store-held");
    await store.setRunning("c", running("accepted"));
    disk.fill();

    // Returns after the bounded wait with the result held, instead of losing it.
    await store.setDone("c", succeeded("accepted"));
    expect(await store.get("c", ["accepted"])).toEqual([running("accepted")]);
    expect(store.health?.()).toMatchObject({
      ok: false,
      detail: expect.stringContaining("1 job results waiting to be written"),
    });

    disk.free();
    await waitFor("the held result to be stored", async () => {
      const [job] = await store.get("c", ["accepted"]);
      return job?.status === "success";
    });
    expect(await store.get("c", ["accepted"])).toEqual([succeeded("accepted")]);
    expect(store.health?.().ok).toBe(true);
  });
});
