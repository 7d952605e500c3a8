// The off-chain half of the load: single jobs, batches, streaming jobs and status reads against the node's
// REST API at a steady rate (open loop: a slow node does not slow the arrivals, up to `maxInFlight`), each job
// followed to its end and checked against what the echo container must answer. Every request is sent on a
// fresh connection (as a client without a session does), so connections the node still holds after the load
// are its own, not a client's keep-alive pool.
import type { LatencyLog } from "./latency.ts";

export interface OffchainMix {
  singlesPerS: number;
  batchesPerS: number;
  batchSize: number;
  streamsPerS: number;
  /** GET /api/jobs?pending=true per second (besides the reads that follow each job). */
  statusReadsPerS: number;
}

export interface OffchainCounts {
  /** Jobs the node accepted (each batch item counts). */
  accepted: number;
  /** Accepted jobs that finished with exactly the expected result. */
  completed: number;
  /** Finished, but not with the expected result (or failed). */
  wrong: number;
  /** Still not finished `jobTimeoutMs` after submission. */
  lost: number;
  /** Submissions answered with anything but 200, or that failed on the network. */
  refused: number;
  /** Not sent because `maxInFlight` requests were outstanding (the node is falling behind). */
  skipped: number;
  statusReads: number;
  statusErrors: number;
}

export interface OffchainLoad {
  start(): void;
  /** Stops the arrivals and waits for every job in flight to end. */
  stop(): Promise<void>;
  counts(): OffchainCounts;
  /** The first problems seen, as messages. */
  errors(): string[];
  inFlight(): number;
}

interface JobRecord {
  id: string;
  status: string;
  result?: unknown;
}

const POLL_MS = 10;
const MAX_ERRORS = 20;
/** Some bytes per job, so results are not trivially small. */
const PAD = "x".repeat(200);

/** Runs `fn` `perSecond` times a second on a fixed schedule (no drift) until the returned stop is called. */
function every(perSecond: number, fn: () => void): () => void {
  if (perSecond <= 0) return () => {};
  const periodMs = 1000 / perSecond;
  const startedAt = performance.now();
  let n = 0;
  let timer: Timer | undefined;
  const tick = () => {
    fn();
    n++;
    timer = setTimeout(tick, Math.max(0, startedAt + n * periodMs - performance.now()));
  };
  timer = setTimeout(tick, 0);
  return () => clearTimeout(timer);
}

export function createOffchainLoad(p: {
  url: string;
  container: string;
  mix: OffchainMix;
  latency: LatencyLog;
  maxInFlight?: number;
  jobTimeoutMs?: number;
}): OffchainLoad {
  const { url, container, mix, latency } = p;
  const maxInFlight = p.maxInFlight ?? 200;
  const jobTimeoutMs = p.jobTimeoutMs ?? 60_000;
  const counts: OffchainCounts = {
    accepted: 0,
    completed: 0,
    wrong: 0,
    lost: 0,
    refused: 0,
    skipped: 0,
    statusReads: 0,
    statusErrors: 0,
  };
  const problems: string[] = [];
  const inFlight = new Set<Promise<void>>();
  const stops: (() => void)[] = [];
  let seq = 0;

  const problem = (message: string) => {
    if (problems.length < MAX_ERRORS) problems.push(message);
  };
  const request = (path: string, init: RequestInit = {}) =>
    fetch(`${url}${path}`, { ...init, keepalive: false });
  const post = (path: string, body: unknown) =>
    request(path, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });

  /** Polls until none of `ids` is running; undefined when they still are after the job timeout. */
  async function finished(ids: string[], submittedAt: number): Promise<JobRecord[] | undefined> {
    const query = ids.map((id) => `id=${id}`).join("&");
    while (performance.now() - submittedAt < jobTimeoutMs) {
      const res = await request(`/api/jobs?${query}`);
      const list = (await res.json()) as JobRecord[];
      if (res.status === 200 && list.length === ids.length && list.every((j) => j.status !== "running")) {
        return list;
      }
      await Bun.sleep(POLL_MS);
    }
    return undefined;
  }

  /** Counts each job of `records` as completed or wrong against its expected output. */
  function check(kind: string, records: JobRecord[], expected: Map<string, unknown>): void {
    for (const job of records) {
      const want = { id: job.id, status: "success", result: { container, output: expected.get(job.id) } };
      if (Bun.deepEquals(job, want)) counts.completed++;
      else {
        counts.wrong++;
        problem(`${kind} ${job.id}: ${JSON.stringify(job).slice(0, 300)}`);
      }
    }
  }

  const echoOf = (data: unknown) => ({
    service: "infernet-echo",
    echo: data,
    source: 1,
    destination: 1,
    requires_proof: false,
  });

  async function single(): Promise<void> {
    const data = { load: ++seq, kind: "single", pad: PAD };
    const at = performance.now();
    const res = await post("/api/jobs", { containers: [container], data });
    if (res.status !== 200) {
      counts.refused++;
      problem(`POST /api/jobs: HTTP ${res.status} ${(await res.text()).slice(0, 200)}`);
      return;
    }
    const { id } = (await res.json()) as { id: string };
    counts.accepted++;
    const done = await finished([id], at);
    if (!done) {
      counts.lost++;
      problem(`single ${id}: not finished after ${jobTimeoutMs} ms`);
      return;
    }
    latency.record(performance.now() - at);
    check("single", done, new Map([[id, echoOf(data)]]));
  }

  async function batch(): Promise<void> {
    const items = Array.from({ length: mix.batchSize }, () => ({
      containers: [container],
      data: { load: ++seq, kind: "batch", pad: PAD },
    }));
    const at = performance.now();
    const res = await post("/api/jobs/batch", items);
    if (res.status !== 200) {
      counts.refused += items.length;
      problem(`POST /api/jobs/batch: HTTP ${res.status} ${(await res.text()).slice(0, 200)}`);
      return;
    }
    const replies = (await res.json()) as { id?: string; error?: string }[];
    const expected = new Map<string, unknown>();
    replies.forEach((reply, i) => {
      if (reply.id) expected.set(reply.id, echoOf(items[i]?.data));
      else {
        counts.refused++;
        problem(`batch item ${i}: ${JSON.stringify(reply).slice(0, 200)}`);
      }
    });
    counts.accepted += expected.size;
    if (expected.size === 0) return;
    const done = await finished([...expected.keys()], at);
    if (!done) {
      counts.lost += expected.size;
      problem(`batch ${[...expected.keys()].join(",")}: not finished after ${jobTimeoutMs} ms`);
      return;
    }
    latency.record(performance.now() - at);
    check("batch", done, expected);
  }

  async function stream(): Promise<void> {
    const n = ++seq;
    const chunks = [`stream-${n} `, "two ", "three"];
    const at = performance.now();
    const res = await post("/api/jobs/stream", {
      containers: [container],
      data: { chunks, chunk_delay_ms: 5 },
    });
    if (res.status !== 200) {
      counts.refused++;
      problem(`POST /api/jobs/stream: HTTP ${res.status} ${(await res.text()).slice(0, 200)}`);
      return;
    }
    const text = await res.text();
    const newline = text.indexOf("\n");
    const id = text.slice(0, newline);
    counts.accepted++;
    latency.record(performance.now() - at);
    const body = text.slice(newline + 1);
    if (newline < 0 || body !== chunks.join("")) {
      counts.wrong++;
      problem(`stream ${id}: streamed ${JSON.stringify(text.slice(0, 200))}`);
      return;
    }
    const done = await finished([id], at);
    if (!done) {
      counts.lost++;
      problem(`stream ${id}: not finished after ${jobTimeoutMs} ms`);
      return;
    }
    check("stream", done, new Map([[id, { output: body }]]));
  }

  async function statusRead(): Promise<void> {
    const res = await request("/api/jobs?pending=true");
    const body = await res.json();
    if (res.status === 200 && Array.isArray(body)) counts.statusReads++;
    else {
      counts.statusErrors++;
      problem(`GET /api/jobs?pending=true: HTTP ${res.status} ${JSON.stringify(body).slice(0, 200)}`);
    }
  }

  /** Starts `work` unless too much is outstanding; a throw (network error) counts as refused. */
  const launch = (kind: string, work: () => Promise<void>) => () => {
    if (inFlight.size >= maxInFlight) {
      counts.skipped++;
      return;
    }
    const running: Promise<void> = work()
      .catch((error: unknown) => {
        if (kind === "status") counts.statusErrors++;
        else counts.refused++;
        problem(`${kind}: ${String(error)}`);
      })
      .finally(() => inFlight.delete(running));
    inFlight.add(running);
  };

  return {
    start() {
      stops.push(
        every(mix.singlesPerS, launch("single", single)),
        every(mix.batchesPerS, launch("batch", batch)),
        every(mix.streamsPerS, launch("stream", stream)),
        every(mix.statusReadsPerS, launch("status", statusRead)),
      );
    },
    async stop() {
      for (const stop of stops.splice(0)) stop();
      while (inFlight.size > 0) await Promise.allSettled([...inFlight]);
    },
    counts: () => ({ ...counts }),
    errors: () => [...problems],
    inFlight: () => inFlight.size,
  };
}
