import { describe, expect, test } from "bun:test";
import { gzipSync } from "node:zlib";
import { createHttpClient } from "../../../src/orchestration/http-client.ts";
import { startBlackhole } from "../../fixtures/blackhole.ts";
import { waitFor, within } from "../../fixtures/net.ts";
import { END, rawServer } from "../../fixtures/raw-http.ts";

const signal = () => new AbortController().signal;
const JSON_TYPE = { "Content-Type": "application/json" };

describe("createHttpClient", () => {
  test("default: keep-alive reuse, Content-Length body, request head as fetch sends it", async () => {
    using server = rawServer(() => [
      'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{"ok":true}',
    ]);
    const post = createHttpClient();
    for (let i = 0; i < 3; i++) {
      expect(await post(`${server.url}/service_output`, JSON_TYPE, '{"a":"é"}', signal())).toEqual({
        status: 200,
        contentType: "application/json",
        text: '{"ok":true}',
      });
    }
    expect(server.connections()).toBe(1);
    const request = server.requests[0] ?? "";
    expect(request).toStartWith(`POST /service_output HTTP/1.1\r\nHost: ${server.url.slice(7)}\r\n`);
    expect(request).toContain("Content-Type: application/json\r\n");
    expect(request).toContain("Content-Length: 10\r\n");
    expect(request).toEndWith('\r\n\r\n{"a":"é"}'.replace("é", "\xc3\xa9"));
  });

  test("behavior: idle connections too old to reuse are closed with no further call (a burst leaves none open)", async () => {
    // A server that never closes idle connections, as the example echo (255 s) and many others.
    using server = rawServer(() => [
      "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}",
    ]);
    const post = createHttpClient();
    await Promise.all(Array.from({ length: 4 }, () => post(`${server.url}/x`, JSON_TYPE, "{}", signal())));
    expect(server.connections()).toBe(4);
    // Closed by the client's sweep (4-8 s after going idle); before the fix they stayed open for good.
    await waitFor("the idle connections to be closed", () => server.openConnections() === 0, 20_000);
    expect((await post(`${server.url}/x`, JSON_TYPE, "{}", signal())).text).toBe("{}");
    expect(server.connections()).toBe(5);
  }, 30_000);

  test("behavior: chunked body split across writes, interim 100 reply, UTF-8 split inside a character", async () => {
    const text = Buffer.from('{"s":"h€llo"}');
    using server = rawServer(() => [
      "HTTP/1.1 100 Continue\r\n\r\n",
      "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
      Buffer.concat([Buffer.from("8\r\n"), text.subarray(0, 8)]),
      Buffer.concat([
        Buffer.from(`\r\n${(text.length - 8).toString(16)}\r\n`),
        text.subarray(8),
        Buffer.from("\r\n0\r\n\r\n"),
      ]),
    ]);
    const post = createHttpClient();
    const reply = await post(`${server.url}/x`, JSON_TYPE, "{}", signal());
    expect(reply.text).toBe('{"s":"h€llo"}');
    expect((await post(`${server.url}/x`, JSON_TYPE, "{}", signal())).text).toBe('{"s":"h€llo"}');
    expect(server.connections()).toBe(1);
  });

  test("behavior: a large reply arriving in many reads", async () => {
    const big = JSON.stringify({ data: "x".repeat(1_000_000) });
    using server = rawServer(() => [
      `HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: ${big.length}\r\n\r\n`,
      big.slice(0, 300_000),
      big.slice(300_000),
    ]);
    const reply = await createHttpClient()(`${server.url}/x`, JSON_TYPE, "{}", signal());
    expect(reply.text).toBe(big);
  });

  test("behavior: a body without length runs until the server closes", async () => {
    using server = rawServer(() => [
      "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n",
      '{"c":',
      "1}",
      END,
    ]);
    const post = createHttpClient();
    for (let i = 0; i < 2; i++) {
      expect(await post(`${server.url}/x`, JSON_TYPE, "{}", signal())).toEqual({
        status: 200,
        contentType: "application/json",
        text: '{"c":1}',
      });
    }
    expect(server.connections()).toBe(2);
  });

  test("behavior: gzip decoded and an error status kept", async () => {
    const gz = gzipSync('{"z":1}');
    using server = rawServer(() => [
      `HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\nContent-Length: ${gz.length}\r\n\r\n`,
      gz,
    ]);
    expect(await createHttpClient()(`${server.url}/x`, JSON_TYPE, "{}", signal())).toEqual({
      status: 500,
      contentType: "application/json",
      text: '{"z":1}',
    });
  });

  test("behavior: redirects are followed as fetch does (307 repeats the POST)", async () => {
    using target = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      fetch: async (req) => Response.json({ method: req.method, body: await req.text() }),
    });
    using server = rawServer(() => [
      `HTTP/1.1 307 Temporary Redirect\r\nLocation: http://127.0.0.1:${target.port}/there\r\nContent-Length: 0\r\n\r\n`,
    ]);
    const reply = await createHttpClient()(`${server.url}/x`, JSON_TYPE, '{"p":1}', signal());
    expect(JSON.parse(reply.text)).toEqual({ method: "POST", body: '{"p":1}' });
  });

  test("error: refused connection, abort while waiting, malformed reply", async () => {
    const post = createHttpClient();
    await expect(post("http://127.0.0.1:1/x", JSON_TYPE, "{}", signal())).rejects.toBeDefined();

    using silent = rawServer(() => []);
    const controller = new AbortController();
    const pending = post(`${silent.url}/x`, JSON_TYPE, "{}", controller.signal);
    await Bun.sleep(20);
    const reason = new DOMException("timed out", "TimeoutError");
    controller.abort(reason);
    await expect(pending).rejects.toBe(reason);

    using broken = rawServer(() => ["SMTP ready\r\n\r\n"]);
    await expect(post(`${broken.url}/x`, JSON_TYPE, "{}", signal())).rejects.toThrow(
      "malformed HTTP status line",
    );
  });
});

describe("createHttpClient: deadlines, reuse, retries and caps", () => {
  test("error: the abort ends a connect to a host that drops SYNs (not the kernel's ~127 s)", async () => {
    await using hole = await startBlackhole();
    const post = createHttpClient();
    const controller = new AbortController();
    const reason = new DOMException("timed out", "TimeoutError");
    const pending = post(`${hole.url}/x`, JSON_TYPE, "{}", controller.signal);
    setTimeout(() => controller.abort(reason), 100);
    // The deadline is 100 ms; anything under 15 s is the abort working, the old code waited for the kernel.
    await expect(within(15_000, pending)).rejects.toBe(reason);
    // The aborted connect gave its pool slot back: a call already aborted fails at once, not at the cap.
    const aborted = AbortSignal.abort(reason);
    await expect(within(15_000, post(`${hole.url}/x`, JSON_TYPE, "{}", aborted))).rejects.toBe(reason);
  });

  test("behavior: after an early reply (413) with the request still unsent, the next call gets a new connection", async () => {
    // A keep-alive server with a body limit: it answers 413 as soon as it sees the head, stops reading for a
    // moment (so the client is still writing the body), then reads and discards the rest and serves on.
    const LIMIT = 1024;
    let connections = 0;
    using server = Bun.listen<{ text: string; discard: number }>({
      hostname: "127.0.0.1",
      port: 0,
      socket: {
        open(socket) {
          connections++;
          socket.data = { text: "", discard: 0 };
        },
        data(socket, chunk) {
          let bytes = chunk;
          if (socket.data.discard > 0) {
            const skipped = Math.min(socket.data.discard, bytes.length);
            socket.data.discard -= skipped;
            bytes = bytes.subarray(skipped);
          }
          socket.data.text += bytes.toString("latin1");
          const headEnd = socket.data.text.indexOf("\r\n\r\n");
          if (headEnd < 0) return;
          const length = Number(/content-length: (\d+)/i.exec(socket.data.text)?.[1] ?? 0);
          const bodyHere = socket.data.text.length - headEnd - 4;
          if (length > LIMIT) {
            socket.data.discard = length - bodyHere;
            socket.data.text = "";
            socket.pause();
            socket.write("HTTP/1.1 413 Payload Too Large\r\nContent-Length: 0\r\n\r\n");
            setTimeout(() => socket.resume(), 200);
            return;
          }
          if (bodyHere < length) return;
          socket.data.text = "";
          socket.write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
        },
      },
    });
    const url = `http://127.0.0.1:${server.port}/x`;
    const post = createHttpClient();
    // Larger than the loopback socket buffers, so the write is still going on when the 413 arrives.
    const big = JSON.stringify({ data: "x".repeat(32 * 1024 * 1024) });
    expect((await within(15_000, post(url, JSON_TYPE, big, signal()))).status).toBe(413);
    const next = await within(15_000, post(url, JSON_TYPE, "{}", signal()));
    expect(next).toEqual({ status: 200, contentType: "", text: "ok" });
    expect(connections).toBe(2);
  });

  test("behavior: a POST written whole is not sent again when the connection then closes (container killed)", async () => {
    // The second request reaches the server whole, which then dies without a reply (an OOM kill).
    using server = rawServer((_, index) =>
      index === 1 ? "close" : ["HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"],
    );
    const post = createHttpClient();
    expect((await post(`${server.url}/x`, JSON_TYPE, '{"n":1}', signal())).text).toBe("ok");
    await expect(post(`${server.url}/x`, JSON_TYPE, '{"n":2}', signal())).rejects.toThrow(
      "closed the connection without replying",
    );
    // Fetch does the same: the input ran once. The old client sent it again on a new connection.
    expect(server.requests.length).toBe(2);
  });

  test("behavior: a 16 MiB reply in 64-byte chunks is parsed as it arrives, not again from byte 0 per packet", async () => {
    const payload = Buffer.alloc(16 * 1024 * 1024, "y");
    const parts: Buffer[] = [
      Buffer.from("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n"),
    ];
    for (let at = 0; at < payload.length; at += 64) {
      parts.push(Buffer.from("40\r\n"), payload.subarray(at, at + 64), Buffer.from("\r\n"));
    }
    parts.push(Buffer.from("0\r\n\r\n"));
    // Sent in 8 KiB packets, each read on its own (client and server share this event loop).
    const reply8k: Buffer[] = [];
    const all = Buffer.concat(parts);
    for (let at = 0; at < all.length; at += 8192) reply8k.push(all.subarray(at, at + 8192));
    using server = rawServer(() => reply8k, { gapMs: 0 });
    // Linear parsing takes about a second here even on a loaded machine; re-parsing from byte 0 took ~30 s.
    const reply = await within(10_000, createHttpClient()(`${server.url}/x`, JSON_TYPE, "{}", signal()));
    expect(reply.text.length).toBe(payload.length);
    expect(reply.text === payload.toString()).toBe(true);
  });

  test("error: a reply over the header or body cap fails clearly and the next call still works", async () => {
    const limits = { maxHeadBytes: 1024, maxBodyBytes: 4096 };
    const ok = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    const cases: [string, (string | Buffer)[], string][] = [
      [
        "head",
        [`HTTP/1.1 200 OK\r\nX-Big: ${"h".repeat(2000)}\r\nContent-Length: 2\r\n\r\nok`],
        "header is larger",
      ],
      ["declared", ["HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n", "z".repeat(5000)], "larger than the"],
      [
        "chunked",
        ["HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", `800\r\n${"c".repeat(2048)}\r\n`.repeat(3)],
        "larger than the",
      ],
      [
        "until close",
        ["HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n", "u".repeat(5000), END],
        "larger than the",
      ],
      [
        "decoded",
        (() => {
          const bomb = gzipSync(Buffer.alloc(100_000, "b"));
          return [
            `HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: ${bomb.length}\r\n\r\n`,
            bomb,
          ];
        })(),
        "decoded reply body is larger",
      ],
    ];
    for (const [name, reply, message] of cases) {
      using server = rawServer((_, index) => (index === 0 ? reply : [ok]));
      const post = createHttpClient(fetch, limits);
      await expect(post(`${server.url}/x`, JSON_TYPE, "{}", signal()), name).rejects.toThrow(message);
      expect((await post(`${server.url}/x`, JSON_TYPE, "{}", signal())).text, name).toBe("ok");
    }
  });
});
