// Start-up benchmark: time from spawn to the first healthy GET /health (empty container list, chain off,
// embedded store), median and p90 of N runs, and idle resident memory — against a minimal compiled Bun.serve
// binary measured in the same run. Usage: bun run bench/startup/run.ts [runs=10]
import { mkdtempSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildBinary, repoRoot } from "../../test/fixtures/binary.ts";
import { freePort } from "../../test/fixtures/net.ts";
import { residentKb } from "../../test/fixtures/proc-status.ts";

const runs = Number(process.argv[2] ?? 10);
const work = mkdtempSync(join(tmpdir(), "bench-startup-"));

async function buildBaseline(): Promise<string> {
  const outfile = join(work, "baseline");
  const result = await Bun.build({
    entrypoints: [join(import.meta.dir, "baseline.ts")],
    compile: { outfile },
    minify: true,
  });
  if (!result.success) throw new Error("baseline build failed");
  return outfile;
}

async function timeToHealthy(argv: string[], port: number): Promise<{ ms: number; rssKb: number }> {
  const started = performance.now();
  const proc = Bun.spawn(argv, {
    cwd: work,
    stdout: "ignore",
    stderr: "ignore",
    env: { ...process.env, LOG_LEVEL: "warn" },
  });
  let ms = 0;
  for (;;) {
    try {
      const res = await fetch(`http://127.0.0.1:${port}/health`);
      if (res.status === 200) {
        ms = performance.now() - started;
        break;
      }
    } catch {}
    await Bun.sleep(1);
  }
  await Bun.sleep(1000); // let it settle to idle before reading its memory
  const rssKb = residentKb(proc.pid) ?? 0;
  proc.kill("SIGTERM");
  await proc.exited;
  return { ms, rssKb };
}

const pct = (values: number[], p: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
};

const node = await buildBinary();
const baseline = await buildBaseline();
const sample = JSON.parse(readFileSync(join(repoRoot, "config.sample.json"), "utf8"));
const results = {
  node: [] as number[],
  baseline: [] as number[],
  nodeRss: [] as number[],
  baselineRss: [] as number[],
};
for (let i = 0; i < runs; i++) {
  const port = await freePort();
  const configPath = join(work, "config.json");
  writeFileSync(
    configPath,
    JSON.stringify({
      ...sample,
      containers: [],
      server: { ...sample.server, port, host: "127.0.0.1" },
      log: { path: join(work, "node.log") },
      store: { path: join(work, `jobs-${i}.sqlite`) },
    }),
  );
  const n = await timeToHealthy([node, "--config", configPath], port);
  results.node.push(n.ms);
  results.nodeRss.push(n.rssKb);
  const basePort = await freePort();
  const b = await timeToHealthy([baseline, String(basePort)], basePort);
  results.baseline.push(b.ms);
  results.baselineRss.push(b.rssKb);
}
const report = {
  runs,
  binary_mb: +(statSync(node).size / 1e6).toFixed(1),
  node_ms: { p50: +pct(results.node, 50).toFixed(1), p90: +pct(results.node, 90).toFixed(1) },
  baseline_ms: { p50: +pct(results.baseline, 50).toFixed(1), p90: +pct(results.baseline, 90).toFixed(1) },
  ratio_p50: +(pct(results.node, 50) / pct(results.baseline, 50)).toFixed(2),
  idle_rss_mb: {
    node: +(pct(results.nodeRss, 50) / 1024).toFixed(1),
    baseline: +(pct(results.baselineRss, 50) / 1024).toFixed(1),
  },
};
console.log(JSON.stringify(report, null, 2));
