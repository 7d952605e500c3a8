// The orchestrator against the real infernet-echo container (managed through Docker by the Container
// Manager), and against the same service addressed by `url` (unmanaged), as the chain processor will use it.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createLog } from "../../../src/lib/log.ts";
import { createContainers } from "../../../src/orchestration/docker/containers.ts";
import type { ContainerService } from "../../../src/orchestration/docker/remote.ts";
import { createOrchestrator } from "../../../src/orchestration/orchestrator.ts";
import { JobLocation } from "../../../src/shared/messages.ts";
import { cleanupRun, createRun, ECHO_IMAGE, ensureEchoImage, testConfig } from "../../fixtures/docker.ts";
import { freePort } from "../../fixtures/net.ts";

const run = createRun("orch");
const controller = new AbortController();
const log = createLog(run.id);
const id = run.name("echo");
let managed: ContainerService;
let remote: ContainerService;

beforeAll(async () => {
  await ensureEchoImage();
  managed = createContainers({
    config: testConfig({ containers: [{ id, image: ECHO_IMAGE, port: freePort() }] }),
    log,
    host: "127.0.0.1",
    labels: run.labels,
    stopTimeoutS: 2,
  });
  await managed.setup?.(controller.signal);
  const base = managed.endpoint(id)?.baseUrl ?? "";
  remote = createContainers({
    config: testConfig({
      manage_containers: false,
      containers: [{ id: "remote", url: base, bearer: "secret-token" }],
    }),
    log,
    host: "127.0.0.1",
  });
  await remote.setup?.(controller.signal);
}, 120_000);

afterAll(async () => {
  controller.abort();
  await remote?.close?.();
  await managed?.close?.();
  await cleanupRun(run.id);
});

describe("orchestrator with infernet-echo", () => {
  test("default: on-chain job gets the five-key output, with a proof when asked", async () => {
    const orchestrator = createOrchestrator({ directory: managed, jobTimeoutMs: 10_000, log });
    const [result] = await orchestrator.run({
      containers: [id],
      data: "68656c6c6f",
      source: JobLocation.ONCHAIN,
      destination: JobLocation.ONCHAIN,
      requiresProof: true,
    });
    expect(result).toEqual({
      container: id,
      output: {
        raw_input: "68656c6c6f",
        processed_input: "",
        raw_output: expect.any(String),
        processed_output: "",
        proof: Buffer.from("echo-proof").toString("hex"),
      },
    });
    expect(orchestrator.counters().jobs.onchain).toEqual({ success: 1, failed: 0 });
  });

  test("behavior: delegated-style job (off-chain source, on-chain destination) through a url-addressed service", async () => {
    const orchestrator = createOrchestrator({ directory: remote, jobTimeoutMs: 10_000, log });
    const results = await orchestrator.run({
      containers: ["remote", "remote"],
      data: { input: "x" },
      source: JobLocation.OFFCHAIN,
      destination: JobLocation.ONCHAIN,
      requiresProof: false,
    });
    expect(results[0]).toEqual({
      container: "remote",
      output: {
        service: "infernet-echo",
        echo: { input: "x" },
        source: 1,
        destination: 1,
        requires_proof: false,
      },
    });
    expect(results[1]?.container).toBe("remote");
    expect(Object.keys((results[1] as { output: Record<string, unknown> }).output).sort()).toEqual([
      "processed_input",
      "processed_output",
      "proof",
      "raw_input",
      "raw_output",
    ]);
  });

  test("error: timeout and cancellation against a slow service", async () => {
    const orchestrator = createOrchestrator({ directory: managed, jobTimeoutMs: 300, log });
    const job = {
      containers: [id],
      data: { sleep_ms: 3000 },
      source: JobLocation.OFFCHAIN,
      destination: JobLocation.OFFCHAIN,
      requiresProof: false,
    };
    expect(await orchestrator.run(job)).toEqual([
      { container: id, error: `Container ${id} did not reply within 0.3 s` },
    ]);
    const slow = createOrchestrator({ directory: managed, jobTimeoutMs: 10_000, log });
    const stop = new AbortController();
    const pending = slow.run(job, stop.signal);
    stop.abort(new Error("the node is shutting down"));
    expect(await pending).toEqual([
      { container: id, error: `Job cancelled before container ${id} replied: the node is shutting down` },
    ]);
  });
});
