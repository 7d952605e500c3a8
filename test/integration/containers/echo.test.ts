// The example infernet-echo container speaks the container protocol and obeys the controls in the job data.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createLog } from "../../../src/lib/log.ts";
import { createContainers } from "../../../src/orchestration/docker/containers.ts";
import type { ContainerService } from "../../../src/orchestration/docker/remote.ts";
import { cleanupRun, createRun, ECHO_IMAGE, ensureEchoImage, testConfig } from "../../fixtures/docker.ts";
import { freePort } from "../../fixtures/net.ts";

const run = createRun("echo");
const controller = new AbortController();
let manager: ContainerService;
let base = "";

beforeAll(async () => {
  await ensureEchoImage();
  const id = run.name("svc");
  manager = createContainers({
    config: testConfig({ containers: [{ id, image: ECHO_IMAGE, port: freePort() }] }),
    log: createLog(run.id),
    host: "127.0.0.1",
    labels: run.labels,
    stopTimeoutS: 2,
  });
  await manager.setup?.(controller.signal);
  base = manager.endpoint(id)?.baseUrl ?? "";
});

afterAll(async () => {
  controller.abort();
  await manager?.close?.();
  await cleanupRun(run.id);
});

function job(body: Record<string, unknown>): Promise<Response> {
  return fetch(`${base}/service_output`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
}

describe("infernet-echo", () => {
  test("default", async () => {
    const res = await job({ source: 1, destination: 1, data: { prompt: "hi" }, requires_proof: false });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({
      service: "infernet-echo",
      echo: { prompt: "hi" },
      source: 1,
      destination: 1,
      requires_proof: false,
    });
    expect(await (await fetch(`${base}/`)).json()).toEqual({ status: "ok", service: "infernet-echo" });
  });

  test("behavior: on-chain destination replies with the five unprefixed hex keys", async () => {
    const res = await job({ source: 0, destination: 0, data: "0xabcd", requires_proof: true });
    const out = (await res.json()) as Record<string, string>;
    expect(Object.keys(out).sort()).toEqual([
      "processed_input",
      "processed_output",
      "proof",
      "raw_input",
      "raw_output",
    ]);
    expect(out.raw_input).toBe("abcd");
    expect(Buffer.from(out.raw_output ?? "", "hex").toString()).toBe('{"echo":"0xabcd"}');
    expect(out.proof).toMatch(/^[0-9a-f]+$/);
    for (const value of Object.values(out)) expect(value).not.toStartWith("0x");
  });

  test("behavior: streaming destination sends the chunks in order", async () => {
    const res = await job({
      source: 1,
      destination: 2,
      data: { chunks: ["a", "b", "c"], chunk_delay_ms: 20 },
    });
    expect(res.status).toBe(200);
    const reader = res.body?.getReader();
    const parts: string[] = [];
    for (;;) {
      const next = await reader?.read();
      if (!next || next.done) break;
      parts.push(new TextDecoder().decode(next.value));
    }
    expect(parts.join("")).toBe("abc");
    expect(parts.length).toBeGreaterThan(1);
  });

  test("behavior: the job data controls status, content type, body and delay", async () => {
    const failed = await job({ source: 1, destination: 1, data: { status: 500 } });
    expect(failed.status).toBe(500);
    expect(await failed.json()).toMatchObject({ code: "500" });

    const text = await job({ source: 1, destination: 1, data: { text: "plain words" } });
    expect(text.headers.get("content-type")).toStartWith("text/plain");
    expect(await text.text()).toBe("plain words");

    const broken = await job({ source: 1, destination: 1, data: { invalid_json: true } });
    expect(broken.headers.get("content-type")).toBe("application/json");
    const brokenBody = await broken.text();
    expect(brokenBody).toBe('{"broken": ');
    expect(() => JSON.parse(brokenBody)).toThrow();

    const slowStarted = Date.now();
    const slow = await job({ source: 1, destination: 1, data: { sleep_ms: 300 } });
    expect(slow.status).toBe(200);
    // Ordering, not timing: the reply cannot come before the requested delay has passed.
    expect(Date.now() - slowStarted).toBeGreaterThanOrEqual(300);
  });

  test("behavior: service resources and model support", async () => {
    expect(await (await fetch(`${base}/service-resources`)).json()).toMatchObject({
      version: "0.1.0",
      service_id: "infernet-echo",
    });
    expect(await (await fetch(`${base}/service-resources?model_id=echo`)).json()).toEqual({
      supported: true,
    });
    expect(await (await fetch(`${base}/service-resources?model_id=gpt`)).json()).toMatchObject({
      supported: false,
    });
  });
});
