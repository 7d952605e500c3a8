// Container calls over plain HTTP/1.1 with keep-alive, on Bun.connect sockets served by the main event loop.
// Bun's fetch hands every request to its HTTP client thread and the reply back, two cross-thread wake-ups per
// call; at thousands of jobs per second on a small machine that costs more node CPU than the job's own REST
// request (bench/offchain, node CPU per job: embedded 127 → 108 µs, redis 141 → 117 µs).
// Only what this path is sure to do exactly as fetch would is taken here: http:// URLs without credentials,
// header values without CR/LF or characters above U+00FF, and no HTTP proxy in the environment. Anything else,
// and every redirect, goes through fetch. Replies are parsed by http-reply.ts (incremental, capped).
// The deadline (job timeout or shutdown) holds from the connect on; a connection is reused only when its
// request went out whole and its reply came in whole; a request is repeated only when the server cannot have
// received it whole (a POST is not idempotent: a container killed mid-job must not run the input twice).

import type { Socket } from "bun";
import { decodeBody, type RawReply, type ReplyLimits, ReplyParser } from "./http-reply.ts";

/** What the orchestrator reads from a container's reply. */
export interface HttpReply {
  status: number;
  /** The Content-Type header ("" when absent; repeated headers joined with ", " as fetch does). */
  contentType: string;
  /** The body decoded as UTF-8 (a leading BOM dropped, invalid bytes replaced), like Response.text(). */
  text: string;
}

/** POST `body` to `url`; rejects with `signal.reason` when aborted, with an Error when the call fails. */
export type PostJson = (
  url: string,
  headers: Record<string, string>,
  body: string,
  signal: AbortSignal,
) => Promise<HttpReply>;

/** The same call through fetch (https, proxies, redirects, injected fetch in tests). */
export function fetchPost(doFetch: typeof fetch): PostJson {
  return async (url, headers, body, signal) => {
    const response = await doFetch(url, { method: "POST", headers, body, signal });
    const text = await response.text();
    return { status: response.status, contentType: response.headers.get("content-type") ?? "", text };
  };
}

/** Open connections per origin, at most; further calls wait for one (Bun's fetch also caps at 256). */
const MAX_CONNECTIONS = 256;
/**
 * Idle connections older than this are closed rather than reused (servers commonly drop them after 5 s), and a
 * sweep closes them even when no call comes: otherwise a burst's connections stay open for good (the example
 * echo server keeps them 255 s; the load test saw 6 held after a burst, never closed).
 */
const IDLE_REUSE_MS = 4_000;
const REDIRECTS = new Set([301, 302, 303, 307, 308]);
/** Header text that fetch would send unchanged: no CR/LF/NUL, nothing above U+00FF. */
const PLAIN_HEADER = /^[\t\x20-\x7e\x80-\xff]*$/;
const USER_AGENT = `Bun/${Bun.version}`;
/** Reply caps: a container cannot make the node buffer without bound (its output is stored as a job result). */
export const DEFAULT_REPLY_LIMITS: ReplyLimits = { maxHeadBytes: 64 * 1024, maxBodyBytes: 64 * 1024 * 1024 };

interface Exchange {
  resolve: (reply: RawReply) => void;
  reject: (error: unknown) => void;
  /** Bytes received for this exchange so far. */
  received: number;
}

/** Why an exchange failed, and whether the server can have seen the whole request. */
type ExchangeError = Error & { received?: number; requestSent?: boolean };

interface Conn {
  /** Undefined until Bun.connect resolves (its handlers can fire before that). */
  socket: Socket<Conn> | undefined;
  pool: Pool;
  parser: ReplyParser | undefined;
  exchange: Exchange | undefined;
  /** Bytes of the request still to write (the socket took only part of it). */
  pendingWrite: Buffer | undefined;
  idleSince: number;
  closed: boolean;
}

interface Pool {
  hostname: string;
  port: number;
  idle: Conn[];
  open: number;
  waiters: Array<() => void>;
  /** Pending sweep of stale idle connections, while any are idle. */
  sweep: Timer | undefined;
}

export function createHttpClient(
  doFetch: typeof fetch = fetch,
  limits: ReplyLimits = DEFAULT_REPLY_LIMITS,
): PostJson {
  const viaFetch = fetchPost(doFetch);
  const pools = new Map<string, Pool>();
  // Bun's fetch routes plain-http requests through these; keep that behaviour by leaving such setups to it.
  const proxied = Boolean(process.env.HTTP_PROXY || process.env.http_proxy);

  /** The exchange is over: hand the connection on only if both the request and the reply went through whole. */
  function finish(conn: Conn, reply: RawReply): void {
    const exchange = conn.exchange;
    const parser = conn.parser;
    conn.exchange = undefined;
    conn.parser = undefined;
    // A request still being written (the server answered early, e.g. a 413) would be overwritten by the next
    // one; bytes past the reply mean the server is out of step. Neither connection can carry another request.
    if (parser?.keepAlive && !parser.extra && !conn.pendingWrite && !conn.closed) release(conn);
    else destroy(conn);
    exchange?.resolve(reply);
  }

  function fail(conn: Conn, error: unknown): void {
    const exchange = conn.exchange;
    conn.exchange = undefined;
    // Read before destroy: whether the request had been written whole decides whether a retry is safe.
    const requestSent = conn.pendingWrite === undefined;
    destroy(conn);
    exchange?.reject(
      Object.assign(error instanceof Error ? error : new Error(String(error)), { requestSent }),
    );
  }

  function destroy(conn: Conn): void {
    if (conn.closed) return;
    conn.closed = true;
    const idleAt = conn.pool.idle.indexOf(conn);
    if (idleAt >= 0) conn.pool.idle.splice(idleAt, 1);
    conn.pool.open--;
    conn.socket?.terminate();
    conn.pool.waiters.shift()?.();
  }

  function release(conn: Conn): void {
    const waiter = conn.pool.waiters.shift();
    conn.idleSince = performance.now();
    conn.pool.idle.push(conn);
    // Idle keep-alive sockets must not hold the process open at shutdown.
    conn.socket?.unref();
    scheduleSweep(conn.pool);
    waiter?.();
  }

  /** Closes the pool's idle connections too old to reuse, every IDLE_REUSE_MS while any are idle. */
  function scheduleSweep(pool: Pool): void {
    if (pool.sweep) return;
    pool.sweep = setTimeout(() => {
      pool.sweep = undefined;
      const now = performance.now();
      for (const conn of [...pool.idle]) if (now - conn.idleSince >= IDLE_REUSE_MS) destroy(conn);
      if (pool.idle.length > 0) scheduleSweep(pool);
    }, IDLE_REUSE_MS);
    // Like the idle sockets themselves, the sweep must not keep the process alive.
    pool.sweep.unref();
  }

  function onClosed(conn: Conn, error?: Error): void {
    if (!conn.exchange) destroy(conn);
    else if (error) fail(conn, error);
    else if (conn.exchange.received === 0) {
      fail(conn, new Error("the container closed the connection without replying"));
    } else {
      // A reply framed by the end of the connection is complete now; any other was cut short.
      let reply: RawReply;
      try {
        reply = (conn.parser as ReplyParser).end();
      } catch (cut) {
        fail(conn, cut);
        return;
      }
      destroy(conn);
      finish(conn, reply);
    }
  }

  /**
   * A new connection. The signal is raced against the connect itself: a host that drops SYNs would otherwise
   * hold the call for the kernel's ~127 s of retries, whatever the job timeout. A socket that connects after
   * the abort is closed at once.
   */
  function connect(pool: Pool, signal: AbortSignal): Promise<Conn> {
    const conn: Conn = {
      socket: undefined,
      pool,
      parser: undefined,
      exchange: undefined,
      pendingWrite: undefined,
      idleSince: performance.now(),
      closed: false,
    };
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        // Counted out by the caller (acquire) as a failed connect; the late socket must not count again.
        conn.closed = true;
        reject(signal.reason);
      };
      signal.addEventListener("abort", onAbort, { once: true });
      Bun.connect<Conn>({
        hostname: pool.hostname,
        port: pool.port,
        data: conn,
        socket: {
          data(socket, chunk) {
            const c = socket.data;
            if (!c.exchange || !c.parser) {
              // Bytes nobody asked for: the connection is out of step, drop it.
              destroy(c);
              return;
            }
            c.exchange.received += chunk.length;
            let reply: RawReply | undefined;
            try {
              reply = c.parser.push(chunk);
            } catch (error) {
              fail(c, error);
              return;
            }
            if (reply) finish(c, reply);
          },
          drain(socket) {
            const c = socket.data;
            if (!c.pendingWrite) return;
            const written = Math.max(0, socket.write(c.pendingWrite));
            c.pendingWrite = written < c.pendingWrite.length ? c.pendingWrite.subarray(written) : undefined;
          },
          end(socket) {
            onClosed(socket.data);
          },
          close(socket, error) {
            onClosed(socket.data, error);
          },
          error(socket, error) {
            onClosed(socket.data, error);
          },
        },
      }).then(
        (socket) => {
          signal.removeEventListener("abort", onAbort);
          if (conn.closed) {
            socket.terminate();
            return;
          }
          conn.socket = socket;
          resolve(conn);
        },
        (error: unknown) => {
          signal.removeEventListener("abort", onAbort);
          reject(error);
        },
      );
    });
  }

  /** An idle connection, a new one, or (at the cap) the next one released. */
  async function acquire(pool: Pool, signal: AbortSignal): Promise<{ conn: Conn; reused: boolean }> {
    for (;;) {
      signal.throwIfAborted();
      const idle = pool.idle.pop();
      if (idle) {
        if (performance.now() - idle.idleSince < IDLE_REUSE_MS) {
          idle.socket?.ref();
          return { conn: idle, reused: true };
        }
        destroy(idle);
        continue;
      }
      if (pool.open < MAX_CONNECTIONS) {
        pool.open++;
        try {
          return { conn: await connect(pool, signal), reused: false };
        } catch (error) {
          pool.open--;
          pool.waiters.shift()?.();
          if (signal.aborted) throw signal.reason;
          // Bun.connect says only "Failed to connect"; name the reason as fetch did (ECONNREFUSED: …).
          const code = (error as { code?: unknown } | null)?.code;
          if (error instanceof Error && typeof code === "string" && !error.message.includes(code)) {
            throw new Error(`${code}: ${error.message}`, { cause: error });
          }
          throw error;
        }
      }
      await new Promise<void>((resolve, reject) => {
        const wake = () => {
          signal.removeEventListener("abort", onAbort);
          resolve();
        };
        const onAbort = () => {
          const at = pool.waiters.indexOf(wake);
          if (at >= 0) pool.waiters.splice(at, 1);
          reject(signal.reason);
        };
        pool.waiters.push(wake);
        signal.addEventListener("abort", onAbort, { once: true });
      });
    }
  }

  function exchange(conn: Conn, request: Buffer, signal: AbortSignal): Promise<RawReply> {
    return new Promise((resolve, reject) => {
      const state: Exchange = {
        received: 0,
        resolve: (reply) => {
          signal.removeEventListener("abort", onAbort);
          resolve(reply);
        },
        reject: (error) => {
          signal.removeEventListener("abort", onAbort);
          reject(Object.assign(error as ExchangeError, { received: state.received }));
        },
      };
      const onAbort = () => {
        if (conn.exchange !== state) return;
        conn.exchange = undefined;
        destroy(conn);
        reject(signal.reason);
      };
      signal.addEventListener("abort", onAbort, { once: true });
      conn.exchange = state;
      conn.parser = new ReplyParser(limits);
      const written = Math.max(0, (conn.socket as Socket<Conn>).write(request));
      conn.pendingWrite = written < request.length ? request.subarray(written) : undefined;
    });
  }

  /** Per URL: its pool and request line, or null when the URL itself must go through fetch. */
  const targets = new Map<string, { pool: Pool; start: string } | null>();

  function targetOf(url: string): { pool: Pool; start: string } | null {
    let target = targets.get(url);
    if (target !== undefined) return target;
    const parsed = new URL(url);
    target = null;
    if (!proxied && parsed.protocol === "http:" && parsed.username === "" && parsed.password === "") {
      let pool = pools.get(parsed.host);
      if (!pool) {
        pool = {
          hostname: parsed.hostname.replace(/^\[(.*)\]$/, "$1"),
          port: parsed.port === "" ? 80 : Number(parsed.port),
          idle: [],
          open: 0,
          waiters: [],
          sweep: undefined,
        };
        pools.set(parsed.host, pool);
      }
      target = {
        pool,
        start: `POST ${parsed.pathname}${parsed.search} HTTP/1.1\r\nHost: ${parsed.host}\r\n`,
      };
    }
    // Container URLs are few (one per configured container); bound the cache anyway.
    if (targets.size >= 1_000) targets.clear();
    targets.set(url, target);
    return target;
  }

  return async (url, headers, body, signal) => {
    const target = targetOf(url);
    let head = target?.start ?? "";
    for (const name in headers) {
      const value = headers[name] as string;
      if (!PLAIN_HEADER.test(name) || !PLAIN_HEADER.test(value)) return viaFetch(url, headers, body, signal);
      head += `${name}: ${value}\r\n`;
    }
    if (!target) return viaFetch(url, headers, body, signal);
    const pool = target.pool;
    const bodyBytes = Buffer.from(body);
    head += `Content-Length: ${bodyBytes.length}\r\nConnection: keep-alive\r\nAccept: */*\r\nUser-Agent: ${USER_AGENT}\r\n\r\n`;
    const request = Buffer.concat([Buffer.from(head, "latin1"), bodyBytes]);

    let reply: RawReply;
    for (let attempt = 0; ; attempt++) {
      const { conn, reused } = await acquire(pool, signal);
      if (signal.aborted) {
        // Aborted while the connection was being set up: nothing was sent, the connection stays usable.
        release(conn);
        throw signal.reason;
      }
      try {
        reply = await exchange(conn, request, signal);
        break;
      } catch (error) {
        // A kept-alive connection found closed before or while the request was written: the server cannot have
        // acted on a request it did not receive whole, so it is sent once more on a fresh connection. Once it
        // was written whole it is never repeated, whatever happens next: a container killed mid-job (OOM)
        // must not run the same input twice.
        const { received, requestSent } = error as ExchangeError;
        if (signal.aborted || !reused || received !== 0 || requestSent !== false || attempt > 0) throw error;
      }
    }
    if (REDIRECTS.has(reply.status) && reply.headers.has("location")) {
      return followRedirect(url, reply, headers, body, signal);
    }
    return {
      status: reply.status,
      contentType: reply.headers.get("content-type") ?? "",
      text: decodeBody(reply, limits.maxBodyBytes),
    };
  };

  /** What fetch does on a redirect of a POST: 307/308 repeat it, the others become a GET without body. */
  function followRedirect(
    url: string,
    reply: RawReply,
    headers: Record<string, string>,
    body: string,
    signal: AbortSignal,
  ): Promise<HttpReply> {
    const location = new URL(reply.headers.get("location") ?? "", url);
    const sameOrigin = location.origin === new URL(url).origin;
    const kept: Record<string, string> = {};
    for (const [name, value] of Object.entries(headers)) {
      const lower = name.toLowerCase();
      if (!sameOrigin && lower === "authorization") continue;
      if (reply.status !== 307 && reply.status !== 308 && lower === "content-type") continue;
      kept[name] = value;
    }
    const repeat = reply.status === 307 || reply.status === 308;
    return doFetch(location.href, {
      method: repeat ? "POST" : "GET",
      headers: kept,
      ...(repeat ? { body } : {}),
      signal,
    }).then(async (response) => ({
      status: response.status,
      contentType: response.headers.get("content-type") ?? "",
      text: await response.text(),
    }));
  }
}
