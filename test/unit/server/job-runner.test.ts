import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createLog } from "../../../src/lib/log.ts";
import { createOrchestrator } from "../../../src/orchestration/orchestrator.ts";
import { createJobRunner } from "../../../src/server/job-runner.ts";
import type { OffchainJobMessage } from "../../../src/shared/messages.ts";
import { startBlackhole } from "../../fixtures/blackhole.ts";
import { within } from "../../fixtures/net.ts";
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

async function makeRunner(
  options: { url?: string; stuck?: boolean; jobTimeoutMs?: number; cancelWaitMs?: number } = {},
) {
  const log = createLog("runner");
  const store = await openTestStore(makeConfig());
  const directory = staticDirectory({ a: options.url ?? stub.url });
  const orchestrator = createOrchestrator({ directory, jobTimeoutMs: options.jobTimeoutMs ?? 30_000, log });
  // A job that ignores its cancel (whatever the cause): only the drain's own bound can end the wait.
  if (options.stuck) orchestrator.run = () => new Promise(() => {});
  const runner = createJobRunner({
    store,
    orchestrator,
    stream: { directory, streamTimeoutMs: 30_000 },
    log,
    ...(options.cancelWaitMs === undefined ? {} : { cancelWaitMs: options.cancelWaitMs }),
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

  test("behavior: a job connecting to a host that drops SYNs is cancelled at the drain deadline and recorded", async () => {
    await using hole = await startBlackhole();
    const { store, runner } = await makeRunner({ url: hole.url, jobTimeoutMs: 120_000 });
    await runner.start(job("blackholed", {}));
    // drain(300) plus the 2 s cancel wait is the bound; the old code waited for the kernel's connect timeout.
    await within(15_000, runner.drain(300));
    const [stored] = await store.get("127.0.0.1", ["blackholed"]);
    expect(stored?.result).toEqual({
      container: "a",
      error: "Job cancelled before container a replied: the node is shutting down",
    });
    await store.close();
  });

  test("behavior: drain returns within its bound even if a cancelled job never ends", async () => {
    const { store, runner } = await makeRunner({ stuck: true, cancelWaitMs: 200 });
    await runner.start(job("stuck", {}));
    await within(15_000, runner.drain(200));
    expect(runner.inFlight()).toBe(1);
    await store.close();
  });
});
