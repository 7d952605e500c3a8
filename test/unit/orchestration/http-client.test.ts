import { afterAll, describe, expect, test } from "bun:test";
import { gzipSync } from "node:zlib";
import { createHttpClient } from "../../../src/orchestration/http-client.ts";

/** In a reply: the server closes the connection here. */
const END = "<end>";

/** A raw TCP server answering each request with what `reply(requestText, index)` returns (written in parts). */
function rawServer(reply: (request: string, index: number) => (string | Buffer)[] | "close") {
  let index = 0;
  let connections = 0;
  const requests: string[] = [];
  const listener = Bun.listen<{ buffer: string }>({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      open(socket) {
        connections++;
        socket.data = { buffer: "" };
      },
      async data(socket, chunk) {
        socket.data.buffer += chunk.toString("latin1");
        const headEnd = socket.data.buffer.indexOf("\r\n\r\n");
        if (headEnd < 0) return;
        const length = Number(/content-length: (\d+)/i.exec(socket.data.buffer)?.[1] ?? 0);
        if (socket.data.buffer.length < headEnd + 4 + length) return;
        const request = socket.data.buffer;
        socket.data.buffer = "";
        requests.push(request);
        const parts = reply(request, index++);
        if (parts === "close") {
          socket.end();
          return;
        }
        for (const part of parts) {
          if (part === END) socket.end();
          else socket.write(part);
          await Bun.sleep(2);
        }
      },
    },
  });
  return {
    url: `http://127.0.0.1:${listener.port}`,
    requests,
    connections: () => connections,
    stop: () => listener.stop(true),
  };
}

const signal = () => new AbortController().signal;
const JSON_TYPE = { "Content-Type": "application/json" };
const servers: { stop(): void }[] = [];
afterAll(() => {
  for (const server of servers) server.stop();
});

describe("createHttpClient", () => {
  test("default: keep-alive reuse, Content-Length body, request head as fetch sends it", async () => {
    const server = rawServer(() => [
      'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{"ok":true}',
    ]);
    servers.push(server);
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

  test("behavior: chunked body split across writes, interim 100 reply, UTF-8 split inside a character", async () => {
    const text = Buffer.from('{"s":"h€llo"}');
    const server = rawServer(() => [
      "HTTP/1.1 100 Continue\r\n\r\n",
      "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
      Buffer.concat([Buffer.from("8\r\n"), text.subarray(0, 8)]),
      Buffer.concat([
        Buffer.from(`\r\n${(text.length - 8).toString(16)}\r\n`),
        text.subarray(8),
        Buffer.from("\r\n0\r\n\r\n"),
      ]),
    ]);
    servers.push(server);
    const post = createHttpClient();
    const reply = await post(`${server.url}/x`, JSON_TYPE, "{}", signal());
    expect(reply.text).toBe('{"s":"h€llo"}');
    expect((await post(`${server.url}/x`, JSON_TYPE, "{}", signal())).text).toBe('{"s":"h€llo"}');
    expect(server.connections()).toBe(1);
  });

  test("behavior: a large reply arriving in many reads", async () => {
    const big = JSON.stringify({ data: "x".repeat(1_000_000) });
    const server = rawServer(() => [
      `HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: ${big.length}\r\n\r\n`,
      big.slice(0, 300_000),
      big.slice(300_000),
    ]);
    servers.push(server);
    const reply = await createHttpClient()(`${server.url}/x`, JSON_TYPE, "{}", signal());
    expect(reply.text).toBe(big);
  });

  test("behavior: a body without length runs until the server closes", async () => {
    const server = rawServer(() => [
      "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n",
      '{"c":',
      "1}",
      END,
    ]);
    servers.push(server);
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

  test("behavior: gzip decoded and status kept; stale keep-alive connection retried once", async () => {
    const gz = gzipSync('{"z":1}');
    let dropNext = false;
    const server = rawServer(() => {
      if (dropNext) {
        dropNext = false;
        return "close";
      }
      return [
        `HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\nContent-Length: ${gz.length}\r\n\r\n`,
        gz,
      ];
    });
    servers.push(server);
    const post = createHttpClient();
    expect(await post(`${server.url}/x`, JSON_TYPE, "{}", signal())).toEqual({
      status: 500,
      contentType: "application/json",
      text: '{"z":1}',
    });
    dropNext = true;
    expect((await post(`${server.url}/x`, JSON_TYPE, "{}", signal())).text).toBe('{"z":1}');
    expect(server.connections()).toBe(2);
  });

  test("behavior: redirects are followed as fetch does (307 repeats the POST)", async () => {
    const target = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      fetch: async (req) => Response.json({ method: req.method, body: await req.text() }),
    });
    servers.push({ stop: () => target.stop(true) });
    const server = rawServer(() => [
      `HTTP/1.1 307 Temporary Redirect\r\nLocation: http://127.0.0.1:${target.port}/there\r\nContent-Length: 0\r\n\r\n`,
    ]);
    servers.push(server);
    const reply = await createHttpClient()(`${server.url}/x`, JSON_TYPE, '{"p":1}', signal());
    expect(JSON.parse(reply.text)).toEqual({ method: "POST", body: '{"p":1}' });
  });

  test("error: refused connection, abort while waiting, malformed reply", async () => {
    const post = createHttpClient();
    await expect(post("http://127.0.0.1:1/x", JSON_TYPE, "{}", signal())).rejects.toBeDefined();

    const silent = rawServer(() => []);
    servers.push(silent);
    const controller = new AbortController();
    const pending = post(`${silent.url}/x`, JSON_TYPE, "{}", controller.signal);
    await Bun.sleep(20);
    const reason = new DOMException("timed out", "TimeoutError");
    controller.abort(reason);
    await expect(pending).rejects.toBe(reason);

    const broken = rawServer(() => ["SMTP ready\r\n\r\n"]);
    servers.push(broken);
    await expect(post(`${broken.url}/x`, JSON_TYPE, "{}", signal())).rejects.toThrow(
      "malformed HTTP status line",
    );
  });
});
