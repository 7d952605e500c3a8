// The node's Prometheus metrics: what the working parts report as it happens (HTTP requests, job and
// container-call durations, Guardian rejections, store operation latency), kept in prom-client counters and
// histograms for the process's life, plus the state read at scrape time (snapshot.ts). The parts see only
// the observer interfaces of shared/observe.ts; this module is the one place that knows prom-client.
import { Counter, Histogram, Registry } from "prom-client";
import type { ServiceHealth } from "../lib/service.ts";
import type { JobCounters } from "../orchestration/orchestrator.ts";
import type { ContainerStatus } from "../shared/containers.ts";
import type { HttpObserver, JobKind, JobObserver, StoreObserver } from "../shared/observe.ts";
import { createHttpMetrics } from "./http.ts";
import { snapshotRegistry } from "./snapshot.ts";

export interface MetricsSources {
  version: string;
  compatVersion: string;
  health(): Record<string, ServiceHealth>;
  pending(): { offchain: number; onchain: number };
  counters(): JobCounters;
  containers(): ContainerStatus[];
}

export interface NodeMetrics extends HttpObserver, JobObserver, StoreObserver {
  /** The exposition, Prometheus text format 0.0.4. */
  render(): Promise<string>;
  readonly contentType: string;
}

// Bucket bounds in seconds. Jobs and container calls: model inference, up to the default job_timeout
// (180 s). Store: SQLite and local Redis answer in microseconds to milliseconds. HTTP: see http.ts.
const JOB_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 180, 300];
const STORE_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5];

const outcome = (ok: boolean) => (ok ? "success" : "failed");

export function createNodeMetrics(sources: MetricsSources): NodeMetrics {
  const registry = new Registry();
  const registers = [registry];
  const counter = (name: string, help: string, labelNames: string[]) =>
    new Counter({ name, help, labelNames, registers });
  const histogram = (name: string, help: string, labelNames: string[], buckets: number[]) =>
    new Histogram({ name, help, labelNames, buckets, registers });

  const http = createHttpMetrics();
  const jobDuration = histogram(
    "infernet_job_duration_seconds",
    "Wall time of a job's whole container pipeline, by kind and outcome.",
    ["kind", "status"],
    JOB_BUCKETS,
  );
  const callDuration = histogram(
    "infernet_container_call_duration_seconds",
    "Wall time of one container call, by container and outcome.",
    ["container", "status"],
    JOB_BUCKETS,
  );
  const rejections = counter(
    "infernet_guardian_rejections_total",
    "Requests the Guardian refused, by kind (offchain, delegated) and reason (the error string).",
    ["kind", "reason"],
  );
  const storeDuration = histogram(
    "infernet_store_operation_duration_seconds",
    "Job store operations as the caller waits for them, by operation and outcome.",
    ["op", "status"],
    STORE_BUCKETS,
  );

  return {
    contentType: registry.contentType,
    http: http.observe,
    guardianRejection(kind, reason) {
      rejections.inc({ kind, reason });
    },
    containerCall(container, ok, seconds) {
      callDuration.observe({ container, status: outcome(ok) }, seconds);
    },
    job(kind: JobKind, ok, seconds) {
      jobDuration.observe({ kind, status: outcome(ok) }, seconds);
    },
    storeOp(op, ok, seconds) {
      storeDuration.observe({ op, status: outcome(ok) }, seconds);
    },
    async render() {
      const snapshot = snapshotRegistry({
        version: sources.version,
        compatVersion: sources.compatVersion,
        health: sources.health(),
        pending: sources.pending(),
        counters: sources.counters(),
        containers: sources.containers(),
        uptimeSeconds: process.uptime(),
        residentBytes: process.memoryUsage.rss(),
      });
      const text = await Registry.merge([snapshot, registry]).metrics();
      return `${text}\n${http.text()}`;
    },
  };
}
