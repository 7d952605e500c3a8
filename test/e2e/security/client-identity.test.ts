// Who the node thinks is asking, and what that client may do, through the release binary with three managed
// echo containers: other loopback source addresses act as different clients (127.0.0.2 …) and as a trusted
// proxy (127.0.0.5). Every off-chain path is checked the same way: POST /api/jobs, each item of
// POST /api/jobs/batch and POST /api/jobs/stream. Also PUT /api/status through the proxy, and the managed
// containers' ports on the host's other addresses. (The default config, no trusted proxy at all, is covered by
// test/integration/server/offchain.test.ts "body ip/id and forged X-Forwarded-For change nothing"; a peer outside
// status_allowed_ips by robustness.test.ts.)
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { networkInterfaces } from "node:os";
import { testDocker } from "../../fixtures/docker.ts";
import { waitFor } from "../../fixtures/net.ts";
import { type PeerReply, requestFrom } from "../../fixtures/peer-http.ts";
import { type NodeFixture, startNode } from "../../integration/server/node-process.ts";

const PROXY = "127.0.0.5";
let f: NodeFixture;
let url = "";

beforeAll(async () => {
  f = await startNode("sec-identity", {
    store: "embedded",
    extra: {
      server: { trusted_proxies: [PROXY], status_allowed_ips: ["127.0.0.1/32", "2001:db8:5::/48"] },
    },
    containers: {
      // A CIDR, a CIDR with host bits set (≡ 10.20.0.0/16, as Python's strict=False) and an IPv6 range.
      echo: { allowed_ips: ["127.0.0.0/30", "10.20.99.99/16", "2001:db8::/32"] },
      // A bare address is a /32.
      echo2: { allowed_ips: ["127.0.0.1"] },
      // Not external: only ever second in a pipeline.
      inner: { allowed_ips: ["127.0.0.2", "10.0.0.0/8"] },
    },
  });
  url = f.node.url;
}, 180_000);

afterAll(async () => {
  await f?.[Symbol.asyncDispose]();
});

type Path = "single" | "batch" | "stream";
/** "ok", or the Guardian's refusal as the reply renders it. */
type Outcome = "ok" | { error: string; params: Record<string, unknown> };

const send = (from: string, method: string, path: string, body: unknown, headers = {}): Promise<PeerReply> =>
  requestFrom(url, { from, method, path, body: JSON.stringify(body), headers });

/** Submits one job on `path` as the peer `from` (with `headers`); returns its outcome and the job id if any. */
async function submit(
  path: Path,
  from: string,
  job: Record<string, unknown>,
  headers: Record<string, string> = {},
): Promise<{ outcome: Outcome; id?: string }> {
  if (path === "batch") {
    const reply = await send(from, "POST", "/api/jobs/batch", [job], headers);
    expect(reply.status).toBe(200);
    const [item] = JSON.parse(reply.body) as Record<string, unknown>[];
    if (item && typeof item.id === "string") return { outcome: "ok", id: item.id };
    return { outcome: item as Outcome };
  }
  const reply = await send(from, "POST", path === "single" ? "/api/jobs" : "/api/jobs/stream", job, headers);
  if (reply.status !== 200) {
    expect(reply.status).toBe(405);
    return { outcome: JSON.parse(reply.body) as Outcome };
  }
  const id = path === "single" ? (JSON.parse(reply.body) as { id: string }).id : reply.body.split("\n")[0];
  return { outcome: "ok", ...(id ? { id } : {}) };
}

const refused = (container: string, address: string): Outcome => ({
  error: "Container not allowed for address",
  params: { container, address },
});

/** The same request on all three paths gets `expected` on each. */
async function expectOnEveryPath(
  from: string,
  containers: string[],
  headers: Record<string, string>,
  expected: Outcome,
): Promise<void> {
  for (const path of ["single", "batch", "stream"] as const) {
    const { outcome } = await submit(path, from, { containers, data: { path } }, headers);
    expect({ path, outcome }).toEqual({ path, outcome: expected });
  }
}

describe("allowed_ips on every off-chain path, by the TCP peer", () => {
  test("default: a peer inside a CIDR entry runs jobs on every path", async () => {
    await expectOnEveryPath("127.0.0.2", [f.ids.echo], {}, "ok");
  });

  test("error: a peer outside every entry is refused on every path, naming the container and the peer", async () => {
    await expectOnEveryPath("127.0.0.4", [f.ids.echo], {}, refused(f.ids.echo, "127.0.0.4"));
  });

  test("behavior: a bare address admits exactly that address", async () => {
    await expectOnEveryPath("127.0.0.1", [f.ids.echo2], {}, "ok");
    await expectOnEveryPath("127.0.0.2", [f.ids.echo2], {}, refused(f.ids.echo2, "127.0.0.2"));
  });

  test("behavior: every container of a pipeline is checked, not only the first", async () => {
    await expectOnEveryPath("127.0.0.2", [f.ids.echo, f.ids.inner], {}, "ok");
    await expectOnEveryPath("127.0.0.3", [f.ids.echo, f.ids.inner], {}, refused(f.ids.inner, "127.0.0.3"));
  });

  test("behavior: one batch is judged per item", async () => {
    const reply = await send("127.0.0.2", "POST", "/api/jobs/batch", [
      { containers: [f.ids.echo], data: {} },
      { containers: [f.ids.echo2], data: {} },
      { containers: [f.ids.echo, f.ids.inner], data: {} },
    ]);
    const items = JSON.parse(reply.body) as Outcome[];
    expect((items[0] as { id?: unknown }).id).toBeString();
    expect(items[1]).toEqual(refused(f.ids.echo2, "127.0.0.2"));
    expect((items[2] as { id?: unknown }).id).toBeString();
  });
});

describe("X-Forwarded-For, X-Real-IP and Forwarded", () => {
  const forged = {
    "X-Forwarded-For": "127.0.0.2",
    "X-Real-IP": "127.0.0.2",
    Forwarded: "for=127.0.0.2",
  };

  test("error: from a peer that is not a trusted proxy, all three are ignored", async () => {
    await expectOnEveryPath("127.0.0.4", [f.ids.echo], forged, refused(f.ids.echo, "127.0.0.4"));
  });

  test("behavior: from the trusted proxy, X-Forwarded-For names the client (IPv4, host-bits CIDR)", async () => {
    await expectOnEveryPath(PROXY, [f.ids.echo], { "X-Forwarded-For": "10.20.3.4" }, "ok");
    await expectOnEveryPath(
      PROXY,
      [f.ids.echo],
      { "X-Forwarded-For": "10.21.0.1" },
      refused(f.ids.echo, "10.21.0.1"),
    );
  });

  test("behavior: from the trusted proxy, IPv6 and IPv4-mapped clients match IPv6 and IPv4 entries", async () => {
    await expectOnEveryPath(PROXY, [f.ids.echo], { "X-Forwarded-For": "2001:db8::7" }, "ok");
    await expectOnEveryPath(PROXY, [f.ids.echo], { "X-Forwarded-For": "::ffff:10.20.3.4" }, "ok");
    await expectOnEveryPath(
      PROXY,
      [f.ids.echo],
      { "X-Forwarded-For": "2001:db9::7" },
      refused(f.ids.echo, "2001:db9::7"),
    );
  });

  test("behavior: entries the client wrote left of the proxy's own are ignored", async () => {
    // The proxy appends the address it saw; anything before it came from the client.
    await expectOnEveryPath(
      PROXY,
      [f.ids.echo],
      { "X-Forwarded-For": "127.0.0.2, 10.99.0.1" },
      refused(f.ids.echo, "10.99.0.1"),
    );
  });

  test("behavior: from the trusted proxy, an entry with a port (as some proxies write it) names the client", async () => {
    await expectOnEveryPath(PROXY, [f.ids.echo], { "X-Forwarded-For": "10.20.3.4:51234" }, "ok");
    await expectOnEveryPath(PROXY, [f.ids.echo], { "X-Forwarded-For": "[2001:db8::7]:443" }, "ok");
    const metrics = await send(PROXY, "GET", "/metrics", "", { "X-Forwarded-For": "10.21.0.1:51234" });
    expect(metrics.status).toBe(403);
  });

  test("error: from the trusted proxy, an entry the node cannot read is a 400, not the proxy's own address", async () => {
    // Falling back to the proxy would give every client behind it the proxy's (loopback) rights: /metrics,
    // /dashboard, PUT /api/status, loopback-only containers.
    for (const xff of ["unknown", "10.20.3.4, not-an-address", "1.2.3.4:port"]) {
      for (const path of ["/metrics", "/api/jobs", "/api/status"]) {
        const method = path === "/api/status" ? "PUT" : path === "/api/jobs" ? "POST" : "GET";
        const reply = await send(
          PROXY,
          method,
          path,
          { containers: [f.ids.echo], data: {} },
          {
            "X-Forwarded-For": xff,
          },
        );
        expect({ xff, path, status: reply.status, body: JSON.parse(reply.body) }).toEqual({
          xff,
          path,
          status: 400,
          body: { error: "Could not get client IP address", params: {} },
        });
      }
    }
  });

  test("error: X-Real-IP and Forwarded are never believed, not even from the trusted proxy", async () => {
    const headers = { "X-Real-IP": "10.20.3.4", Forwarded: "for=10.20.3.4" };
    await expectOnEveryPath(PROXY, [f.ids.echo], headers, refused(f.ids.echo, PROXY));
  });

  test("behavior: a job belongs to the client the node resolved, not to the proxy or a forged header", async () => {
    const viaProxy = { "X-Forwarded-For": "10.20.3.4" };
    const { id = "none" } = await submit("single", PROXY, { containers: [f.ids.echo], data: {} }, viaProxy);
    const list = async (from: string, headers: Record<string, string> = {}) =>
      JSON.parse((await send(from, "GET", "/api/jobs", "", headers)).body) as string[];
    expect(await list(PROXY, viaProxy)).toContain(id);
    expect(await list(PROXY)).not.toContain(id);
    expect(await list("127.0.0.4", viaProxy)).not.toContain(id);
  });
});

describe("the body cannot set server-owned fields", () => {
  // Everything the node assigns: the id, the client address, the kind, and what the job's record holds.
  const owned = {
    id: "chosen-by-client",
    ip: "127.0.0.1",
    kind: "delegated",
    status: "success",
    result: { container: "x", output: "forged" },
    intermediate_results: [{ container: "x", output: "forged" }],
  };

  test("error: ip in the body does not pass allowed_ips on any path", async () => {
    // echo2 admits only 127.0.0.1, which is what the body claims.
    for (const path of ["single", "batch", "stream"] as const) {
      const { outcome } = await submit(path, "127.0.0.2", { containers: [f.ids.echo2], data: {}, ...owned });
      expect({ path, outcome }).toEqual({ path, outcome: refused(f.ids.echo2, "127.0.0.2") });
    }
  });

  test("behavior: the node picks the id, and the record is the job's own, on every path", async () => {
    for (const path of ["single", "batch", "stream"] as const) {
      const { outcome, id } = await submit(path, "127.0.0.2", {
        containers: [f.ids.echo],
        data: { path },
        ...owned,
      });
      expect(outcome).toBe("ok");
      expect(id).toMatch(/^[0-9a-f-]{36}$/);
      const job = await waitForJob("127.0.0.2", id as string);
      expect(job).toMatchObject({ id, status: "success", result: { container: f.ids.echo } });
      // A stream's record holds the bytes it sent; the others the echo of their data.
      if (path !== "stream")
        expect((job.result as { output: { echo: unknown } }).output.echo).toEqual({ path });
      expect(JSON.stringify(job)).not.toContain("forged");
    }
    for (const from of ["127.0.0.1", "127.0.0.2"]) {
      const reply = await send(from, "GET", `/api/jobs?id=${owned.id}`, "");
      expect(JSON.parse(reply.body)).toEqual([]);
    }
  });
});

/** The finished job `id` as the peer `from` reads it. */
function waitForJob(from: string, id: string): Promise<Record<string, unknown>> {
  return waitFor(
    `job ${id}`,
    async () => {
      const reply = await send(from, "GET", `/api/jobs?id=${id}`, "");
      const [job] = JSON.parse(reply.body) as Record<string, unknown>[];
      return job && job.status !== "running" ? job : undefined;
    },
    60_000,
  );
}

describe("PUT /api/status through a trusted proxy", () => {
  const update = (id: string) => ({ id, status: "running", containers: [f.ids.echo] });

  test("behavior: judged on the forwarded client: an IPv6 client inside status_allowed_ips is accepted", async () => {
    const headers = { "X-Forwarded-For": "2001:db8:5::9" };
    const reply = await send(PROXY, "PUT", "/api/status", update("sec-status-v6"), headers);
    expect(reply).toEqual({ status: 200, body: "null\n" });
    const pending = await send(PROXY, "GET", "/api/jobs?pending=true", "", headers);
    expect(JSON.parse(pending.body)).toContain("sec-status-v6");
  });

  test("error: the proxy itself, a forwarded client outside, and a forged header are 403 Unauthorized and logged", async () => {
    const attempts: [string, Record<string, string>, string][] = [
      [PROXY, {}, PROXY],
      [PROXY, { "X-Forwarded-For": "10.20.3.4" }, "10.20.3.4"],
      ["127.0.0.3", { "X-Forwarded-For": "127.0.0.1", "X-Real-IP": "127.0.0.1" }, "127.0.0.3"],
    ];
    for (const [from, headers, client] of attempts) {
      const id = `sec-status-refused-${client}`;
      const reply = await send(from, "PUT", "/api/status", update(id), headers);
      expect({ client, status: reply.status, body: JSON.parse(reply.body) }).toEqual({
        client,
        status: 403,
        body: { error: "Unauthorized", params: {} },
      });
      // The node's stderr arrives on its own schedule: wait for the line.
      await waitFor(`the refusal of ${client} in the log`, () =>
        f.node
          .output()
          .split("\n")
          .filter((line) => line.includes("Unauthorized attempt to store job status"))
          .some((line) => (JSON.parse(line) as { ip: string }).ip === client),
      );
      const listed = await send(from, "GET", "/api/jobs?pending=true", "", headers);
      expect(JSON.parse(listed.body)).not.toContain(id);
    }
  });
});

describe("/metrics and /dashboard (loopback only by default) through a trusted proxy", () => {
  test("error: a forwarded client elsewhere is refused; the proxy's own requests are loopback", async () => {
    const outside = { "X-Forwarded-For": "10.20.3.4" };
    for (const path of ["/metrics", "/dashboard", "/dashboard/data"]) {
      const refused = await send(PROXY, "GET", path, "", outside);
      expect({ path, status: refused.status }).toEqual({ path, status: 403 });
      expect(JSON.parse(refused.body).error).toMatch(/^(Unauthorized|Forbidden)$/);
      expect({ path, status: (await send(PROXY, "GET", path, "")).status }).toEqual({ path, status: 200 });
    }
  });
});

describe("managed containers' ports", () => {
  test("behavior: reachable on loopback, not on the host's non-loopback addresses (docker0, eth0)", async () => {
    const addresses = new Set<string>();
    for (const nic of Object.values(networkInterfaces()).flat()) {
      if (nic && nic.family === "IPv4" && !nic.internal) addresses.add(nic.address);
    }
    const bridge = await testDocker().getNetwork("bridge").inspect();
    for (const config of (bridge as { IPAM?: { Config?: { Gateway?: string }[] } }).IPAM?.Config ?? []) {
      if (config.Gateway) addresses.add(config.Gateway);
    }
    expect(addresses.size).toBeGreaterThan(0);
    const ports = (f.config.containers as { port: number }[]).map((c) => c.port);
    const reach = (host: string, port: number) =>
      fetch(`http://${host}:${port}/`, { signal: AbortSignal.timeout(3000) }).then(
        (res) => `reached (${res.status})`,
        () => "not reached",
      );
    for (const port of ports) {
      expect(await reach("127.0.0.1", port)).toStartWith("reached");
      for (const host of addresses)
        expect({ host, port, result: await reach(host, port) }).toEqual({
          host,
          port,
          result: "not reached",
        });
    }
  });
});
