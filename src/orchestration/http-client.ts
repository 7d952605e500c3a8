// Container calls over plain HTTP/1.1 with keep-alive, on Bun.connect sockets served by the main event loop.
// Bun's fetch hands every request to its HTTP client thread and the reply back, two cross-thread wake-ups per
// call; at thousands of jobs per second on a small machine that costs more node CPU than the job's own REST
// request (bench/offchain, node CPU per job: embedded 127 → 108 µs, redis 141 → 117 µs).
// Only what this path is sure to do exactly as fetch would is taken here: http:// URLs without credentials,
// header values without CR/LF or characters above U+00FF, and no HTTP proxy in the environment. Anything else,
// and every redirect, goes through fetch.

import { brotliDecompressSync, gunzipSync, inflateSync } from "node:zlib";
import type { Socket } from "bun";

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
/** Idle connections older than this are closed rather than reused (servers commonly drop them after 5 s). */
const IDLE_REUSE_MS = 4_000;
const CRLF_CRLF = Buffer.from("\r\n\r\n");
const REDIRECTS = new Set([301, 302, 303, 307, 308]);
/** Header text that fetch would send unchanged: no CR/LF/NUL, nothing above U+00FF. */
const PLAIN_HEADER = /^[\t\x20-\x7e\x80-\xff]*$/;
const USER_AGENT = `Bun/${Bun.version}`;

interface Exchange {
  resolve: (reply: RawReply) => void;
  reject: (error: unknown) => void;
  /** Bytes received for this exchange so far (a reused connection that closes with none is retried). */
  received: number;
}

interface RawReply {
  status: number;
  headers: Map<string, string>;
  body: Buffer;
}

interface Conn {
  socket: Socket<Conn>;
  pool: Pool;
  /** Bytes of the reply received so far: `buffer[0, length)`; the buffer grows by doubling (large outputs). */
  buffer: Buffer | undefined;
  length: number;
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
}

/** Parses one complete reply from the start of `buf`; undefined while more bytes are needed. */
function parseReply(
  buf: Buffer,
  ended: boolean,
): { reply: RawReply; keepAlive: boolean; rest: number } | undefined {
  let start = 0;
  for (;;) {
    const headEnd = buf.indexOf(CRLF_CRLF, start);
    if (headEnd < 0) return undefined;
    const lines = buf.toString("latin1", start, headEnd).split("\r\n");
    const statusLine = /^HTTP\/1\.([01]) (\d{3})/.exec(lines[0] ?? "");
    if (!statusLine) throw new Error(`malformed HTTP status line: ${JSON.stringify(lines[0])}`);
    const status = Number(statusLine[2]);
    const headers = new Map<string, string>();
    for (let i = 1; i < lines.length; i++) {
      const line = lines[i] as string;
      const colon = line.indexOf(":");
      if (colon <= 0) throw new Error(`malformed HTTP header line: ${JSON.stringify(line)}`);
      const name = line.slice(0, colon).trim().toLowerCase();
      const value = line.slice(colon + 1).trim();
      const previous = headers.get(name);
      headers.set(name, previous === undefined ? value : `${previous}, ${value}`);
    }
    const bodyStart = headEnd + 4;
    // Interim replies (100 Continue, 103 Early Hints) precede the real one.
    if (status >= 100 && status < 200 && status !== 101) {
      start = bodyStart;
      continue;
    }
    const connection = headers.get("connection")?.toLowerCase() ?? "";
    let keepAlive = statusLine[1] === "1" ? !connection.includes("close") : connection.includes("keep-alive");
    const transferEncoding = headers.get("transfer-encoding")?.toLowerCase() ?? "";
    const contentLength = headers.get("content-length");
    if (status === 204 || status === 304) {
      return { reply: { status, headers, body: Buffer.alloc(0) }, keepAlive, rest: bodyStart };
    }
    if (transferEncoding.includes("chunked")) {
      const parts: Buffer[] = [];
      let at = bodyStart;
      for (;;) {
        const lineEnd = buf.indexOf("\r\n", at);
        if (lineEnd < 0) return undefined;
        const size = Number.parseInt(buf.toString("latin1", at, lineEnd).split(";")[0] ?? "", 16);
        if (!Number.isFinite(size) || size < 0) throw new Error("malformed chunked encoding");
        if (size === 0) {
          // Trailers, if any, end with an empty line.
          let trailer = lineEnd + 2;
          for (;;) {
            const end = buf.indexOf("\r\n", trailer);
            if (end < 0) return undefined;
            if (end === trailer) {
              return { reply: { status, headers, body: Buffer.concat(parts) }, keepAlive, rest: end + 2 };
            }
            trailer = end + 2;
          }
        }
        if (buf.length < lineEnd + 2 + size + 2) return undefined;
        parts.push(buf.subarray(lineEnd + 2, lineEnd + 2 + size));
        at = lineEnd + 2 + size + 2;
      }
    }
    if (contentLength !== undefined) {
      const length = Number(contentLength);
      if (!Number.isSafeInteger(length) || length < 0) throw new Error("malformed Content-Length");
      if (buf.length < bodyStart + length) return undefined;
      return {
        reply: { status, headers, body: buf.subarray(bodyStart, bodyStart + length) },
        keepAlive,
        rest: bodyStart + length,
      };
    }
    // No framing: the body runs until the server closes the connection.
    if (!ended) return undefined;
    keepAlive = false;
    return { reply: { status, headers, body: buf.subarray(bodyStart) }, keepAlive, rest: buf.length };
  }
}

function decodeBody(reply: RawReply): string {
  const encoding = reply.headers.get("content-encoding")?.toLowerCase().trim() ?? "";
  let body = reply.body;
  if (body.length > 0) {
    if (encoding === "gzip" || encoding === "x-gzip") body = gunzipSync(body);
    else if (encoding === "deflate") body = inflateSync(body);
    else if (encoding === "br") body = brotliDecompressSync(body);
  }
  return new TextDecoder().decode(body);
}

export function createHttpClient(doFetch: typeof fetch = fetch): PostJson {
  const viaFetch = fetchPost(doFetch);
  const pools = new Map<string, Pool>();
  // Bun's fetch routes plain-http requests through these; keep that behaviour by leaving such setups to it.
  const proxied = Boolean(process.env.HTTP_PROXY || process.env.http_proxy);

  function settle(conn: Conn, ended: boolean): void {
    const exchange = conn.exchange;
    if (!exchange || !conn.buffer) return;
    let parsed: ReturnType<typeof parseReply>;
    try {
      parsed = parseReply(conn.buffer.subarray(0, conn.length), ended);
    } catch (error) {
      conn.exchange = undefined;
      destroy(conn);
      exchange.reject(error);
      return;
    }
    if (!parsed) return;
    conn.exchange = undefined;
    const clean = parsed.keepAlive && parsed.rest === conn.length && !ended;
    conn.buffer = undefined;
    conn.length = 0;
    if (clean) release(conn);
    else destroy(conn);
    exchange.resolve(parsed.reply);
  }

  function destroy(conn: Conn): void {
    if (conn.closed) return;
    conn.closed = true;
    const idleAt = conn.pool.idle.indexOf(conn);
    if (idleAt >= 0) conn.pool.idle.splice(idleAt, 1);
    conn.pool.open--;
    conn.socket.terminate();
    conn.pool.waiters.shift()?.();
  }

  function release(conn: Conn): void {
    const waiter = conn.pool.waiters.shift();
    conn.idleSince = performance.now();
    conn.pool.idle.push(conn);
    // Idle keep-alive sockets must not hold the process open at shutdown.
    conn.socket.unref();
    waiter?.();
  }

  function onClosed(conn: Conn, error?: Error): void {
    if (conn.exchange && conn.buffer && !error) {
      // A reply framed by the end of the connection is complete now.
      settle(conn, true);
    }
    const exchange = conn.exchange;
    conn.exchange = undefined;
    destroy(conn);
    exchange?.reject(error ?? new Error("the container closed the connection before the reply was complete"));
  }

  async function connect(pool: Pool): Promise<Conn> {
    const conn = {
      pool,
      buffer: undefined,
      length: 0,
      exchange: undefined,
      pendingWrite: undefined,
    } as unknown as Conn;
    conn.idleSince = performance.now();
    conn.closed = false;
    conn.socket = await Bun.connect<Conn>({
      hostname: pool.hostname,
      port: pool.port,
      data: conn,
      socket: {
        data(socket, chunk) {
          const c = socket.data;
          if (!c.exchange) {
            // Bytes nobody asked for: the connection is out of step, drop it.
            destroy(c);
            return;
          }
          c.exchange.received += chunk.length;
          const needed = c.length + chunk.length;
          if (!c.buffer || c.buffer.length < needed) {
            const grown = Buffer.allocUnsafe(Math.max(needed, c.buffer ? c.buffer.length * 2 : 4096));
            if (c.buffer) c.buffer.copy(grown, 0, 0, c.length);
            c.buffer = grown;
          }
          c.buffer.set(chunk, c.length);
          c.length = needed;
          settle(c, false);
        },
        drain(socket) {
          const c = socket.data;
          if (!c.pendingWrite) return;
          const written = socket.write(c.pendingWrite);
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
    });
    return conn;
  }

  /** An idle connection, a new one, or (at the cap) the next one released. */
  async function acquire(pool: Pool, signal: AbortSignal): Promise<{ conn: Conn; reused: boolean }> {
    for (;;) {
      signal.throwIfAborted();
      const idle = pool.idle.pop();
      if (idle) {
        if (performance.now() - idle.idleSince < IDLE_REUSE_MS) {
          idle.socket.ref();
          return { conn: idle, reused: true };
        }
        destroy(idle);
        continue;
      }
      if (pool.open < MAX_CONNECTIONS) {
        pool.open++;
        try {
          return { conn: await connect(pool), reused: false };
        } catch (error) {
          pool.open--;
          pool.waiters.shift()?.();
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

  function exchange(
    conn: Conn,
    request: Buffer,
    signal: AbortSignal,
  ): Promise<RawReply & { received: number }> {
    return new Promise((resolve, reject) => {
      const state: Exchange = {
        received: 0,
        resolve: (reply) => {
          signal.removeEventListener("abort", onAbort);
          resolve({ ...reply, received: state.received });
        },
        reject: (error) => {
          signal.removeEventListener("abort", onAbort);
          reject(
            Object.assign(error instanceof Error ? error : new Error(String(error)), {
              received: state.received,
            }),
          );
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
      const written = conn.socket.write(request);
      if (written < request.length) conn.pendingWrite = request.subarray(Math.max(0, written));
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
        // A kept-alive connection the server closed just as we reused it: nothing was received, so the request
        // was not answered; send it once more on a fresh connection (as HTTP clients commonly do).
        const received = (error as { received?: number } | undefined)?.received;
        if (signal.aborted || !reused || received !== 0 || attempt > 0) throw error;
      }
    }
    if (REDIRECTS.has(reply.status) && reply.headers.has("location")) {
      return followRedirect(url, reply, headers, body, signal);
    }
    return {
      status: reply.status,
      contentType: reply.headers.get("content-type") ?? "",
      text: decodeBody(reply),
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
