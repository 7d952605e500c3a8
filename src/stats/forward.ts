// A Fluent Forward protocol client (https://github.com/fluent/fluentd/wiki/Forward-Protocol-Specification-v1),
// Message mode: each record is one msgpack array [tag, time, record] on a TCP connection, as fluent-logger
// (the reference's sender) writes it, so the reference's fluent-bit sidecar (`forward` input) keeps working.
//
// Telemetry must never cost the node anything: emit() only encodes and queues; sending runs in the background
// over one lazily opened connection. The queue is bounded (the oldest records are dropped and counted), a
// failed connection is retried with capped backoff, and failures are logged at most once a minute.
import { createConnection, type Socket } from "node:net";
import { encode } from "@msgpack/msgpack";
import { describeError } from "../lib/errors.ts";
import type { Logger } from "../lib/log.ts";
import { backoffMs, sleep } from "../lib/time.ts";

export interface ForwardClientOptions {
  host: string;
  port: number;
  /** Records kept while the receiver is unreachable. */
  maxQueue: number;
  log: Logger;
  /** A connection attempt (DNS included) that takes longer fails; default 3 s. */
  connectTimeoutMs?: number;
  /** Backoff between failed connection attempts: 1 s doubling up to this; default 60 s. */
  maxRetryMs?: number;
  /** At most one failure log line per this period; default 60 s. */
  logEveryMs?: number;
}

export interface ForwardStats {
  /** Records written to the receiver's connection. */
  sent: number;
  /** Records dropped: queue full, or still queued when the client closed. */
  dropped: number;
  queued: number;
  connected: boolean;
  /** The last failure, while no record has been sent since. */
  lastError?: string;
}

export interface ForwardClient {
  /** Queues one record under `tag`; returns at once, never throws. */
  emit(tag: string, record: Record<string, unknown>): void;
  /** One attempt to send what is queued (backoff skipped), at most `timeoutMs`; true when all was sent. */
  flush(timeoutMs: number): Promise<boolean>;
  /** Drops the connection and whatever is still queued (counted as dropped). */
  close(): void;
  stats(): ForwardStats;
}

/** One Forward protocol Message-mode entry: [tag, unix seconds, record]. */
export function encodeEntry(tag: string, record: Record<string, unknown>, timeMs: number): Uint8Array {
  return encode([tag, Math.floor(timeMs / 1000), record]);
}

export function createForwardClient(options: ForwardClientOptions): ForwardClient {
  const { host, port, maxQueue, log } = options;
  const connectTimeoutMs = options.connectTimeoutMs ?? 3_000;
  const maxRetryMs = options.maxRetryMs ?? 60_000;
  const logEveryMs = options.logEveryMs ?? 60_000;
  const queue: Uint8Array[] = [];
  let socket: Socket | undefined;
  let pumping: Promise<void> | undefined;
  let sent = 0;
  let dropped = 0;
  let failures = 0;
  let nextAttemptAt = 0;
  let retryTimer: ReturnType<typeof setTimeout> | undefined;
  let lastError: string | undefined;
  let lastLoggedAt = Number.NEGATIVE_INFINITY;
  let unlogged = 0;
  let closed = false;

  function fail(error: unknown): void {
    socket?.destroy();
    socket = undefined;
    lastError = describeError(error);
    nextAttemptAt = Date.now() + backoffMs(failures++, 1_000, maxRetryMs);
    const now = Date.now();
    if (now - lastLoggedAt >= logEveryMs) {
      log.warn("Could not send stats", {
        receiver: `${host}:${port}`,
        error: lastError,
        queued: queue.length,
        dropped,
        ...(unlogged > 0 ? { failures_not_logged: unlogged } : {}),
      });
      lastLoggedAt = now;
      unlogged = 0;
    } else unlogged++;
    scheduleRetry();
  }

  function scheduleRetry(): void {
    if (closed || retryTimer || queue.length === 0) return;
    retryTimer = setTimeout(
      () => {
        retryTimer = undefined;
        pump();
      },
      Math.max(0, nextAttemptAt - Date.now()),
    );
    // A pending retry must never keep the process alive.
    retryTimer.unref?.();
  }

  function connect(): Promise<Socket> {
    return new Promise((resolve, reject) => {
      const conn = createConnection({ host, port });
      const timer = setTimeout(
        () => conn.destroy(new Error(`no connection within ${connectTimeoutMs} ms`)),
        connectTimeoutMs,
      );
      conn.once("connect", () => {
        clearTimeout(timer);
        conn.setNoDelay(true);
        resolve(conn);
      });
      conn.once("error", (error) => {
        clearTimeout(timer);
        reject(error);
      });
      // The receiver may close an idle connection; the next record opens a new one.
      conn.once("close", () => {
        if (socket === conn) socket = undefined;
      });
      conn.on("error", () => {}); // later errors surface through write callbacks
      conn.on("data", () => {}); // acks are not requested; ignore anything sent back
    });
  }

  function write(conn: Socket, bytes: Uint8Array): Promise<void> {
    return new Promise((resolve, reject) => {
      if (conn.destroyed) return reject(new Error("connection closed"));
      conn.write(bytes, (error) => (error ? reject(error) : resolve()));
    });
  }

  /** Sends the queue in order, one record at a time; a record leaves the queue only once it was written. */
  async function drain(): Promise<void> {
    try {
      while (queue.length > 0 && !closed) {
        socket ??= await connect();
        const head = queue[0] as Uint8Array;
        await write(socket, head);
        // Dropped from a full queue while it was being written: it went out after all.
        if (queue[0] === head) queue.shift();
        else dropped--;
        sent++;
        failures = 0;
        lastError = undefined;
      }
    } catch (error) {
      if (!closed) fail(error);
    }
  }

  function pump(force = false): Promise<void> {
    if (pumping) return pumping;
    if (closed || queue.length === 0) return Promise.resolve();
    if (!force && Date.now() < nextAttemptAt) {
      scheduleRetry();
      return Promise.resolve();
    }
    pumping = drain().finally(() => {
      pumping = undefined;
    });
    return pumping;
  }

  return {
    emit(tag, record) {
      if (closed) return;
      try {
        queue.push(encodeEntry(tag, record, Date.now()));
      } catch (error) {
        log.warn("Could not encode a stats record", { tag, error: describeError(error) });
        return;
      }
      // Bounded: the newest records are the useful ones.
      while (queue.length > maxQueue) {
        queue.shift();
        dropped++;
      }
      void pump();
    },
    async flush(timeoutMs) {
      // One attempt now, whatever the backoff says; a receiver that refuses it will not take it a moment later.
      const timer = new AbortController();
      await Promise.race([pump(true), sleep(timeoutMs, timer.signal)]);
      timer.abort();
      return queue.length === 0;
    },
    close() {
      closed = true;
      if (retryTimer) clearTimeout(retryTimer);
      dropped += queue.length;
      queue.length = 0;
      socket?.destroy();
      socket = undefined;
    },
    stats: () => ({
      sent,
      dropped,
      queued: queue.length,
      connected: socket !== undefined && !socket.destroyed,
      ...(lastError === undefined ? {} : { lastError }),
    }),
  };
}
