// The load's figures as text: a compact table of samples for a test's output, per-minute rows and a summary
// in markdown for bench/soak/REPORT.md.
import { BOUNDS, breaches } from "./bounds.ts";
import type { LatencyFigures } from "./latency.ts";
import type { Sample, WorkloadResult } from "./workload.ts";

const mb = (kb: number) => (kb / 1024).toFixed(1);
const ms = (value: number) => (Number.isNaN(value) ? "–" : value < 10 ? value.toFixed(1) : value.toFixed(0));

const COLUMNS = [
  "phase",
  "t s",
  "RSS MB",
  "fds",
  "sockets",
  "tcp in",
  "tcp out",
  "jobs/s",
  "p50 ms",
  "p99 ms",
  "jobs",
  "deliveries",
  "errors",
] as const;

function cells(s: Sample): string[] {
  return [
    s.phase,
    s.atS.toFixed(0),
    mb(s.rssKb),
    String(s.fds),
    String(s.sockets),
    String(s.tcpIn),
    String(s.tcpOut),
    s.jobsPerS.toFixed(1),
    ms(s.latency.p50),
    ms(s.latency.p99),
    String(s.jobs),
    String(s.deliveries),
    String(s.errors),
  ];
}

/** Fixed-width text table. */
export function textTable(header: readonly string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (r: readonly string[]) => r.map((c, i) => c.padStart(widths[i] ?? 0)).join("  ");
  return [line(header), ...rows.map(line)].join("\n");
}

export function markdownTable(header: readonly string[], rows: string[][]): string {
  return [
    `| ${header.join(" | ")} |`,
    `|${header.map(() => "---").join("|")}|`,
    ...rows.map((r) => `| ${r.join(" | ")} |`),
  ].join("\n");
}

/** Every sample, one line each. */
export function samplesTable(samples: readonly Sample[]): string {
  return textTable(COLUMNS, samples.map(cells));
}

const figures = (f: LatencyFigures) => `p50 ${ms(f.p50)} ms, p99 ${ms(f.p99)} ms (${f.count} jobs)`;

/** The figures a reader checks first, one per line. */
export function summaryLines(r: WorkloadResult): string[] {
  const first = r.windows[0];
  const last = r.windows.at(-1);
  const o = r.offchain;
  const c = r.chain;
  return [
    `off-chain: ${o.accepted} accepted, ${o.completed} completed with the right result, ${o.wrong} wrong, ${o.lost} lost, ${o.refused} refused, ${o.skipped} not sent (in-flight cap), ${o.statusReads} status reads (${o.statusErrors} failed)`,
    `on-chain: ${c.subscriptions} recurring subscriptions × ${r.plan.chain.frequency} intervals + ${c.callbacks} callbacks = ${c.expected} deliveries owed; ${c.delivered} delivered once, ${c.duplicates} duplicates, ${c.wrong} wrong, ${r.missing.length} missing; node: ${r.processor.confirmed} confirmed, ${r.processor.reverted} reverted, ${r.processor.replaced} replaced, ${r.processor.failed} failed`,
    `RSS: baseline ${mb(r.baseline.rssKb)} MB, peak ${mb(r.peakRssKb)} MB, final ${mb(r.final.rssKb)} MB`,
    `fds: baseline ${r.baseline.fds}, final ${r.final.fds}; TCP in/out: baseline ${r.baseline.tcpIn}/${r.baseline.tcpOut}, final ${r.final.tcpIn}/${r.final.tcpOut}; quiet ${r.settleS} s after the load; by peer: baseline ${JSON.stringify(r.baselinePeers)}, final ${JSON.stringify(r.finalPeers)}`,
    `latency: first window ${first ? figures(first) : "–"}; last window ${last ? figures(last) : "–"}`,
  ];
}

/** One row per minute of the load phase: the last sample of that minute and the minute's figures. */
export function perMinuteRows(r: WorkloadResult): string[][] {
  const load = r.samples.filter((s) => s.phase === "load");
  const rows: string[][] = [];
  for (let minute = 0; minute * 60 < r.plan.loadS; minute++) {
    const inMinute = load.filter((s) => s.atS > minute * 60 && s.atS <= (minute + 1) * 60);
    const last = inMinute.at(-1);
    if (!last) continue;
    const window = r.windows.find((w) => w.fromS === minute * 60);
    const jobs = inMinute.reduce((sum, s) => sum + s.jobsPerS, 0) / inMinute.length;
    rows.push([
      String(minute + 1),
      mb(Math.max(...inMinute.map((s) => s.rssKb))),
      String(last.fds),
      `${last.tcpIn}/${last.tcpOut}`,
      jobs.toFixed(1),
      window ? ms(window.p50) : "–",
      window ? ms(window.p99) : "–",
      String(last.deliveries),
      String(last.errors),
    ]);
  }
  return rows;
}

export const PER_MINUTE_HEADER = [
  "minute",
  "peak RSS MB",
  "fds",
  "tcp in/out",
  "jobs/s",
  "p50 ms",
  "p99 ms",
  "deliveries (total)",
  "errors (total)",
] as const;

export interface SoakMeta {
  minutes: number;
  startedAt: Date;
  finishedAt: Date;
  commit: string;
  loadAtStart: string;
  machine: string;
}

/** bench/soak/REPORT.md: the run, the verdict against the bounds, one row per minute, every sample. */
export function soakReport(result: WorkloadResult, meta: SoakMeta): string {
  const { plan } = result;
  const { minutes, startedAt, finishedAt, commit, loadAtStart, machine } = meta;
  const broken = breaches(result);
  const summary = summaryLines(result);
  return `# Soak report

Written by \`bun run bench/soak/run.ts --minutes ${minutes}\`: ${minutes} minutes of the load test's mixed workload
(\`bench/soak/workload.ts\`) against the release binary with a Redis job store and chain lease, on anvil (1-second
blocks) with its managed echo containers. Per second: ${plan.offchain.singlesPerS} single jobs, ${plan.offchain.batchesPerS} batch of ${plan.offchain.batchSize}, ${plan.offchain.streamsPerS} streaming job, ${plan.offchain.statusReadsPerS} status reads (plus the reads that follow each job to its result);
a recurring subscription (${plan.chain.frequency} intervals, ${plan.chain.period} s apart) every ${plan.chain.subscriptionEveryS} s and a callback every ${plan.chain.callbackEveryS} s. Each request on a fresh connection.

| | |
|---|---|
| started / finished | ${startedAt.toISOString()} / ${finishedAt.toISOString()} |
| commit | ${commit} |
| machine | ${machine} |
| load average at the start | ${loadAtStart} |
| bun | ${Bun.version} |

## Verdict

${broken.length === 0 ? "Every bound kept" : `**${broken.length} bound(s) broken:**\n\n${broken.map((b) => `- ${b}`).join("\n")}`}
(bounds: RSS ≤ ${BOUNDS.rssLimitMb} MB; fds ≤ after-warm-up + ${BOUNDS.fdMargin} and TCP connections ≤ after-warm-up + ${BOUNDS.tcpMargin} once quiet; last minute's p99 ≤ max(${BOUNDS.p99Factor} × first minute's, ${BOUNDS.p99FloorMs} ms); every job and delivery exactly once and right).

${summary.map((line) => `- ${line}`).join("\n")}

## Per minute

Latency: submit → result retrievable (single and batch jobs), request → last streamed byte (streams).

${markdownTable(PER_MINUTE_HEADER, perMinuteRows(result))}

## First problems seen

${result.errors.length === 0 ? "None." : result.errors.map((e) => `- ${e}`).join("\n")}

## Every sample

\`\`\`
${samplesTable(result.samples)}
\`\`\`
`;
}
