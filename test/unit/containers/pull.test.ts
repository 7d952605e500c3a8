// Image pulls through a stand-in Docker engine on a unix socket (injected at the client edge): this machine has
// no registry, so the credential header, the wait for the real end of a pull, progress and the registry's
// error events are checked against an engine that behaves like one with a registry.
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Docker from "dockerode";
import { StartupError } from "../../../src/lib/errors.ts";
import { addLogSink, createLog, type LogRecord } from "../../../src/lib/log.ts";
import { authFor, pullImages, registryOf, withTag } from "../../../src/orchestration/docker/pull.ts";

interface FakeImage {
  /** Progress events the engine streams for a pull of this image, one every few ms. */
  events: Record<string, unknown>[];
  /** Present in the engine's local store. */
  local: boolean;
}

function fakeEngine(images: Record<string, FakeImage>) {
  const socketPath = join(mkdtempSync(join(tmpdir(), "fake-docker-")), "docker.sock");
  const pulls: { ref: string; auth: unknown }[] = [];
  const finished = new Set<string>();
  const server = Bun.serve({
    unix: socketPath,
    fetch(req) {
      const url = new URL(req.url, "http://docker");
      if (req.method === "POST" && url.pathname.endsWith("/images/create")) {
        const ref = `${url.searchParams.get("fromImage")}:${url.searchParams.get("tag")}`;
        const header = req.headers.get("x-registry-auth");
        const auth = header
          ? JSON.parse(Buffer.from(header.replace(/-/g, "+").replace(/_/g, "/"), "base64").toString())
          : undefined;
        pulls.push({ ref, auth });
        const image = images[ref];
        if (!image) return Response.json({ message: `pull access denied for ${ref}` }, { status: 500 });
        const body = new ReadableStream<Uint8Array>({
          async start(controller) {
            for (const event of image.events) {
              controller.enqueue(new TextEncoder().encode(`${JSON.stringify(event)}\r\n`));
              await Bun.sleep(15);
            }
            finished.add(ref);
            controller.close();
          },
        });
        return new Response(body, { headers: { "content-type": "application/json" } });
      }
      const inspect = /\/images\/(.+)\/json$/.exec(url.pathname);
      if (req.method === "GET" && inspect) {
        const ref = decodeURIComponent(inspect[1] as string);
        const image = images[ref];
        if (image?.local || (image && finished.has(ref) && !image.events.some((e) => e.error)))
          return Response.json({ Id: `sha256:${Buffer.from(ref).toString("hex").slice(0, 12)}` });
        return Response.json({ message: `No such image: ${ref}` }, { status: 404 });
      }
      return Response.json({ message: "not implemented" }, { status: 404 });
    },
  });
  return { server, pulls, finished, docker: new Docker({ socketPath }) };
}

const layerEvents = (n: number) => [
  { status: "Pulling from library/x", id: "latest" },
  ...Array.from({ length: n }, (_, i) => ({
    status: "Downloading",
    id: `layer${i}`,
    progressDetail: { current: 500, total: 1000 },
  })),
  ...Array.from({ length: n }, (_, i) => ({ status: "Pull complete", id: `layer${i}` })),
  { status: "Digest: sha256:0123" },
  { status: "Status: Downloaded newer image for x:latest" },
];

const logs: LogRecord[] = [];
const removeSink = addLogSink((record) => {
  if (record.component === "pull-test") logs.push(record);
});
afterAll(() => removeSink());
const log = createLog("pull-test");

describe("pullImages", () => {
  test("default", async () => {
    const engine = fakeEngine({
      "acme/model:latest": { events: layerEvents(3), local: false },
      "registry.example.com/team/svc:2": { events: layerEvents(1), local: false },
    });
    try {
      const out = await pullImages(
        engine.docker,
        ["acme/model", "registry.example.com/team/svc:2", "acme/model"],
        {
          log,
          credentials: { username: "hub-user", password: "hub-pass-123", server_address: "" },
        },
      );
      // Resolved only after the engine finished streaming (dockerode's pull() alone resolves at the first byte).
      expect([...engine.finished].sort()).toEqual(["acme/model:latest", "registry.example.com/team/svc:2"]);
      expect(out.get("acme/model")).toMatchObject({ image: "acme/model", source: "registry" });
      // Each image pulled once; Docker Hub credentials sent to Docker Hub only.
      expect(engine.pulls).toHaveLength(2);
      expect(engine.pulls.find((p) => p.ref === "acme/model:latest")?.auth).toEqual({
        username: "hub-user",
        password: "hub-pass-123",
        serveraddress: "https://index.docker.io/v1/",
      });
      expect(engine.pulls.find((p) => p.ref === "registry.example.com/team/svc:2")?.auth).toBeUndefined();
    } finally {
      engine.server.stop(true);
    }
  });

  test("behavior: progress is a redrawn line per image on a terminal, log lines elsewhere", async () => {
    const engine = fakeEngine({ "acme/a:latest": { events: layerEvents(4), local: false } });
    try {
      const written: string[] = [];
      await pullImages(engine.docker, ["acme/a"], {
        log,
        credentials: null,
        progress: { isTTY: true, write: (text) => written.push(text) },
      });
      const screen = written.join("");
      expect(screen).toContain("acme/a: pulled");
      expect(screen).toContain("\x1b[2K");

      await pullImages(engine.docker, ["acme/a"], {
        log,
        credentials: null,
        progress: { isTTY: false, write: () => {} },
        logEveryMs: 0,
      });
      const line = logs.findLast((r) => r.msg === "Pulling image" && r.image === "acme/a");
      expect(line).toMatchObject({ layers: 4 });
      expect(logs.some((r) => r.msg === "Pulled image acme/a")).toBe(true);
    } finally {
      engine.server.stop(true);
    }
  });

  test("behavior: a registry error falls back to the local image", async () => {
    const engine = fakeEngine({
      "acme/b:latest": {
        events: [
          { status: "Pulling" },
          { errorDetail: { message: "manifest unknown" }, error: "manifest unknown" },
        ],
        local: true,
      },
    });
    try {
      const out = await pullImages(engine.docker, ["acme/b"], { log, credentials: null });
      expect(out.get("acme/b")).toMatchObject({ source: "local", pullError: "manifest unknown" });
      expect(logs.find((r) => r.msg === "Image acme/b already exists locally")?.pull_error).toBe(
        "manifest unknown",
      );
    } finally {
      engine.server.stop(true);
    }
  });

  test("error: an image neither pullable nor local names the image and the registry error", async () => {
    const engine = fakeEngine({
      "acme/c:latest": {
        events: [{ errorDetail: { message: "unauthorized: bad credentials" }, error: "unauthorized" }],
        local: false,
      },
    });
    try {
      const error = await pullImages(engine.docker, ["acme/c", "acme/d:1"], { log, credentials: null }).catch(
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(StartupError);
      expect((error as StartupError).message).toBe(
        'Could not pull all images: image "acme/c": pull failed (unauthorized: bad credentials) and no local copy; ' +
          'image "acme/d:1": pull failed (pull access denied for acme/d:1) and no local copy',
      );
    } finally {
      engine.server.stop(true);
    }
  });
});

describe("registry helpers", () => {
  test("default", () => {
    expect(registryOf("ubuntu")).toBe("docker.io");
    expect(registryOf("ritualnetwork/hello-world-infernet:1.0.0")).toBe("docker.io");
    expect(registryOf("ghcr.io/org/img:1")).toBe("ghcr.io");
    expect(registryOf("localhost:5000/img")).toBe("localhost:5000");
    expect(withTag("ubuntu")).toBe("ubuntu:latest");
    expect(withTag("localhost:5000/img")).toBe("localhost:5000/img:latest");
    expect(withTag("img@sha256:abc")).toBe("img@sha256:abc");
  });

  test("behavior: credentials apply to their registry only", () => {
    const ghcr = { username: "u", password: "p", server_address: "https://ghcr.io" };
    expect(authFor("ghcr.io/org/img", ghcr)).toEqual({
      username: "u",
      password: "p",
      serveraddress: "ghcr.io",
    });
    expect(authFor("ubuntu", ghcr)).toBeUndefined();
    const hub = { username: "u", password: "p", server_address: "https://index.docker.io/v1/" };
    expect(authFor("ubuntu", hub)?.serveraddress).toBe("https://index.docker.io/v1/");
    expect(authFor("ubuntu", null)).toBeUndefined();
  });
});
