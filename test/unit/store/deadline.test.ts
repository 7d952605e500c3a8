import { describe, expect, test } from "bun:test";
import { createDeadline } from "../../../src/store/deadline.ts";

describe("createDeadline", () => {
  test("default: true for work that settles (resolved or rejected), false for work that does not", async () => {
    const deadline = createDeadline(50);
    const never = new Promise<void>(() => {});
    const results = await Promise.all([
      deadline.wait(Promise.resolve()),
      deadline.wait(Promise.reject(new Error("refused"))),
      deadline.wait(never),
      deadline.wait(Bun.sleep(1)),
      deadline.wait(never),
    ]);
    expect(results).toEqual([true, true, false, true, false]);
  });

  test("behavior: waits started after an expiry get their own full wait", async () => {
    const deadline = createDeadline(30);
    expect(await deadline.wait(new Promise(() => {}))).toBe(false);
    let resolve: () => void = () => {};
    const later = new Promise<void>((r) => (resolve = r));
    const waiting = deadline.wait(later);
    resolve();
    expect(await waiting).toBe(true);
  });
});
