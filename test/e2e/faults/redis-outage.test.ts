// Fault: the Redis behind the job store stops for 20 s and comes back with its data (an AOF on disk), while
// single jobs, batches and streaming jobs, fast and slow, keep arriving at the release binary. The node must stay
// up, say in /health that the store is down and then that it is back, and lose nothing it accepted: every job
// answered 200 before, during or after the outage ends completed (or failed with an error) and is listed by
// Redis afterwards; a job the node could not store is refused with a 503 and a JSON error.
import { describe, expect, test } from "bun:test";
import { waitFor } from "../../fixtures/net.ts";
import { listJobIds, readJobs, type Submission, startJobLoad } from "../../fixtures/offchain-load.ts";
import { residentKb } from "../../fixtures/proc-status.ts";
import { startPrivateRedis } from "../../fixtures/redis.ts";
import { postJson, startNode } from "../../integration/server/node-process.ts";

/** The outage the issue asks for. */
const OUTAGE_MS = 20_000;
/** The Redis store queues at most 10,000 writes for new jobs during an outage; one batch this big passes it. */
const FLOOD_JOBS = 10_050;

/** "draining": Redis is back and the writes queued during the outage are landing. */
type Phase = "before" | "during" | "draining" | "after";

interface HealthSample {
  phase: Phase;
  /** HTTP status, or "no reply" (the node did not answer at all). */
  status: number | "no reply";
  storeOk?: boolean;
  queued?: number;
  /** The node's resident memory then (KiB). */
  rssKb?: number;
}

/** Polls /health every 250 ms until stopped, recording what the node said about its store. */
function watchHealth(url: string, pid: number, phase: () => Phase) {
  const samples: HealthSample[] = [];
  let stopped = false;
  const done = (async () => {
    while (!stopped) {
      const at = phase();
      try {
        const res = await fetch(`${url}/health`, { signal: AbortSignal.timeout(10_000) });
        const body = (await res.json()) as { checks?: { store?: { ok: boolean; queued_writes?: number } } };
        samples.push({
          phase: at,
          status: res.status,
          storeOk: body.checks?.store?.ok,
          queued: body.checks?.store?.queued_writes,
          rssKb: residentKb(pid),
        });
      } catch {
        samples.push({ phase: at, status: "no reply" });
      }
      await Bun.sleep(250);
    }
  })();
  return {
    samples,
    async stop() {
      stopped = true;
      await done;
    },
  };
}

/**
 * Reads `ids` back over and over until stopped; records per round the failure status or the ids missing or
 * back to "running" (each of `ids` had finished when the watch began).
 */
function watchReads(url: string, ids: string[]) {
  const rounds: { status: number; missing: string[]; running: string[] }[] = [];
  let stopped = false;
  const done = (async () => {
    while (!stopped) {
      try {
        const jobs = await readJobs(url, ids);
        rounds.push({
          status: 200,
          missing: ids.filter((id) => !jobs.has(id)),
          running: ids.filter((id) => jobs.get(id)?.status === "running"),
        });
      } catch (error) {
        rounds.push({
          status: Number(/answered (\d+)/.exec(String(error))?.[1] ?? 0),
          missing: [],
          running: [],
        });
      }
      await Bun.sleep(100);
    }
  })();
  return {
    async stop() {
      stopped = true;
      await done;
      return rounds;
    },
  };
}

describe("Redis stopped for 20 s under off-chain load (release binary, Redis store)", () => {
  test("behavior: the node stays up, /health follows Redis, and no accepted job is lost", async () => {
    await using redis = await startPrivateRedis({ persistent: true });
    await using f = await startNode("redis-outage", {
      store: "redis",
      redis,
      extra: { server: { max_batch_jobs: FLOOD_JOBS } },
    });
    const { url } = f.node;
    const pid = f.node.pid();
    if (pid === undefined) throw new Error("the node has no pid");
    let phase: Phase = "before";
    const health = watchHealth(url, pid, () => phase);
    const load = startJobLoad(url, { container: f.ids.echo, phase: () => phase, everyMs: 300 });

    // Some jobs in flight (slow ones still running) when Redis goes away.
    await waitFor("jobs accepted before the outage", () => load.submissions.length >= 10, 60_000);
    phase = "during";
    await redis.stop();
    await waitFor(
      "/health to report the store down",
      () => health.samples.some((s) => s.phase === "during" && s.storeOk === false),
      15_000,
    );
    const outageStart = Date.now();
    await waitFor(
      "jobs accepted during the outage",
      () => load.submissions.filter((s) => s.phase === "during" && s.accepted.length > 0).length >= 5,
      30_000,
    );
    // Then one batch past the store's outage queue: the items it cannot queue are refused, each with its error, and
    // from then on new single and streaming jobs get a 503 (the load goes on meanwhile). The results of the
    // flood's accepted jobs are still queued: they must all land when Redis is back.
    const floodRes = await postJson(
      `${url}/api/jobs/batch`,
      Array.from({ length: FLOOD_JOBS }, (_, i) => ({ containers: [f.ids.echo], data: { flood: i } })),
    );
    expect(floodRes.status).toBe(200);
    const floodItems = (await floodRes.json()) as {
      id?: string;
      error?: string;
      params?: { reason?: string };
    }[];
    const flood = floodItems.flatMap((item) => (item.id ? [item.id] : []));
    const floodRefused = floodItems.filter((item) => !item.id);
    expect(floodRefused.length).toBeGreaterThan(0);
    for (const item of floodRefused) {
      expect(item).toMatchObject({ error: "Could not enqueue job" });
      expect(item.params?.reason).toContain("too many writes waiting for the backend");
    }
    const single = await postJson(`${url}/api/jobs`, { containers: [f.ids.echo], data: {} });
    expect(single.status).toBe(503);
    expect(await single.json()).toMatchObject({ error: "Could not enqueue job" });
    // The fault itself lasts a fixed time: Redis is down for the whole of it.
    await Bun.sleep(Math.max(0, OUTAGE_MS - (Date.now() - outageStart)));
    // Jobs accepted during the outage read back while Redis is still away (from the writes waiting for it):
    // those that finished long ago too, which the node no longer holds as recent.
    const sample = [
      ...flood.filter((_, i) => i % 100 === 0),
      ...load.submissions.filter((s) => s.phase === "during").flatMap((s) => s.accepted),
    ];
    const readDuring = await readJobs(url, sample);
    expect(sample.filter((id) => !readDuring.has(id))).toEqual([]);
    const finished = sample.filter((id) => readDuring.get(id)?.status !== "running");
    expect(finished.length).toBeGreaterThan(0);
    const readsWhileDraining = watchReads(url, finished);
    await redis.start();
    phase = "draining";
    const drainStart = Date.now();
    await waitFor(
      "/health healthy with no writes queued",
      () => health.samples.some((s) => s.phase === "draining" && s.status === 200 && s.queued === 0),
      60_000,
    );
    const drainMs = Date.now() - drainStart;
    phase = "after";
    // While the backlog landed, every read answered and found every job (none missing, none gone back to
    // running).
    const drainReads = await readsWhileDraining.stop();
    expect(drainReads.length).toBeGreaterThan(0);
    for (const read of drainReads) expect(read).toEqual({ status: 200, missing: [], running: [] });
    const afterFrom = load.submissions.length;
    await waitFor("jobs accepted after the restart", () => load.submissions.length >= afterFrom + 10, 60_000);
    const submissions = await load.stop();

    // Every accepted job ends, and Redis lists it as completed: nothing accepted was dropped.
    const accepted = [...submissions.flatMap((s) => s.accepted), ...flood];
    const jobs = await waitFor(
      "every accepted job to end",
      async () => {
        const read = await readJobs(url, accepted);
        const ended = accepted.every((id) => read.has(id) && read.get(id)?.status !== "running");
        return ended ? read : undefined;
      },
      90_000,
    );
    const completedInRedis = new Set(await listJobIds(url, false));
    await health.stop();

    const rows = (["before", "during", "draining", "after"] as const).map((p) => {
      const mine = submissions.filter((s) => s.phase === p);
      const ids = mine.flatMap((s) => s.accepted);
      return {
        phase: p,
        requests: mine.length,
        accepted: ids.length,
        refused: mine.reduce((sum, s) => sum + s.refused.length, 0),
        no_reply: mine.filter((s) => s.status === "no reply").length,
        succeeded: ids.filter((id) => jobs.get(id)?.status === "success").length,
        failed: ids.filter((id) => jobs.get(id)?.status === "failed").length,
      };
    });
    const maxQueued = Math.max(0, ...health.samples.map((s) => s.queued ?? 0));
    const rssMb = (p: Phase) =>
      Math.round(Math.max(0, ...health.samples.filter((s) => s.phase === p).map((s) => s.rssKb ?? 0)) / 1024);
    const logLines = f.node.output().split("\n").length;
    const retryLines = f.node.output().split("job store write failed, retrying").length - 1;
    console.log(
      `redis outage of ${OUTAGE_MS / 1000} s, max writes queued ${maxQueued}; flood batch of ${FLOOD_JOBS}: ` +
        `${flood.length} accepted (${flood.filter((id) => jobs.get(id)?.status === "success").length} ` +
        `succeeded), ${floodRefused.length} refused; queued writes landed ${drainMs} ms after Redis was back`,
    );
    console.log(
      `node RSS (max MiB) before ${rssMb("before")}, during ${rssMb("during")}, draining ${rssMb("draining")}, ` +
        `after ${rssMb("after")}; ${logLines} log lines, ${retryLines} of them write retries`,
    );
    console.table(rows);

    // The node never stopped answering, and it is the same process.
    expect(health.samples.filter((s) => s.status === "no reply")).toEqual([]);
    expect(f.node.pid()).toBe(pid);
    expect(process.kill(pid, 0)).toBe(true);
    // /health: healthy before, 503 with the store down during, healthy after.
    const during = health.samples.filter((s) => s.phase === "during");
    expect(health.samples.find((s) => s.phase === "before")).toMatchObject({ status: 200, storeOk: true });
    expect(during.some((s) => s.status === 503 && s.storeOk === false)).toBe(true);
    expect(health.samples.filter((s) => s.phase === "after")).not.toEqual([]);
    for (const s of health.samples.filter((s) => s.phase === "after")) {
      expect(s).toMatchObject({ status: 200, storeOk: true });
    }

    // Writes waiting out the outage wait for the connection, not in the Redis client's queue where each timed
    // out into a retry with a warning: 9,996 such lines in this test before, only the writes cut off by the stop
    // itself now.
    expect(retryLines).toBeLessThan(100);
    // Every request got an HTTP reply; each refusal is a 503 (or a refused batch item) with a JSON error.
    expect(submissions.filter((s) => s.status === "no reply")).toEqual([]);
    const refusals = submissions.filter((s) => s.refused.length > 0);
    for (const s of refusals) {
      expect([200, 503]).toContain(s.status as number);
      for (const r of s.refused) expect(typeof r.error).toBe("string");
    }
    // Jobs were accepted before, during (until the flood filled the queue) and after the outage; once the
    // backlog had landed, nothing was refused.
    for (const row of rows) if (row.phase !== "draining") expect(row.accepted).toBeGreaterThan(0);
    expect(rows.find((row) => row.phase === "after")?.refused).toBe(0);

    // Nothing accepted is lost: each accepted job ended, with a result or an error, and Redis lists it.
    for (const id of accepted) {
      const job = jobs.get(id);
      expect(job?.status === "success" || typeof job?.result?.error === "string").toBe(true);
      expect(completedInRedis.has(id)).toBe(true);
    }
    // The containers worked throughout: every accepted job succeeded, streams included.
    expect(accepted.filter((id) => jobs.get(id)?.status !== "success")).toEqual([]);
    const streams = submissions.filter((s): s is Submission & { stream: object } => s.stream !== undefined);
    expect(streams.length).toBeGreaterThan(0);
    for (const s of streams) expect(s.stream).toEqual({ text: "one two three", complete: true });
  }, 240_000);
});
