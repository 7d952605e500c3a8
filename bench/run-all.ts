// Runs every benchmark under bench/ one after the other and writes one markdown report: each figure beside the
// baseline measured in the same run, the machine it ran on, and every benchmark's own output.
//
//   bun run bench/run-all.ts [--out bench/REPORT.md] [--readme] [--only startup,info]
//
// --readme also replaces the table between the `bench:start` / `bench:end` markers in README.md.
// A benchmark that is absent (bench/deliver/run.ts before the Processor lands) is skipped with a note; one that
// fails is reported as failed with its output, and the others still run. Each has a time limit (see BENCHES).
import { cpus, freemem, hostname, release, totalmem } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";

const { values } = parseArgs({
  args: Bun.argv.slice(2),
  options: {
    out: { type: "string", default: "bench/REPORT.md" },
    readme: { type: "boolean", default: false },
    only: { type: "string" },
  },
});
const root = join(import.meta.dir, "..");

/** One reported figure: what the node measured and what the baseline measured in the same run. */
interface Row {
  figure: string;
  node: string;
  baseline: string;
  ratio?: string;
  note?: string;
}

interface Bench {
  name: string;
  file: string;
  args: string[];
  /** Seconds before the run is stopped and reported as failed. */
  limitS: number;
  what: string;
  parse(output: string): Row[];
}

const num = (text: string, re: RegExp): number | undefined => {
  const match = re.exec(text);
  return match?.[1] === undefined ? undefined : Number(match[1].replace(/,/g, ""));
};
const ratio = (node: number | undefined, base: number | undefined, digits = 2) =>
  node === undefined || base === undefined || base === 0 ? "" : `×${(node / base).toFixed(digits)}`;
const show = (value: number | undefined, unit = "") =>
  value === undefined ? "?" : `${Number.isInteger(value) ? value : value.toFixed(2)}${unit}`;

/** A row comparing the node's figure with the baseline's, both in `unit`. */
const versus = (
  figure: string,
  node: number | undefined,
  base: number | undefined,
  unit: string,
  note?: string,
): Row => ({
  figure,
  node: show(node, unit),
  baseline: show(base, unit),
  ratio: ratio(node, base),
  ...(note ? { note } : {}),
});

/** The figures startup and info print as their last (pretty-printed) JSON object. */
interface JsonFigures {
  node_ms: Record<string, number>;
  baseline_ms: Record<string, number>;
  idle_rss_mb: Record<string, number>;
  binary_mb: number;
}

function lastJson(output: string): JsonFigures {
  const start = output.lastIndexOf("\n{");
  const text = output.slice(start >= 0 ? start + 1 : output.indexOf("{"));
  return JSON.parse(`${text.split("\n}")[0]}\n}`) as JsonFigures;
}

/** Rows of a `console.table` print: header names → values, keyed by the first named column. */
function consoleTable(output: string): Record<string, string>[] {
  const lines = output.split("\n").filter((line) => line.startsWith("│"));
  const cells = (line: string) =>
    line
      .split("│")
      .slice(1, -1)
      .map((cell) => cell.trim());
  const [header, ...body] = lines.map(cells);
  if (!header) return [];
  return body.map((row) => Object.fromEntries(header.map((name, i) => [name, row[i] ?? ""])));
}

const BENCHES: Bench[] = [
  {
    name: "startup",
    file: "bench/startup/run.ts",
    args: ["10"],
    limitS: 180,
    what: "spawn → first healthy GET /health of the release binary (no containers, chain off, embedded store), 10 runs; baseline: a compiled minimal Bun.serve",
    parse(output) {
      const r = lastJson(output);
      return [
        versus("start → healthy p50", r.node_ms.p50, r.baseline_ms.p50, " ms"),
        versus("start → healthy p90", r.node_ms.p90, r.baseline_ms.p90, " ms"),
        versus("idle RSS", r.idle_rss_mb.node, r.idle_rss_mb.baseline, " MB"),
        { figure: "binary size", node: show(r.binary_mb, " MB"), baseline: "" },
      ];
    },
  },
  {
    name: "offchain",
    file: "bench/offchain/run.ts",
    args: ["--seconds", "4", "--rounds", "3"],
    limitS: 300,
    what: "off-chain jobs at 32 concurrent clients, submit → retrievable result, through the release binary with each store; baseline: the echo container called directly",
    parse(output) {
      const rows = consoleTable(output);
      const direct = rows.find((row) => row.run === "direct");
      if (!direct) return [];
      const out: Row[] = [];
      for (const row of rows.filter((r) => r !== direct)) {
        const rate = Number(row["jobs/s"]);
        const baseRate = Number(direct["jobs/s"]);
        out.push(
          {
            figure: `${row.run}: jobs/s`,
            node: show(rate),
            baseline: show(baseRate),
            ratio: `${((rate / baseRate) * 100).toFixed(1)} %`,
            note: "target ≥ 25 %",
          },
          {
            figure: `${row.run}: latency p50`,
            node: `${row["p50 ms"]} ms`,
            baseline: `${direct["p50 ms"]} ms`,
            ratio: `+${(Number(row["p50 ms"]) - Number(direct["p50 ms"])).toFixed(2)} ms`,
            note: "target ≤ +5 ms",
          },
          {
            figure: `${row.run}: latency p99`,
            node: `${row["p99 ms"]} ms`,
            baseline: `${direct["p99 ms"]} ms`,
            ratio: ratio(Number(row["p99 ms"]), Number(direct["p99 ms"]), 1),
          },
          { figure: `${row.run}: node CPU per job`, node: `${row["node CPU µs/job"]} µs`, baseline: "" },
        );
      }
      return out;
    },
  },
  {
    name: "sync",
    file: "bench/sync/run.ts",
    args: [],
    limitS: 300,
    what: "snapshot sync of 10,000 subscriptions on anvil, batch_size 1000, sleep 0; baseline: the bare readSubscriptionBatch calls with viem",
    parse(output) {
      const sync = num(output, /snapshot sync: .*: (\d+) ms/);
      const base = num(output, /baseline \(bare readSubscriptionBatch calls, viem\): (\d+) ms/);
      return [
        {
          figure: "10,000 subscriptions synced",
          node: show(sync, " ms"),
          baseline: show(base, " ms"),
          ratio: ratio(sync, base),
        },
        {
          figure: "JSON-RPC requests",
          node: show(num(output, /requests: (\d+) total/)),
          baseline: "10",
          note: "baseline: one readSubscriptionBatch per batch of 1,000",
        },
      ];
    },
  },
  {
    name: "deliver",
    file: "bench/deliver/run.ts",
    args: [],
    limitS: 300,
    what: "on-chain delivery on anvil with 1 s blocks: 200 callbacks delivered (baseline: the same deliveries sent by a script), RPC requests per block with 1,000 idle subscriptions (baseline: the listener alone)",
    parse(output) {
      const nodeBlocks = num(output, /node: all \d+ delivered (\d+) blocks/);
      const baseBlocks = num(output, /baseline \(script sends the \d+ deliveries directly\): (\d+) blocks/);
      const perBlock = num(output, /node \(listener \+ processor[^)]*\): ([\d.]+) requests\/block/);
      const basePerBlock = num(output, /baseline \(listener alone\): ([\d.]+) requests\/block/);
      const perDelivery = num(output, /\(([\d.]+) per delivery\)/);
      return [
        {
          figure: "200 callbacks: blocks until all delivered",
          node: show(nodeBlocks),
          baseline: show(baseBlocks),
          ratio: ratio(nodeBlocks, baseBlocks),
          note: "target ≤ 2 blocks",
        },
        {
          figure: "200 callbacks: RPC requests per delivery",
          node: show(perDelivery),
          baseline: "4 (inputs, 2 simulations, broadcast)",
          note: "target ≤ 4",
        },
        {
          figure: "1,000 idle subscriptions: RPC requests per block",
          node: show(perBlock),
          baseline: show(basePerBlock),
          ratio: ratio(perBlock, basePerBlock),
          note: "target ≤ 5",
        },
      ];
    },
  },
  {
    name: "containers",
    file: "bench/containers/bench.ts",
    args: ["3", "5"],
    limitS: 300,
    what: "3 echo containers managed by the node: start → all ready, kill → detected → ready again; baseline: `docker run` of the same image → first HTTP answer (measured by this script)",
    parse(output) {
      const fresh = num(output, /fresh \(create \+ start\): (\d+) ms/);
      const warm = num(output, /existing stopped containers: median (\d+) ms/);
      const detect = num(output, /kill → reported[^:]*: *median (\d+) ms/);
      const recover = num(output, /kill → ready again[^:]*: median (\d+) ms/);
      return [
        { figure: "start → 3 ready (created)", node: show(fresh, " ms"), baseline: "" },
        { figure: "start → 3 ready (existing, stopped)", node: show(warm, " ms"), baseline: "" },
        { figure: "container killed → reported", node: show(detect, " ms"), baseline: "" },
        { figure: "container killed → ready again", node: show(recover, " ms"), baseline: "" },
      ];
    },
  },
  {
    name: "store",
    file: "bench/store/store.bench.ts",
    args: ["5000"],
    limitS: 180,
    what: "job-store set+get round trips per second at 32 in flight, embedded and Redis; baselines: raw bun:sqlite and ioredis SET+GET",
    parse(output) {
      const rows: Row[] = [];
      for (const match of output.matchAll(/^(.+?)\s+(\d+) ops\/s\s+ratio ([\d.]+)$/gm)) {
        const ops = Number(match[2]);
        const r = Number(match[3]);
        rows.push({
          figure: `${match[1]?.trim()}: set+get/s`,
          node: show(ops),
          baseline: r > 0 ? show(Math.round(ops / r)) : "?",
          ratio: `×${r.toFixed(2)}`,
        });
      }
      return rows;
    },
  },
  {
    name: "info",
    file: "bench/info/run.ts",
    args: ["2000"],
    limitS: 180,
    what: "2,000 sequential GET /info against the release binary; baseline: a Bun.serve returning the same bytes, requests alternating",
    parse(output) {
      const r = lastJson(output);
      return [
        versus("GET /info p50", r.node_ms.p50, r.baseline_ms.p50, " ms"),
        versus("GET /info p99", r.node_ms.p99, r.baseline_ms.p99, " ms", "budget < 10 ms"),
      ];
    },
  },
];

interface Outcome {
  bench: Bench;
  status: "ok" | "failed" | "skipped";
  seconds: number;
  output: string;
  rows: Row[];
  note?: string;
}

async function sh(argv: string[]): Promise<string> {
  try {
    const proc = Bun.spawn(argv, { stdout: "pipe", stderr: "ignore" });
    const out = await new Response(proc.stdout).text();
    return (await proc.exited) === 0 ? out.trim() : "";
  } catch {
    return "";
  }
}

/** Baseline for the container figures: `docker run -d` of the echo image until it answers HTTP, 5 times. */
async function dockerRunBaseline(): Promise<number | undefined> {
  const times: number[] = [];
  for (let i = 0; i < 5; i++) {
    const name = `bench-baseline-${process.pid}-${i}`;
    const port = 20000 + ((process.pid * 7 + i) % 20000);
    const started = performance.now();
    const id = await sh([
      "docker",
      "run",
      "-d",
      "--init",
      "--name",
      name,
      "-p",
      `127.0.0.1:${port}:3000`,
      "infernet-echo:latest",
    ]);
    if (!id) return undefined;
    try {
      for (let tries = 0; tries < 3000; tries++) {
        try {
          await fetch(`http://127.0.0.1:${port}/`);
          times.push(performance.now() - started);
          break;
        } catch {
          await Bun.sleep(5);
        }
      }
    } finally {
      await sh(["docker", "rm", "-f", name]);
    }
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}

async function runOne(bench: Bench): Promise<Outcome> {
  if (!(await Bun.file(join(root, bench.file)).exists()))
    return {
      bench,
      status: "skipped",
      seconds: 0,
      output: "",
      rows: [],
      note: `${bench.file} does not exist in this checkout`,
    };
  process.stderr.write(`== ${bench.name}: bun run ${bench.file} ${bench.args.join(" ")}\n`);
  const started = performance.now();
  const proc = Bun.spawn(["bun", "run", bench.file, ...bench.args], {
    cwd: root,
    stdout: "pipe",
    stderr: "pipe",
    env: { ...process.env, LOG_LEVEL: "warn", LOG_FORMAT: "json", NO_COLOR: "1" },
  });
  const timer = setTimeout(() => proc.kill("SIGTERM"), bench.limitS * 1000);
  const [code, stdout, stderr] = await Promise.all([
    proc.exited,
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
  ]);
  clearTimeout(timer);
  const seconds = (performance.now() - started) / 1000;
  const output = `${stdout}${stderr ? `\n--- stderr ---\n${stderr}` : ""}`;
  process.stderr.write(`   ${code === 0 ? "ok" : `exit ${code}`} in ${seconds.toFixed(0)} s\n`);
  if (code !== 0)
    return {
      bench,
      status: "failed",
      seconds,
      output,
      rows: [],
      note: proc.signalCode ? `stopped after the ${bench.limitS} s limit` : `exit code ${code}`,
    };
  try {
    return { bench, status: "ok", seconds, output, rows: bench.parse(stdout) };
  } catch (error) {
    return {
      bench,
      status: "ok",
      seconds,
      output,
      rows: [],
      note: `could not read its figures: ${String(error)}`,
    };
  }
}

async function machine(): Promise<[string, string][]> {
  const cpu = cpus();
  const os = (
    await Bun.file("/etc/os-release")
      .text()
      .catch(() => "")
  )
    .split("\n")
    .find((line) => line.startsWith("PRETTY_NAME="))
    ?.slice("PRETTY_NAME=".length)
    .replace(/"/g, "");
  const load = (
    await Bun.file("/proc/loadavg")
      .text()
      .catch(() => "")
  )
    .split(" ")
    .slice(0, 3)
    .join(" ");
  const commit = await sh(["git", "-C", root, "rev-parse", "--short=12", "HEAD"]);
  const dirty = (await sh(["git", "-C", root, "status", "--porcelain", "--untracked-files=no"]))
    ? " (with uncommitted changes)"
    : "";
  return [
    ["date", new Date().toISOString().replace(/\.\d+Z$/, "Z")],
    ["commit", `${commit}${dirty}`],
    ["host", hostname()],
    ["CPU", `${cpu[0]?.model ?? "?"} × ${cpu.length}`],
    [
      "memory",
      `${(totalmem() / 2 ** 30).toFixed(1)} GiB (${(freemem() / 2 ** 30).toFixed(1)} GiB free at the start)`,
    ],
    ["OS / kernel", `${os ?? "?"} / Linux ${release()}`],
    ["load average at the start", load],
    ["bun", Bun.version],
    [
      "docker engine",
      (await sh(["docker", "version", "--format", "{{.Server.Version}}"])) || "not available",
    ],
    [
      "redis-server",
      (await sh(["redis-server", "--version"])).split(" ")[2]?.replace("v=", "") || "not available",
    ],
    [
      "anvil",
      (await sh([join(root, "node_modules/.bin/anvil"), "--version"])).split("\n")[0] || "not available",
    ],
  ];
}

const cell = (text: string) => text.replace(/\|/g, "\\|");

function table(outcomes: Outcome[]): string {
  const lines = [
    "| benchmark | figure | node | baseline (same run) | node vs baseline | note |",
    "|---|---|---|---|---|---|",
  ];
  for (const o of outcomes) {
    if (o.status !== "ok" || o.rows.length === 0) {
      lines.push(`| ${o.bench.name} | — | ${o.status} | | | ${cell(o.note ?? "")} |`);
      continue;
    }
    for (const row of o.rows)
      lines.push(
        `| ${o.bench.name} | ${cell(row.figure)} | ${cell(row.node)} | ${cell(row.baseline || "—")} | ${cell(row.ratio ?? "")} | ${cell(row.note ?? "")} |`,
      );
  }
  return lines.join("\n");
}

const selected = values.only ? BENCHES.filter((b) => values.only?.split(",").includes(b.name)) : BENCHES;
const facts = await machine();
const startedAt = performance.now();
const outcomes: Outcome[] = [];
for (const bench of selected) {
  const outcome = await runOne(bench);
  if (bench.name === "containers" && outcome.status === "ok") {
    const base = await dockerRunBaseline();
    const first = outcome.rows[0];
    if (first) {
      first.baseline = base === undefined ? "docker run failed" : `${base.toFixed(0)} ms (1 container)`;
      first.note = "baseline: `docker run -d` → first HTTP answer";
    }
  }
  outcomes.push(outcome);
}
const totalS = (performance.now() - startedAt) / 1000;

const summary = table(outcomes);
const report = [
  "# Benchmark report",
  "",
  `Written by \`bun run bench/run-all.ts\` in ${Math.round(totalS)} s. Every figure sits beside a baseline measured in the same run on the same machine; ratios compare the two. Figures from one run on a shared machine move by several per cent between runs; compare ratios, not absolute values, across machines.`,
  "",
  "## Machine",
  "",
  "| | |",
  "|---|---|",
  ...facts.map(([key, value]) => `| ${key} | ${cell(value)} |`),
  "",
  "## Figures",
  "",
  summary,
  "",
  "## What each benchmark measures",
  "",
  ...outcomes.map(
    (o) =>
      `- **${o.bench.name}** (\`${o.bench.file}\`, ${o.status}${o.status === "skipped" ? "" : `, ${o.seconds.toFixed(0)} s`}): ${o.bench.what}.${o.note ? ` ${o.note}.` : ""}`,
  ),
  "",
  "## Output of each benchmark",
  "",
  ...outcomes
    .filter((o) => o.status !== "skipped")
    .flatMap((o) => [
      `### ${o.bench.name}`,
      "",
      "```",
      o.output.trim().split("\n").slice(-60).join("\n"),
      "```",
      "",
    ]),
].join("\n");
await Bun.write(resolve(root, values.out), `${report}\n`);
process.stderr.write(`wrote ${values.out} (${Math.round(totalS)} s)\n`);

if (values.readme) {
  const readmePath = join(root, "README.md");
  const readme = await Bun.file(readmePath).text();
  const begin = "<!-- bench:start -->";
  const end = "<!-- bench:end -->";
  const from = readme.indexOf(begin);
  const to = readme.indexOf(end);
  if (from < 0 || to < from) throw new Error("README.md has no bench:start / bench:end markers");
  const when = facts.find(([key]) => key === "date")?.[1];
  const cpu = facts.find(([key]) => key === "CPU")?.[1];
  const block = `${begin}\nLatest run: ${when}, ${cpu}, bun ${Bun.version} ([full report](${values.out})).\n\n${summary}\n`;
  await Bun.write(readmePath, readme.slice(0, from) + block + readme.slice(to));
  process.stderr.write("updated the table in README.md\n");
}
process.exit(outcomes.some((o) => o.status === "failed") ? 1 : 0);
