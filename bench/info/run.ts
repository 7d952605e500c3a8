// /info latency: 2,000 sequential GET /info against the release binary (chain off, embedded store, two
// unmanaged containers, rate limit out of the way) and against a minimal Bun.serve returning the same JSON,
// measured in the same run with requests alternating between the two. Reports p50/p99 and node/baseline
// ratios. The node answers /info from memory; the budget is "under 10 ms".
// Usage: bun run bench/info/run.ts [requests=2000]
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildBinary } from "../../test/fixtures/binary.ts";
import { freePort } from "../../test/fixtures/net.ts";

const requests = Number(process.argv[2] ?? 2000);
const warmup = 200;
const work = mkdtempSync(join(tmpdir(), "bench-info-"));

async function waitReady(url: string, proc: Bun.Subprocess): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (proc.exitCode !== null) throw new Error(`${url}: process exited with ${proc.exitCode}`);
    try {
      if ((await fetch(url)).status === 200) return;
    } catch {}
    await Bun.sleep(10);
  }
  throw new Error(`${url} not ready within 30 s`);
}

async function timeOne(url: string): Promise<number> {
  const started = performance.now();
  const res = await fetch(url);
  await res.arrayBuffer();
  const ms = performance.now() - started;
  if (res.status !== 200) throw new Error(`${url}: HTTP ${res.status}`);
  return ms;
}

const pct = (values: number[], p: number) => {
  const sorted = [...values].sort((x, y) => x - y);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
};

const nodePort = await freePort();
const configPath = join(work, "config.json");
writeFileSync(
  configPath,
  JSON.stringify({
    manage_containers: false,
    forward_stats: false,
    startup_wait: 0,
    server: { port: nodePort, host: "127.0.0.1", rate_limit: { num_requests: 1_000_000_000, period: 1 } },
    log: { path: join(work, "node.log") },
    store: { path: join(work, "jobs.sqlite") },
    containers: [
      { id: "echo", url: "http://127.0.0.1:9", description: "bench one" },
      { id: "echo2", url: "http://127.0.0.1:9", external: false },
    ],
  }),
);
const node = Bun.spawn([await buildBinary(), "--config", configPath], {
  cwd: work,
  stdout: "ignore",
  stderr: "ignore",
  env: { ...process.env, LOG_LEVEL: "warn" },
});
let baseline: Bun.Subprocess | undefined;
try {
  const nodeUrl = `http://127.0.0.1:${nodePort}/info`;
  await waitReady(nodeUrl, node);
  const body = await (await fetch(nodeUrl)).text();
  const basePort = await freePort();
  baseline = Bun.spawn([process.execPath, "run", join(import.meta.dir, "baseline.ts"), String(basePort)], {
    stdout: "ignore",
    stderr: "ignore",
    env: { ...process.env, INFO_BODY: body },
  });
  const baseUrl = `http://127.0.0.1:${basePort}/info`;
  await waitReady(baseUrl, baseline);
  if ((await (await fetch(baseUrl)).text()) !== body)
    throw new Error("baseline body differs from the node's");

  for (let i = 0; i < warmup; i++) {
    await timeOne(nodeUrl);
    await timeOne(baseUrl);
  }
  const nodeMs: number[] = [];
  const baseMs: number[] = [];
  // Alternating, so both see the same machine load over the run.
  for (let i = 0; i < requests; i++) {
    nodeMs.push(await timeOne(nodeUrl));
    baseMs.push(await timeOne(baseUrl));
  }
  const round = (ms: number) => +ms.toFixed(3);
  const report = {
    requests,
    info_bytes: body.length,
    node_ms: { p50: round(pct(nodeMs, 50)), p99: round(pct(nodeMs, 99)), max: round(pct(nodeMs, 100)) },
    baseline_ms: { p50: round(pct(baseMs, 50)), p99: round(pct(baseMs, 99)), max: round(pct(baseMs, 100)) },
    ratio_p50: +(pct(nodeMs, 50) / pct(baseMs, 50)).toFixed(2),
    ratio_p99: +(pct(nodeMs, 99) / pct(baseMs, 99)).toFixed(2),
    under_10ms_p99: pct(nodeMs, 99) < 10,
  };
  console.log(JSON.stringify(report, null, 2));
} finally {
  node.kill("SIGTERM");
  baseline?.kill("SIGTERM");
  await Promise.all([node.exited, baseline?.exited]);
  rmSync(work, { recursive: true, force: true });
}
