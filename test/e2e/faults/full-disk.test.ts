// A full disk under the release binary, while jobs are submitted: the embedded job store on a small tmpfs, and
// separately the log file on one. A filler file takes the last byte; deleting it brings the space back.
// Store: jobs that cannot be stored are refused with 503 and a JSON error (never accepted and lost), /health
// says the store cannot write, a job accepted before gets its result stored once there is room, and new jobs
// are stored and readable again. Log: the failure is reported once on stderr, the node keeps serving, and
// logging resumes with a record of the lines dropped meanwhile. Needs root for mount: fails, never skips.
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { waitFor } from "../../fixtures/net.ts";
import { mountTmpfs } from "../../fixtures/tmpfs.ts";
import { finishedJob, postJson, startNode } from "../../integration/server/node-process.ts";

interface Health {
  status: string;
  degraded: string[];
  checks: Record<string, { ok: boolean; detail?: string }>;
  params?: { failing: string[] };
}

async function health(url: string): Promise<{ code: number; body: Health }> {
  const res = await fetch(`${url}/health`);
  return { code: res.status, body: (await res.json()) as Health };
}

function alive(pid: number | undefined): boolean {
  if (pid === undefined) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Lines of stderr (JSON log records) with this message. */
function stderrRecords(output: string, msg: string): Record<string, unknown>[] {
  return output.split("\n").flatMap((line) => {
    if (!line.includes(msg)) return [];
    const record = JSON.parse(line) as Record<string, unknown>;
    return record.msg === msg ? [record] : [];
  });
}

describe("faults: full disk", () => {
  test("error: the job store's disk is full: jobs refused with 503, /health says why, recovery when space returns", async () => {
    await using disk = mountTmpfs("full-store", 2 * 1024 * 1024);
    await using f = await startNode("full-store", {
      store: "embedded",
      extra: { store: { path: join(disk.dir, "jobs.sqlite") } },
    });
    const url = f.node.url;
    const pid = f.node.pid();
    const echo = f.ids.echo;
    expect((await finishedJob(url, await submit(url, echo, { n: "before" }))).status).toBe("success");
    // Accepted before the disk fills; finishes while it is full.
    const accepted = await submit(url, echo, { n: "accepted", sleep_ms: 500 });

    const filled = disk.fill();
    let refused = 0;
    for (let i = 0; i < 5; i++) {
      const res = await postJson(`${url}/api/jobs`, { containers: [echo], data: { n: `refused-${i}` } });
      expect(res.status).toBe(503);
      expect(await res.json()).toEqual({
        error: "Could not enqueue job",
        params: { reason: "job store write failed: database or disk is full" },
      });
      refused++;
    }
    // The batch and stream routes refuse the same way (a batch answers per item).
    const batch = await postJson(`${url}/api/jobs/batch`, [
      { containers: [echo], data: { n: "batch-0" } },
      { containers: [echo], data: { n: "batch-1" } },
    ]);
    const refusal = {
      error: "Could not enqueue job",
      params: { reason: "job store write failed: database or disk is full" },
    };
    expect(await batch.json()).toEqual([refusal, refusal]);
    const stream = await postJson(`${url}/api/jobs/stream`, { containers: [echo], data: { n: "stream" } });
    expect(stream.status).toBe(503);
    expect(await stream.json()).toEqual(refusal);
    refused += 3;
    const sick = await health(url);
    expect(sick.code).toBe(503);
    expect(sick.body.params?.failing).toContain("store");
    expect(sick.body.checks.store?.detail).toContain("database or disk is full");
    expect(alive(pid)).toBe(true);
    // Reads keep working while writes cannot.
    expect((await fetch(`${url}/api/jobs?id=${accepted}`)).status).toBe(200);

    // It finishes while the disk is full: its result is held in memory, not dropped.
    await waitFor(
      "the accepted job's result to be held",
      () => stderrRecords(f.node.output(), "job result held until the job store can write it").length > 0,
    );
    expect((await health(url)).body.checks.store?.detail).toContain("1 job results waiting to be written");

    disk.free();
    await waitFor("/health to recover", async () => (await health(url)).code === 200, 30_000);
    const held = await waitFor(
      "the result held during the outage to be stored",
      async () => {
        const [job] = (await (await fetch(`${url}/api/jobs?id=${accepted}`)).json()) as Record<
          string,
          unknown
        >[];
        return job?.status === "success" ? job : undefined;
      },
      30_000,
    );
    expect(held).toMatchObject({ result: { container: echo, output: { echo: { n: "accepted" } } } });
    const after = await submit(url, echo, { n: "after" });
    expect(await finishedJob(url, after)).toMatchObject({ status: "success" });
    expect(f.node.pid()).toBe(pid);
    // In the file, not only in the node's memory of recent jobs: a restarted node reads both from the store.
    await f.node.restart();
    const stored = (await (await fetch(`${url}/api/jobs?id=${accepted}&id=${after}`)).json()) as {
      id: string;
      status: string;
    }[];
    expect(stored.map((job) => [job.id, job.status]).sort()).toEqual(
      [
        [accepted, "success"],
        [after, "success"],
      ].sort(),
    );
    console.log(
      `full store disk: filler took ${filled} bytes; ${refused} jobs refused (503, or a per-item error in the batch), none accepted and lost`,
    );
  }, 120_000);

  test("error: the log file's disk is full: reported once on stderr, the node keeps serving, logging resumes", async () => {
    await using disk = mountTmpfs("full-log", 1024 * 1024);
    const logPath = join(disk.dir, "node.log");
    await using f = await startNode("full-log", { store: "embedded", extra: { log: { path: logPath } } });
    const url = f.node.url;
    const pid = f.node.pid();
    const echo = f.ids.echo;
    const failure = "cannot write the log file; log lines are dropped until it can be written again";

    disk.fill();
    // Every failed container call (a non-JSON reply) logs a warning: keep failing jobs until the file refuses a line (the last
    // page of the file may still take a few).
    await waitFor(
      "the log failure on stderr",
      async () => {
        await finishedJob(url, await submit(url, echo, { text: "not json" }));
        return stderrRecords(f.node.output(), failure).length > 0;
      },
      60_000,
    );
    for (let i = 0; i < 20; i++) await finishedJob(url, await submit(url, echo, { text: "not json" }));
    const reports = stderrRecords(f.node.output(), failure);
    expect(reports).toHaveLength(1);
    expect(reports[0]).toMatchObject({ level: "error", component: "log", path: logPath });
    expect(String(reports[0]?.error)).toContain("ENOSPC");
    expect(alive(pid)).toBe(true);
    expect(await finishedJob(url, await submit(url, echo, { n: "while full" }))).toMatchObject({
      status: "success",
    });
    // /health tells: still serving (200), the log file listed as degraded with the reason; /ready is not held
    // back by it (a readiness probe must not take a node out of service for its log disk).
    const degraded = await health(url);
    expect(degraded.code).toBe(200);
    expect(degraded.body.degraded).toContain("log");
    expect(degraded.body.checks.log?.detail).toStartWith(`cannot write ${logPath} since `);
    expect((await fetch(`${url}/ready`)).status).toBe(200);

    disk.free();
    const resumed = await waitFor(
      "logging to resume",
      async () => {
        await finishedJob(url, await submit(url, echo, { text: "not json" }));
        return readFileSync(logPath, "utf8").includes("log file writable again");
      },
      30_000,
    );
    expect(resumed).toBe(true);
    const lines = readFileSync(logPath, "utf8").trim().split("\n");
    const at = lines.findIndex((line) => line.includes("log file writable again"));
    const record = JSON.parse(lines[at] as string) as { dropped: number };
    expect(record.dropped).toBeGreaterThan(20);
    // Every line from the recovery on is whole JSON (a line cut by the full disk stays on a line of its own).
    for (const line of lines.slice(at)) expect(() => JSON.parse(line)).not.toThrow();
    expect(
      stderrRecords(f.node.output(), "log file writable again; lines were dropped while it was not"),
    ).toHaveLength(1);
    expect((await health(url)).body.checks.log).toBeUndefined();
    expect(f.node.pid()).toBe(pid);
  }, 120_000);
});

async function submit(url: string, container: string, data: unknown): Promise<string> {
  const res = await postJson(`${url}/api/jobs`, { containers: [container], data });
  expect(res.status).toBe(200);
  return ((await res.json()) as { id: string }).id;
}
