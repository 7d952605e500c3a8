import { describe, expect, test } from "bun:test";
import { addLogSink, createLogger, type LogRecord } from "../../../src/lib/log.ts";
import { progressReporter } from "../../../src/lib/progress.ts";

describe("progressReporter", () => {
  test("default: at most one line per interval with done, total, percent, rate and time left; none at the end", () => {
    const records: LogRecord[] = [];
    const remove = addLogSink((record) => {
      if (record.msg === "Snapshot sync progress") records.push(record);
    });
    let clock = 0;
    const report = progressReporter(createLogger(), "Snapshot sync progress", 10_000, {
      everyMs: 5000,
      now: () => clock,
    });
    clock = 1000;
    report(1000); // too soon
    clock = 5000;
    report(4000);
    clock = 6000;
    report(5000); // too soon after the last line
    clock = 10_000;
    report(10_000); // finished: the caller says so
    remove();
    expect(records).toHaveLength(1);
    expect(records[0]).toMatchObject({ done: 4000, total: 10_000, percent: 40, per_s: 800, eta_s: 8 });
  });
});
