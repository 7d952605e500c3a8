// Runs a job through its container pipeline over HTTP (reference §5). Each container gets
// `{"source","destination","data","requires_proof"}` in that key order; container i ≥ 1 gets `source: 1` and
// the whole JSON output of container i-1 as `data`; only the last one gets the job's real destination. A
// failure stops the pipeline. Addressing comes from the ContainerDirectory (managed port, or `url` + bearer).
//
// Reply handling keeps the reference's contract where clients rely on it: any JSON reply is an output, even
// with HTTP status >= 400 (Ritual services report errors as `{"code":"500",...}` bodies and clients read them
// as results), and an empty JSON reply is the output `null`. What changed: the error strings say what
// happened (unreachable, timed out, non-JSON, invalid JSON, cancelled) instead of library reprs or "".

import { describeError } from "../lib/errors.ts";
import { jsonNestingExceeds, MAX_JSON_DEPTH, parseJsonFast, stringifyJsonFast } from "../lib/json.ts";
import type { Logger } from "../lib/log.ts";
import { redactUrl } from "../lib/redact.ts";
import type { ContainerDirectory } from "../shared/containers.ts";
import type { ContainerResult } from "../shared/jobs.ts";
import { JobLocation } from "../shared/messages.ts";
import { type JobObserver, secondsSince } from "../shared/observe.ts";
import { createHttpClient, fetchPost, type HttpReply } from "./http-client.ts";

export interface OrchestratorJob {
  containers: readonly string[];
  /** Input of the first container (off-chain: the request's data object; on-chain: unprefixed hex). */
  data: unknown;
  source: JobLocation;
  destination: JobLocation;
  requiresProof: boolean;
  /** For observers only (the dashboard's latest jobs): the subscription and interval; never sent to containers. */
  label?: string;
}

export interface SuccessFailure {
  success: number;
  failed: number;
}

/** In-memory counters for /info and the metric sender (the reference's job and container counters). */
export interface JobCounters {
  jobs: { offchain: SuccessFailure; onchain: SuccessFailure };
  containers: Record<string, SuccessFailure>;
}

export interface Orchestrator {
  /** Runs the pipeline; never throws: a failure is the last element, `{container, error}`. */
  run(job: OrchestratorJob, signal?: AbortSignal): Promise<ContainerResult[]>;
  /** Jobs with an on-chain destination currently executing (for /info `pending.onchain`). */
  pendingOnchain(): number;
  /** Counts a job outcome reported from outside (PUT /api/status) or by the stream path. */
  recordOffchain(status: "success" | "failed", containers: readonly string[]): void;
  /**
   * Running totals since start, never reset: /metrics exports them as counters and the Metric Sender
   * subtracts its previous reading (the reference popped them, which two readers cannot share).
   */
  counters(): JobCounters;
}

export interface OrchestratorDeps {
  directory: ContainerDirectory;
  /** Per-container-call timeout (config job_timeout, seconds → ms). */
  jobTimeoutMs: number;
  log: Logger;
  /** Injected for failure tests (then used for every call); by default container calls use createHttpClient(). */
  fetch?: typeof fetch;
  /** Durations and outcomes of calls and jobs, for /metrics. */
  observe?: JobObserver;
}

const JSON_CONTENT_TYPE = /^application\/(?:[\w.+-]+\+)?json\s*(?:;|$)/i;
const SNIPPET = 200;
const JSON_HEADERS: Record<string, string> = { "Content-Type": "application/json" };

/** An error string for a container call that did not produce JSON. */
export class ContainerCallError extends Error {
  override name = "ContainerCallError";
}

function emptyCounters(): JobCounters {
  return {
    jobs: { offchain: { success: 0, failed: 0 }, onchain: { success: 0, failed: 0 } },
    containers: {},
  };
}

/** The request body for one container, with the reference's key order. */
export function containerPayload(
  source: number,
  destination: number,
  dataText: string,
  requiresProof: boolean | undefined,
): string {
  return requiresProof === undefined
    ? `{"source":${source},"destination":${destination},"data":${dataText}}`
    : `{"source":${source},"destination":${destination},"data":${dataText},"requires_proof":${requiresProof}}`;
}

/** Why a fetch failed, as one clear line. `signal` is the job's own signal (shutdown, client gone). */
export function describeFetchFailure(
  id: string,
  url: string,
  error: unknown,
  signal: AbortSignal | undefined,
  timeoutMs: number,
): string {
  if (signal?.aborted) {
    const reason = signal.reason instanceof Error ? signal.reason.message : String(signal.reason ?? "");
    return `Job cancelled before container ${id} replied${reason ? `: ${reason}` : ""}`;
  }
  if (error instanceof Error && (error.name === "TimeoutError" || error.name === "AbortError")) {
    return `Container ${id} did not reply within ${timeoutMs / 1000} s`;
  }
  // The request went out whole and the connection then broke: the container was reached, and went away
  // mid-job (killed, crashed, restarted). "Cannot reach" would send an operator looking at the network.
  if ((error as { requestSent?: unknown } | null)?.requestSent === true) {
    return `Lost the connection to container ${id} before it replied (it stopped, crashed or was restarted during the job): ${describeError(error)}`;
  }
  return `Cannot reach container ${id} at ${redactUrl(url)}: ${describeError(error)}`;
}

export function createOrchestrator(deps: OrchestratorDeps): Orchestrator {
  const { directory, jobTimeoutMs, log, observe } = deps;
  // An injected fetch (failure tests) is used as is; otherwise container calls take the keep-alive socket client.
  const post = deps.fetch ? fetchPost(deps.fetch) : createHttpClient();
  let onchainRunning = 0;
  const stats = emptyCounters();

  function countContainer(id: string, ok: boolean): void {
    let entry = stats.containers[id];
    if (!entry) {
      entry = { success: 0, failed: 0 };
      stats.containers[id] = entry;
    }
    if (ok) entry.success++;
    else entry.failed++;
  }

  async function call(
    id: string,
    payload: string,
    signal: AbortSignal | undefined,
  ): Promise<ContainerResult> {
    const endpoint = directory.endpoint(id);
    if (!endpoint) return { container: id, error: `Container ${id} is not available` };
    const url = `${endpoint.baseUrl}/service_output`;
    // One controller per call, aborted by the timeout or the job's signal, with both detached afterwards:
    // AbortSignal.any() on the long-lived shutdown signal would accumulate a dependent per call.
    const controller = new AbortController();
    const timer = setTimeout(
      () => controller.abort(new DOMException("timed out", "TimeoutError")),
      jobTimeoutMs,
    );
    const onAbort = () => controller.abort(signal?.reason);
    signal?.addEventListener("abort", onAbort, { once: true });
    let response: HttpReply;
    try {
      if (signal?.aborted) throw signal.reason;
      response = await post(
        url,
        Object.keys(endpoint.headers).length > 0 ? { ...endpoint.headers, ...JSON_HEADERS } : JSON_HEADERS,
        payload,
        controller.signal,
      );
    } catch (error) {
      return { container: id, error: describeFetchFailure(id, url, error, signal, jobTimeoutMs) };
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
    }
    // Any HTTP reply proves the service answers, even while its last probe said otherwise.
    directory.reportAlive?.(id);
    const { contentType, text } = response;
    if (!JSON_CONTENT_TYPE.test(contentType)) {
      return {
        container: id,
        error: `Container ${id} replied with non-JSON content (HTTP ${response.status}, Content-Type "${contentType}"): ${text.slice(0, SNIPPET)}`,
      };
    }
    if (text.trim() === "") return { container: id, output: null };
    // The same bound as request bodies: an output nested deeper would fail later, when a reply serialises it.
    if (jsonNestingExceeds(text, MAX_JSON_DEPTH)) {
      return {
        container: id,
        error: `Container ${id} replied with JSON nested deeper than ${MAX_JSON_DEPTH} levels`,
      };
    }
    try {
      return { container: id, output: parseJsonFast(text) };
    } catch {
      return {
        container: id,
        error: `Container ${id} replied with invalid JSON (HTTP ${response.status}): ${text.slice(0, SNIPPET)}`,
      };
    }
  }

  return {
    async run(job, signal) {
      const onchain = job.destination === JobLocation.ONCHAIN;
      const startedAt = performance.now();
      if (onchain) onchainRunning++;
      const results: ContainerResult[] = [];
      try {
        const last = job.containers.length - 1;
        let dataText = stringifyJsonFast(job.data);
        for (let i = 0; i <= last; i++) {
          const id = job.containers[i] ?? "";
          const source = i === 0 ? job.source : JobLocation.OFFCHAIN;
          const destination = i === last ? job.destination : JobLocation.OFFCHAIN;
          const callStartedAt = performance.now();
          const result = await call(
            id,
            containerPayload(source, destination, dataText, job.requiresProof),
            signal,
          );
          results.push(result);
          observe?.containerCall(
            id,
            !("error" in result),
            secondsSince(callStartedAt),
            "error" in result ? result.error : undefined,
          );
          if ("error" in result) {
            countContainer(id, false);
            log.warn("Container error", { container: id, error: result.error });
            break;
          }
          countContainer(id, true);
          if (i < last) dataText = stringifyJsonFast(result.output);
        }
      } catch (error) {
        // Not expected (call() returns errors as values); keep the job's outcome truthful anyway.
        results.push({ container: job.containers[results.length] ?? "", error: describeError(error) });
      } finally {
        if (onchain) onchainRunning--;
      }
      const failed = results.length === 0 || "error" in (results[results.length - 1] ?? {});
      const bucket = onchain ? stats.jobs.onchain : stats.jobs.offchain;
      if (failed) bucket.failed++;
      else bucket.success++;
      observe?.job(onchain ? "onchain" : "offchain", !failed, secondsSince(startedAt), {
        containers: job.containers,
        label: job.label,
      });
      return results;
    },
    pendingOnchain: () => onchainRunning,
    recordOffchain(status, containers) {
      const ok = status === "success";
      if (ok) stats.jobs.offchain.success++;
      else stats.jobs.offchain.failed++;
      for (const id of containers) countContainer(id, ok);
    },
    counters: () => structuredClone(stats),
  };
}
