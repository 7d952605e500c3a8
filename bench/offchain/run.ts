// Off-chain job throughput and latency: the example echo container called directly, then through the node
// (release binary, unmanaged mode pointing at the same container) with each job store, at 32 concurrent clients.
//
//   bun run bench/offchain/run.ts [--seconds 8] [--clients 32]
//
// Direct: each client POSTs /service_output and waits for the reply. Through the node: each client POSTs
// /api/jobs, then polls GET /api/jobs?id=… every 1 ms until the result is retrievable; latency is submit →
// retrievable result. Reported: completed jobs/s, p50 and p99 latency, and the node's figures as ratios to the
// direct ones (targets: ≥ 25 % of the direct rate, p50 within 5 ms of the direct p50).
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { freePort, waitFor } from "../../test/fixtures/net.ts";

const { values } = parseArgs({
  args: Bun.argv.slice(2),
  options: {
    seconds: { type: "string", default: "4" },
    // Runs alternate (direct, node…, direct, node…) so that load from other processes hits all of them alike.
    rounds: { type: "string", default: "3" },
    clients: { type: "string", default: "32" },
    warmup: { type: "string", default: "1" },
    // Runs the node from source under Bun's CPU profiler (markdown profiles in this directory).
    profile: { type: "string" },
    stores: { type: "string", default: "embedded,redis" },
  },
});
const SECONDS = Number(values.seconds);
const CLIENTS = Number(values.clients);
const WARMUP = Number(values.warmup);
const ROUNDS = Number(values.rounds);
const ROOT = join(import.meta.dir, "..", "..");
const IMAGE = "infernet-echo:latest";
const run = `bench-offchain-${process.pid}`;
const cleanups: (() => Promise<void> | void)[] = [];
// USER_HZ: the unit of utime/stime in /proc/<pid>/stat (100 on every mainstream Linux build).
const CLOCK_TICKS = 100;

async function sh(cmd: string[], cwd = ROOT): Promise<string> {
  const proc = Bun.spawn(cmd, { cwd, stdout: "pipe", stderr: "pipe" });
  const [code, out, err] = await Promise.all([
    proc.exited,
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
  ]);
  if (code !== 0) throw new Error(`${cmd.join(" ")} failed (${code}): ${err || out}`);
  return out.trim();
}

interface Sample {
  latencies: number[];
  failed: number;
  /** Jobs finished during the whole run (warm-up included) and the node's CPU time over it, if known. */
  jobs: number;
  cpuMs?: number;
}

interface Result {
  label: string;
  completed: number;
  seconds: number;
  rate: number;
  p50: number;
  p99: number;
  failed: number;
  /** Node CPU time (user + system) per finished job, in µs. */
  cpuPerJobUs?: number;
}

/** user + system CPU time of a process in ms, from /proc (Linux only; undefined elsewhere). */
function cpuTimeMs(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15 (clock ticks).
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS;
  } catch {
    return undefined;
  }
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

/** Runs `job` in CLIENTS loops for WARMUP + SECONDS; keeps only jobs submitted and finished after the warm-up. */
async function measure(job: (i: number) => Promise<boolean>, pid?: number): Promise<Sample> {
  const latencies: number[] = [];
  let failed = 0;
  let jobs = 0;
  const cpuBefore = cpuTimeMs(pid);
  const start = performance.now();
  const measureFrom = start + WARMUP * 1000;
  const end = measureFrom + SECONDS * 1000;
  let counter = 0;
  await Promise.all(
    Array.from({ length: CLIENTS }, async () => {
      while (performance.now() < end) {
        const t0 = performance.now();
        const ok = await job(counter++);
        const t1 = performance.now();
        jobs++;
        if (t0 >= measureFrom && t1 <= end) {
          if (ok) latencies.push(t1 - t0);
          else failed++;
        }
      }
    }),
  );
  const cpuAfter = cpuTimeMs(pid);
  const sample: Sample = { latencies, failed, jobs };
  if (cpuBefore !== undefined && cpuAfter !== undefined) sample.cpuMs = cpuAfter - cpuBefore;
  return sample;
}

function summarize(label: string, samples: Sample[]): Result {
  const latencies = samples.flatMap((s) => s.latencies).sort((a, b) => a - b);
  const seconds = SECONDS * samples.length;
  const cpuMs = samples.reduce((n, s) => n + (s.cpuMs ?? Number.NaN), 0);
  const jobs = samples.reduce((n, s) => n + s.jobs, 0);
  return {
    cpuPerJobUs: Number.isNaN(cpuMs) ? undefined : (cpuMs * 1000) / jobs,
    label,
    completed: latencies.length,
    seconds,
    rate: latencies.length / seconds,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    failed: samples.reduce((n, s) => n + s.failed, 0),
  };
}

async function startRedis(): Promise<number> {
  const port = freePort();
  const proc = Bun.spawn(
    ["redis-server", "--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
    { stdout: "ignore", stderr: "ignore" },
  );
  cleanups.push(async () => {
    proc.kill("SIGTERM");
    await proc.exited;
  });
  await waitFor(
    "redis",
    async () => {
      const socket = await Bun.connect({ hostname: "127.0.0.1", port, socket: { data() {} } });
      socket.end();
      return true;
    },
    30_000,
  );
  return port;
}

async function startNode(
  binary: string,
  containerUrl: string,
  store: "embedded" | "redis",
): Promise<{ url: string; pid: number }> {
  const dir = mkdtempSync(join(tmpdir(), `${run}-${store}-`));
  const port = freePort();
  const config: Record<string, unknown> = {
    manage_containers: false,
    forward_stats: false,
    startup_wait: 0,
    server: { port, host: "127.0.0.1", rate_limit: { num_requests: 100_000_000, period: 1 } },
    log: { path: join(dir, "node.log") },
    store: { path: join(dir, "jobs.sqlite") },
    containers: [{ id: "echo", url: containerUrl }],
  };
  if (store === "redis")
    config.redis = { host: "127.0.0.1", port: await startRedis(), key_prefix: `${run}:` };
  writeFileSync(join(dir, "config.json"), JSON.stringify(config));
  const cmd = values.profile
    ? ["bun", "--cpu-prof-md", `--cpu-prof-dir=${values.profile}`, join(ROOT, "src/main.ts")]
    : [binary];
  const proc = Bun.spawn([...cmd, "--config", join(dir, "config.json")], {
    cwd: dir,
    env: { ...process.env, LOG_LEVEL: "warn", LOG_FORMAT: "json" },
    stdout: "ignore",
    stderr: "inherit",
  });
  const url = `http://127.0.0.1:${port}`;
  await waitFor(`node (${store})`, async () => (await fetch(`${url}/health`)).status === 200, 30_000);
  cleanups.push(async () => {
    proc.kill("SIGTERM");
    await proc.exited;
  });
  return { url, pid: proc.pid };
}

async function main(): Promise<void> {
  process.stderr.write("building infernet-echo image and the node binary…\n");
  await sh(["bash", "examples/containers/build.sh"]);
  const outdir = mkdtempSync(join(tmpdir(), `${run}-bin-`));
  await sh(["bun", "run", "build.ts", "--single", "--outdir", outdir]);
  const binary = join(outdir, "infernet-node");

  const containerPort = freePort();
  await sh([
    "docker",
    "run",
    "-d",
    "--rm",
    "--init",
    "--name",
    run,
    "-p",
    `127.0.0.1:${containerPort}:3000`,
    IMAGE,
  ]);
  cleanups.push(async () => {
    await sh(["docker", "rm", "-f", run]).catch(() => undefined);
  });
  const containerUrl = `http://127.0.0.1:${containerPort}`;
  const payload = (i: number) => ({
    source: 1,
    destination: 1,
    data: { prompt: "bench", i },
    requires_proof: false,
  });
  await waitFor(
    "echo container",
    async () => {
      const res = await fetch(`${containerUrl}/service_output`, {
        method: "POST",
        body: JSON.stringify(payload(0)),
      });
      return res.ok;
    },
    30_000,
  );

  const direct = async (i: number) => {
    const res = await fetch(`${containerUrl}/service_output`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(payload(i)),
    });
    await res.arrayBuffer();
    return res.ok;
  };
  const throughNode = (url: string) => async (i: number) => {
    const res = await fetch(`${url}/api/jobs`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ containers: ["echo"], data: { prompt: "bench", i } }),
    });
    const { id } = (await res.json()) as { id?: string };
    if (!id) return false;
    for (;;) {
      const poll = await fetch(`${url}/api/jobs?id=${id}`);
      const [job] = (await poll.json()) as { status: string }[];
      if (job && job.status !== "running") return job.status === "success";
      await Bun.sleep(1);
    }
  };

  const runs: {
    label: string;
    job: (i: number) => Promise<boolean>;
    pid?: number;
    samples: Sample[];
  }[] = [{ label: "direct", job: direct, samples: [] }];
  for (const store of values.stores.split(",") as ("embedded" | "redis")[]) {
    const node = await startNode(binary, containerUrl, store);
    runs.push({ label: `node (${store})`, job: throughNode(node.url), pid: node.pid, samples: [] });
  }
  for (let round = 1; round <= ROUNDS; round++) {
    for (const run of runs) {
      process.stderr.write(`round ${round}/${ROUNDS}: ${run.label}\n`);
      run.samples.push(await measure(run.job, run.pid));
    }
  }
  const results = runs.map((run) => summarize(run.label, run.samples));

  const base = results[0];
  if (!base) return;
  const rows = results.map((r) => ({
    run: r.label,
    "jobs/s": r.rate.toFixed(0),
    "p50 ms": r.p50.toFixed(2),
    "p99 ms": r.p99.toFixed(2),
    failed: r.failed,
    "rate vs direct": r === base ? "" : `${((r.rate / base.rate) * 100).toFixed(1)} %`,
    "p50 vs direct":
      r === base ? "" : `×${(r.p50 / base.p50).toFixed(1)} (+${(r.p50 - base.p50).toFixed(2)} ms)`,
    "p99 vs direct":
      r === base ? "" : `×${(r.p99 / base.p99).toFixed(1)} (+${(r.p99 - base.p99).toFixed(2)} ms)`,
    "node CPU µs/job": r.cpuPerJobUs === undefined ? "" : r.cpuPerJobUs.toFixed(0),
  }));
  console.log(
    `\noff-chain jobs, ${CLIENTS} concurrent clients, ${SECONDS} s per run (after ${WARMUP} s warm-up)`,
  );
  console.table(rows);
  for (const r of results.slice(1)) {
    const rateOk = r.rate / base.rate >= 0.25;
    const p50Ok = r.p50 - base.p50 <= 5;
    console.log(
      `${r.label}: rate ${rateOk ? "meets" : "MISSES"} the ≥ 25 % target; p50 ${p50Ok ? "meets" : "MISSES"} the ≤ +5 ms target`,
    );
  }
}

try {
  await main();
} finally {
  for (const cleanup of cleanups.reverse()) await cleanup();
}
