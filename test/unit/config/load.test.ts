import { describe, expect, test } from "bun:test";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  chainStartupProblems,
  loadConfig,
  loadConfigFile,
  PRIVATE_KEY_ENV,
} from "../../../src/config/load.ts";
import { ConfigError } from "../../../src/lib/errors.ts";
import { redactText } from "../../../src/lib/redact.ts";

const root = join(import.meta.dir, "../../..");
const fixtures = join(root, "test/fixtures/config");

/** The one ConfigError message that loading `raw` produces. */
function problemsOf(raw: unknown, env: Record<string, string> = {}): string[] {
  try {
    loadConfig(raw, env);
  } catch (error) {
    if (error instanceof ConfigError) return error.issues;
    throw error;
  }
  throw new Error("expected the config to be rejected");
}

const chainOn = (extra: Record<string, unknown> = {}) => ({
  enabled: true,
  rpc_url: "http://127.0.0.1:8545",
  registry_address: "0x5FbDB2315678afecb367f032d93F642f64180aa3",
  wallet: { private_key: "0x".padEnd(66, "1") },
  ...extra,
});
const container = (extra: Record<string, unknown> = {}) => ({ id: "c1", image: "img:1", ...extra });

describe("config: valid files", () => {
  test("behavior: the reference's config.sample.json loads unchanged", async () => {
    const { config, warnings } = await loadConfigFile(join(fixtures, "reference.sample.json"), {});
    expect(warnings).toEqual(['unknown config key "log_path" is ignored']);
    expect(config.containers[0]).toMatchObject({ id: "hello-world", port: 3000, external: true });
    expect(config.containers[0]?.accepted_payments["0x59F2f1fCfE2474fD5F0b9BA1E73ca90b143Eb8d0"]).toBe(
      1_000_000_000_000_000_000n,
    );
    expect(config.chain).toMatchObject({
      enabled: true,
      trail_head_blocks: 5,
      rpc_url: "http://127.0.0.1:8545",
    });
    expect(config.chain.snapshot_sync).toEqual({
      sleep: 1.5,
      batch_size: 200,
      starting_sub_id: 0,
      sync_period: 0.5,
    });
    expect(config.server.rate_limit).toEqual({ num_requests: 100, period: 100 });
    expect(config.redis).toMatchObject({ host: "redis", port: 6379 });
    expect(config.docker).toMatchObject({ username: "username", password: "password" });
    expect(config.startup_wait).toBe(1);
    // Its "0x..." placeholders are start-time problems, as in the reference, not load errors.
    expect(chainStartupProblems(config)).toEqual([
      "chain.registry_address: not a valid address (0x followed by 40 hex digits)",
      "chain.wallet.private_key: not a valid private key (64 hex digits, 0x optional)",
      "chain.wallet.payment_address: not a valid address (0x followed by 40 hex digits)",
    ]);
  });

  test("behavior: our config.sample.json loads with no warnings", async () => {
    const { config, warnings } = await loadConfigFile(join(root, "config.sample.json"), {});
    expect(warnings).toEqual([]);
    expect(config.chain.enabled).toBe(false);
    expect(config.redis).toBeNull();
    expect(config.containers.map((c) => c.id)).toEqual(["echo"]);
    expect(chainStartupProblems(config)).toEqual([]);
  });

  test("default: an empty object gets the reference's defaults", () => {
    const { config, warnings } = loadConfig({}, {});
    expect(warnings).toEqual([]);
    expect(config).toMatchObject({
      containers: [],
      forward_stats: true,
      manage_containers: true,
      startup_wait: 5,
      redis: null,
      docker: null,
      server: {
        port: 4000,
        rate_limit: { num_requests: 60, period: 60 },
        host: "0.0.0.0",
        trusted_proxies: [],
      },
      log: { path: "infernet_node.log", max_file_size: 1_073_741_824, backup_count: 2 },
      chain: {
        enabled: false,
        rpc_url: null,
        trail_head_blocks: 1,
        registry_address: null,
        wallet: null,
        snapshot_sync: { sleep: 1, batch_size: 500, starting_sub_id: 0, sync_period: 0.5 },
      },
      container_bind_address: "127.0.0.1",
      job_timeout: 180,
      stream_timeout: 60,
      shutdown_timeout: 30,
    });
  });

  test("default: container fields get the reference's defaults", () => {
    const { config } = loadConfig({ containers: [{ id: "a", image: "a:1" }] }, {});
    expect(config.containers[0]).toMatchObject({
      id: "a",
      image: "a:1",
      url: "",
      bearer: "",
      port: 3000,
      external: true,
      gpu: false,
      accepted_payments: {},
      allowed_ips: [],
      allowed_addresses: [],
      allowed_delegate_addresses: [],
      description: "",
      command: "",
      env: {},
      generates_proofs: false,
      volumes: [],
    });
  });

  test("behavior: a full custom config keeps every value", async () => {
    const { config, warnings } = await loadConfigFile(join(fixtures, "full-custom.json"), {});
    expect(warnings).toEqual(["Port 3100 is already in use. Auto-assigning port 3999 for container 'post'"]);
    const [gpt, post] = config.containers;
    expect(gpt).toMatchObject({
      port: 3100,
      gpu: true,
      allowed_ips: ["10.0.0.1/8", "192.168.1.7", "::1"],
      env: { MODEL: "small", THREADS: 4, DEBUG: false },
      volumes: ["/data/models:/models:ro", "cache:/cache"],
      generates_proofs: true,
    });
    expect(gpt?.accepted_payments["0x59F2f1fCfE2474fD5F0b9BA1E73ca90b143Eb8d0"]).toBe(
      123456789012345678901234567890n,
    );
    expect(post).toMatchObject({ id: "post", port: 3999, external: false });
    expect(config.chain).toMatchObject({
      trail_head_blocks: 3,
      rpc_timeout: 10,
      rpc_max_retries: 3,
      snapshot_sync: { sleep: 0.25, batch_size: 1000, starting_sub_id: 42, sync_period: 2 },
      wallet: { max_gas_limit: 4_000_000, allowed_sim_errors: ["out of gas"] },
    });
    expect(config.redis).toMatchObject({ host: "127.0.0.1", port: 6380, db: 2, key_prefix: "n1:" });
    expect(config.server).toMatchObject({
      port: 4100,
      host: "127.0.0.1",
      rate_limit: { num_requests: 10, period: 1.5 },
    });
    expect(config.log).toMatchObject({ level: "debug", format: "json", backup_count: 5 });
    expect(config.store).toMatchObject({ max_completed_jobs: 500, completed_ttl: 86400, pending_ttl: 600 });
    expect(config).toMatchObject({
      container_bind_address: "0.0.0.0",
      shutdown_timeout: 20,
      startup_wait: 2,
    });
    expect(chainStartupProblems(config)).toEqual([]);
  });

  test("behavior: numeric strings and boolean words are coerced like the reference", () => {
    const { config } = loadConfig(
      {
        manage_containers: "false",
        forward_stats: 0,
        startup_wait: "2.5",
        server: { port: "4001" },
        containers: [{ id: "a", port: "3001", external: "no", gpu: "yes" }],
      },
      {},
    );
    expect(config.manage_containers).toBe(false);
    expect(config.forward_stats).toBe(false);
    expect(config.startup_wait).toBe(2.5);
    expect(config.server.port).toBe(4001);
    expect(config.containers[0]).toMatchObject({ port: 3001, external: false, gpu: true });
  });

  test("behavior: ports are de-duplicated as the reference does", () => {
    const { config, warnings } = loadConfig(
      {
        manage_containers: false,
        containers: [{ id: "a" }, { id: "b" }, { id: "c" }, { id: "d", port: 3999 }],
      },
      {},
    );
    expect(config.containers.map((c) => c.port)).toEqual([3000, 3999, 3998, 3997]);
    expect(warnings).toEqual([
      "Port 3000 is already in use. Auto-assigning port 3999 for container 'b'",
      "Port 3000 is already in use. Auto-assigning port 3998 for container 'c'",
      "Port 3999 is already in use. Auto-assigning port 3997 for container 'd'",
    ]);
  });

  test("behavior: unknown keys are warnings naming the key, at every level", () => {
    const { warnings } = loadConfig(
      {
        extra: 1,
        server: { prot: 1 },
        containers: [{ id: "a", image: "a", colour: "red", env: { ANY: "ok" } }],
      },
      {},
    );
    expect(warnings).toEqual([
      'unknown config key "extra" is ignored',
      'unknown config key "server.prot" is ignored',
      'unknown config key "containers[0].colour" is ignored',
    ]);
  });

  test("behavior: the private key can come from INFERNET_PRIVATE_KEY", () => {
    const key = `0x${"ab".repeat(32)}`;
    const { config } = loadConfig(
      { chain: { enabled: true, rpc_url: "http://localhost:8545", registry_address: "0x".padEnd(42, "0") } },
      { [PRIVATE_KEY_ENV]: key },
    );
    expect(config.chain.wallet?.private_key).toBe(key);
    expect(config.chain.wallet?.max_gas_limit).toBe(5_000_000);
  });

  test("behavior: a private key without 0x is accepted", () => {
    const { config } = loadConfig({ chain: chainOn({ wallet: { private_key: "1".repeat(64) } }) }, {});
    expect(chainStartupProblems(config)).toEqual([]);
  });

  test("behavior: the loaded config is frozen", () => {
    const { config } = loadConfig({ containers: [{ id: "a", image: "a" }] }, {});
    expect(Object.isFrozen(config.containers[0])).toBe(true);
    expect(Object.isFrozen(config.server.rate_limit)).toBe(true);
  });
});

describe("config: invalid files give one message listing every problem", () => {
  const cases: Array<[string, unknown, string[]]> = [
    [
      "chain enabled without rpc_url",
      { chain: chainOn({ rpc_url: null }) },
      ["chain.rpc_url: required when chain.enabled is true (rpc_url must be defined when chain is enabled)"],
    ],
    [
      "chain enabled without registry_address",
      { chain: chainOn({ registry_address: "" }) },
      [
        "chain.registry_address: required when chain.enabled is true (registry_address must be defined when chain is enabled)",
      ],
    ],
    [
      "chain enabled without wallet",
      { chain: chainOn({ wallet: null }) },
      ["chain.wallet: required when chain.enabled is true (wallet must be defined when chain is enabled)"],
    ],
    [
      "chain enabled without private key",
      { chain: chainOn({ wallet: { max_gas_limit: 1 } }) },
      [
        "chain.wallet.private_key: required when chain.enabled is true, in the file or in INFERNET_PRIVATE_KEY (private_key must be defined when chain is enabled)",
      ],
    ],
    [
      "managed container without image",
      { containers: [{ id: "a" }] },
      [
        "containers[0].image: required when manage_containers is true (image must be defined when manage_containers is set to true)",
      ],
    ],
    ["docker without password", { docker: { username: "u" } }, ["docker.password: required"]],
    ["container without id", { containers: [{ image: "x" }] }, ["containers[0].id: required"]],
    [
      "container id with a comma",
      { containers: [container({ id: "a,b" })] },
      ["containers[0].id: must not contain commas or spaces"],
    ],
    [
      "non-numeric port",
      { containers: [container({ port: "abc" })] },
      ['containers[0].port: expected an integer, got "abc"'],
    ],
    ["port out of range", { server: { port: 70000 } }, ["server.port: must be a port between 1 and 65535"]],
    [
      "fractional integer",
      { chain: { trail_head_blocks: 1.5 } },
      ['chain.trail_head_blocks: expected an integer, got "1.5"'],
    ],
    ["boolean word", { forward_stats: "maybe" }, ['forward_stats: expected a boolean, got "maybe"']],
    [
      "invalid allowed_ips entry",
      { containers: [container({ allowed_ips: ["10.0.0.0/8", "10.0.0.300"] })] },
      ['containers[0].allowed_ips[1]: "10.0.0.300" is not an IP address or CIDR range'],
    ],
    [
      "duplicate container ids",
      { containers: [container(), container({ port: 3001 })] },
      ['containers[1].id: duplicate id "c1" (also containers[0])'],
    ],
    [
      "env value that is an object",
      { containers: [container({ env: { A: { b: 1 } } })] },
      ["containers[0].env.A: must be a string, number or boolean, not an object"],
    ],
    [
      "malformed volume",
      { containers: [container({ volumes: ["/data"] })] },
      ['containers[0].volumes[0]: "/data" must look like host_path:container_path[:mode]'],
    ],
    [
      "relative container path in a volume",
      { containers: [container({ volumes: ["/data:data"] })] },
      ['containers[0].volumes[0]: "/data:data": the container path must be absolute'],
    ],
    ["containers not a list", { containers: { id: "a" } }, ["containers: expected a list of containers"]],
    ["bad log level", { log: { level: "verbose" } }, ["log.level: expected debug, info, warn or error"]],
    [
      "batch_size zero",
      { chain: { snapshot_sync: { batch_size: 0 } } },
      ["chain.snapshot_sync.batch_size: batch_size must be at least 1"],
    ],
    [
      "negative payment amount",
      {
        containers: [container({ accepted_payments: { "0x0000000000000000000000000000000000000000": -1 } })],
      },
      [
        'containers[0].accepted_payments.0x0000000000000000000000000000000000000000: expected a non-negative integer amount, got "-1"',
      ],
    ],
    [
      "rpc_url that is not a URL",
      { chain: chainOn({ rpc_url: "127.0.0.1:8545" }) },
      ["chain.rpc_url: not a valid http(s) or ws(s) URL"],
    ],
    ["root is a list", [], ["(root): expected a JSON object"]],
  ];

  for (const [name, raw, expected] of cases) {
    test(`error: ${name}`, () => {
      expect(problemsOf(raw)).toEqual(expected);
    });
  }

  test("error: several problems are all listed in one message", () => {
    let message = "";
    try {
      loadConfig({ server: { port: "x" }, containers: [{ id: "a", port: 0 }, { image: 3 }] }, {});
    } catch (error) {
      message = error instanceof Error ? error.message : "";
    }
    expect(message).toBe(
      [
        "invalid configuration:",
        "  - containers[0].port: must be a port between 1 and 65535",
        "  - containers[1].id: required",
        "  - containers[1].image: expected a string",
        '  - server.port: expected an integer, got "x"',
      ].join("\n"),
    );
  });

  test("error: a file that is not JSON", async () => {
    const dir = mkdtempSync(join(tmpdir(), "cfg-"));
    const path = join(dir, "config.json");
    writeFileSync(path, "{ not json");
    await expect(loadConfigFile(path, {})).rejects.toThrow(`${path}: not valid JSON`);
  });

  test("error: a missing file", async () => {
    await expect(loadConfigFile("/nonexistent/config.json", {})).rejects.toThrow(
      "/nonexistent/config.json: file not found",
    );
  });

  test("behavior: an API key in the RPC URL path is redacted from later text", () => {
    loadConfig({ chain: chainOn({ rpc_url: "https://rpc.example.org/v3/k3y-0123456789" }) }, {});
    expect(redactText("POST https://rpc.example.org/v3/k3y-0123456789 failed")).toBe(
      "POST https://rpc.example.org[redacted] failed",
    );
  });

  test("error: the private key never appears in a config error", () => {
    const key = `0x${"cd".repeat(32)}`;
    const problems = problemsOf({ chain: chainOn({ rpc_url: null, wallet: { private_key: key } }) });
    expect(problems.join("\n")).not.toContain(key.slice(2));
  });
});
