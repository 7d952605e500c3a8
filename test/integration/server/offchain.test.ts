// Off-chain jobs end to end through the release binary, the real echo containers (managed by the node through
// Docker) and each job store: single and chained jobs, batches, streaming, restarts, shutdown with jobs in
// flight, PUT /api/status from loopback, and the reference quirks we fix (ip/id in the body, forged XFF).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { waitFor } from "../../fixtures/net.ts";
import { type PrivateRedis, startPrivateRedis } from "../../fixtures/redis.ts";
import { finishedJob, type NodeFixture, postJson, startNode } from "./node-process.ts";

for (const store of ["embedded", "redis"] as const) {
  describe(`off-chain jobs through the binary (${store} store)`, () => {
    let redis: PrivateRedis | undefined;
    let f: NodeFixture;
    let url = "";

    beforeAll(async () => {
      if (store === "redis") redis = await startPrivateRedis();
      f = await startNode(`offchain-${store}`, { store, ...(redis ? { redis } : {}) });
      url = f.node.url;
    }, 180_000);

    afterAll(async () => {
      await f?.[Symbol.asyncDispose]();
      await redis?.[Symbol.asyncDispose]();
    });

    test("default", async () => {
      const res = await postJson(`${url}/api/jobs`, { containers: [f.ids.echo], data: { prompt: "hi" } });
      expect(res.status).toBe(200);
      const { id } = (await res.json()) as { id: string };
      const job = await finishedJob(url, id);
      expect(job).toEqual({
        id,
        status: "success",
        result: {
          container: f.ids.echo,
          output: {
            service: "infernet-echo",
            echo: { prompt: "hi" },
            source: 1,
            destination: 1,
            requires_proof: false,
          },
        },
      });
      const info = (await (await fetch(`${url}/info`)).json()) as { containers: { id: string }[] };
      expect(info.containers.map((c) => c.id)).toEqual([f.ids.echo, f.ids.echo2, f.ids.inner]);
    });

    test("behavior: chained job with intermediate results", async () => {
      const res = await postJson(`${url}/api/jobs`, {
        containers: [f.ids.echo, f.ids.inner, f.ids.echo2],
        data: { n: 1 },
        requires_proof: null,
      });
      const { id } = (await res.json()) as { id: string };
      const job = await finishedJob(url, id, "&intermediate=true");
      const first = {
        service: "infernet-echo",
        echo: { n: 1 },
        source: 1,
        destination: 1,
        requires_proof: false,
      };
      const second = {
        service: "infernet-echo",
        echo: first,
        source: 1,
        destination: 1,
        requires_proof: false,
      };
      expect(job).toEqual({
        id,
        status: "success",
        intermediate_results: [
          { container: f.ids.echo, output: first },
          { container: f.ids.inner, output: second },
        ],
        result: {
          container: f.ids.echo2,
          output: {
            service: "infernet-echo",
            echo: second,
            source: 1,
            destination: 1,
            requires_proof: false,
          },
        },
      });
    });

    test("behavior: container failures are recorded with clear errors", async () => {
      const cases: [Record<string, unknown>, RegExp][] = [
        [
          { text: "plain" },
          /replied with non-JSON content \(HTTP 200, Content-Type "text\/plain; charset=utf-8"\): plain/,
        ],
        [{ invalid_json: true }, /replied with invalid JSON \(HTTP 200\): \{"broken": $/],
      ];
      for (const [data, pattern] of cases) {
        const res = await postJson(`${url}/api/jobs`, { containers: [f.ids.echo, f.ids.echo2], data });
        const { id } = (await res.json()) as { id: string };
        const job = (await finishedJob(url, id, "&intermediate=true")) as {
          status: string;
          result: { error: string; container: string };
          intermediate_results: unknown[];
        };
        expect(job.status).toBe("failed");
        expect(job.intermediate_results).toEqual([]);
        expect(job.result.container).toBe(f.ids.echo);
        expect(job.result.error).toMatch(pattern);
      }
      // A JSON error body with HTTP 500 is an output, as in the reference (services report {"code":"500"}).
      const res = await postJson(`${url}/api/jobs`, { containers: [f.ids.echo], data: { status: 500 } });
      const { id } = (await res.json()) as { id: string };
      expect(await finishedJob(url, id)).toMatchObject({
        status: "success",
        result: { output: { code: "500" } },
      });
    });

    test("behavior: batch with good, rejected and malformed items", async () => {
      const res = await postJson(`${url}/api/jobs/batch`, [
        { containers: [f.ids.echo], data: { i: 0 } },
        { containers: [f.ids.inner], data: {} },
        { containers: [f.ids.echo] },
        { containers: ["nope"], data: {} },
        { containers: [f.ids.echo2], data: { i: 4 } },
      ]);
      expect(res.status).toBe(200);
      const items = (await res.json()) as Record<string, unknown>[];
      expect(items[1]).toEqual({
        error: "First container must be external",
        params: { first_container: f.ids.inner },
      });
      expect(items[2]).toEqual({
        error: "Invalid request body",
        params: { field: "data", index: 2, reason: 'Invalid key: Expected "data" but received undefined' },
      });
      expect(items[3]).toEqual({ error: "Container not supported", params: { container: "nope" } });
      for (const item of [items[0], items[4]]) {
        expect((await finishedJob(url, String(item?.id))).status).toBe("success");
      }
    });

    test("behavior: streaming flushes the id line first, then the container's bytes", async () => {
      const res = await postJson(`${url}/api/jobs/stream`, {
        containers: [f.ids.echo],
        data: { chunks: ["one ", "two ", "three"], chunk_delay_ms: 50 },
      });
      expect(res.status).toBe(200);
      const reader = res.body?.getReader();
      if (!reader) throw new Error("no body");
      const first = await reader.read();
      const firstText = new TextDecoder().decode(first.value);
      // The id arrives on its own, as infernet_client reads it from the first chunk.
      expect(firstText).toMatch(/^[0-9a-f-]{36}\n$/);
      const id = firstText.trim();
      let rest = "";
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        rest += new TextDecoder().decode(value);
      }
      expect(rest).toBe("one two three");
      expect(await finishedJob(url, id)).toEqual({
        id,
        status: "success",
        result: { container: f.ids.echo, output: { output: "one two three" } },
      });
    });

    test("error: a stream that fails after the id line is truncated, and the job is failed", async () => {
      const res = await postJson(`${url}/api/jobs/stream`, {
        containers: [f.ids.echo],
        data: { status: 503 },
      });
      expect(res.status).toBe(200);
      const reader = res.body?.getReader();
      if (!reader) throw new Error("no body");
      const id = new TextDecoder().decode((await reader.read()).value).trim();
      let error: unknown;
      try {
        for (;;) if ((await reader.read()).done) break;
      } catch (e) {
        error = e;
      }
      expect(String(error)).toMatch(/ECONNRESET|closed|terminated/i);
      const job = (await finishedJob(url, id)) as { status: string; result: { error: string } };
      expect(job.status).toBe("failed");
      expect(job.result.error).toContain("replied HTTP 503");
    });

    test("behavior: a client that disconnects mid-stream leaves a failed job, not a running one", async () => {
      const controller = new AbortController();
      const res = await fetch(`${url}/api/jobs/stream`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({
          containers: [f.ids.echo],
          data: { chunks: ["a", "b", "c", "d"], chunk_delay_ms: 400 },
        }),
        signal: controller.signal,
      });
      const reader = res.body?.getReader();
      const id = new TextDecoder().decode((await reader?.read())?.value).trim();
      controller.abort();
      const job = (await finishedJob(url, id)) as { status: string; result: { error: string } };
      expect(job.status).toBe("failed");
      expect(job.result.error).toContain("client disconnected");
    });

    test("behavior: PUT /api/status from loopback", async () => {
      const put = (body: unknown) =>
        fetch(`${url}/api/status`, {
          method: "PUT",
          headers: { "content-type": "application/json" },
          body: JSON.stringify(body),
        });
      const res = await put({ id: "ext-1", status: "running", containers: [f.ids.echo], data: {} });
      expect(res.status).toBe(200);
      expect(await res.text()).toBe("null\n");
      expect(await (await fetch(`${url}/api/jobs?pending=true`)).json()).toContain("ext-1");
      await put({ id: "ext-1", status: "success", containers: [f.ids.echo] });
      expect(await (await fetch(`${url}/api/jobs?id=ext-1`)).json()).toEqual([
        { id: "ext-1", result: null, status: "success" },
      ]);
    });

    test("behavior: body ip/id and forged X-Forwarded-For change nothing", async () => {
      const res = await postJson(
        `${url}/api/jobs`,
        { containers: [f.ids.echo], data: {}, id: "chosen", ip: "10.9.9.9" },
        { "x-forwarded-for": "10.8.8.8" },
      );
      const { id } = (await res.json()) as { id: string };
      expect(id).not.toBe("chosen");
      await finishedJob(url, id);
      // The job belongs to the TCP peer (127.0.0.1), whatever the header says.
      const mine = (await (
        await fetch(`${url}/api/jobs`, { headers: { "x-forwarded-for": "10.9.9.9" } })
      ).json()) as string[];
      expect(mine).toContain(id);
      expect(mine).not.toContain("chosen");
    });

    test("behavior: results survive a restart; jobs in flight at shutdown finish first", async () => {
      const done = (await (
        await postJson(`${url}/api/jobs`, { containers: [f.ids.echo], data: { keep: 1 } })
      ).json()) as {
        id: string;
      };
      await finishedJob(url, done.id);
      const slow = (await (
        await postJson(`${url}/api/jobs`, { containers: [f.ids.echo], data: { sleep_ms: 1500 } })
      ).json()) as { id: string };
      expect(await f.node.stop()).toBe(0);
      await f.node.restart();
      const [kept] = (await (await fetch(`${url}/api/jobs?id=${done.id}`)).json()) as { status: string }[];
      expect(kept?.status).toBe("success");
      const [drained] = (await (await fetch(`${url}/api/jobs?id=${slow.id}`)).json()) as { status: string }[];
      expect(drained?.status).toBe("success");
    }, 120_000);

    test("behavior: a job still running at the shutdown deadline is recorded failed", async () => {
      const slow = (await (
        await postJson(`${url}/api/jobs`, { containers: [f.ids.echo], data: { sleep_ms: 30_000 } })
      ).json()) as { id: string };
      await waitFor(
        "job running",
        async () => {
          const ids = (await (await fetch(`${url}/api/jobs?pending=true`)).json()) as string[];
          return ids.includes(slow.id) ? true : undefined;
        },
        60_000,
      );
      expect(await f.node.stop()).toBe(0);
      await f.node.restart();
      const [job] = (await (await fetch(`${url}/api/jobs?id=${slow.id}`)).json()) as {
        status: string;
        result: { error: string };
      }[];
      expect(job?.status).toBe("failed");
      expect(job?.result.error).toContain("the node is shutting down");
    }, 120_000);
  });
}
