// Two node processes on one Redis (same redis config and key_prefix, their own server port and
// store.instance_id), through the release binary: each serves the other's job results and listings, since
// jobs are keyed by client address, not by the node that ran them.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { waitFor } from "../../fixtures/net.ts";
import { type PrivateRedis, startPrivateRedis, uniqueKeyPrefix } from "../../fixtures/redis.ts";
import { finishedJob, type NodeFixture, postJson, startNode } from "./node-process.ts";

let redis: PrivateRedis;
let a: NodeFixture;
let b: NodeFixture;

beforeAll(async () => {
  redis = await startPrivateRedis();
  const shared = { host: redis.host, port: redis.port, key_prefix: uniqueKeyPrefix("shared-redis") };
  const start = (name: string) =>
    startNode(`shared-${name}`, {
      store: "redis",
      extra: { redis: shared, store: { instance_id: `shared-redis-node-${name}` } },
    });
  // Assigned as each comes up, so afterAll stops one that started even if the other failed.
  await Promise.all([
    start("a").then((node) => {
      a = node;
    }),
    start("b").then((node) => {
      b = node;
    }),
  ]);
}, 180_000);

afterAll(async () => {
  await Promise.all([a?.[Symbol.asyncDispose](), b?.[Symbol.asyncDispose]()]);
  await redis?.[Symbol.asyncDispose]();
});

const submit = async (node: NodeFixture, data: Record<string, unknown>): Promise<string> => {
  const res = await postJson(`${node.node.url}/api/jobs`, { containers: [node.ids.echo], data });
  expect(res.status).toBe(200);
  return ((await res.json()) as { id: string }).id;
};

const list = async (node: NodeFixture, query = ""): Promise<string[]> =>
  (await (await fetch(`${node.node.url}/api/jobs${query}`)).json()) as string[];

describe("two nodes sharing one Redis", () => {
  test("default: a job submitted to A is read back through B once done, and B lists it", async () => {
    expect(a.node.url).not.toBe(b.node.url);
    const id = await submit(a, { from: "a" });
    const onA = await finishedJob(a.node.url, id, "&intermediate=true");
    const onB = await finishedJob(b.node.url, id, "&intermediate=true");
    expect(onB).toEqual(onA);
    expect(onB).toEqual({
      id,
      status: "success",
      intermediate_results: [],
      result: {
        container: a.ids.echo,
        output: {
          service: "infernet-echo",
          echo: { from: "a" },
          source: 1,
          destination: 1,
          requires_proof: false,
        },
      },
    });
    expect(await list(b)).toContain(id);
    expect(await list(b, "?pending=false")).toContain(id);
    expect(await list(b, "?pending=true")).not.toContain(id);
  });

  test("behavior: both ways, and a job running on A is pending on B until it finishes", async () => {
    const fromB = await submit(b, { from: "b" });
    expect(await finishedJob(a.node.url, fromB)).toMatchObject({ id: fromB, status: "success" });
    expect(await list(a)).toContain(fromB);

    const slow = await submit(a, { sleep_ms: 1500 });
    // Seen as pending on B while A runs it (unless it already finished), then as done.
    const seen = await waitFor(
      "B to see A's job",
      async () => {
        const [job] = (await (await fetch(`${b.node.url}/api/jobs?id=${slow}`)).json()) as {
          status: string;
        }[];
        return job?.status;
      },
      60_000,
    );
    if (seen === "running") expect(await list(b, "?pending=true")).toContain(slow);
    expect(await finishedJob(b.node.url, slow)).toMatchObject({ id: slow, status: "success" });
    expect(await list(b, "?pending=false")).toContain(slow);
  });
});
