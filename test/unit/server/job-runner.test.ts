import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createLog } from "../../../src/lib/log.ts";
import { createOrchestrator } from "../../../src/orchestration/orchestrator.ts";
import { createJobRunner } from "../../../src/server/job-runner.ts";
import type { OffchainJobMessage } from "../../../src/shared/messages.ts";
import {
  makeConfig,
  openTestStore,
  type StubContainer,
  startStubContainer,
  staticDirectory,
} from "./fixtures.ts";

let stub: StubContainer;
beforeAll(() => {
  stub = startStubContainer("a");
});
afterAll(async () => {
  await stub[Symbol.asyncDispose]();
});

const job = (id: string, data: Record<string, unknown>): OffchainJobMessage => ({
  kind: "offchain",
  id,
  ip: "127.0.0.1",
  containers: ["a"],
  data,
  requires_proof: false,
});

async function makeRunner() {
  const log = createLog("runner");
  const store = await openTestStore(makeConfig());
  const directory = staticDirectory({ a: stub.url });
  const runner = createJobRunner({
    store,
    orchestrator: createOrchestrator({ directory, jobTimeoutMs: 30_000, log }),
    stream: { directory, streamTimeoutMs: 30_000 },
    log,
  });
  return { store, runner };
}

describe("job runner", () => {
  test("default: a job is visible in memory while it runs and just after, and in the store", async () => {
    const { store, runner } = await makeRunner();
    await runner.start(job("j1", { sleep_ms: 100 }));
    expect(runner.peek("127.0.0.1", "j1")).toEqual({
      id: "j1",
      status: "running",
      intermediate_results: [],
      result: null,
    });
    expect(runner.peek("10.0.0.1", "j1")).toBeUndefined();
    await runner.drain(10_000);
    expect(runner.peek("127.0.0.1", "j1")?.status).toBe("success");
    expect((await store.get("127.0.0.1", ["j1"]))[0]?.status).toBe("success");
    runner.forget("127.0.0.1", "j1");
    expect(runner.peek("127.0.0.1", "j1")).toBeUndefined();
    await store.close();
  });

  test("behavior: drain lets jobs finish, cancels the rest at the deadline, then refuses new ones", async () => {
    const { store, runner } = await makeRunner();
    await runner.start(job("quick", { sleep_ms: 50 }));
    await runner.start(job("slow", { sleep_ms: 20_000 }));
    await runner.drain(500);
    const [quick, slow] = await store.get("127.0.0.1", ["quick", "slow"]);
    expect(quick?.status).toBe("success");
    expect(slow).toEqual({
      id: "slow",
      status: "failed",
      intermediate_results: [],
      result: {
        container: "a",
        error: "Job cancelled before container a replied: the node is shutting down",
      },
    });
    expect(runner.start(job("late", {}))).rejects.toThrow("the node is shutting down");
    await store.close();
  });
});
