// The soak: the load test's mixed workload (workload.ts) for 30 minutes by default, against the release binary
// with a Redis job store on anvil. Writes bench/soak/REPORT.md (the machine, the verdict against bounds.ts, one
// row per minute: RSS, fds, TCP connections, jobs/s, p50/p99, deliveries, errors) and prints a summary.
//
//   bun run bench/soak/run.ts [--minutes 30] [--out bench/soak/REPORT.md]
//
// Exit code 1 when a bound is broken. Not part of bench/run-all.ts (too long).
import { cpus, totalmem } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { breaches } from "./bounds.ts";
import { soakReport, summaryLines } from "./report.ts";
import { type LoadPlan, MIX, runWorkload, startLoadRig } from "./workload.ts";

const { values } = parseArgs({
  args: Bun.argv.slice(2),
  options: {
    minutes: { type: "string", default: "30" },
    out: { type: "string", default: join(import.meta.dir, "REPORT.md") },
  },
});
const minutes = Number(values.minutes);
if (!(minutes > 0)) throw new Error(`--minutes must be a positive number, got ${values.minutes}`);
const root = join(import.meta.dir, "..", "..");

const plan: LoadPlan = {
  warmupS: 20,
  loadS: Math.round(minutes * 60),
  sampleEveryS: 10,
  windowS: 60,
  ...MIX,
};

async function sh(cmd: string[]): Promise<string> {
  const proc = Bun.spawn(cmd, { cwd: root, stdout: "pipe", stderr: "ignore" });
  const [, out] = await Promise.all([proc.exited, new Response(proc.stdout).text()]);
  return out.trim();
}

/** Runs the soak and writes the report; the exit code (1 when a bound is broken). */
async function main(): Promise<number> {
  const startedAt = new Date();
  const loadAtStart = (await Bun.file("/proc/loadavg").text()).split(" ").slice(0, 3).join(" ");
  const commit = await sh(["git", "rev-parse", "--short=12", "HEAD"]);
  console.log(
    `soak: ${minutes} min of load after ${plan.warmupS} s of warm-up; a sample every ${plan.sampleEveryS} s`,
  );

  await using rig = await startLoadRig("soak");
  const result = await runWorkload(rig, plan, (s) =>
    console.log(
      `${s.phase} t=${s.atS}s rss=${(s.rssKb / 1024).toFixed(1)}MB fds=${s.fds} tcp=${s.tcpIn}/${s.tcpOut} jobs/s=${s.jobsPerS.toFixed(1)} p99=${s.latency.p99.toFixed(0)}ms deliveries=${s.deliveries} errors=${s.errors}`,
    ),
  );
  const broken = breaches(result);
  const summary = summaryLines(result);
  const finishedAt = new Date();

  const report = soakReport(result, {
    minutes,
    startedAt,
    finishedAt,
    commit,
    loadAtStart,
    machine: `${cpus()[0]?.model ?? "?"} × ${cpus().length}, ${(totalmem() / 2 ** 30).toFixed(1)} GiB`,
  });
  await Bun.write(values.out, report);
  console.log(`\n${summary.join("\n")}\n${broken.length === 0 ? "every bound kept" : broken.join("\n")}`);
  console.log(`wrote ${values.out}`);
  return broken.length === 0 ? 0 : 1;
}

// Exit explicitly: nothing must keep a finished soak alive (the rig is disposed when main returns).
process.exit(await main());
