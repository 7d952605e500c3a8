import { afterEach, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { NodeError } from "../../../src/lib/errors.ts";
import {
  addLogSink,
  closeLogging,
  configureLogging,
  createLog,
  type LogRecord,
} from "../../../src/lib/log.ts";
import { redactText, redactUrl, registerSecret, urlOrigin } from "../../../src/lib/redact.ts";

afterEach(() => {
  closeLogging();
  configureLogging({ consoleLevel: "silent", consoleFormat: "json" });
});

describe("log", () => {
  test("default: one JSON object per line in the file, with level, message, component and fields", () => {
    const dir = mkdtempSync(join(tmpdir(), "log-"));
    const path = join(dir, "node.log");
    configureLogging({
      consoleLevel: "silent",
      consoleFormat: "json",
      file: { path, maxBytes: 0, backups: 2, level: "debug" },
    });
    createLog("listener").info("Finished snapshot sync", { last_id: 7 });
    createLog("rest").debug("debug goes to the file");
    const lines = readFileSync(path, "utf8")
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line));
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatchObject({
      level: "info",
      msg: "Finished snapshot sync",
      component: "listener",
      last_id: 7,
    });
    expect(typeof lines[0].ts).toBe("string");
    expect(lines[1]).toMatchObject({ level: "debug", component: "rest" });
  });

  test("behavior: the file rotates at max_file_size keeping backup_count backups", () => {
    const dir = mkdtempSync(join(tmpdir(), "log-"));
    const path = join(dir, "node.log");
    configureLogging({
      consoleLevel: "silent",
      consoleFormat: "json",
      file: { path, maxBytes: 400, backups: 2, level: "debug" },
    });
    const log = createLog("t");
    for (let i = 0; i < 40; i++) log.info(`message number ${i}`, { padding: "x".repeat(40) });
    expect(existsSync(`${path}.1`)).toBe(true);
    expect(existsSync(`${path}.2`)).toBe(true);
    expect(existsSync(`${path}.3`)).toBe(false);
    for (const file of [path, `${path}.1`, `${path}.2`]) {
      expect(readFileSync(file).length).toBeLessThanOrEqual(400);
    }
    expect(readFileSync(path, "utf8")).toContain("message number 39");
  });

  test("behavior: secrets are redacted in messages, fields and errors", () => {
    const key = `0x${"9f".repeat(32)}`;
    registerSecret(key);
    const records: LogRecord[] = [];
    const remove = addLogSink((record) => records.push(record));
    const log = createLog("wallet");
    log.info(`signing with ${key}`, {
      private_key: key,
      rpc: "https://user:hunter2@rpc.example.org/v1",
      headers: { Authorization: "Bearer abc.def" },
      error: new NodeError(`failed for ${key.slice(2)}`, { cause: new Error("Bearer tok-123 rejected") }),
    });
    remove();
    const text = JSON.stringify(records);
    expect(text).not.toContain("9f9f9f");
    expect(text).not.toContain("hunter2");
    expect(text).not.toContain("abc.def");
    expect(text).not.toContain("tok-123");
    expect(records[0]?.msg).toBe("signing with [redacted]");
  });
});

describe("log file that cannot be written", () => {
  test("error: a full disk (/dev/full) is reported once on the console; logging goes on and never throws", async () => {
    // In a process of its own: the report goes to the real stderr, which is read here instead of patched.
    const script = `
      const { configureLogging, createLog } = await import(${JSON.stringify(join(import.meta.dir, "../../../src/lib/log.ts"))});
      configureLogging({ consoleLevel: "error", consoleFormat: "json",
        file: { path: "/dev/full", maxBytes: 0, backups: 2, level: "debug" } });
      const log = createLog("t");
      for (let i = 0; i < 200; i++) log.info("line " + i);
      log.error("still logging on the console");
    `;
    const proc = Bun.spawn(["bun", "-e", script], { stdout: "pipe", stderr: "pipe" });
    const [code, stderr] = await Promise.all([proc.exited, new Response(proc.stderr).text()]);
    expect(code).toBe(0);
    const records = stderr
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line) as LogRecord);
    expect(records).toEqual([
      expect.objectContaining({
        level: "error",
        component: "log",
        msg: "cannot write the log file; log lines are dropped until it can be written again",
        path: "/dev/full",
        error: expect.stringContaining("ENOSPC"),
      }),
      expect.objectContaining({ level: "error", msg: "still logging on the console" }),
    ]);
  });
});

describe("redact", () => {
  test("default: URL credentials are removed", () => {
    expect(redactUrl("dial https://a:b@host:8545/x failed")).toBe(
      "dial https://[redacted]@host:8545/x failed",
    );
    expect(redactUrl("redis://:pw@127.0.0.1:6379")).toBe("redis://[redacted]@127.0.0.1:6379");
  });
  test("behavior: a password containing @ is removed whole", () => {
    expect(redactUrl("https://user:p@ss@host.example/x")).toBe("https://[redacted]@host.example/x");
  });
  test("behavior: urlOrigin keeps only scheme and host", () => {
    expect(urlOrigin("https://u:p@mainnet.example.io:8443/v3/0123456789abcdef?x=1")).toBe(
      "https://mainnet.example.io:8443",
    );
    expect(urlOrigin("not a url")).toBe("(invalid URL)");
  });
  test("behavior: bearer tokens are removed from text", () => {
    expect(redactText("Authorization: Bearer s3cr3t-token")).toBe("Authorization: Bearer [redacted]");
    expect(redactText('{"authorization":"bearer s3cr3t-token"}')).toBe(
      '{"authorization":"bearer [redacted]"}',
    );
  });
  test("behavior: the config key containers.bearer in a message is not taken for a token", () => {
    // The start-up warning used to read "containers.bearer [redacted] set: …".
    const warning = "containers.bearer is set: it is sent only to containers that also set url";
    expect(redactText(warning)).toBe(warning);
  });
});
