// The Fluent Forward client against a real receiver on loopback (test/fixtures/fluent.ts).
import { describe, expect, test } from "bun:test";
import { addLogSink, createLog, type LogRecord } from "../../../src/lib/log.ts";
import { createForwardClient, encodeEntry } from "../../../src/stats/forward.ts";
import { startFluentReceiver } from "../../fixtures/fluent.ts";
import { freePort, waitFor } from "../../fixtures/net.ts";

const log = createLog("stats");

describe("forward client", () => {
  test("default: records arrive as Forward Message-mode entries [tag, time, record], in order", async () => {
    await using receiver = startFluentReceiver();
    const client = createForwardClient({ host: "127.0.0.1", port: receiver.port, maxQueue: 10, log });
    const before = Math.floor(Date.now() / 1000);
    client.emit("stats.node", { uid: "u1", n: 1 });
    client.emit("stats.live", { uid: "u1", n: 2 });
    await waitFor("two entries", () => receiver.entries.length === 2);
    expect(receiver.errors).toEqual([]);
    expect(receiver.entries.map((e) => [e.tag, e.record])).toEqual([
      ["stats.node", { uid: "u1", n: 1 }],
      ["stats.live", { uid: "u1", n: 2 }],
    ]);
    expect(receiver.entries[0]?.time).toBeGreaterThanOrEqual(before);
    expect(receiver.connections()).toBe(1);
    expect(client.stats()).toMatchObject({ sent: 2, dropped: 0, queued: 0, connected: true });
    client.close();
  });

  test("behavior: with the receiver down the queue stays bounded, then drains once it is up", async () => {
    const port = freePort();
    const client = createForwardClient({ host: "127.0.0.1", port, maxQueue: 3, log, maxRetryMs: 200 });
    for (let n = 1; n <= 5; n++) client.emit("stats.live", { n });
    await waitFor("a failed attempt", () => client.stats().lastError);
    expect(client.stats()).toMatchObject({ sent: 0, dropped: 2, queued: 3, connected: false });
    await using receiver = startFluentReceiver(port);
    expect(await client.flush(10_000)).toBe(true);
    await waitFor("three entries", () => receiver.entries.length === 3);
    // The oldest were dropped; the newest three arrive in order.
    expect(receiver.entries.map((e) => e.record.n)).toEqual([3, 4, 5]);
    expect(client.stats()).toMatchObject({ sent: 3, dropped: 2, queued: 0 });
    expect(client.stats().lastError).toBeUndefined();
    client.close();
  });

  test("behavior: failures are logged at most once per period, and flush and close are bounded", async () => {
    const records: LogRecord[] = [];
    const remove = addLogSink((record) => records.push(record));
    const client = createForwardClient({
      host: "127.0.0.1",
      port: freePort(),
      maxQueue: 100,
      log,
      maxRetryMs: 1,
      logEveryMs: 3_600_000,
    });
    for (let n = 0; n < 20; n++) {
      client.emit("stats.live", { n });
      await client.flush(50);
    }
    remove();
    expect(records.filter((r) => r.msg === "Could not send stats")).toHaveLength(1);
    client.close();
    expect(client.stats()).toMatchObject({ queued: 0, dropped: 20, sent: 0 });
  });

  test("behavior: an unresolvable host fails like a refused connection (no throw from emit)", async () => {
    const client = createForwardClient({ host: "fluentbit.invalid", port: 24224, maxQueue: 5, log });
    client.emit("stats.node", { n: 1 });
    await waitFor("a failed attempt", () => client.stats().lastError, 10_000);
    client.close();
  });

  test("default: one node-sized entry is a few hundred bytes of msgpack", () => {
    const bytes = encodeEntry("stats.live", { uid: "a".repeat(64), utilization: { cpu: 12.5 } }, 0);
    expect(bytes.length).toBeLessThan(200);
  });
});
