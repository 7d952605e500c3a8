import { describe, expect, test } from "bun:test";
import { createLog } from "../../../src/lib/log.ts";
import { loop, runServices, type Service } from "../../../src/lib/service.ts";

const log = createLog("test");

function recorder() {
  const events: string[] = [];
  const make = (name: string, extra: Partial<Service> = {}): Service => ({
    name,
    async setup() {
      events.push(`setup ${name}`);
    },
    async run(signal) {
      events.push(`run ${name}`);
      await new Promise<void>((resolve) => signal.addEventListener("abort", () => resolve(), { once: true }));
      events.push(`drained ${name}`);
    },
    async close() {
      events.push(`close ${name}`);
    },
    ...extra,
  });
  return { events, make };
}

describe("runServices", () => {
  test("default: setup in order, run all, close in reverse after abort", async () => {
    const { events, make } = recorder();
    const controller = new AbortController();
    const done = runServices([make("a"), make("b")], {
      signal: controller.signal,
      log,
      setupTimeoutMs: 1000,
      onReady: () => controller.abort(),
    });
    await done;
    expect(events.slice(0, 2)).toEqual(["setup a", "setup b"]);
    expect(events.slice(-2)).toEqual(["close b", "close a"]);
    expect(events.filter((e) => e.startsWith("drained")).sort()).toEqual(["drained a", "drained b"]);
  });

  test("error: a failing setup closes what was set up and rethrows", async () => {
    const { events, make } = recorder();
    const failing = make("b", {
      async setup() {
        throw new Error("image missing");
      },
    });
    await expect(
      runServices([make("a"), failing, make("c")], {
        signal: new AbortController().signal,
        log,
        setupTimeoutMs: 1000,
      }),
    ).rejects.toThrow("image missing");
    expect(events).toEqual(["setup a", "close a"]);
  });

  test("error: a setup that hangs is cut off by the setup timeout", async () => {
    const { make } = recorder();
    const hanging = make("slow", { setup: () => new Promise<void>(() => {}) });
    await expect(
      runServices([hanging], { signal: new AbortController().signal, log, setupTimeoutMs: 50 }),
    ).rejects.toThrow("slow setup timed out");
  });

  test("behavior: a run loop that throws is restarted, not fatal", async () => {
    const controller = new AbortController();
    let runs = 0;
    const flaky: Service = {
      name: "flaky",
      async run(signal) {
        runs++;
        if (runs < 3) throw new Error("rpc hiccup");
        controller.abort();
        await Promise.resolve(signal.aborted);
      },
    };
    await runServices([flaky], { signal: controller.signal, log, setupTimeoutMs: 1000 });
    expect(runs).toBe(3);
  });
});

describe("loop", () => {
  test("behavior: a failing tick is retried and the loop ends on abort", async () => {
    const controller = new AbortController();
    let ticks = 0;
    await loop(
      controller.signal,
      1,
      async () => {
        ticks++;
        if (ticks === 1) throw new Error("transient");
        if (ticks === 3) controller.abort();
      },
      log,
      "test loop",
    );
    expect(ticks).toBe(3);
  });
});
