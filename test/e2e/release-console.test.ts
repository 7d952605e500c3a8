// The console as an operator sees it, from the release binary: a readable line per event on a terminal (a real
// pty from util-linux `script`), JSON lines on a pipe, NO_COLOR and LOG_FORMAT=json honoured.
import { beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildBinary } from "../fixtures/binary.ts";

let binary: string;
let configPath: string;
let blocker: Bun.TCPSocketListener<undefined>;

beforeAll(async () => {
  binary = await buildBinary();
  const dir = mkdtempSync(join(tmpdir(), "infernet-console-"));
  // The REST port is taken, so the node logs its start, a warning and the failure, then exits 1: a short,
  // deterministic run through the real logging path.
  blocker = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  configPath = join(dir, "config.json");
  writeFileSync(
    configPath,
    JSON.stringify({
      containers: [],
      frobnicate: true,
      server: { host: "127.0.0.1", port: blocker.port },
      log: { path: join(dir, "node.log") },
      store: { path: join(dir, "jobs.sqlite") },
    }),
  );
}, 120_000);

/** Env for a child: the test preload's silencing removed, then `extra` applied. */
function env(extra: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env))
    if (value !== undefined && !["LOG_FORMAT", "NO_COLOR", "LOG_LEVEL"].includes(key)) out[key] = value;
  return { ...out, LOG_LEVEL: "info", TERM: "xterm", ...extra };
}

/** Runs the node with stdout and stderr on a pseudo-terminal; returns what the terminal showed, as lines. */
async function onTerminal(extra: Record<string, string> = {}): Promise<string[]> {
  const command = `exec '${binary}' --config '${configPath}'`;
  const proc = Bun.spawn(["script", "-qefc", command, "/dev/null"], {
    env: env(extra),
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  const [code, out] = await Promise.all([proc.exited, new Response(proc.stdout).text()]);
  expect(code).toBe(1); // the node's own exit code (script -e), from the port clash
  return out.replace(/\r/g, "").trim().split("\n");
}

const ESC = "\x1b";
const READABLE =
  /^\d\d:\d\d:\d\d\.\d{3} INFO {2}\[node\] Starting infernet-node version=\d+\.\d+\.\d+\S* commit=\S+ compat=1\.4\.0 pid=\d+$/;

describe("console", () => {
  test("default: on a terminal, one coloured readable line per event", async () => {
    const lines = await onTerminal();
    const start = lines.find((line) => line.includes("Starting infernet-node")) ?? "";
    // Escape codes shown as <ESC> so the expected colours read plainly.
    expect(start.replaceAll(ESC, "<ESC>")).toMatch(
      /^<ESC>\[2m\d\d:\d\d:\d\d\.\d{3}<ESC>\[0m <ESC>\[32mINFO <ESC>\[0m <ESC>\[36m\[node\]<ESC>\[0m Starting infernet-node <ESC>\[2mversion=<ESC>\[0m/,
    );
    expect(start.replaceAll(ESC, "<ESC>").replace(/<ESC>\[\d+m/g, "")).toMatch(READABLE);
    const warning = lines.find((line) => line.includes("frobnicate")) ?? "";
    expect(warning).toContain("\x1b[33mWARN \x1b[0m");
    const failure = lines.find((line) => line.includes("Node failed to start")) ?? "";
    expect(failure).toContain("\x1b[31mERROR\x1b[0m");
    for (const line of lines) expect(line.startsWith("{")).toBe(false);
  });

  test("behavior: NO_COLOR keeps the readable line and drops every colour", async () => {
    const lines = await onTerminal({ NO_COLOR: "1" });
    expect(lines.join("\n")).not.toContain("\x1b[");
    expect(lines.find((line) => line.includes("Starting infernet-node"))).toMatch(READABLE);
    expect(lines.find((line) => line.includes("frobnicate"))).toMatch(
      /^\d\d:\d\d:\d\d\.\d{3} WARN {2}\[node\] .*frobnicate/,
    );
  });

  test("behavior: LOG_FORMAT=json gives JSON lines even on a terminal", async () => {
    const lines = await onTerminal({ LOG_FORMAT: "json" });
    const records = lines.map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(records.map((r) => r.msg)).toContain("Starting infernet-node");
  });

  test("default: on a pipe, JSON lines with ts, level, component, msg and the fields", async () => {
    const proc = Bun.spawn([binary, "--config", configPath], {
      env: env({}),
      stdout: "pipe",
      stderr: "pipe",
    });
    const [code, stderr] = await Promise.all([proc.exited, new Response(proc.stderr).text()]);
    expect(code).toBe(1);
    const records = stderr
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    const start = records.find((r) => r.msg === "Starting infernet-node");
    expect(start).toMatchObject({ level: "info", component: "node", compat: "1.4.0" });
    expect(String(start?.ts)).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    expect(records.find((r) => r.level === "error")?.msg).toStartWith("Node failed to start: ");
    expect(stderr).not.toContain("\x1b[");
  });
});
