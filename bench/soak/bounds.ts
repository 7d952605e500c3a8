// What the load test asserts and the soak reports as its verdict, in one place (README "Operations → soak"
// states the same figures). Derived from measured runs on the 2-core development machine with headroom, so
// that a leak or a degradation trips them and noise from other processes on the machine does not.
import type { WorkloadResult } from "./workload.ts";

export const BOUNDS = {
  /** Resident memory of the node, at any sample. */
  rssLimitMb: 256,
  /** Open fds and TCP connections after the load, once quiet, above the quiet value after warm-up. */
  fdMargin: 8,
  tcpMargin: 4,
  /** p99 of the last latency window at most this many times the first's (or `p99FloorMs`, when larger). */
  p99Factor: 4,
  p99FloorMs: 400,
} as const;

/** The bounds `r` breaks, as sentences; empty when it keeps them all. */
export function breaches(r: WorkloadResult): string[] {
  const found: string[] = [];
  const o = r.offchain;
  const c = r.chain;
  if (o.completed !== o.accepted || o.wrong + o.lost + o.refused + o.statusErrors > 0) {
    found.push(
      `off-chain: ${o.accepted} accepted, ${o.completed} right, ${o.wrong} wrong, ${o.lost} lost, ${o.refused} refused, ${o.statusErrors} failed status reads`,
    );
  }
  if (c.delivered !== c.expected || c.duplicates + c.wrong + c.createErrors > 0 || r.missing.length > 0) {
    found.push(
      `on-chain: ${c.expected} owed, ${c.delivered} delivered once, ${c.duplicates} duplicates, ${c.wrong} wrong, ${r.missing.length} missing, ${c.createErrors} not created`,
    );
  }
  if (r.processor.reverted > 0 || r.processor.confirmed !== c.expected) {
    found.push(
      `node: ${r.processor.confirmed} deliveries confirmed (${c.expected} owed), ${r.processor.reverted} reverted`,
    );
  }
  if (r.peakRssKb > BOUNDS.rssLimitMb * 1024) {
    found.push(`RSS peaked at ${(r.peakRssKb / 1024).toFixed(1)} MB (bound ${BOUNDS.rssLimitMb} MB)`);
  }
  if (r.final.fds > r.baseline.fds + BOUNDS.fdMargin) {
    found.push(
      `fds: ${r.final.fds} after the load, ${r.baseline.fds} after warm-up (margin ${BOUNDS.fdMargin})`,
    );
  }
  const tcp = (s: WorkloadResult["final"]) => s.tcpIn + s.tcpOut;
  if (tcp(r.final) > tcp(r.baseline) + BOUNDS.tcpMargin) {
    found.push(
      `TCP connections: ${tcp(r.final)} after the load, ${tcp(r.baseline)} after warm-up (margin ${BOUNDS.tcpMargin})`,
    );
  }
  const first = r.windows[0];
  const last = r.windows.at(-1);
  if (first && last && last.p99 > p99Limit(first.p99)) {
    found.push(
      `p99 of the last window ${last.p99.toFixed(0)} ms > limit ${p99Limit(first.p99).toFixed(0)} ms`,
    );
  }
  return found;
}

/** The largest p99 the last window may have, given the first window's. */
export function p99Limit(firstP99: number): number {
  return Math.max(BOUNDS.p99Factor * firstP99, BOUNDS.p99FloorMs);
}
