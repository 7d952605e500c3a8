// The console format decision and the readable line, pinned byte for byte.
import { describe, expect, test } from "bun:test";
import { consoleFormatFor, formatPretty, type LogRecord, useColor } from "../../../src/lib/log.ts";

const record: LogRecord = {
  ts: "2026-12-04T12:22:01.123Z",
  level: "warn",
  msg: "Pulling image",
  component: "containers",
  image: "ritualnetwork/hello-world-infernet:1.0.0",
  layers_done: 2,
  note: "two words",
  empty: "",
  error: { name: "StartupError", message: "no such image", stack: "StartupError: no such image\n    at x" },
};

describe("console format", () => {
  test("default: auto is pretty on a terminal and JSON lines elsewhere", () => {
    expect(consoleFormatFor("auto", {}, true)).toBe("pretty");
    expect(consoleFormatFor("auto", {}, false)).toBe("json");
  });

  test("behavior: LOG_FORMAT wins over the config, which wins over auto; other values are ignored", () => {
    expect(consoleFormatFor("auto", { LOG_FORMAT: "json" }, true)).toBe("json");
    expect(consoleFormatFor("json", { LOG_FORMAT: "pretty" }, false)).toBe("pretty");
    expect(consoleFormatFor("pretty", {}, false)).toBe("pretty");
    expect(consoleFormatFor("auto", { LOG_FORMAT: "yaml" }, true)).toBe("pretty");
  });

  test("behavior: colours only on a terminal and never with a non-empty NO_COLOR", () => {
    expect(useColor({}, true)).toBe(true);
    expect(useColor({}, false)).toBe(false);
    expect(useColor({ NO_COLOR: "1" }, true)).toBe(false);
    expect(useColor({ NO_COLOR: "" }, true)).toBe(true);
  });

  test("default: the readable line without colours", () => {
    expect(formatPretty(record, false)).toBe(
      '12:22:01.123 WARN  [containers] Pulling image image=ritualnetwork/hello-world-infernet:1.0.0 layers_done=2 note="two words" empty="" error="StartupError: no such image"\n',
    );
  });

  test("behavior: colours: time and keys dim, level by severity, component cyan", () => {
    const line = formatPretty({ ts: record.ts, level: "error", msg: "boom", component: "node", a: 1 }, true);
    expect(line).toBe(
      "\x1b[2m12:22:01.123\x1b[0m \x1b[31mERROR\x1b[0m \x1b[36m[node]\x1b[0m boom \x1b[2ma=\x1b[0m1\n",
    );
  });

  test("behavior: a multi-line message stays on one line", () => {
    const line = formatPretty({ ts: record.ts, level: "info", msg: "one\ntwo" }, false);
    expect(line).toBe("12:22:01.123 INFO  one\\ntwo\n");
  });
});
