// Faults of managed containers through the release binary, with jobs in flight: a container killed from
// outside (docker kill), one that hangs (its port accepts connections, nothing answers: the echo image's
// `hang` control freezes the service), and one paused (docker pause). Each time the jobs on it end with an error
// that names the container and the reason, /health shows it down, the Container Manager brings it back, later
// jobs succeed, and jobs on the other containers are not affected meanwhile.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { testDocker } from "../../fixtures/docker.ts";
import { waitFor } from "../../fixtures/net.ts";
import { finishedJob, type NodeFixture, postJson, startNode } from "../../integration/server/node-process.ts";

/** Per container call; the hang limit is max(job_timeout, 5 s), so a hung container is restarted after 5 s. */
const JOB_TIMEOUT_S = 5;

let f: NodeFixture;
let url = "";
const docker = testDocker();

beforeAll(async () => {
  f = await startNode("faults-ctr", {
    store: "embedded",
    extra: { job_timeout: JOB_TIMEOUT_S },
    // The third container takes jobs from REST too (the pause case sends it one).
    containers: { inner: { external: true } },
  });
  url = f.node.url;
}, 180_000);

afterAll(async () => {
  await f?.[Symbol.asyncDispose]();
});

async function submit(container: string, data: unknown): Promise<string> {
  const res = await postJson(`${url}/api/jobs`, { containers: [container], data });
  expect(res.status).toBe(200);
  return ((await res.json()) as { id: string }).id;
}

function baseUrlOf(container: string): string {
  const entry = (f.config.containers as { id: string; port: number }[]).find((c) => c.id === container);
  return `http://127.0.0.1:${entry?.port}`;
}

/** Jobs the echo service is handling right now (its GET /inflight): the node's calls that really reached it. */
async function inFlightAt(container: string): Promise<number> {
  const res = await fetch(`${baseUrlOf(container)}/inflight`, { signal: AbortSignal.timeout(2000) });
  return ((await res.json()) as { service_output: number }).service_output;
}

/** True once the service does not answer GET / within a second. */
async function stoppedAnswering(container: string): Promise<boolean> {
  return fetch(`${baseUrlOf(container)}/`, { signal: AbortSignal.timeout(1000) }).then(
    () => false,
    () => true,
  );
}

/** The node's JSON log lines on stderr so far. */
function logLines(): Record<string, unknown>[] {
  return f.node
    .output()
    .split("\n")
    .flatMap((line) => {
      try {
        return [JSON.parse(line) as Record<string, unknown>];
      } catch {
        return [];
      }
    });
}

async function health(): Promise<{ status: string; degraded: string[] }> {
  return (await (await fetch(`${url}/health`)).json()) as { status: string; degraded: string[] };
}

/**
 * Polls /health until stopped and records every time it listed `container` as down: the window between a kill
 * and the restart can be shorter than a second, so it is watched from before the fault.
 */
function watchHealth(container: string): { stop(): Promise<number> } {
  let seenDown = 0;
  let running = true;
  const loop = (async () => {
    while (running) {
      const body = await health().catch(() => undefined);
      if (body?.degraded.includes(`containers.${container}`)) seenDown++;
      await Bun.sleep(10);
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return seenDown;
    },
  };
}

async function isReadyInHealth(container: string): Promise<boolean> {
  const body = await health();
  return body.status === "healthy" && !body.degraded.includes(`containers.${container}`);
}

describe("faults: managed containers", () => {
  test("behavior: a container killed with jobs in flight: the jobs fail naming it, /health shows it down, it comes back", async () => {
    const id = f.ids.echo;
    const watcher = watchHealth(id);
    const inFlight = await Promise.all([1, 2, 3].map(() => submit(id, { sleep_ms: 60_000 })));
    await waitFor("the three calls to reach the container", async () => (await inFlightAt(id)) >= 3);
    const killedAt = performance.now();
    await docker.getContainer(id).kill();

    for (const jobId of inFlight) {
      const job = await finishedJob(url, jobId);
      expect(job.status).toBe("failed");
      const result = job.result as { container: string; error: string };
      expect(result.container).toBe(id);
      expect(result.error).toStartWith(
        `Lost the connection to container ${id} before it replied (it stopped, crashed or was restarted during the job): `,
      );
    }
    const failedAfterMs = performance.now() - killedAt;

    await waitFor("the container to be back in /health", () => isReadyInHealth(id), 60_000);
    const backAfterMs = performance.now() - killedAt;
    expect(await watcher.stop()).toBeGreaterThan(0);
    const lines = logLines();
    expect(
      lines.some(
        (r) =>
          r.msg === `Container '${id}' failed / exited / crashed: died (exit code 137)` ||
          (r.id === id && r.level === "warn" && String(r.msg).includes("failed / exited / crashed")),
      ),
    ).toBe(true);
    expect(lines.some((r) => r.msg === `Container '${id}' back up`)).toBe(true);

    const later = await finishedJob(url, await submit(id, { after: "kill" }));
    expect(later).toMatchObject({
      status: "success",
      result: { container: id, output: { echo: { after: "kill" } } },
    });
    console.log(
      `container killed: in-flight jobs failed after ${Math.round(failedAfterMs)} ms, back in /health after ${Math.round(backAfterMs)} ms`,
    );
  }, 120_000);

  test("behavior: a hung container: jobs on it time out, /health shows it, the node kills and restarts it, other containers keep serving", async () => {
    const hung = f.ids.echo2;
    const other = f.ids.echo;
    const hangingJob = await submit(hung, { hang: true });
    const hungAt = performance.now();
    const hungSince = new Date();
    await waitFor("the service to freeze", () => stoppedAnswering(hung));
    // Its port still accepts connections (the kernel completes them for the frozen process): later calls connect
    // and then wait, like the first one.
    const waiting = await Promise.all([1, 2].map((n) => submit(hung, { n })));

    // Meanwhile the other container serves every job sent to it.
    const others = await Promise.all([1, 2, 3, 4].map((n) => submit(other, { during: n })));
    for (const jobId of others) expect((await finishedJob(url, jobId)).status).toBe("success");

    for (const jobId of [hangingJob, ...waiting]) {
      const job = await finishedJob(url, jobId);
      expect(job).toMatchObject({
        status: "failed",
        result: { container: hung, error: `Container ${hung} did not reply within ${JOB_TIMEOUT_S} s` },
      });
    }
    await waitFor(
      "/health to show the hung container",
      async () => (await health()).degraded.includes(`containers.${hung}`),
      30_000,
    );
    const killLine = await waitFor(
      "the node to kill the hung container",
      () =>
        logLines().find(
          (r) =>
            typeof r.msg === "string" &&
            r.msg.startsWith(`Container '${hung}' is hung: not answering HTTP for `),
        ),
      60_000,
    );
    expect(String(killLine.msg)).toEndWith("; killing and restarting it");
    await waitFor("the hung container to be back in /health", () => isReadyInHealth(hung), 60_000);
    const backAfterMs = performance.now() - hungAt;
    const info = await docker.getContainer(hung).inspect();
    expect(info.State.Running).toBe(true);
    // Started again after the hang (same host clock): killed and restarted, not merely answering again.
    expect(Date.parse(info.State.StartedAt)).toBeGreaterThan(hungSince.getTime());

    const later = await finishedJob(url, await submit(hung, { after: "hang" }));
    expect(later).toMatchObject({
      status: "success",
      result: { container: hung, output: { echo: { after: "hang" } } },
    });
    console.log(`container hung: killed and back in /health ${Math.round(backAfterMs)} ms after the hang`);
  }, 120_000);

  test("behavior: a paused container is unpaused by the node and the job waiting on it completes", async () => {
    const id = f.ids.inner;
    // Shorter than job_timeout by seconds: the pause lasts only until the node notices it.
    const jobId = await submit(id, { sleep_ms: 1000, paused: true });
    await waitFor("the call to reach the container", async () => (await inFlightAt(id)) >= 1);
    await docker.getContainer(id).pause();
    await waitFor("the node to unpause it", () =>
      logLines().some((r) => r.msg === `Unpausing container '${id}'`),
    );
    await waitFor("the container to run again", async () => {
      const state = (await docker.getContainer(id).inspect()).State;
      return state.Running && !state.Paused;
    });
    const job = await finishedJob(url, jobId);
    expect(job).toMatchObject({
      status: "success",
      result: { container: id, output: { echo: { paused: true } } },
    });
    await waitFor("the container to be back in /health", () => isReadyInHealth(id), 30_000);
  }, 60_000);
});
