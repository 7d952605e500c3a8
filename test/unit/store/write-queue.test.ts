import { expect, test } from "bun:test";
import { createLogger } from "../../../src/lib/log.ts";
import { createWriteQueue } from "../../../src/store/write-queue.ts";
import { waitFor } from "../../fixtures/net.ts";

const log = createLogger({ component: "store" });

class ReplyError extends Error {
  override name = "ReplyError";
}

const queueWith = (maxQueued = 100) =>
  createWriteQueue({
    maxQueued,
    log,
    maxBackoffMs: 20,
    isRetryable: (error) => !(error instanceof ReplyError),
  });

/** A promise with its resolver, to hold an operation open until the test lets it finish. */
function gateOpen() {
  let open = () => {};
  const opened = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { open, opened };
}

test("default", async () => {
  const queue = queueWith();
  const seen: string[] = [];
  await queue.enqueue("a", async () => {
    seen.push("a1");
  });
  expect(seen).toEqual(["a1"]);
  expect(queue.size()).toBe(0);
});

test("behavior: writes of one key run in order, even when the first is retried", async () => {
  const queue = queueWith();
  const seen: string[] = [];
  let failures = 2;
  const first = queue.enqueue("job", async () => {
    if (failures-- > 0) throw new Error("connection lost");
    seen.push("running");
  });
  const second = queue.enqueue("job", async () => {
    seen.push("success");
  });
  await Promise.all([first, second]);
  expect(seen).toEqual(["running", "success"]);
});

test("behavior: writes of other keys do not wait for a stuck key", async () => {
  const queue = queueWith();
  const hold = gateOpen();
  const seen: string[] = [];
  const stuck = queue.enqueue("slow", async () => {
    await hold.opened;
    seen.push("slow");
  });
  await queue.enqueue("fast", async () => {
    seen.push("fast");
  });
  expect(seen).toEqual(["fast"]);
  hold.open();
  await stuck;
  expect(seen).toEqual(["fast", "slow"]);
});

test("behavior: a gate holds every later write until it has run", async () => {
  const queue = queueWith();
  const hold = gateOpen();
  const seen: string[] = [];
  const gated = queue.gate(async () => {
    await hold.opened;
    seen.push("recovery");
    return 3;
  });
  const write = queue.enqueue("job", async () => {
    seen.push("write");
  });
  await waitFor("one queued write", () => queue.size() === 1, 10_000);
  expect(seen).toEqual([]);
  hold.open();
  expect(await gated).toBe(3);
  await write;
  expect(seen).toEqual(["recovery", "write"]);
});

test("behavior: drain waits for queued writes", async () => {
  const queue = queueWith();
  const hold = gateOpen();
  const pending = queue.enqueue("job", () => hold.opened);
  expect(await queue.drain(10)).toBe(false);
  hold.open();
  expect(await queue.drain(5_000)).toBe(true);
  await pending;
});

test("error: a non-retryable error rejects that write only", async () => {
  const queue = queueWith();
  const seen: string[] = [];
  const bad = queue.enqueue("job", async () => {
    throw new ReplyError("ERR bad script");
  });
  const next = queue.enqueue("job", async () => {
    seen.push("next");
  });
  await expect(bad).rejects.toThrow("ERR bad script");
  await next;
  expect(seen).toEqual(["next"]);
});

test("error: the queue refuses writes beyond its bound", async () => {
  const queue = queueWith(2);
  const hold = gateOpen();
  const a = queue.enqueue("a", () => hold.opened);
  const b = queue.enqueue("b", () => hold.opened);
  await expect(queue.enqueue("c", async () => {})).rejects.toMatchObject({ status: 503 });
  hold.open();
  await Promise.all([a, b]);
  await queue.enqueue("c", async () => {});
});

test("error: closing stops retries and rejects what is still queued", async () => {
  const queue = queueWith();
  const stuck = queue.enqueue("job", async () => {
    throw new Error("connection lost");
  });
  queue.close();
  await expect(stuck).rejects.toMatchObject({ status: 503 });
  await expect(queue.enqueue("job", async () => {})).rejects.toMatchObject({ status: 503 });
});
