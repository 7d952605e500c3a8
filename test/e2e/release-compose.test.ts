// deploy/docker-compose.yaml: validated with docker-compose (Debian's v1; installed in the set-up when missing),
// then the node and Redis started from it and checked. No registry here, so the images are built locally: the
// node's with deploy/build-image.sh from the release binary (as an operator would), Redis's from this machine's
// redis-server the same way. fluent-bit has no local image and is validated, not started.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildBinary, repoRoot, runCommand } from "../fixtures/binary.ts";
import { freePort, waitFor } from "../fixtures/net.ts";

const run = `${process.pid}`;
const project = `infernet-compose-${run}`;
const nodeImage = `infernet-node:compose-test-${run}`;
const redisImage = `infernet-test-redis:compose-${run}`;
let dir: string;
let compose: string | null;
let port: number;

/** runCommand in the scratch directory, stdout and stderr together. */
async function sh(
  argv: string[],
  options: { cwd?: string; env?: Record<string, string> } = {},
): Promise<{ code: number; out: string }> {
  const { code, stdout, stderr } = await runCommand(argv, { cwd: dir, ...options });
  return { code, out: stdout + stderr };
}

const composeEnv = () => ({
  INFERNET_NODE_IMAGE: nodeImage,
  REDIS_IMAGE: redisImage,
  INFERNET_PORT: String(port),
});
const composeCmd = (...args: string[]) => [
  compose as string,
  "-p",
  project,
  "-f",
  "docker-compose.yaml",
  ...args,
];

beforeAll(async () => {
  compose = Bun.which("docker-compose");
  if (!compose && Bun.which("apt-get") && process.getuid?.() === 0) {
    await Bun.spawn(["apt-get", "install", "-y", "-qq", "--no-install-recommends", "docker-compose"], {
      env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
      stdout: "ignore",
      stderr: "ignore",
    }).exited;
    compose = Bun.which("docker-compose");
  }
  dir = mkdtempSync(join(tmpdir(), "infernet-compose-"));
  port = freePort();
  // The operator's steps: the compose file and fluent-bit.conf as shipped, config.json from the example,
  // the environment file from its example with mode 0600.
  for (const file of ["docker-compose.yaml", "fluent-bit.conf"])
    copyFileSync(join(repoRoot, "deploy", file), join(dir, file));
  const config = JSON.parse(readFileSync(join(repoRoot, "deploy/config.compose.json"), "utf8"));
  writeFileSync(join(dir, "config.json"), JSON.stringify({ ...config, forward_stats: false }, null, 2));
  copyFileSync(join(repoRoot, "deploy/infernet-node.env.example"), join(dir, "infernet-node.env"));
  chmodSync(join(dir, "infernet-node.env"), 0o600);
}, 120_000);

afterAll(async () => {
  if (compose) await sh(composeCmd("down", "-v", "--timeout", "20"), { env: composeEnv() });
  await sh(["docker", "image", "rm", "-f", nodeImage, redisImage]);
  rmSync(dir, { recursive: true, force: true });
}, 60_000);

function needCompose(): string {
  if (!compose)
    throw new Error(
      "docker-compose is not installed and could not be installed with apt-get: install Debian's docker-compose (scripts/setup.sh does)",
    );
  return compose;
}

describe("docker compose", () => {
  test("default: deploy/docker-compose.yaml is valid: node, redis and fluent-bit with the config read-only", async () => {
    needCompose();
    const result = await sh(composeCmd("config"), { env: composeEnv() });
    expect(result.code).toBe(0);
    expect(result.out).toContain("node:");
    expect(result.out).toContain("redis:");
    expect(result.out).toContain("fluentbit:");
    expect(result.out).toMatch(/config\.json:\/etc\/infernet-node\/config\.json:ro/);
    expect(result.out).toContain("read_only: true");
  });

  test("behavior: the node and Redis start from it with locally built images, and the node is healthy on Redis", async () => {
    needCompose();
    const binary = await buildBinary();
    const built = await sh(["bash", join(repoRoot, "deploy/build-image.sh"), binary, nodeImage]);
    expect(built.out).toContain(`built ${nodeImage}`);
    const redis = await sh([
      "bash",
      "-c",
      `set -e; r=$(mktemp -d); trap 'rm -rf "$r"' EXIT; bin=$(command -v redis-server)
       mkdir -p "$r/usr/local/bin" "$r/data" "$r/tmp" "$r/etc"; cp -L "$bin" "$r/usr/local/bin/redis-server"
       for lib in $(ldd "$bin" | grep -oE '/[^ ]+\\.so[^ ]*'); do mkdir -p "$r$(dirname "$lib")"; cp -L "$lib" "$r$lib"; done
       echo 'root:x:0:0:root:/data:/bin/false' > "$r/etc/passwd"
       tar -C "$r" -c . | docker import --change 'ENV PATH=/usr/local/bin' --change 'WORKDIR /data' - ${redisImage} >/dev/null`,
    ]);
    expect(redis.code).toBe(0);

    const up = await sh(composeCmd("up", "-d", "node", "redis"), { env: composeEnv() });
    expect(up.code).toBe(0);
    const health = await waitFor(
      "GET /health of the node in compose",
      async () => {
        const res = await fetch(`http://127.0.0.1:${port}/health`);
        return res.status === 200
          ? ((await res.json()) as { status: string; checks: Record<string, unknown> })
          : undefined;
      },
      60_000,
    );
    expect(health.status).toBe("healthy");
    expect(JSON.stringify(health.checks)).toContain("redis");

    // Console output in compose is JSON lines (no terminal), and the key from the env file is not in it.
    const logs = await sh(composeCmd("logs", "--no-color", "node"), { env: composeEnv() });
    expect(logs.out).toContain('"msg":"Node ready"');
    expect(logs.out).not.toContain("0x0000000000000000000000000000000000000000000000000000000000000000");

    const stop = await sh(composeCmd("stop", "--timeout", "30", "node"), { env: composeEnv() });
    expect(stop.code).toBe(0);
    const state = await sh(["docker", "inspect", "--format", "{{.State.ExitCode}}", `${project}_node_1`]);
    expect(state.out.trim()).toBe("0");
  }, 120_000);
});
