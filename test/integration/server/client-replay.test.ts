// A replay of every request infernet_client 1.4.0 makes (clients-and-containers §2), against the release
// binary with the real echo containers, each reply checked the way the client parses it. `client` below
// mirrors NodeClient method by method: the same path, query, body and timeout, and the same reply handling
// (aiohttp raise_for_status, `await response.json()` before reading `error`/`params`, first stream chunk = id).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { type NodeFixture, startNode } from "./node-process.ts";

class APIError extends Error {
  constructor(
    readonly status: number,
    readonly error: string,
    readonly params: unknown,
  ) {
    super(`APIError(${status}, ${error})`);
  }
}

type Json = Record<string, unknown>;

function makeClient(base: string) {
  const call = (path: string, init: RequestInit, timeoutMs: number) =>
    fetch(`${base}${path}`, { ...init, signal: AbortSignal.timeout(timeoutMs) });
  const raiseForStatus = (res: Response) => {
    if (res.status >= 400) throw new Error(`HTTP ${res.status}`);
  };
  // request_job / request_delegated_subscription / record_status: json() first, then APIError on failure.
  const jsonOrApiError = async (res: Response): Promise<Json> => {
    const body = (await res.json()) as Json;
    if (res.status >= 400) throw new APIError(res.status, String(body.error), body.params);
    return body;
  };
  const post = (path: string, body: unknown, timeoutMs: number, method = "POST") =>
    call(
      path,
      { method, headers: { "content-type": "application/json" }, body: JSON.stringify(body) },
      timeoutMs,
    );
  return {
    async health(): Promise<boolean> {
      const res = await call("/health", {}, 1000);
      raiseForStatus(res);
      return ((await res.json()) as Json).status === "healthy";
    },
    async getInfo(): Promise<Json> {
      const res = await call("/info", {}, 1000);
      raiseForStatus(res);
      return (await res.json()) as Json;
    },
    async getResources(): Promise<Json> {
      return (await (await call("/resources", {}, 1000)).json()) as Json;
    },
    async checkModelSupport(modelId: string): Promise<Json> {
      return (await (await call(`/resources?model_id=${modelId}`, {}, 1000)).json()) as Json;
    },
    async requestJob(job: Json): Promise<string> {
      return String((await jsonOrApiError(await post("/api/jobs", job, 5000))).id);
    },
    async requestJobs(jobs: Json[]): Promise<Json[]> {
      return (await (await post("/api/jobs/batch", jobs, 10_000)).json()) as Json[];
    },
    async getJobResults(ids: string[], intermediate = false): Promise<Json[]> {
      const query = `id=${ids.join("&id=")}${intermediate ? "&intermediate=true" : ""}`;
      return (await (await call(`/api/jobs?${query}`, {}, 5000)).json()) as Json[];
    },
    /** get_job_result_sync: once a second, up to `retries`; [] → undefined; still running → TimeoutError. */
    async getJobResultSync(id: string, retries = 5): Promise<Json | undefined> {
      for (let i = 0; i < retries; i++) {
        const jobs = await this.getJobResults([id]);
        if (jobs.length === 0) return undefined;
        if (jobs[0]?.status !== "running") return jobs[0];
        await Bun.sleep(1000);
      }
      throw new Error("TimeoutError");
    },
    async getJobs(pending?: boolean): Promise<string[]> {
      const query = pending === undefined ? "" : `?pending=${pending}`;
      return (await (await call(`/api/jobs${query}`, {}, 5000)).json()) as string[];
    },
    async *requestStream(job: Json): AsyncGenerator<string | Uint8Array> {
      const res = await post("/api/jobs/stream", job, 180_000);
      if (res.status !== 200) {
        const body = (await res.json()) as Json;
        throw new APIError(res.status, String(body.error), body.params);
      }
      const reader = res.body?.getReader();
      if (!reader) return;
      let first = true;
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return;
        if (first) {
          first = false;
          yield new TextDecoder().decode(value).trim();
        } else yield value;
      }
    },
    async recordStatus(id: string, status: string, job: Json): Promise<unknown> {
      const res = await post("/api/status", { id, status, ...job }, 5000, "PUT");
      const body = (await res.json()) as unknown;
      if (res.status >= 400) {
        const err = body as Json;
        throw new APIError(res.status, String(err.error), err.params);
      }
      return body;
    },
    async requestDelegatedSubscription(body: string): Promise<void> {
      const res = await call(
        "/api/jobs",
        { method: "POST", headers: { "content-type": "application/json" }, body },
        5000,
      );
      await jsonOrApiError(res);
    },
  };
}

let f: NodeFixture;
let client: ReturnType<typeof makeClient>;

beforeAll(async () => {
  f = await startNode("replay", { store: "embedded" });
  client = makeClient(f.node.url);
}, 180_000);

afterAll(async () => {
  await f?.[Symbol.asyncDispose]();
});

describe("infernet_client replay", () => {
  test("default: health() and the e2e harness's await_node", async () => {
    expect(await client.health()).toBe(true);
    const res = await fetch(`${f.node.url}/api/jobs`);
    expect(res.status).toBe(200);
    expect(Array.isArray(await res.json())).toBe(true);
  });

  test("behavior: get_info() (and the router's /info poll)", async () => {
    const info = await client.getInfo();
    expect(info).toEqual({
      chain: { address: "", enabled: false },
      containers: [
        { description: "echo one", external: true, id: f.ids.echo, image: "infernet-echo:latest" },
        { description: "", external: true, id: f.ids.echo2, image: "infernet-echo:latest" },
        { description: "", external: false, id: f.ids.inner, image: "infernet-echo:latest" },
      ],
      pending: { offchain: expect.any(Number), onchain: 0 },
      version: "1.4.0",
    });
  });

  test("behavior: get_resources() and check_model_support()", async () => {
    const resources = await client.getResources();
    expect(Object.keys(resources).sort()).toEqual([f.ids.echo, f.ids.echo2, f.ids.inner].sort());
    expect(resources[f.ids.echo]).toMatchObject({ service_id: "infernet-echo", version: "0.1.0" });
    const support = await client.checkModelSupport("echo");
    expect(support[f.ids.echo]).toEqual({ supported: true });
    const unsupported = await client.checkModelSupport("gpt-9");
    expect(unsupported[f.ids.echo]).toEqual({ supported: false, error: "unknown model gpt-9" });
  });

  test("behavior: request_job(), get_job_results(), get_job_result_sync(), get_jobs()", async () => {
    const id = await client.requestJob({
      containers: [f.ids.echo],
      data: { input: "hi" },
      requires_proof: null,
    });
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    const sync = await client.getJobResultSync(id);
    expect(sync).toMatchObject({ id, status: "success", result: { container: f.ids.echo } });
    const [withIntermediate] = await client.getJobResults([id], true);
    expect(withIntermediate).toHaveProperty("intermediate_results", []);
    const [without] = await client.getJobResults([id]);
    expect(without).not.toHaveProperty("intermediate_results");
    expect(await client.getJobResults(["missing-id"])).toEqual([]);
    expect(await client.getJobResultSync("missing-id")).toBeUndefined();
    expect(await client.getJobs()).toContain(id);
    expect(await client.getJobs(false)).toContain(id);
    expect(await client.getJobs(true)).not.toContain(id);
  });

  test("behavior: request_jobs() returns per-item results in order", async () => {
    const items = await client.requestJobs([
      { containers: [f.ids.echo], data: { n: 1 } },
      { containers: ["non-existent"], data: {} },
    ]);
    expect(items[0]).toEqual({ id: expect.any(String) });
    expect(items[1]).toEqual({ error: "Container not supported", params: { container: "non-existent" } });
    const results = await client.getJobResults([String(items[0]?.id), "non-existent"]);
    expect(results.length).toBeLessThanOrEqual(1);
  });

  test("behavior: request_stream() — first chunk is the id, later chunks are the output", async () => {
    const chunks: (string | Uint8Array)[] = [];
    for await (const chunk of client.requestStream({
      containers: [f.ids.echo],
      data: { chunks: ["tok1 ", "tok2"], chunk_delay_ms: 20 },
    })) {
      chunks.push(chunk);
    }
    const [id, ...rest] = chunks;
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    expect(rest.map((c) => new TextDecoder().decode(c as Uint8Array)).join("")).toBe("tok1 tok2");
    const job = await client.getJobResultSync(String(id));
    expect(job).toMatchObject({ status: "success", result: { output: { output: "tok1 tok2" } } });
  });

  test("behavior: record_status() for running, success and failed", async () => {
    const job = { containers: [f.ids.echo], data: { any: "thing" } };
    expect(await client.recordStatus("rec-1", "running", job)).toBeNull();
    expect(await client.getJobs(true)).toContain("rec-1");
    expect(await client.recordStatus("rec-1", "success", job)).toBeNull();
    expect(await client.getJobResults(["rec-1"])).toEqual([{ id: "rec-1", result: null, status: "success" }]);
    expect(await client.recordStatus("rec-2", "failed", job)).toBeNull();
  });

  test("error: request_job() raises APIError with error and params", async () => {
    const expectApiError = async (job: Json, status: number, error: string, params: unknown) => {
      try {
        await client.requestJob(job);
        throw new Error("no error");
      } catch (e) {
        expect(e).toBeInstanceOf(APIError);
        expect(e as APIError).toMatchObject({ status, error, params });
      }
    };
    await expectApiError({ containers: ["non-existent"], data: {} }, 405, "Container not supported", {
      container: "non-existent",
    });
    await expectApiError(
      { containers: [f.ids.echo], data: {}, requires_proof: true },
      405,
      "Container does not generate proof",
      {
        container: f.ids.echo,
      },
    );
    await expectApiError({ containers: [f.ids.echo] }, 400, "Invalid request body", {
      field: "data",
      reason: 'Invalid key: Expected "data" but received undefined',
    });
  });

  test("error: record_status() with an invalid status", async () => {
    try {
      await client.recordStatus("x", "invalid", {});
      throw new Error("no error");
    } catch (e) {
      expect(e as APIError).toMatchObject({ status: 400, error: "Status is invalid" });
    }
  });

  test("error: request_delegated_subscription() with the chain disabled", async () => {
    const body = `{"signature":{"nonce":1,"expiry":${Math.floor(Date.now() / 1000) + 10},"v":27,"r":57896044618658097711785492504343953926634992332820282019728792003956564819968,"s":1},"subscription":{"owner":"0x70997970C51812dc3A010C7d01b50e0d17dc79C8","active_at":0,"period":4,"frequency":1,"redundancy":1,"containers":"0x${"ab".repeat(32)}","lazy":false,"verifier":"0x0000000000000000000000000000000000000000","payment_amount":1000000000000000000,"payment_token":"0x0000000000000000000000000000000000000000","wallet":"0x0000000000000000000000000000000000000000"},"data":{"input":"x"}}`;
    try {
      await client.requestDelegatedSubscription(body);
      throw new Error("no error");
    } catch (e) {
      expect(e).toBeInstanceOf(APIError);
      const err = e as APIError;
      expect(err.status).toBe(405);
      expect(err.error).toBe("Chain not enabled");
      expect(err.params).toMatchObject({ delegated_subscription: { data: { input: "x" }, type: 1 } });
    }
  });
});
