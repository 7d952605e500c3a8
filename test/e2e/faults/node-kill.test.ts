// Fault: the release binary is killed with SIGKILL (no shutdown, no drain) while off-chain jobs keep arriving,
// some of them slow enough to be running at the kill, then started again on the same store: the embedded
// SQLite file under the config's data dir, and Redis. Results completed before the kill must read back
// unchanged, every job that was running (or only just accepted) must now read as failed with the
// interrupted-job error, never "running" or missing, and the restarted node must serve new jobs.
// (The on-chain side of a SIGKILL is test/e2e/chain/restart.test.ts.)
import { describe, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { INTERRUPTED_ERROR } from "../../../src/store/interrupted.ts";
import { waitFor } from "../../fixtures/net.ts";
import { type JobKind, listJobIds, readJobs, startJobLoad, submitJob } from "../../fixtures/offchain-load.ts";
import { type PrivateRedis, startPrivateRedis } from "../../fixtures/redis.ts";
import { startNode } from "../../integration/server/node-process.ts";

/** Slow jobs run this long in the container: far longer than the test, so they are surely running at the kill. */
const SLOW_MS = 120_000;

for (const store of ["embedded", "redis"] as const) {
  describe(`SIGKILL under off-chain load, restart on the same store (${store} store)`, () => {
    test("behavior: completed results survive, running jobs read failed, the new process serves jobs", async () => {
      await using redis: PrivateRedis | undefined = store === "redis" ? await startPrivateRedis() : undefined;
      await using f = await startNode(`kill-${store}`, { store, ...(redis ? { redis } : {}) });
      const { url } = f.node;
      const load = startJobLoad(url, {
        container: f.ids.echo,
        phase: () => "before",
        everyMs: 100,
        slowMs: SLOW_MS,
      });

      // Load until some jobs have completed and some slow ones are running, then kill while requests still
      // arrive.
      const snapshot = await waitFor(
        "completed and running jobs at once",
        async () => {
          const ids = load.submissions.flatMap((s) => s.accepted);
          if (ids.length < 40) return undefined;
          const jobs = await readJobs(url, ids);
          const states = [...jobs.values()].map((job) => job.status);
          return states.filter((s) => s === "success").length >= 10 && states.includes("running")
            ? jobs
            : undefined;
        },
        60_000,
      );
      // The embedded store is the file the config names, in the node's data dir; nothing else is kept.
      if (store === "embedded") expect(existsSync((f.config.store as { path: string }).path)).toBe(true);
      const oldPid = f.node.pid();
      expect(await f.node.stop("SIGKILL")).toBe(137);
      const submissions = await load.stop();
      await f.node.restart();
      expect(f.node.pid()).not.toBe(oldPid);

      const accepted = submissions.flatMap((s) => s.accepted);
      const slow = new Set(submissions.flatMap((s) => s.slow));
      const after = await readJobs(url, accepted);
      const completedBefore = [...snapshot.values()].filter((job) => job.status === "success");
      const runningBefore = [...snapshot.values()].filter((job) => job.status === "running");
      const interrupted = accepted.filter((id) => after.get(id)?.result?.error === INTERRUPTED_ERROR);
      console.log(
        `${store}: ${submissions.length} requests, ${accepted.length} jobs accepted; at the kill ` +
          `${completedBefore.length} seen completed and ${runningBefore.length} running; after restart ` +
          `${accepted.filter((id) => after.get(id)?.status === "success").length} succeeded and ` +
          `${interrupted.length} failed as interrupted; ` +
          `${submissions.filter((s) => s.status === "no reply" || s.error).length} requests cut off by the kill`,
      );

      // Results completed before the kill read back unchanged.
      for (const job of completedBefore) expect(after.get(job.id)).toEqual(job);
      // Every accepted job is there and has ended: with its result, or as interrupted.
      for (const id of accepted) {
        const job = after.get(id);
        expect(job?.status).toBeOneOf(["success", "failed"]);
        if (job?.status === "failed") {
          expect(job.result).toEqual({ container: f.ids.echo, error: INTERRUPTED_ERROR });
        }
      }
      // The slow jobs (single, batch items and streams) were all still running: each is failed as interrupted.
      expect(slow.size).toBeGreaterThan(0);
      for (const id of slow) expect(after.get(id)?.result?.error).toBe(INTERRUPTED_ERROR);
      const pendingNow = new Set(await listJobIds(url, true));
      expect(accepted.filter((id) => pendingNow.has(id))).toEqual([]);
      // A stream cut off by the kill ended without a clean end for its client.
      for (const s of submissions.filter((sub) => sub.kind === "stream" && sub.slow.length > 0)) {
        expect(s.stream?.complete).not.toBe(true);
      }

      // The restarted node takes new work of every kind.
      const kinds: JobKind[] = ["single", "batch", "stream"];
      const fresh = await Promise.all(
        kinds.map((kind) => submitJob(url, kind, { container: f.ids.echo, phase: "after", n: 0 })),
      );
      const freshIds = fresh.flatMap((s) => s.accepted);
      expect(freshIds).toHaveLength(5);
      const done = await waitFor(
        "the new jobs to finish",
        async () => {
          const jobs = await readJobs(url, freshIds);
          return freshIds.every((id) => jobs.get(id)?.status === "success") ? jobs : undefined;
        },
        60_000,
      );
      expect(done.size).toBe(5);
      expect(fresh.find((s) => s.kind === "stream")?.stream).toEqual({
        text: "one two three",
        complete: true,
      });
    }, 240_000);
  });
}
