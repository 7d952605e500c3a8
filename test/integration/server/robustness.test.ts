// Hostile or unlucky conditions through the release binary, on a Redis-backed node: bodies nested too deep,
// PUT /api/status from a loopback address outside server.status_allowed_ips, and /info while Redis is down and
// after a managed container was removed from under the node. Only loopback addresses are used.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { testDocker } from "../../fixtures/docker.ts";
import { waitFor } from "../../fixtures/net.ts";
import { requestFrom as peerRequest } from "../../fixtures/peer-http.ts";
import { type PrivateRedis, startPrivateRedis } from "../../fixtures/redis.ts";
import { finishedJob, type NodeFixture, postJson, startNode } from "./node-process.ts";

let redis: PrivateRedis;
let f: NodeFixture;
let url = "";

beforeAll(async () => {
  redis = await startPrivateRedis();
  f = await startNode("robust", {
    store: "redis",
    redis,
    extra: { server: { status_allowed_ips: ["127.0.0.1/32"] } },
  });
  url = f.node.url;
}, 180_000);

afterAll(async () => {
  await f?.[Symbol.asyncDispose]();
  await redis?.[Symbol.asyncDispose]();
});

const update = (id: string) => JSON.stringify({ id, status: "running", containers: [f.ids.echo] });
const nested = (levels: number, open = "[", close = "]") => open.repeat(levels) + close.repeat(levels);

/** One request from `localAddress` (a loopback address), as the node's peer. */
const requestFrom = (localAddress: string, method: string, path: string, body: string) =>
  peerRequest(url, { from: localAddress, method, path, body });

describe("deeply nested bodies through the binary", () => {
  test("error: 100,000 levels are a 400 on every body route, and the node keeps serving", async () => {
    // Valid JSON a job accepts by shape (data is an object): before the depth cap it was stored and then made
    // the reply serializer overflow the stack (500) when the result was read back.
    const deepData = `${'{"a":'.repeat(100_000)}1${"}".repeat(100_000)}`;
    const job = `{"containers":["${f.ids.echo}"],"data":${deepData}}`;
    const expected = { error: "Invalid JSON body", params: { reason: "nested deeper than 512 levels" } };
    const replies = await Promise.all([
      postJson(`${url}/api/jobs`, job),
      postJson(`${url}/api/jobs`, `{"containers":["${f.ids.echo}"],"data":{"list":${nested(100_000)}}}`),
      postJson(`${url}/api/jobs/stream`, job),
      postJson(`${url}/api/jobs/batch`, `[${job}]`),
      fetch(`${url}/api/status`, {
        method: "PUT",
        body: `{"id":"deep","status":"running","containers":[],"data":${deepData}}`,
      }),
    ]);
    for (const res of replies) {
      expect(res.status).toBe(400);
      expect(await res.json()).toEqual(expected);
    }
    expect((await fetch(`${url}/health`)).status).toBe(200);
    const { id } = (await (
      await postJson(`${url}/api/jobs`, { containers: [f.ids.echo], data: { after: true } })
    ).json()) as { id: string };
    expect(await finishedJob(url, id)).toMatchObject({ status: "success" });
  });

  test("behavior: data nested 500 levels runs, and its result reads back", async () => {
    // data must be an object: {"a":{"a":…{"a":1}…}}, 500 objects deep.
    const data = `${'{"a":'.repeat(500)}1${"}".repeat(500)}`;
    const res = await postJson(`${url}/api/jobs`, `{"containers":["${f.ids.echo}"],"data":${data}}`);
    expect(res.status).toBe(200);
    const { id } = (await res.json()) as { id: string };
    const job = (await finishedJob(url, id)) as { status: string; result: { output: { echo: unknown } } };
    expect(job.status).toBe("success");
    expect(JSON.stringify(job.result.output.echo)).toBe(data);
  });
});

describe("PUT /api/status with server.status_allowed_ips [127.0.0.1/32]", () => {
  test("default: 127.0.0.1 is accepted", async () => {
    expect(await requestFrom("127.0.0.1", "PUT", "/api/status", update("from-allowed"))).toEqual({
      status: 200,
      body: "null\n",
    });
    expect(await (await fetch(`${url}/api/jobs?pending=true`)).json()).toContain("from-allowed");
  });

  test("error: 127.0.0.2 is refused with 403 Unauthorized and nothing is stored", async () => {
    const res = await requestFrom("127.0.0.2", "PUT", "/api/status", update("from-refused"));
    expect(res.status).toBe(403);
    expect(JSON.parse(res.body)).toEqual({ error: "Unauthorized", params: {} });
    const listed = await requestFrom("127.0.0.2", "GET", "/api/jobs", "");
    expect(JSON.parse(listed.body)).not.toContain("from-refused");
    // stderr reaches the test on its own schedule (through a pipe and a tee): wait for the line.
    await waitFor("the refusal in the node's output", () =>
      f.node.output().includes("Unauthorized attempt to store job status"),
    );
  });
});

describe("/info from memory", () => {
  interface Info {
    chain: { address: string; enabled: boolean };
    containers: { id: string; description: string; external: boolean; image: string }[];
    pending: { offchain: number; onchain: number };
    version: string;
  }
  /** Fetches /info and checks its shape; never throws, so no reply can be retried away by waitUntil. */
  const replies: { status: number; body: string }[] = [];
  const info = async (): Promise<Info | undefined> => {
    const res = await fetch(`${url}/info`);
    const reply = { status: res.status, body: await res.text() };
    replies.push(reply);
    return res.status === 200 ? (JSON.parse(reply.body) as Info) : undefined;
  };
  const expectShape = (body: Info) => {
    expect(Object.keys(body)).toEqual(["chain", "containers", "pending", "version"]);
    expect(body.chain).toEqual({ address: "", enabled: false });
    expect(body.version).toBe("1.4.0");
    expect(Object.keys(body.pending)).toEqual(["offchain", "onchain"]);
    expect(body.pending.onchain).toBe(0);
    for (const container of body.containers) {
      expect(Object.keys(container)).toEqual(["description", "external", "id", "image"]);
      expect(Object.values(f.ids)).toContain(container.id);
    }
  };

  test("behavior: answers while Redis is stopped and after a managed container is removed", async () => {
    // Two pending entries of our own (PUT /api/status running), counted before Redis goes away.
    for (const id of ["info-1", "info-2"]) {
      const res = await requestFrom("127.0.0.1", "PUT", "/api/status", update(id));
      expect(res.status).toBe(200);
    }
    const before = await waitFor(
      "pending count to include both entries",
      async () => {
        const body = await info();
        return body && body.pending.offchain >= 2 ? body : undefined;
      },
      60_000,
    );
    expect(before.containers.map((c) => c.id)).toEqual([f.ids.echo, f.ids.echo2, f.ids.inner]);
    const counted = replies.length;

    await redis.stop();
    const during = await info();
    expect(during?.pending.offchain).toBe(before.pending.offchain);
    expect(during?.containers).toEqual(before.containers);
    // The store really is down for reads: a job lookup fails fast, /info does not.
    expect((await fetch(`${url}/api/jobs?id=info-1`)).status).toBe(503);

    // Remove a managed container from under the node (docker rm -f), Redis still down; /info keeps answering
    // while the node notices and recreates it.
    const docker = testDocker();
    const old = await docker.getContainer(f.ids.echo2).inspect();
    await docker.getContainer(f.ids.echo2).remove({ force: true });
    await waitFor(
      "echo2 recreated and listed again",
      async () => {
        const body = await info();
        if (!body?.containers.some((c) => c.id === f.ids.echo2)) return undefined;
        const now = await docker
          .getContainer(f.ids.echo2)
          .inspect()
          .catch(() => undefined);
        return now && now.Id !== old.Id && now.State.Running ? true : undefined;
      },
      90_000,
    );
    await info();

    // Every reply, from before Redis stopped to after the container came back: 200, the same shape, the
    // pending count Redis last gave.
    expect(replies.length).toBeGreaterThan(counted + 1);
    for (const [index, reply] of replies.entries()) {
      expect(reply.status).toBe(200);
      const body = JSON.parse(reply.body) as Info;
      expectShape(body);
      if (index >= counted - 1) expect(body.pending.offchain).toBe(before.pending.offchain);
    }
    expect(JSON.parse(replies.at(-1)?.body ?? "{}").containers).toEqual(before.containers);
  }, 120_000);
});
