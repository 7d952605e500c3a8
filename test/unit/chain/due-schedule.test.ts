import { describe, expect, test } from "bun:test";
import { DueSchedule } from "../../../src/chain/due-schedule.ts";

describe("DueSchedule", () => {
  test("takes due keys earliest first, only those due", () => {
    const s = new DueSchedule();
    s.schedule("c", 30);
    s.schedule("a", 10);
    s.schedule("b", 20);
    s.schedule("d", 40);
    expect(s.takeDue(25)).toEqual(["a", "b"]);
    expect(s.size).toBe(2);
    expect(s.peek()).toBe(30);
    expect(s.takeDue(100)).toEqual(["c", "d"]);
    expect(s.takeDue(1_000)).toEqual([]);
  });

  test("rescheduling moves a key; the old time no longer wakes it", () => {
    const s = new DueSchedule();
    s.schedule("a", 10);
    s.schedule("a", 50);
    expect(s.takeDue(20)).toEqual([]);
    expect(s.wakeAt("a")).toBe(50);
    expect(s.takeDue(50)).toEqual(["a"]);
  });

  test("scheduleNoLaterThan only moves a key earlier", () => {
    const s = new DueSchedule();
    s.schedule("a", 10);
    s.scheduleNoLaterThan("a", 50);
    expect(s.wakeAt("a")).toBe(10);
    s.scheduleNoLaterThan("a", 5);
    expect(s.wakeAt("a")).toBe(5);
    s.scheduleNoLaterThan("b", 7);
    expect(s.takeDue(100)).toEqual(["a", "b"]);
  });

  test("cancel removes a key", () => {
    const s = new DueSchedule();
    s.schedule("a", 10);
    s.schedule("b", 10);
    s.cancel("a");
    expect(s.takeDue(10)).toEqual(["b"]);
  });

  test("limit bounds one take; the rest stay due", () => {
    const s = new DueSchedule();
    for (let i = 0; i < 10; i++) s.schedule(`k${i}`, i);
    expect(s.takeDue(100, 4)).toEqual(["k0", "k1", "k2", "k3"]);
    expect(s.size).toBe(6);
  });

  test("stale entries stay bounded under constant rescheduling", () => {
    const s = new DueSchedule();
    for (let i = 0; i < 1_000; i++) s.schedule(`k${i}`, i);
    for (let round = 0; round < 50; round++)
      for (let i = 0; i < 1_000; i++) s.schedule(`k${i}`, round * 10_000 + i);
    expect(s.size).toBe(1_000);
    expect(s.entries).toBeLessThanOrEqual(2_000);
    expect(s.takeDue(49 * 10_000 + 2)).toEqual(["k0", "k1", "k2"]);
  });

  test("matches a sorted reference under a seeded random workload", () => {
    let seed = 42;
    const rand = () => {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const s = new DueSchedule();
    const model = new Map<string, number>();
    let now = 0;
    for (let step = 0; step < 5_000; step++) {
      const key = `k${Math.floor(rand() * 200)}`;
      const r = rand();
      if (r < 0.6) {
        const at = now + Math.floor(rand() * 1_000);
        s.schedule(key, at);
        model.set(key, at);
      } else if (r < 0.7) {
        s.cancel(key);
        model.delete(key);
      } else {
        now += Math.floor(rand() * 100);
        const expected = [...model.entries()].filter(([, at]) => at <= now).sort((a, b) => a[1] - b[1]);
        const got = s.takeDue(now);
        expect(new Set(got)).toEqual(new Set(expected.map(([k]) => k)));
        // Earliest first (ties in any order).
        const times = got.map((k) => expected.find(([e]) => e === k)?.[1] ?? -1);
        expect(times).toEqual([...times].sort((a, b) => a - b));
        for (const k of got) model.delete(k);
      }
    }
  });
});
