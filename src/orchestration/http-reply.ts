// An incremental parser for one HTTP/1.1 reply, fed the bytes of a container connection as they arrive. Each
// byte is looked at once: a reply of many small chunks costs time in proportion to its size, never its size
// times the number of packets. It accepts and rejects what Bun's fetch does (the conformance table in
// test/unit/orchestration/http-conformance.test.ts): LF-only line endings in the head, identical repeated
// Content-Length headers; a chunk size that is not plain hex, or chunk data not followed by CRLF, is an error.
// The head and the body are capped, so a container cannot make the node buffer without bound.
//
// No parser package is used: Bun resolves `undici` to its own fetch-based module, and the pure-JS parsers on
// npm (http-parser-js) accept what fetch rejects (`2zz` as a chunk size), so they would need the same checks.

import { brotliDecompressSync, gunzipSync, inflateRawSync, inflateSync, zstdDecompressSync } from "node:zlib";

export interface RawReply {
  status: number;
  /** Lower-case names; repeated headers joined with ", " as fetch does. */
  headers: Map<string, string>;
  body: Buffer;
}

export interface ReplyLimits {
  /** Status line and headers (and chunked trailers), at most. */
  maxHeadBytes: number;
  /** The body as received and as decoded, at most. */
  maxBodyBytes: number;
}

/** The reply breaks HTTP/1.1 framing; the connection cannot be used again. */
export class MalformedReplyError extends Error {
  override name = "MalformedReplyError";
}

/** The reply is over a cap (a clear error instead of an unbounded buffer). */
export class ReplyTooLargeError extends Error {
  override name = "ReplyTooLargeError";
}

const HEAD = 0;
const LENGTH = 1;
const UNTIL_CLOSE = 2;
const CHUNK_SIZE = 3;
const CHUNK_DATA = 4;
const CHUNK_END = 5;
const TRAILERS = 6;
const DONE = 7;

const LF = 10;
const CR = 13;
/** A chunk-size line (hex size plus extensions) longer than this is not a real one. */
const MAX_CHUNK_LINE = 4096;
const STATUS_LINE = /^HTTP\/1\.([01]) (\d{3})(?:[ \t][^\r\n]*)?$/;
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** A header value: no control characters other than HTAB (a bare CR included). */
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;
const DIGITS = /^\d+$/;
const CHUNK_LINE = /^([0-9a-fA-F]+)(?:;[^\r\n]*)?$/;
const BARE_LF = /(?:^|[^\r])\n/;

/** Until the head is parsed; never changed. */
const NO_HEADERS = new Map<string, string>();
const mib = (bytes: number) => `${Math.round((bytes / 1048576) * 10) / 10} MiB`;

export class ReplyParser {
  private state = HEAD;
  /** Bytes of a line-oriented state (head, chunk-size line, trailers) not consumed yet. */
  private pending: Buffer | undefined;
  /** Of the pending head: how far it was searched for the empty line already. */
  private scanned = 0;
  private status = 0;
  private headers: Map<string, string> = NO_HEADERS;
  private trailerBytes = 0;
  /** Body bytes still expected: of the Content-Length body, or of the current chunk. */
  private remaining = 0;
  /** The Content-Length body, allocated once at its declared size. */
  private fixed: Buffer | undefined;
  /** Body pieces of a chunked or close-framed body (created on first use: most replies have a length). */
  private parts: Buffer[] | undefined;
  private bodyBytes = 0;
  /** Whether the connection may carry another request once this reply is complete. */
  keepAlive = false;
  /** Bytes arrived after the end of the reply: the server is out of step with us. */
  extra = false;

  constructor(private readonly limits: ReplyLimits) {}

  /** Feeds the next bytes; returns the reply once it is complete. Throws on a malformed or oversized reply. */
  push(chunk: Buffer): RawReply | undefined {
    let buf = chunk;
    if (this.pending) buf = Buffer.concat([this.pending, buf]);
    this.pending = undefined;
    let at = 0;
    for (;;) {
      if (this.state === DONE) {
        if (at < buf.length) this.extra = true;
        return this.reply();
      }
      if (at >= buf.length) return undefined;
      switch (this.state) {
        case HEAD:
          at = this.head(buf, at);
          break;
        case LENGTH: {
          const take = Math.min(this.remaining, buf.length - at);
          buf.copy(this.fixed as Buffer, this.bodyBytes, at, at + take);
          this.bodyBytes += take;
          this.remaining -= take;
          at += take;
          if (this.remaining === 0) this.state = DONE;
          break;
        }
        case UNTIL_CLOSE:
          this.addBody(buf, at, buf.length);
          at = buf.length;
          break;
        case CHUNK_DATA: {
          const take = Math.min(this.remaining, buf.length - at);
          this.addBody(buf, at, at + take);
          this.remaining -= take;
          at += take;
          if (this.remaining === 0) this.state = CHUNK_END;
          break;
        }
        case CHUNK_END:
          if (buf.length - at < 2) return this.keep(buf, at);
          if (buf[at] !== CR || buf[at + 1] !== LF) {
            throw new MalformedReplyError("malformed chunked encoding: no CRLF after the chunk data");
          }
          at += 2;
          this.state = CHUNK_SIZE;
          break;
        default: {
          // CHUNK_SIZE and TRAILERS: one CRLF-terminated line (fetch refuses a bare LF here).
          const lf = buf.indexOf(LF, at);
          if (lf < 0) {
            if (buf.length - at > MAX_CHUNK_LINE) throw new MalformedReplyError("malformed chunked encoding");
            return this.keep(buf, at);
          }
          if (lf === at || buf[lf - 1] !== CR) {
            throw new MalformedReplyError("malformed chunked encoding: a line not ended by CRLF");
          }
          const line = buf.toString("latin1", at, lf - 1);
          at = lf + 1;
          if (this.state === CHUNK_SIZE) this.chunkSize(line);
          else this.trailer(line);
        }
      }
    }
  }

  /** The connection ended: the reply if it is complete (a body framed by the close is), else a throw. */
  end(): RawReply {
    if (this.state === UNTIL_CLOSE) this.state = DONE;
    if (this.state !== DONE) {
      throw new Error("the container closed the connection before the reply was complete");
    }
    return this.reply();
  }

  private reply(): RawReply {
    const parts = this.parts ?? [];
    const body = this.fixed ?? (parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts));
    return { status: this.status, headers: this.headers, body };
  }

  private keep(buf: Buffer, at: number): undefined {
    this.pending = Buffer.from(buf.subarray(at));
    return undefined;
  }

  private addBody(buf: Buffer, from: number, to: number): void {
    this.bodyBytes += to - from;
    if (this.bodyBytes > this.limits.maxBodyBytes) this.tooLarge();
    this.parts ??= [];
    this.parts.push(Buffer.from(buf.subarray(from, to)));
  }

  private tooLarge(): never {
    throw new ReplyTooLargeError(
      `the container's reply body is larger than the ${mib(this.limits.maxBodyBytes)} limit`,
    );
  }

  /** Looks for the empty line ending the head; parses the head once it is there. Returns the next offset. */
  private head(buf: Buffer, start: number): number {
    let from = start + this.scanned;
    for (;;) {
      const lf = buf.indexOf(LF, from);
      if (lf < 0) break;
      // An empty line: LF LF, or LF CR LF (CRLF CRLF included).
      const previous = buf[lf - 1];
      if (
        lf - 1 >= start &&
        (previous === LF || (previous === CR && lf - 2 >= start && buf[lf - 2] === LF))
      ) {
        this.scanned = 0;
        // Up to the empty line: the text ends with the last line's own line ending.
        this.parseHead(buf.toString("latin1", start, previous === CR ? lf - 1 : lf));
        return lf + 1;
      }
      from = lf + 1;
    }
    if (buf.length - start > this.limits.maxHeadBytes) {
      throw new ReplyTooLargeError(
        `the container's reply header is larger than ${this.limits.maxHeadBytes} bytes`,
      );
    }
    this.scanned = buf.length - start;
    this.keep(buf, start);
    return buf.length;
  }

  private parseHead(text: string): void {
    if (text.length > this.limits.maxHeadBytes) {
      throw new ReplyTooLargeError(
        `the container's reply header is larger than ${this.limits.maxHeadBytes} bytes`,
      );
    }
    // CRLF throughout is the rule and the fast path; a head with any bare LF is split on LF instead.
    const lines = BARE_LF.test(text) ? text.split("\n").map(stripCr) : text.split("\r\n");
    const statusLine = STATUS_LINE.exec(lines[0] ?? "");
    if (!statusLine) throw new MalformedReplyError(`malformed HTTP status line: ${JSON.stringify(lines[0])}`);
    const status = Number(statusLine[2]);
    const headers = new Map<string, string>();
    let contentLength: string | undefined;
    for (let i = 1; i < lines.length; i++) {
      const line = lines[i] as string;
      if (line === "") continue;
      const colon = line.indexOf(":");
      const name = colon > 0 ? line.slice(0, colon) : "";
      const value = trimOws(line, colon + 1);
      if (!TOKEN.test(name) || !FIELD_VALUE.test(value)) {
        throw new MalformedReplyError(`malformed HTTP header line: ${JSON.stringify(line)}`);
      }
      const lower = name.toLowerCase();
      if (lower === "content-length") {
        // Repeated identical values are one length (as fetch takes them); anything else is ambiguous framing.
        if (!DIGITS.test(value) || (contentLength !== undefined && value !== contentLength)) {
          throw new MalformedReplyError(`invalid Content-Length: ${JSON.stringify(value)}`);
        }
        contentLength = value;
        headers.set(lower, value);
        continue;
      }
      const previous = headers.get(lower);
      headers.set(lower, previous === undefined ? value : `${previous}, ${value}`);
    }
    // Interim replies (100 Continue, 103 Early Hints) precede the real one.
    if (status >= 100 && status < 200 && status !== 101) return;
    this.status = status;
    this.headers = headers;
    const connection = headers.get("connection")?.toLowerCase() ?? "";
    this.keepAlive =
      statusLine[1] === "1" ? !connection.includes("close") : connection.includes("keep-alive");
    if (status === 204 || status === 304) {
      this.state = DONE;
      return;
    }
    const codings = headers.get("transfer-encoding")?.toLowerCase();
    if (codings?.split(",").some((coding) => coding.trim() === "chunked")) {
      // With a Content-Length too, the framing was ambiguous for someone on the way: do not reuse the connection.
      if (contentLength !== undefined) this.keepAlive = false;
      this.state = CHUNK_SIZE;
      return;
    }
    if (contentLength !== undefined) {
      const length = Number(contentLength);
      if (length > this.limits.maxBodyBytes) this.tooLarge();
      this.remaining = length;
      this.fixed = Buffer.allocUnsafe(length);
      this.state = length === 0 ? DONE : LENGTH;
      return;
    }
    // No framing: the body runs until the server closes the connection.
    this.keepAlive = false;
    this.state = UNTIL_CLOSE;
  }

  private chunkSize(line: string): void {
    const match = CHUNK_LINE.exec(line);
    const size = match ? Number.parseInt(match[1] as string, 16) : Number.NaN;
    if (!Number.isSafeInteger(size)) {
      throw new MalformedReplyError(`malformed chunked encoding: chunk size ${JSON.stringify(line)}`);
    }
    if (size === 0) {
      this.state = TRAILERS;
      return;
    }
    if (this.bodyBytes + size > this.limits.maxBodyBytes) this.tooLarge();
    this.remaining = size;
    this.state = CHUNK_DATA;
  }

  private trailer(line: string): void {
    if (line === "") {
      this.state = DONE;
      return;
    }
    this.trailerBytes += line.length + 2;
    if (this.trailerBytes > this.limits.maxHeadBytes) {
      throw new ReplyTooLargeError(
        `the container's reply trailers are larger than ${this.limits.maxHeadBytes} bytes`,
      );
    }
  }
}

function stripCr(line: string): string {
  return line.endsWith("\r") ? line.slice(0, -1) : line;
}

/** `line` from `start`, without the spaces and tabs around it (optional whitespace, and nothing else). */
function trimOws(line: string, start: number): string {
  let from = start;
  let to = line.length;
  while (from < to && isOws(line.charCodeAt(from))) from++;
  while (to > from && isOws(line.charCodeAt(to - 1))) to--;
  return line.slice(from, to);
}

function isOws(code: number): boolean {
  return code === 32 || code === 9;
}

type Decoder = (body: Buffer, options: { maxOutputLength: number }) => Buffer;

/** Content codings as fetch decodes them; "deflate" is zlib-wrapped or raw, as servers send either. */
const DECODERS: Record<string, Decoder> = {
  gzip: gunzipSync,
  "x-gzip": gunzipSync,
  br: brotliDecompressSync,
  zstd: zstdDecompressSync,
  deflate: (body, options) => {
    try {
      return inflateSync(body, options);
    } catch (error) {
      if ((error as { code?: string }).code === "ERR_BUFFER_TOO_LARGE") throw error;
      return inflateRawSync(body, options);
    }
  },
};

/**
 * The body as text, like Response.text(): content codings undone (stacked ones last to first, each output
 * capped), then UTF-8 with a leading BOM dropped and invalid bytes replaced. One unknown coding is left as is,
 * as fetch leaves it; an unknown coding among several cannot be undone and is an error.
 */
export function decodeBody(reply: RawReply, maxBytes: number): string {
  const header = reply.headers.get("content-encoding");
  let body = reply.body;
  if (header !== undefined && body.length > 0) {
    const codings = header
      .toLowerCase()
      .split(",")
      .map((coding) => coding.trim())
      .filter((coding) => coding !== "" && coding !== "identity");
    const known = codings.every((coding) => DECODERS[coding] !== undefined);
    if (!known && codings.length > 1) {
      throw new Error(
        `the container's reply uses an unsupported Content-Encoding: ${JSON.stringify(header)}`,
      );
    }
    for (let i = codings.length - 1; known && i >= 0; i--) {
      const coding = codings[i] as string;
      try {
        body = (DECODERS[coding] as Decoder)(body, { maxOutputLength: maxBytes });
      } catch (error) {
        if ((error as { code?: string }).code === "ERR_BUFFER_TOO_LARGE") {
          throw new ReplyTooLargeError(
            `the container's decoded reply body is larger than the ${mib(maxBytes)} limit`,
          );
        }
        throw new Error(`could not decode the container's ${coding} reply body: ${(error as Error).message}`);
      }
    }
  }
  return new TextDecoder().decode(body);
}
