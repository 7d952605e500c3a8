// The container client against fetch: each raw reply below is served to both, and both must come out the
// same (the same status, content type and text, or both an error). Where fetch is wrong the row says what the
// client does instead, and why.
import { describe, expect, test } from "bun:test";
import { brotliCompressSync, deflateRawSync, deflateSync, gzipSync, zstdCompressSync } from "node:zlib";
import { createHttpClient, fetchPost, type HttpReply } from "../../../src/orchestration/http-client.ts";
import { END, rawServer } from "../../fixtures/raw-http.ts";

type Outcome = HttpReply | "error";

interface Row {
  name: string;
  reply: (string | Buffer)[];
  /** Only where the client departs from fetch on purpose: what the client gives. */
  client?: Outcome;
}

/** A head with the given header lines and a Content-Length body. */
function withBody(headers: string[], body: Buffer | string): Buffer {
  const bytes = Buffer.from(body);
  const head = ["HTTP/1.1 200 OK", ...headers, `Content-Length: ${bytes.length}`, "", ""].join("\r\n");
  return Buffer.concat([Buffer.from(head), bytes]);
}

const CHUNKED = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
const stacked = brotliCompressSync(gzipSync("hello"));

const ROWS: Row[] = [
  {
    name: "LF-only line endings in the head",
    reply: ["HTTP/1.1 200 OK\nContent-Type: text/plain\nContent-Length: 2\n\nok"],
  },
  { name: "no reason phrase", reply: ["HTTP/1.1 200\r\nContent-Length: 2\r\n\r\nok"] },
  { name: "HTTP/1.0", reply: ["HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok"] },
  {
    name: "upper-case header names",
    reply: ["HTTP/1.1 200 OK\r\nCONTENT-LENGTH: 2\r\nCONTENT-TYPE: a/b\r\n\r\nok"],
  },
  { name: "repeated Content-Type joined", reply: [withBody(["Content-Type: a", "Content-Type: b"], "ok")] },
  {
    name: "103 Early Hints before the reply",
    reply: ["HTTP/1.1 103 Early Hints\r\nLink: x\r\n\r\n", withBody([], "ok")],
  },
  {
    name: "duplicate identical Content-Length",
    reply: ["HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok"],
  },
  {
    name: "different Content-Length values",
    reply: ["HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok!"],
  },
  { name: "Content-Length list in one header", reply: ["HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\n\r\nok"] },
  { name: "negative Content-Length", reply: ["HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\nok"] },
  { name: "Content-Length with a sign", reply: ["HTTP/1.1 200 OK\r\nContent-Length: +2\r\n\r\nok"] },
  { name: "four-digit status", reply: ["HTTP/1.1 2000 OK\r\nContent-Length: 2\r\n\r\nok"] },
  { name: "space before the colon", reply: ["HTTP/1.1 200 OK\r\nContent-Length : 2\r\n\r\nok"] },
  { name: "folded header line", reply: ["HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\nContent-Length: 2\r\n\r\nok"] },
  { name: "header line without a colon", reply: ["HTTP/1.1 200 OK\r\nXA\r\nContent-Length: 2\r\n\r\nok"] },
  {
    name: "body shorter than Content-Length, then close",
    reply: ["HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nok", END],
  },
  { name: "body until close", reply: ["HTTP/1.1 200 OK\r\n\r\n", "ok", END] },
  { name: "chunked with extension and trailer", reply: [CHUNKED, "2;a=b\r\nok\r\n0\r\nX-T: 1\r\n\r\n"] },
  { name: "chunk size 2zz", reply: [CHUNKED, "2zz\r\nok\r\n0\r\n\r\n"] },
  { name: "chunk size with a trailing space", reply: [CHUNKED, "2 \r\nok\r\n0\r\n\r\n"] },
  { name: "chunk size beyond 2^53", reply: [CHUNKED, "ffffffffffffffffff\r\nok\r\n0\r\n\r\n"] },
  { name: "no CRLF after chunk data", reply: [CHUNKED, "2\r\nokXX0\r\n\r\n"] },
  { name: "bare LF after chunk data", reply: [CHUNKED, "2\r\nok\n0\r\n\r\n"] },
  { name: "LF-only chunked framing", reply: ["HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n2\nok\n0\n\n"] },
  { name: "chunked cut short by close", reply: [CHUNKED, "5\r\nok", END] },
  {
    name: "chunked and Content-Length: chunked wins",
    reply: [
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 50\r\n\r\n2\r\nok\r\n0\r\n\r\n",
    ],
  },
  { name: "gzip", reply: [withBody(["Content-Encoding: gzip"], gzipSync("hello"))] },
  { name: "zlib deflate", reply: [withBody(["Content-Encoding: deflate"], deflateSync("hello"))] },
  { name: "raw deflate", reply: [withBody(["Content-Encoding: deflate"], deflateRawSync("hello"))] },
  { name: "brotli", reply: [withBody(["Content-Encoding: br"], brotliCompressSync("hello"))] },
  { name: "zstd", reply: [withBody(["Content-Encoding: zstd"], zstdCompressSync("hello"))] },
  { name: "identity", reply: [withBody(["Content-Encoding: identity"], "ok")] },
  { name: "unknown coding left as is", reply: [withBody(["Content-Encoding: foo"], "ok")] },
  { name: "gzip that is not gzip", reply: [withBody(["Content-Encoding: gzip"], "ok")] },
  {
    // fetch undoes only the last coding and hands back gzip bytes as text; the client undoes both.
    name: "stacked codings in one header",
    reply: [withBody(["Content-Encoding: gzip, br"], stacked)],
    client: { status: 200, contentType: "", text: "hello" },
  },
  {
    name: "stacked codings in two headers",
    reply: [withBody(["Content-Encoding: gzip", "Content-Encoding: br"], stacked)],
    client: { status: 200, contentType: "", text: "hello" },
  },
  {
    // fetch passes the bytes on undecoded; the client refuses rather than hand on half-decoded output.
    name: "an unknown coding among stacked ones",
    reply: [withBody(["Content-Encoding: foo, gzip"], gzipSync("hello"))],
    client: "error",
  },
];

async function outcome(call: Promise<HttpReply>): Promise<Outcome> {
  try {
    return await call;
  } catch {
    return "error";
  }
}

describe("container client vs fetch on the same raw replies", () => {
  const viaFetch = fetchPost(fetch);
  const client = createHttpClient();
  test.each(ROWS.map((row) => [row.name, row] as const))("%s", async (_name, row) => {
    using server = rawServer(() => row.reply);
    const signal = () => AbortSignal.timeout(10_000);
    const fromFetch = await outcome(viaFetch(`${server.url}/x`, {}, "{}", signal()));
    const fromClient = await outcome(client(`${server.url}/x`, {}, "{}", signal()));
    if (row.client === undefined) expect(fromClient).toEqual(fromFetch);
    else {
      expect(fromFetch).not.toEqual(row.client);
      expect(fromClient).toEqual(row.client);
    }
  });
});
