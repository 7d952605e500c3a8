// Runs accepted off-chain jobs in the background and keeps track of them, so that shutdown can let them finish
// (or record them failed) instead of dropping them. A job is stored as `running` before its id is returned, so
// a client polling right after POST /api/jobs always finds it.
import { describeError, NodeError } from "../lib/errors.ts";
import type { Logger } from "../lib/log.ts";
import type { Orchestrator } from "../orchestration/orchestrator.ts";
import { openContainerStream, type StreamDeps } from "../orchestration/stream.ts";
import type { ContainerResult, JobResult, JobStore } from "../shared/jobs.ts";
import { JobLocation, type OffchainJobMessage } from "../shared/messages.ts";

export interface JobRunnerDeps {
  store: JobStore;
  orchestrator: Orchestrator;
  stream: StreamDeps;
  log: Logger;
  /** After cancelling at the drain deadline, how long to wait for the cancelled jobs to be recorded. */
  cancelWaitMs?: number;
}

export interface JobRunner {
  /** Records the job as running, then runs it in the background. Rejects if the store cannot record it. */
  start(msg: OffchainJobMessage): Promise<void>;
  /**
   * Records the job as running and returns the streaming reply: `<id>\n` flushed on its own, then the first
   * container's bytes as they arrive. A failure after the id line aborts the chunked transfer (the client sees
   * a truncated body, not a clean end) and the job is stored `failed` with the reason.
   */
  stream(msg: OffchainJobMessage, requestSignal: AbortSignal): Promise<ReadableStream>;
  inFlight(): number;
  /**
   * The state of a job this process is running, or finished in the last few seconds, for `client` (undefined
   * otherwise). Polls are answered from here instead of the store: an entry exists from after the `running`
   * write, and its final state only after the final write, so a reader sees the same sequence as in the store.
   */
  peek(client: string, id: string): JobResult | undefined;
  /** Drops a remembered final state (PUT /api/status rewrote the job in the store). */
  forget(client: string, id: string): void;
  /**
   * Waits up to `graceMs` for jobs in flight, then cancels the rest and waits up to `cancelWaitMs` for each to
   * be recorded; a job that ignores the cancel is left behind (recovered as failed at the next start) so that
   * shutdown stays inside its deadline.
   */
  drain(graceMs: number): Promise<void>;
}

const SHUTDOWN = new Error("the node is shutting down");
/** Finished jobs answered from memory: the final poll of a job needs no store read. Bounded in count and age. */
const RECENT_MAX = 1024;
const RECENT_TTL_MS = 10_000;
const CLIENT_GONE = new Error("the client disconnected before the stream finished");
/** Within the REST server's shutdown margin (3 s), which also covers closing the store. */
const CANCEL_WAIT_MS = 2_000;

function running(id: string): JobResult {
  return { id, status: "running", intermediate_results: [], result: null };
}

function finished(id: string, results: ContainerResult[]): JobResult {
  const result = results[results.length - 1] ?? null;
  const failed = result === null || "error" in result;
  return { id, status: failed ? "failed" : "success", intermediate_results: results.slice(0, -1), result };
}

export function createJobRunner(deps: JobRunnerDeps): JobRunner {
  const { store, orchestrator, log } = deps;
  const jobs = new Set<Promise<void>>();
  const shutdown = new AbortController();
  const running_ = new Map<string, JobResult>();
  const recent = new Map<string, { job: JobResult; until: number }>();
  const key = (client: string, id: string) => `${client}\u0000${id}`;

  function remember(client: string, job: JobResult): void {
    const k = key(client, job.id);
    recent.delete(k);
    recent.set(k, { job, until: performance.now() + RECENT_TTL_MS });
    if (recent.size > RECENT_MAX) {
      const oldest = recent.keys().next().value;
      if (oldest !== undefined) recent.delete(oldest);
    }
  }

  function recall(k: string): JobResult | undefined {
    const entry = recent.get(k);
    if (!entry) return undefined;
    if (entry.until > performance.now()) return entry.job;
    recent.delete(k);
    return undefined;
  }

  let closing = false;

  async function markRunning(msg: OffchainJobMessage): Promise<void> {
    // Jobs accepted after the drain began would be cut off by the store closing: refuse them instead.
    if (closing) throw new NodeError("the node is shutting down", { status: 503, retryable: true });
    const job = running(msg.id);
    await store.setRunning(msg.ip, job, { containers: msg.containers });
    running_.set(key(msg.ip, msg.id), job);
  }

  function track(work: Promise<void>): void {
    jobs.add(work);
    work.finally(() => jobs.delete(work));
  }

  async function record(ip: string, job: JobResult): Promise<void> {
    try {
      await store.setDone(ip, job);
      remember(ip, job);
    } catch (error) {
      // The store retries and reports itself in /health; the job is recovered as failed on the next start.
      log.error("could not record job result", {
        id: job.id,
        status: job.status,
        error: describeError(error),
      });
    }
  }

  async function execute(msg: OffchainJobMessage): Promise<void> {
    try {
      const results = await orchestrator.run(
        {
          containers: msg.containers,
          data: msg.data,
          source: JobLocation.OFFCHAIN,
          destination: JobLocation.OFFCHAIN,
          requiresProof: msg.requires_proof,
        },
        shutdown.signal,
      );
      await record(msg.ip, finished(msg.id, results));
    } finally {
      running_.delete(key(msg.ip, msg.id));
    }
  }

  /** Waits until no job is tracked or `ms` passes; true when none is left. */
  async function settleWithin(ms: number): Promise<boolean> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    let timedOut = false;
    const deadline = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        timedOut = true;
        resolve();
      }, ms);
    });
    while (jobs.size > 0 && !timedOut) await Promise.race([Promise.all([...jobs]), deadline]);
    clearTimeout(timer);
    return jobs.size === 0;
  }

  return {
    async start(msg) {
      await markRunning(msg);
      track(execute(msg));
    },

    async stream(msg, requestSignal) {
      await markRunning(msg);
      const container = msg.containers[0] ?? "";
      const signal = AbortSignal.any([shutdown.signal, requestSignal]);
      let settleTracked: () => void = () => {};
      track(new Promise<void>((resolve) => (settleTracked = resolve)));
      const settle = () => {
        running_.delete(key(msg.ip, msg.id));
        settleTracked();
      };
      const encoder = new TextEncoder();
      let done = false;

      const fail = async (error: string): Promise<void> => {
        if (done) return;
        done = true;
        orchestrator.recordOffchain("failed", [container]);
        log.warn("Container error", { container, id: msg.id, error });
        await record(msg.ip, {
          id: msg.id,
          status: "failed",
          intermediate_results: [],
          result: { container, error },
        });
      };

      // Why the stream was cut short by us rather than by the container.
      const cancelled = () =>
        requestSignal.aborted ? CLIENT_GONE.message : `Job cancelled during the stream: ${SHUTDOWN.message}`;

      const body = new ReadableStream({
        type: "direct",
        async pull(controller) {
          // Rejecting with `undefined` aborts the chunked response (the client sees a truncated transfer)
          // without Bun printing a stack to stderr; the reason is in the stored job and the log.
          try {
            controller.write(encoder.encode(`${msg.id}\n`));
            await controller.flush();
            const parts: Uint8Array[] = [];
            let stream: Awaited<ReturnType<typeof openContainerStream>>;
            try {
              stream = await openContainerStream(deps.stream, container, msg.data, signal);
            } catch (error) {
              await fail(signal.aborted ? cancelled() : describeError(error));
              return Promise.reject(undefined);
            }
            try {
              for await (const chunk of stream.chunks) {
                if (signal.aborted) break;
                parts.push(chunk);
                await controller.write(chunk);
                await controller.flush();
              }
            } catch (error) {
              await fail(signal.aborted ? cancelled() : stream.describe(error));
              return Promise.reject(undefined);
            }
            if (signal.aborted) {
              await fail(cancelled());
              return Promise.reject(undefined);
            }
            let text: string;
            try {
              text = new TextDecoder("utf-8", { fatal: true }).decode(Buffer.concat(parts));
            } catch {
              await fail(`Container ${container} streamed output that is not valid UTF-8`);
              return Promise.reject(undefined);
            }
            done = true;
            orchestrator.recordOffchain("success", [container]);
            await record(msg.ip, {
              id: msg.id,
              status: "success",
              intermediate_results: [],
              result: { container, output: { output: text } },
            });
            controller.close();
          } catch (error) {
            // Writing to a client that is gone, or anything unexpected: the job must still end.
            await fail(signal.aborted ? cancelled() : describeError(error));
            return Promise.reject(undefined);
          } finally {
            settle();
          }
        },
        cancel() {
          // The client went away; requestSignal aborts the container call and pull() records the outcome.
        },
      });
      // If the client never reads the body, pull() may not run: make sure the job still ends.
      requestSignal.addEventListener(
        "abort",
        () => {
          if (!done) queueMicrotask(() => void fail(CLIENT_GONE.message).finally(settle));
        },
        { once: true },
      );
      return body;
    },

    inFlight: () => jobs.size,

    peek(client, id) {
      const k = key(client, id);
      return running_.get(k) ?? recall(k);
    },

    forget(client, id) {
      recent.delete(key(client, id));
    },

    async drain(graceMs) {
      closing = true;
      // Let the store writes of requests that were already past the check land and be tracked.
      await new Promise((resolve) => setTimeout(resolve, 0));
      if (jobs.size === 0) return;
      log.info("waiting for jobs in flight", { jobs: jobs.size, grace_ms: graceMs });
      if (await settleWithin(graceMs)) return;
      log.warn("jobs still running at the shutdown deadline; cancelling them", { jobs: jobs.size });
      shutdown.abort(SHUTDOWN);
      if (await settleWithin(deps.cancelWaitMs ?? CANCEL_WAIT_MS)) return;
      log.error("jobs did not end after cancellation; leaving them to be recovered as failed at next start", {
        jobs: jobs.size,
      });
    },
  };
}
