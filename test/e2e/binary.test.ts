// The release binary, run as an operator runs it: node_modules hidden, a config file, signals.
import { beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildBinary, repoRoot, runBinary, withoutNodeModules } from "../fixtures/binary.ts";
import { freePort, waitFor } from "../fixtures/net.ts";

let binary: string;
beforeAll(async () => {
  binary = await buildBinary();
}, 120_000);

/** Our sample config, with no containers (so no Docker call), a free port and files in a temp dir. */
async function writeConfig(
  overrides: Record<string, unknown> = {},
): Promise<{ dir: string; path: string; port: number }> {
  const dir = mkdtempSync(join(tmpdir(), "infernet-e2e-"));
  const port = await freePort();
  const sample = JSON.parse(readFileSync(join(repoRoot, "config.sample.json"), "utf8"));
  const config = {
    ...sample,
    containers: [],
    server: { ...sample.server, port, host: "127.0.0.1" },
    log: { ...sample.log, path: join(dir, "node.log") },
    store: { ...sample.store, path: join(dir, "jobs.sqlite") },
    ...overrides,
  };
  const path = join(dir, "config.json");
  writeFileSync(path, JSON.stringify(config, null, 2));
  return { dir, path, port };
}

describe("binary", () => {
  test("default: --version runs without node_modules", async () => {
    const result = await runBinary(binary, ["--version"]);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(
      /^infernet-node \d+\.\d+\.\d+\S* \(commit [0-9a-f]{12}(-dirty)?, compatible with infernet-node v1\.4\.0\)\n$/,
    );
  });

  test("behavior: --help lists the commands", async () => {
    const result = await runBinary(binary, ["--help"]);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain("check-config");
    expect(result.stdout).toContain("INFERNET_PRIVATE_KEY");
  });

  test("behavior: check-config validates the sample and prints a summary, starting nothing", async () => {
    const result = await runBinary(binary, [
      "check-config",
      "--config",
      join(repoRoot, "config.sample.json"),
    ]);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain("containers: echo (port 3000)");
    expect(result.stdout).toContain("chain: off");
    expect(result.stdout).toContain("store: embedded");
  });

  test("behavior: INFERNET_CONFIG_PATH names the config file", async () => {
    const { path } = await writeConfig();
    const result = await runBinary(binary, ["check-config"], { env: { INFERNET_CONFIG_PATH: path } });
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(`config ${path}: ok`);
  });

  test("error: an invalid config exits 1 with one message listing every problem, no stack trace", async () => {
    const { path } = await writeConfig({ chain: { enabled: true }, server: { port: "http" } });
    const result = await runBinary(binary, ["--config", path]);
    expect(result.code).toBe(1);
    expect(result.stderr).toBe(
      ["infernet-node: invalid configuration:", '  - server.port: expected an integer, got "http"', ""].join(
        "\n",
      ),
    );
    const chain = await writeConfig({ chain: { enabled: true } });
    const second = await runBinary(binary, ["check-config", "--config", chain.path]);
    expect(second.code).toBe(1);
    expect(second.stderr).toContain("chain.rpc_url: required when chain.enabled is true");
    expect(second.stderr).toContain("chain.registry_address: required when chain.enabled is true");
    expect(second.stderr).toContain("chain.wallet: required when chain.enabled is true");
    expect(second.stderr).not.toContain("    at ");
  });

  test("behavior: check-config shows remote URLs as scheme://host only", async () => {
    const { path } = await writeConfig({
      manage_containers: false,
      containers: [{ id: "remote", url: "https://user:pw-123456@svc.example.org/api/k-999999" }],
    });
    const result = await runBinary(binary, ["check-config", "--config", path]);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain("remote (port 3000, url https://svc.example.org)");
    expect(result.stdout).not.toContain("pw-123456");
    expect(result.stdout).not.toContain("k-999999");
  });

  test("error: a log file that cannot be opened is one line, exit 1", async () => {
    const { path } = await writeConfig({ log: { path: "/proc/infernet-no-such-dir/node.log" } });
    const result = await runBinary(binary, ["--config", path]);
    expect(result.code).toBe(1);
    expect(result.stderr).toStartWith(
      "infernet-node: cannot open the log file log.path /proc/infernet-no-such-dir/node.log: ",
    );
    expect(result.stderr.trim().split("\n")).toHaveLength(1);
  });

  test("behavior: a missing log directory is created; an unknown LOG_LEVEL falls back to the config's", async () => {
    const { dir, path, port } = await writeConfig();
    const config = JSON.parse(readFileSync(path, "utf8"));
    writeFileSync(
      path,
      JSON.stringify({ ...config, log: { ...config.log, path: join(dir, "logs/deep/node.log") } }),
    );
    using blocker = Bun.listen({ hostname: "127.0.0.1", port, socket: { data() {} } });
    expect(blocker.port).toBe(port);
    const result = await runBinary(binary, ["--config", path], {
      cwd: dir,
      env: { LOG_LEVEL: "verbose", LOG_FORMAT: "json" },
    });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("Node failed to start: ");
    expect(readFileSync(join(dir, "logs/deep/node.log"), "utf8")).toContain("Node failed to start: ");
  });

  test("behavior: SIGTERM while start-up is still waiting (unreachable RPC) stops cleanly with exit 0", async () => {
    // An RPC that accepts connections and never answers keeps the chain's set-up waiting.
    using silent = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    const { dir, path } = await writeConfig({
      chain: {
        enabled: true,
        rpc_url: `http://127.0.0.1:${silent.port}`,
        registry_address: "0x5FbDB2315678afecb367f032d93F642f64180aa3",
        wallet: { private_key: `0x${"11".repeat(32)}` },
        rpc_timeout: 30,
      },
    });
    const proc = Bun.spawn(withoutNodeModules(binary, ["--config", path]), {
      cwd: dir,
      env: { ...process.env, LOG_LEVEL: "info" },
      stdout: "pipe",
      stderr: "pipe",
    });
    await waitFor("the node to begin start-up", async () =>
      readFileSync(join(dir, "node.log"), "utf8").includes("Starting infernet-node") ? true : undefined,
    );
    proc.kill("SIGTERM");
    expect(await proc.exited).toBe(0);
    expect(readFileSync(join(dir, "node.log"), "utf8")).toContain("Node stopped during start-up");
  }, 60_000);

  test("error: an unknown argument exits 1", async () => {
    const result = await runBinary(binary, ["--frobnicate"]);
    expect(result.code).toBe(1);
    expect(result.stderr).toBe('infernet-node: unknown argument "--frobnicate" (see --help)\n');
  });

  test("error: a fatal start-up problem (REST port taken) exits 1 with a one-line reason", async () => {
    const { dir, path, port } = await writeConfig();
    using blocker = Bun.listen({ hostname: "127.0.0.1", port, socket: { data() {} } });
    expect(blocker.port).toBe(port);
    const result = await runBinary(binary, ["--config", path], {
      cwd: dir,
      env: { LOG_LEVEL: "info", LOG_FORMAT: "json" },
    });
    expect(result.code).toBe(1);
    const failure = result.stderr
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line) as { level: string; msg: string })
      .find((record) => record.level === "error");
    expect(failure?.msg).toStartWith("Node failed to start: ");
    expect(failure?.msg).toContain(String(port));
  });

  test("behavior: the node starts, serves /health, and exits 0 on SIGTERM within the deadline", async () => {
    const { dir, path, port } = await writeConfig({ shutdown_timeout: 10 });
    const proc = Bun.spawn(withoutNodeModules(binary, ["--config", path]), {
      cwd: dir,
      env: { ...process.env, LOG_LEVEL: "info" },
      stdout: "pipe",
      stderr: "pipe",
    });
    const health = await waitFor("GET /health", async () => {
      const res = await fetch(`http://127.0.0.1:${port}/health`);
      return res.status === 200 ? ((await res.json()) as { status: string }) : undefined;
    });
    expect(health.status).toBe("healthy");
    proc.kill("SIGTERM");
    const code = await proc.exited;
    expect(code).toBe(0);
    const log = readFileSync(join(dir, "node.log"), "utf8")
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line) as { msg: string });
    const messages = log.map((record) => record.msg);
    expect(messages).toContain("Shutting down node");
    expect(messages.at(-1)).toBe("Node stopped");
  }, 60_000);
});
