// Follows the engine's event stream for this node's containers (die, start, restart, oom, destroy, pause,
// health_status…) and hands each event to `onEvent`. The stream is reopened with capped backoff when the
// engine restarts or the connection drops; it never throws.
import { describeError } from "../../lib/errors.ts";
import type { Logger } from "../../lib/log.ts";
import { backoffMs, sleep } from "../../lib/time.ts";
import { type DockerClient, withTimeout } from "./client.ts";
import { LABEL_MANAGED } from "./spec.ts";

export interface ContainerEvent {
  /** die, start, restart, oom, destroy, stop, kill, pause, health_status: unhealthy, … */
  action: string;
  /** Container name (= config id). */
  name: string;
  dockerId: string;
  exitCode?: number;
}

interface RawEvent {
  Type?: string;
  Action?: string;
  status?: string;
  id?: string;
  Actor?: { ID?: string; Attributes?: Record<string, string> };
}

const ACTIONS = [
  "create",
  "start",
  "restart",
  "die",
  "stop",
  "kill",
  "oom",
  "destroy",
  "pause",
  "health_status",
];

export interface FollowEventsOptions {
  log: Logger;
  signal: AbortSignal;
  onEvent: (event: ContainerEvent) => void;
  /** Deadline for the engine to answer the request that opens the stream; default 10 s. */
  connectTimeoutMs?: number;
  /** Called with true when the stream (re)opens, false when it breaks. */
  onConnection?: (connected: boolean, detail?: string) => void;
}

/** Resolves once `signal` aborts. */
export async function followEvents(docker: DockerClient, options: FollowEventsOptions): Promise<void> {
  const { log, signal } = options;
  let failures = 0;
  while (!signal.aborted) {
    const started = Date.now();
    try {
      await followOnce(docker, options);
    } catch (error) {
      if (signal.aborted) return;
      options.onConnection?.(false, describeError(error));
      log.warn("Docker event stream failed, reopening", { error: describeError(error) });
    }
    if (signal.aborted) return;
    if (Date.now() - started > 30_000) failures = 0;
    await sleep(backoffMs(failures++, 250, 10_000), signal);
  }
}

async function followOnce(docker: DockerClient, options: FollowEventsOptions): Promise<void> {
  const { signal } = options;
  // Only opening the stream has a deadline (a hung engine never answers, and the stream must come back once it
  // recovers); the open stream has none, it is meant to stay quiet for hours. The abort signal also cancels a
  // request still waiting for its reply, so shutdown does not wait for a hung engine either.
  const stream = await withTimeout("open the event stream", options.connectTimeoutMs ?? 10_000, (deadline) =>
    docker.getEvents({
      filters: { type: ["container"], label: [`${LABEL_MANAGED}=true`], event: ACTIONS },
      abortSignal: AbortSignal.any([signal, deadline]),
    }),
  );
  options.onConnection?.(true);
  await new Promise<void>((resolve, reject) => {
    let buffer = "";
    const destroy = () => (stream as unknown as { destroy(): void }).destroy();
    const onAbort = () => {
      destroy();
      resolve();
    };
    signal.addEventListener("abort", onAbort, { once: true });
    stream.on("data", (chunk: Buffer | string) => {
      buffer += chunk.toString();
      let newline = buffer.indexOf("\n");
      while (newline >= 0) {
        const line = buffer.slice(0, newline).trim();
        buffer = buffer.slice(newline + 1);
        if (line) emit(line, options);
        newline = buffer.indexOf("\n");
      }
    });
    const ended = (error?: Error) => {
      signal.removeEventListener("abort", onAbort);
      if (signal.aborted) resolve();
      else reject(error ?? new Error("the engine closed the event stream"));
    };
    stream.on("error", ended);
    stream.on("end", () => ended());
    stream.on("close", () => ended());
  });
}

function emit(line: string, options: FollowEventsOptions): void {
  let raw: RawEvent;
  try {
    raw = JSON.parse(line) as RawEvent;
  } catch {
    return;
  }
  const attributes = raw.Actor?.Attributes ?? {};
  const name = attributes.name;
  const action = raw.Action ?? raw.status;
  if (!name || !action) return;
  const exit = attributes.exitCode === undefined ? undefined : Number(attributes.exitCode);
  options.onEvent({
    action,
    name,
    dockerId: raw.Actor?.ID ?? raw.id ?? "",
    ...(exit === undefined || Number.isNaN(exit) ? {} : { exitCode: exit }),
  });
}
