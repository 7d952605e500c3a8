// The history behind the operator dashboard (GET /dashboard): bounded in-memory ring buffers, fed by the job
// and container-call events the node already produces and by a 2 s sampler. Nothing is written to the store,
// and nothing here grows with uptime or traffic. Memory bound (worst case, fixed sizes below):
//   jobs rate          2 series × 360 buckets × 8 B          ≈   6 KB
//   deliveries/minute  3 series × 60 buckets × 8 B           ≈ 1.5 KB
//   latest jobs        50 entries × ≤ 1 KB (ids and container names truncated)      ≤  50 KB
//   log lines          50 warn/error records × ≤ 1 KB (message and fields truncated) ≤  50 KB
//   per container      1,024 call durations × 8 B + last error (≤ 300 chars)       ≈  9 KB each
//   job start times    ≤ 4,096 running off-chain jobs × ≈ 150 B                     ≤ 600 KB
// so about 0.7 MB plus 9 KB per configured container.
import { addLogSink, type LogRecord } from "../lib/log.ts";
import type { Service, ServiceHealth } from "../lib/service.ts";
import { sleep } from "../lib/time.ts";
import type { ContainerStatus } from "../shared/containers.ts";
import type { JobStore } from "../shared/jobs.ts";

export const RATE_BUCKET_MS = 10_000;
export const RATE_BUCKETS = 360; // one hour of 10 s buckets
export const DELIVERY_BUCKET_MS = 60_000;
export const DELIVERY_BUCKETS = 60; // one hour of minutes
const DURATION_SAMPLES = 1024;
const LATEST_JOBS = 50;
const LATEST_LOGS = 50;
const MAX_STARTS = 4096;
const TEXT_MAX = 300;
const SAMPLE_EVERY_MS = 2_000;

/** Counts per fixed-width time bucket, the last `count` buckets only (a ring indexed by bucket number). */
export class BucketRing {
  private readonly slots: Float64Array[];
  private readonly epochs: Float64Array;
  constructor(
    readonly count: number,
    readonly widthMs: number,
    series: number,
  ) {
    this.slots = Array.from({ length: series }, () => new Float64Array(count));
    this.epochs = new Float64Array(count).fill(-1);
  }
  add(series: number, atMs: number, n = 1): void {
    const bucket = Math.floor(atMs / this.widthMs);
    const i = bucket % this.count;
    if (this.epochs[i] !== bucket) {
      for (const slot of this.slots) slot[i] = 0;
      this.epochs[i] = bucket;
    }
    const slot = this.slots[series];
    if (slot) slot[i] = (slot[i] ?? 0) + n;
  }
  /** Every series oldest → newest, ending with the bucket that holds `nowMs`; `end` is that bucket's end. */
  snapshot(nowMs: number): { bucket_s: number; end: number; series: number[][] } {
    const last = Math.floor(nowMs / this.widthMs);
    const series = this.slots.map((slot) => {
      const out = new Array<number>(this.count);
      for (let k = 0; k < this.count; k++) {
        const bucket = last - this.count + 1 + k;
        const i = ((bucket % this.count) + this.count) % this.count;
        out[k] = this.epochs[i] === bucket ? (slot[i] ?? 0) : 0;
      }
      return out;
    });
    return { bucket_s: this.widthMs / 1000, end: (last + 1) * this.widthMs, series };
  }
}

/** The last `capacity` numbers, for percentiles. */
export class SampleRing {
  private readonly values: Float64Array;
  private next = 0;
  private size = 0;
  constructor(capacity: number) {
    this.values = new Float64Array(capacity);
  }
  push(value: number): void {
    this.values[this.next] = value;
    this.next = (this.next + 1) % this.values.length;
    this.size = Math.min(this.size + 1, this.values.length);
  }
  count(): number {
    return this.size;
  }
  /** Nearest-rank percentile (0 < p ≤ 100) of the values kept; null when there are none. */
  percentile(p: number): number | null {
    if (this.size === 0) return null;
    const sorted = this.values.slice(0, this.size).sort();
    const rank = Math.max(1, Math.ceil((p / 100) * this.size));
    return sorted[rank - 1] ?? null;
  }
}

export interface LatestJob {
  id: string;
  kind: "offchain" | "onchain";
  containers: string[];
  status: "success" | "failed";
  /** null when the start was not seen (a status recorded by a container through PUT /api/status). */
  duration_ms: number | null;
  /** Epoch ms of the end. */
  at: number;
}

export interface LogLine {
  ts: string;
  level: "warn" | "error";
  component: string;
  msg: string;
  fields: string;
}

interface ContainerTrack {
  succeeded: number;
  failed: number;
  durations: SampleRing;
  lastError: { text: string; at: number } | undefined;
  /** Times it was seen going from up (ready/unhealthy) to down (starting/stopped/missing). */
  restarts: number;
  lastState: ContainerStatus["state"] | undefined;
}

export interface ContainerHistory {
  succeeded: number;
  failed: number;
  restarts: number;
  p50_ms: number | null;
  p99_ms: number | null;
  samples: number;
  last_error: string | null;
  last_error_at: number | null;
}

export interface DashboardHistory extends Service {
  /** A finished job (off-chain from the store wrapper, on-chain from the orchestrator). */
  recordJob(job: LatestJob): void;
  /** One container call of a pipeline, with its error text when it failed. */
  recordCall(container: string, ms: number, error: string | undefined): void;
  /** Container outcomes known without a timed call (streams, PUT /api/status). */
  recordOutcome(containers: readonly string[], ok: boolean): void;
  /** Finished jobs since start, by kind (kept here: the orchestrator's counters are reset by the stats sender). */
  totals(): { offchain: { success: number; failed: number }; onchain: { success: number; failed: number } };
  /** Samples container states and chain delivery counters now (the service's loop does it every 2 s). */
  sample(): void;
  jobRate(nowMs: number): { bucket_s: number; end: number; succeeded: number[]; failed: number[] };
  deliveryRate(nowMs: number): {
    bucket_s: number;
    end: number;
    sent: number[];
    confirmed: number[];
    reverted: number[];
  };
  latestJobs(): LatestJob[];
  logs(): LogLine[];
  container(id: string): ContainerHistory;
}

export interface DashboardHistoryDeps {
  /** Container states, for restarts. */
  statuses: () => readonly ContainerStatus[];
  /** Node health, for the processor's cumulative delivery counters. */
  health: () => Record<string, ServiceHealth>;
  now?: () => number;
}

const clip = (text: string, max = TEXT_MAX) => (text.length > max ? `${text.slice(0, max - 1)}…` : text);
/** A container's reply quoted in an error string is job output: the dashboard keeps the error, not the quote. */
const withoutReply = (error: string) =>
  error.replace(/^(.*replied with (?:non-JSON content|invalid JSON) \([^)]*\)): [\s\S]*$/, "$1");
const UP = new Set<ContainerStatus["state"]>(["ready", "unhealthy"]);
const DOWN = new Set<ContainerStatus["state"]>(["starting", "stopped", "missing"]);

function fieldsText(record: LogRecord): string {
  const { ts: _ts, level: _level, msg: _msg, component: _component, ...rest } = record;
  const parts = Object.entries(rest).map(
    ([key, value]) => `${key}=${typeof value === "string" ? value : JSON.stringify(value)}`,
  );
  return clip(parts.join(" "), 600);
}

export function createDashboardHistory(deps: DashboardHistoryDeps): DashboardHistory {
  const now = deps.now ?? Date.now;
  const rate = new BucketRing(RATE_BUCKETS, RATE_BUCKET_MS, 2);
  const deliveries = new BucketRing(DELIVERY_BUCKETS, DELIVERY_BUCKET_MS, 3);
  const jobs: LatestJob[] = [];
  const logs: LogLine[] = [];
  const tracks = new Map<string, ContainerTrack>();
  let lastDeliveries: [number, number, number] | undefined;
  const totals = { offchain: { success: 0, failed: 0 }, onchain: { success: 0, failed: 0 } };

  const track = (id: string): ContainerTrack => {
    let entry = tracks.get(id);
    if (!entry) {
      entry = {
        succeeded: 0,
        failed: 0,
        durations: new SampleRing(DURATION_SAMPLES),
        lastError: undefined,
        restarts: 0,
        lastState: undefined,
      };
      tracks.set(id, entry);
    }
    return entry;
  };
  // Only configured containers are tracked (the statuses list), so an unknown id cannot grow the map.
  for (const status of deps.statuses()) track(status.id);

  const removeSink = addLogSink((record) => {
    if (record.level !== "warn" && record.level !== "error") return;
    logs.push({
      ts: record.ts,
      level: record.level,
      component: typeof record.component === "string" ? record.component : "",
      msg: clip(record.msg),
      fields: fieldsText(record),
    });
    if (logs.length > LATEST_LOGS) logs.shift();
  });

  function sample(): void {
    for (const status of deps.statuses()) {
      const entry = tracks.get(status.id);
      if (!entry) continue;
      if (entry.lastState && UP.has(entry.lastState) && DOWN.has(status.state)) entry.restarts++;
      entry.lastState = status.state;
    }
    const processor = deps.health().processor;
    const counts = processor?.deliveries as Record<string, unknown> | undefined;
    if (!counts) return;
    const current: [number, number, number] = [
      Number(counts.sent) || 0,
      Number(counts.confirmed) || 0,
      Number(counts.reverted) || 0,
    ];
    const at = now();
    if (lastDeliveries) {
      current.forEach((value, series) => {
        const delta = value - (lastDeliveries?.[series] ?? 0);
        if (delta > 0) deliveries.add(series, at, delta);
      });
    }
    lastDeliveries = current;
  }

  return {
    name: "dashboard",
    async run(signal) {
      while (!signal.aborted) {
        sample();
        await sleep(SAMPLE_EVERY_MS, signal);
      }
    },
    async close() {
      removeSink();
    },
    recordJob(job) {
      rate.add(job.status === "success" ? 0 : 1, job.at);
      totals[job.kind][job.status]++;
      jobs.push({
        ...job,
        id: clip(job.id, 100),
        containers: job.containers.slice(0, 8).map((id) => clip(id, 80)),
      });
      if (jobs.length > LATEST_JOBS) jobs.shift();
    },
    recordCall(container, ms, error) {
      const entry = tracks.get(container);
      if (!entry) return;
      entry.durations.push(ms);
      if (error === undefined) entry.succeeded++;
      else {
        entry.failed++;
        entry.lastError = { text: clip(withoutReply(error)), at: now() };
      }
    },
    recordOutcome(containers, ok) {
      for (const id of containers) {
        const entry = tracks.get(id);
        if (!entry) continue;
        if (ok) entry.succeeded++;
        else entry.failed++;
      }
    },
    totals: () => structuredClone(totals),
    sample,
    jobRate(nowMs) {
      const { bucket_s, end, series } = rate.snapshot(nowMs);
      return { bucket_s, end, succeeded: series[0] ?? [], failed: series[1] ?? [] };
    },
    deliveryRate(nowMs) {
      const { bucket_s, end, series } = deliveries.snapshot(nowMs);
      return { bucket_s, end, sent: series[0] ?? [], confirmed: series[1] ?? [], reverted: series[2] ?? [] };
    },
    latestJobs: () => jobs.slice().reverse(),
    logs: () => logs.slice().reverse(),
    container(id) {
      const entry = tracks.get(id);
      return {
        succeeded: entry?.succeeded ?? 0,
        failed: entry?.failed ?? 0,
        restarts: entry?.restarts ?? 0,
        p50_ms: entry?.durations.percentile(50) ?? null,
        p99_ms: entry?.durations.percentile(99) ?? null,
        samples: entry?.durations.count() ?? 0,
        last_error: entry?.lastError?.text ?? null,
        last_error_at: entry?.lastError?.at ?? null,
      };
    },
  };
}

/**
 * The job store as the REST server sees it, reporting every finished off-chain job (POST /api/jobs, streams,
 * PUT /api/status) to the history with its id, containers, outcome and duration (running → done). Never the
 * job's data or results.
 */
export function observeJobStore(store: JobStore, history: DashboardHistory, now = Date.now): JobStore {
  const starts = new Map<string, { at: number; containers: readonly string[] }>();
  const key = (client: string, id: string) => `${client}\u0000${id}`;
  return {
    async setRunning(client, job, options) {
      await store.setRunning(client, job, options);
      starts.set(key(client, job.id), { at: now(), containers: options?.containers ?? [] });
      if (starts.size > MAX_STARTS) {
        const oldest = starts.keys().next().value;
        if (oldest !== undefined) starts.delete(oldest);
      }
    },
    async setDone(client, job) {
      await store.setDone(client, job);
      const k = key(client, job.id);
      const start = starts.get(k);
      starts.delete(k);
      const at = now();
      const results = [...job.intermediate_results, ...(job.result ? [job.result] : [])];
      history.recordJob({
        id: job.id,
        kind: "offchain",
        containers: start?.containers.length ? [...start.containers] : results.map((r) => r.container),
        status: job.status === "success" ? "success" : "failed",
        duration_ms: start ? at - start.at : null,
        at,
      });
    },
    get: (client, ids) => store.get(client, ids),
    listIds: (client, filter) => store.listIds(client, filter),
    pendingCount: () => store.pendingCount(),
    recoverInterrupted: () => store.recoverInterrupted(),
    health: () => store.health(),
    close: () => store.close(),
  };
}
