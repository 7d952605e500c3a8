// The behaviour every JobStore must show, run against each implementation (embedded SQLite, Redis) by its own
// test file. A harness gives each test fresh, isolated backing data and opens stores over it, so two stores of
// one harness share data the way two node processes share one Redis (or a node reopening its file).
import { describe, expect, test } from "bun:test";
import type { Service } from "../../../src/lib/service.ts";
import type { JobResult, JobStore } from "../../../src/shared/jobs.ts";
import { INTERRUPTED_ERROR } from "../../../src/store/interrupted.ts";
import type { StoreOptions } from "../../../src/store/options.ts";
import { waitFor } from "../../fixtures/net.ts";

export type OpenedStore = JobStore & Service;

/** Per-test limit: Redis outage tests wait for reconnects (bun's default is 5 s). */
export const TIMEOUT_MS = 30_000;
export type StoreOverrides = Partial<Omit<StoreOptions, "log">>;

export interface StoreHarness extends AsyncDisposable {
  /** Creates a store over this harness's data and runs its setup; disposing the harness closes it. */
  open(overrides?: StoreOverrides): Promise<OpenedStore>;
}

export const running = (id: string): JobResult => ({
  id,
  status: "running",
  intermediate_results: [],
  result: null,
});

export const succeeded = (id: string, output: unknown = { ok: id }): JobResult => ({
  id,
  status: "success",
  intermediate_results: [{ container: "first", output: { step: 1 } }],
  result: { container: "last", output },
});

const ids = (jobs: JobResult[]) => jobs.map((job) => job.id);

export function jobStoreContract(kind: string, makeHarness: () => Promise<StoreHarness>): void {
  describe(`JobStore contract: ${kind}`, () => {
    test(
      "default",
      async () => {
        await using h = await makeHarness();
        const store = await h.open();
        await store.setRunning("1.2.3.4", running("a"));
        expect(await store.get("1.2.3.4", ["a"])).toEqual([running("a")]);
        expect(await store.listIds("1.2.3.4", "pending")).toEqual(["a"]);
        expect(await store.listIds("1.2.3.4", "completed")).toEqual([]);
        expect(store.health().ok).toBe(true);
      },
      TIMEOUT_MS,
    );

    test(
      "behavior: setDone moves a job from pending to completed",
      async () => {
        await using h = await makeHarness();
        const store = await h.open();
        await store.setRunning("1.2.3.4", running("a"));
        await store.setRunning("1.2.3.4", running("b"));
        await store.setDone("1.2.3.4", succeeded("a"));
        expect(await store.listIds("1.2.3.4", "pending")).toEqual(["b"]);
        expect(await store.listIds("1.2.3.4", "completed")).toEqual(["a"]);
        expect(await store.listIds("1.2.3.4", "all")).toEqual(["b", "a"]);
        expect(await store.get("1.2.3.4", ["a"])).toEqual([succeeded("a")]);
      },
      TIMEOUT_MS,
    );

    test(
      "behavior: listing keeps insertion order within each group",
      async () => {
        await using h = await makeHarness();
        const store = await h.open();
        for (const id of ["p1", "p2", "p3"]) await store.setRunning("10.0.0.1", running(id));
        for (const id of ["d3", "d1", "d2"]) await store.setDone("10.0.0.1", succeeded(id));
        expect(await store.listIds("10.0.0.1", "all")).toEqual(["p1", "p2", "p3", "d3", "d1", "d2"]);
      },
      TIMEOUT_MS,
    );

    test(
      "behavior: get returns completed first in request order, then pending; unknown ids omitted",
      async () => {
        await using h = await makeHarness();
        const store = await h.open();
        await store.setRunning("1.2.3.4", running("p1"));
        await store.setRunning("1.2.3.4", running("p2"));
        await store.setDone("1.2.3.4", succeeded("d1"));
        await store.setDone("1.2.3.4", succeeded("d2"));
        const got = await store.get("1.2.3.4", ["p2", "nope", "d2", "p1", "d1", "d2"]);
        expect(ids(got)).toEqual(["d2", "d1", "d2", "p2", "p1"]);
        expect(await store.get("1.2.3.4", [])).toEqual([]);
      },
      TIMEOUT_MS,
    );

    test(
      "behavior: jobs are visible only to their client",
      async () => {
        await using h = await makeHarness();
        const store = await h.open();
        await store.setDone("1.2.3.4", succeeded("a"));
        expect(await store.get("1.2.3.5", ["a"])).toEqual([]);
        expect(await store.listIds("1.2.3.5", "all")).toEqual([]);
        expect(await store.listIds("1.2.3.45", "all")).toEqual([]);
      },
      TIMEOUT_MS,
    );

    test(
      "behavior: IPv6 clients and ids with colons keep their keys apart",
      async () => {
        await using h = await makeHarness();
        const store = await h.open();
        await store.setDone("::1", succeeded("x:y"));
        await store.setDone("2001:db8::1", succeeded("a"));
        await store.setRunning("2001:db8::", running("1:a"));
        await store.setDone("::ffff:10.0.0.1", succeeded("b"));
        expect(await store.listIds("::1", "all")).toEqual(["x:y"]);
        expect(await store.listIds("2001:db8::1", "all")).toEqual(["a"]);
        expect(await store.listIds("2001:db8::", "all")).toEqual(["1:a"]);
        expect(await store.listIds("2001:db8:", "all")).toEqual([]);
        expect(ids(await store.get("::1", ["x:y", "a"]))).toEqual(["x:y"]);
        expect(ids(await store.get("2001:db8::", ["1:a"]))).toEqual(["1:a"]);
        expect(ids(await store.get("::ffff:10.0.0.1", ["b"]))).toEqual(["b"]);
      },
      TIMEOUT_MS,
    );

    test(
      "behavior: outputs keep big integers and nested values exactly",
      async () => {
        await using h = await makeHarness();
        const store = await h.open();
        const output = {
          big: 2n ** 70n,
          neg: -(2n ** 64n),
          small: 42,
          float: 1.5,
          text: "é\n",
          list: [null, true],
        };
        await store.setDone("1.2.3.4", succeeded("big", output));
        const [job] = await store.get("1.2.3.4", ["big"]);
        expect(job).toEqual(succeeded("big", output));
      },
      TIMEOUT_MS,
    );

    test(
      "behavior: pendingCount counts running jobs across clients",
      async () => {
        await using h = await makeHarness();
        const store = await h.open();
        expect(store.pendingCount()).toBe(0);
        await store.setRunning("1.2.3.4", running("a"));
        await store.setRunning("::1", running("b"));
        await store.setRunning("::1", running("b"));
        expect(store.pendingCount()).toBe(2);
        await store.setDone("::1", succeeded("b"));
        expect(store.pendingCount()).toBe(1);
      },
      TIMEOUT_MS,
    );

    test(
      "behavior: pending jobs expire after the pending TTL",
      async () => {
        await using h = await makeHarness();
        const store = await h.open({ pendingTtlMs: 300 });
        await store.setRunning("1.2.3.4", running("a"));
        await store.setDone("1.2.3.4", succeeded("d"));
        await waitFor(
          "the pending entry to expire",
          async () => (await store.listIds("1.2.3.4", "pending")).length === 0,
          10_000,
        );
        expect(await store.get("1.2.3.4", ["a", "d"])).toEqual([succeeded("d")]);
        await waitFor("no pending jobs", () => store.pendingCount() === 0, 10_000);
      },
      TIMEOUT_MS,
    );

    test(
      "behavior: completed results expire after the completed TTL",
      async () => {
        await using h = await makeHarness();
        const store = await h.open({ completedTtlMs: 300 });
        await store.setDone("1.2.3.4", succeeded("d"));
        expect(await store.listIds("1.2.3.4", "completed")).toEqual(["d"]);
        await waitFor(
          "the completed result to expire",
          async () => (await store.get("1.2.3.4", ["d"])).length === 0,
          10_000,
        );
        await waitFor(
          "the completed listing to empty",
          async () => (await store.listIds("1.2.3.4", "completed")).length === 0,
          10_000,
        );
      },
      TIMEOUT_MS,
    );

    test(
      "behavior: the completed bound evicts the least recently used results",
      async () => {
        await using h = await makeHarness();
        const store = await h.open({ maxCompleted: 3 });
        for (const id of ["j1", "j2", "j3"]) await store.setDone("1.2.3.4", succeeded(id));
        expect(ids(await store.get("1.2.3.4", ["j1"]))).toEqual(["j1"]);
        await store.setDone("::1", succeeded("j4"));
        expect(await store.listIds("1.2.3.4", "completed")).toEqual(["j1", "j3"]);
        await store.setDone("1.2.3.4", succeeded("j5"));
        expect(await store.listIds("1.2.3.4", "completed")).toEqual(["j1", "j5"]);
        expect(await store.listIds("::1", "completed")).toEqual(["j4"]);
        // Rewriting an existing result does not count twice.
        await store.setDone("1.2.3.4", succeeded("j5", "again"));
        expect(ids(await store.get("1.2.3.4", ["j1", "j5"]))).toEqual(["j1", "j5"]);
        expect(await store.listIds("::1", "completed")).toEqual(["j4"]);
      },
      TIMEOUT_MS,
    );

    test(
      "behavior: results survive a restart",
      async () => {
        await using h = await makeHarness();
        const first = await h.open({ instanceId: "node-a" });
        await first.setDone("1.2.3.4", succeeded("kept", { n: 2n ** 60n }));
        await first.close();
        const second = await h.open({ instanceId: "node-a" });
        expect(await second.get("1.2.3.4", ["kept"])).toEqual([succeeded("kept", { n: 2n ** 60n })]);
        expect(await second.listIds("1.2.3.4", "all")).toEqual(["kept"]);
      },
      TIMEOUT_MS,
    );

    test(
      "behavior: recoverInterrupted fails only this instance's running jobs",
      async () => {
        await using h = await makeHarness();
        const a = await h.open({ instanceId: "node-a" });
        const b = await h.open({ instanceId: "node-b" });
        await a.setRunning("1.2.3.4", running("mine"), { containers: ["first", "second"] });
        await a.setRunning("::1", running("bare"));
        await b.setRunning("1.2.3.4", running("theirs"));
        await a.close();
        // Reopening runs setup, which recovers.
        const again = await h.open({ instanceId: "node-a" });
        expect(await again.get("1.2.3.4", ["mine", "theirs"])).toEqual([
          {
            id: "mine",
            status: "failed",
            intermediate_results: [],
            result: { container: "first", error: INTERRUPTED_ERROR },
          },
          running("theirs"),
        ]);
        expect(await again.get("::1", ["bare"])).toEqual([
          {
            id: "bare",
            status: "failed",
            intermediate_results: [],
            result: { container: "", error: INTERRUPTED_ERROR },
          },
        ]);
        expect(await again.listIds("1.2.3.4", "pending")).toEqual(["theirs"]);
        expect(await again.recoverInterrupted()).toBe(0);
      },
      TIMEOUT_MS,
    );

    test(
      "behavior: two instances on the same data serve each other's results",
      async () => {
        await using h = await makeHarness();
        const a = await h.open({ instanceId: "node-a" });
        const b = await h.open({ instanceId: "node-b" });
        await a.setRunning("1.2.3.4", running("j"));
        expect(await b.get("1.2.3.4", ["j"])).toEqual([running("j")]);
        await b.setDone("1.2.3.4", succeeded("j"));
        expect(await a.get("1.2.3.4", ["j"])).toEqual([succeeded("j")]);
        expect(await a.listIds("1.2.3.4", "all")).toEqual(["j"]);
      },
      TIMEOUT_MS,
    );
  });
}
