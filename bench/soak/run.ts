// The soak: the load test's mixed workload (workload.ts) for 30 minutes by default, against the release binary
// with a Redis job store on anvil. Writes bench/soak/REPORT.md (the machine, the verdict against bounds.ts, one
// row per minute: RSS, fds, TCP connections, jobs/s, p50/p99, deliveries, errors) and prints a summary.
//
//   bun run bench/soak/run.ts [--minutes 30] [--out bench/soak/REPORT.md] [--faults]
//
// --faults puts a seeded JSON-RPC fault proxy between the node and anvil (10% of eth_sendRawTransaction replies
// lost after the transaction went through, 2% HTTP 502s on any call) and caps the node's fees
// (max_fee_per_gas 50 gwei); it then also checks every transaction the node had mined: none reverted, every
// interval delivered once, no fee above the cap, and no nonce left stuck.
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
    faults: { type: "boolean", default: false },
  },
});
const minutes = Number(values.minutes);
if (!(minutes > 0)) throw new Error(`--minutes must be a positive number, got ${values.minutes}`);
const root = join(import.meta.dir, "..", "..");
/** The node's max_fee_per_gas with --faults: 50 gwei (anvil's base fee stays near 1 gwei). */
const FEE_CAP = 50_000_000_000n;

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

  await using rig = await startLoadRig(
    "soak",
    values.faults ? { faults: { loseSendReply: 0.1, http502: 0.02 }, maxFeePerGas: FEE_CAP } : {},
  );
  const result = await runWorkload(rig, plan, (s) =>
    console.log(
      `${s.phase} t=${s.atS}s rss=${(s.rssKb / 1024).toFixed(1)}MB fds=${s.fds} tcp=${s.tcpIn}/${s.tcpOut} jobs/s=${s.jobsPerS.toFixed(1)} p99=${s.latency.p99.toFixed(0)}ms deliveries=${s.deliveries} errors=${s.errors}`,
    ),
  );
  const broken = breaches(result);
  const summary = summaryLines(result);
  const faults = values.faults ? await faultChecks(rig) : undefined;
  if (faults) {
    summary.push(...faults.lines);
    broken.push(...faults.broken);
  }
  const finishedAt = new Date();

  const report = soakReport(result, {
    minutes,
    startedAt,
    finishedAt,
    commit,
    loadAtStart,
    machine: `${cpus()[0]?.model ?? "?"} × ${cpus().length}, ${(totalmem() / 2 ** 30).toFixed(1)} GiB`,
  });
  const faultSection = faults
    ? `\n## Through the JSON-RPC fault proxy (--faults)\n\n10% of eth_sendRawTransaction replies lost after the transaction went through, 2% HTTP 502s on any call, max_fee_per_gas ${FEE_CAP} wei.\n\n${faults.lines.map((l) => `- ${l}`).join("\n")}\n- verdict: ${faults.broken.length === 0 ? "none reverted, no fee above the cap, no nonce left stuck" : faults.broken.join("; ")}\n`
    : "";
  await Bun.write(values.out, report + faultSection);
  console.log(`\n${summary.join("\n")}\n${broken.length === 0 ? "every bound kept" : broken.join("\n")}`);
  console.log(`wrote ${values.out}`);
  return broken.length === 0 ? 0 : 1;
}

/**
 * With --faults: what the proxy injected, and every transaction the node had mined: none reverted, none priced
 * above the cap, and nothing left pending (the chain's latest nonce equals its pending one, the node holds none).
 */
async function faultChecks(rig: Awaited<ReturnType<typeof startLoadRig>>) {
  const { chain, node } = rig;
  const client = chain.publicClient;
  const from = node.account.address.toLowerCase();
  const latest = await client.getBlockNumber({ cacheTime: 0 });
  let sent = 0;
  let reverted = 0;
  let maxFee = 0n;
  for (let n = 0n; n <= latest; n++) {
    const block = await client.getBlock({ blockNumber: n, includeTransactions: true });
    for (const tx of block.transactions) {
      if (tx.from.toLowerCase() !== from) continue;
      sent++;
      const fee = tx.maxFeePerGas ?? tx.gasPrice ?? 0n;
      if (fee > maxFee) maxFee = fee;
      const receipt = await client.getTransactionReceipt({ hash: tx.hash });
      if (receipt.status !== "success") reverted++;
    }
  }
  const [mined, pending] = await Promise.all([
    client.getTransactionCount({ address: node.account.address, blockTag: "latest" }),
    client.getTransactionCount({ address: node.account.address, blockTag: "pending" }),
  ]);
  const counters = rig.proxy?.counters();
  const lines = [
    `fault proxy: ${JSON.stringify(counters?.faults ?? {})} injected over ${Object.values(counters?.requests ?? {}).reduce((a, b) => a + b, 0)} requests`,
    `node transactions mined: ${sent}, reverted: ${reverted}, highest fee ${maxFee} wei (cap ${FEE_CAP}), nonce latest ${mined} / pending ${pending}`,
  ];
  const broken: string[] = [];
  if (reverted > 0) broken.push(`${reverted} of the node's transactions reverted`);
  if (maxFee > FEE_CAP) broken.push(`a transaction priced ${maxFee} wei, above the cap ${FEE_CAP}`);
  if (mined !== pending) broken.push(`nonce stuck: latest ${mined}, pending ${pending}`);
  return { lines, broken };
}

// Exit explicitly: nothing must keep a finished soak alive (the rig is disposed when main returns).
process.exit(await main());
