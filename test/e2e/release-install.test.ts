// The release path an operator follows (README, "Operator's guide"), in a scratch root instead of `/`:
// build the release, "download" it, verify the checksums, install the binary, the readiness wait and the unit,
// write a read-only config and a 0600 environment file holding the key, run the node as an unprivileged user
// the way the unit does (config mounted read-only, key in the environment, working directory in the state
// directory), wait for readiness with the shipped wait-ready script, stop it with SIGTERM (exit 0), and check
// the unit with `systemd-analyze verify`.
// Differences from a real install, because this runs on a shared machine as root: the user is `nobody`
// (65534) instead of a new `infernet` system user, and the unit's paths live under the scratch root.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import {
  chmodSync,
  chownSync,
  copyFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pkg from "../../package.json" with { type: "json" };
import { startChain, type TestChain } from "../fixtures/anvil.ts";
import { repoRoot, runCommand } from "../fixtures/binary.ts";
import { freePort } from "../fixtures/net.ts";

const NOBODY = 65534;
const version = pkg.version;
let work: string;
let release: string;

/** runCommand in the scratch directory, stdout and stderr together. */
async function run(
  argv: string[],
  options: { cwd?: string; env?: Record<string, string> } = {},
): Promise<{ code: number; out: string }> {
  const { code, stdout, stderr } = await runCommand(argv, { cwd: work, ...options });
  return { code, out: stdout + stderr };
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), "infernet-release-"));
  chmodSync(work, 0o755); // the service user must reach the scratch root
  release = join(work, "release");
  const built = await run(["bun", "run", "build.ts", "--release", "--single", "--outdir", release], {
    cwd: repoRoot,
  });
  if (built.code !== 0) throw new Error(`release build failed: ${built.out}`);
}, 120_000);

afterAll(() => {
  rmSync(work, { recursive: true, force: true });
});

describe("release", () => {
  test("default: the release build writes versioned artefacts, the unit, the readiness wait and SHA256SUMS", async () => {
    const files = readdirSync(release).sort();
    expect(files).toEqual(
      [
        "SHA256SUMS",
        "infernet-node-wait-ready",
        "infernet-node.service",
        `infernet-node-${version}-linux-x64`,
      ].sort(),
    );
    const sums = readFileSync(join(release, "SHA256SUMS"), "utf8").trim().split("\n");
    for (const line of sums) {
      const [hash, name] = line.split("  ");
      const actual = createHash("sha256")
        .update(readFileSync(join(release, name ?? "")))
        .digest("hex");
      expect(actual).toBe(hash as string);
    }
    const result = await run([join(release, `infernet-node-${version}-linux-x64`), "--version"]);
    expect(result.code).toBe(0);
    expect(result.out).toMatch(
      new RegExp(
        `^infernet-node ${version.replace(/\./g, "\\.")} \\(commit [0-9a-f]{12}(-dirty)?, compatible with infernet-node v1\\.4\\.0\\)\\n$`,
      ),
    );
  });

  test("error: a download that does not match SHA256SUMS fails the check", async () => {
    const downloads = join(work, "tampered");
    mkdirSync(downloads);
    const binary = `infernet-node-${version}-linux-x64`;
    copyFileSync(join(release, "SHA256SUMS"), join(downloads, "SHA256SUMS"));
    writeFileSync(
      join(downloads, binary),
      Buffer.concat([readFileSync(join(release, binary)), Buffer.from("x")]),
    );
    const check = await run(["sha256sum", "--check", "--ignore-missing", "SHA256SUMS"], { cwd: downloads });
    expect(check.code).not.toBe(0);
    expect(check.out).toContain(`${binary}: FAILED`);
  });

  describe("installed into a scratch root as the guide says", () => {
    let root: string;
    let chain: TestChain & AsyncDisposable;
    beforeAll(async () => {
      chain = await startChain();
      root = join(work, "root");
      // 1. Download (here: copy) the binary, the unit, the readiness wait and SHA256SUMS; 2. verify them.
      const downloads = join(work, "downloads");
      cpSync(release, downloads, { recursive: true });
      const check = await run(["sha256sum", "--check", "--ignore-missing", "SHA256SUMS"], { cwd: downloads });
      if (check.code !== 0) throw new Error(`checksum: ${check.out}`);
      // 3. Install.
      const install = async (...args: string[]) => {
        const result = await run(["install", ...args], { cwd: downloads });
        if (result.code !== 0) throw new Error(`install ${args.join(" ")}: ${result.out}`);
      };
      await install(
        "-D",
        "-m",
        "0755",
        `infernet-node-${version}-linux-x64`,
        `${root}/usr/local/bin/infernet-node`,
      );
      await install(
        "-D",
        "-m",
        "0755",
        "infernet-node-wait-ready",
        `${root}/usr/local/lib/infernet-node/wait-ready`,
      );
      await install(
        "-D",
        "-m",
        "0644",
        "infernet-node.service",
        `${root}/etc/systemd/system/infernet-node.service`,
      );
      // 4. Directories: config root-owned and readable by the service user; state and logs owned by it.
      await install("-d", "-m", "0755", `${root}/etc/infernet-node`);
      for (const dir of ["var/lib/infernet-node", "var/log/infernet-node"]) {
        await install("-d", "-m", "0750", `${root}/${dir}`);
        chownSync(`${root}/${dir}`, NOBODY, NOBODY);
      }
    }, 60_000);
    afterAll(async () => {
      await chain?.[Symbol.asyncDispose]();
    });

    test("behavior: runs with a read-only config and the key from a 0600 environment file, gets ready, stops with exit 0", async () => {
      const port = freePort();
      const key = chain.accounts.other.privateKey;
      const etc = `${root}/etc/infernet-node`;
      // 5. The config (no key in it) and the environment file holding the key.
      const config = {
        containers: [],
        chain: {
          enabled: true,
          rpc_url: chain.rpcUrl,
          registry_address: chain.addresses.registry,
          wallet: {},
        },
        server: { host: "127.0.0.1", port },
        log: { path: `${root}/var/log/infernet-node/infernet_node.log` },
        store: { path: `${root}/var/lib/infernet-node/infernet_jobs.sqlite` },
        forward_stats: false,
        shutdown_timeout: 10,
      };
      writeFileSync(`${etc}/config.json`, JSON.stringify(config, null, 2));
      chmodSync(`${etc}/config.json`, 0o644);
      writeFileSync(`${etc}/infernet-node.env`, `INFERNET_PRIVATE_KEY=${key}\n`, { mode: 0o600 });
      chmodSync(`${etc}/infernet-node.env`, 0o600);
      expect(statSync(`${etc}/infernet-node.env`).mode & 0o777).toBe(0o600);
      const configHash = createHash("sha256")
        .update(readFileSync(`${etc}/config.json`))
        .digest("hex");

      // 6. check-config, as the service user, with the key from the environment file.
      const envFile = Object.fromEntries(
        readFileSync(`${etc}/infernet-node.env`, "utf8")
          .trim()
          .split("\n")
          .map((line) => line.split("=", 2) as [string, string]),
      );
      const asService = (args: string[]) => [
        "unshare",
        "--mount",
        "sh",
        "-c",
        // What the unit gives the node: /etc read-only (ProtectSystem=strict), node_modules of the build machine
        // hidden (the binary must not need it), an unprivileged user without new privileges.
        `mount --bind -o ro "${etc}" "${etc}" && mount -t tmpfs none "${repoRoot}/node_modules" && exec setpriv --reuid=${NOBODY} --regid=${NOBODY} --clear-groups --no-new-privs "$@"`,
        "sh",
        `${root}/usr/local/bin/infernet-node`,
        ...args,
      ];
      const env = { ...process.env, ...envFile, LOG_LEVEL: "info" } as Record<string, string>;
      delete env.LOG_FORMAT;
      const check = Bun.spawnSync(asService(["check-config", "--config", `${etc}/config.json`]), {
        cwd: `${root}/var/lib/infernet-node`,
        env,
      });
      expect(check.stderr.toString()).toBe("");
      expect(check.stdout.toString()).toContain("chain: on");
      expect(check.exitCode).toBe(0);

      // 7. Start, and wait for readiness with the script the unit runs as ExecStartPost.
      const started = performance.now();
      const node = Bun.spawn(asService(["--config", `${etc}/config.json`]), {
        cwd: `${root}/var/lib/infernet-node`,
        env,
        stdout: "pipe",
        stderr: "pipe",
      });
      const stderr = new Response(node.stderr).text();
      const wait = await run([
        `${root}/usr/local/lib/infernet-node/wait-ready`,
        `http://127.0.0.1:${port}`,
        "60",
      ]);
      const readyMs = performance.now() - started;
      expect(wait.out).toMatch(/infernet-node is (ready|healthy)/);
      expect(wait.code).toBe(0);
      console.log(`release install: start → ready ${readyMs.toFixed(0)} ms (${wait.out.trim()})`);
      const ready = await fetch(`http://127.0.0.1:${port}/ready`);
      const health = await fetch(`http://127.0.0.1:${port}/health`);
      expect(ready.status === 200 || (ready.status === 404 && health.status === 200)).toBe(true);

      // 8. Stop as systemd does: SIGTERM, exit 0.
      node.kill("SIGTERM");
      expect(await node.exited).toBe(0);

      // The config is untouched, files were written only in the state and log directories, the log file is
      // JSON lines, and the key appears in neither the console output nor the log file.
      expect(
        createHash("sha256")
          .update(readFileSync(`${etc}/config.json`))
          .digest("hex"),
      ).toBe(configHash);
      expect(readdirSync(etc).sort()).toEqual(["config.json", "infernet-node.env"]);
      expect(
        readdirSync(`${root}/var/lib/infernet-node`).some((f) => f.startsWith("infernet_jobs.sqlite")),
      ).toBe(true);
      const logFile = readFileSync(`${root}/var/log/infernet-node/infernet_node.log`, "utf8");
      const messages = logFile
        .trim()
        .split("\n")
        .map((line) => (JSON.parse(line) as { msg: string }).msg);
      expect(messages).toContain("Node ready");
      expect(messages.at(-1)).toBe("Node stopped");
      const consoleText = await stderr;
      for (const text of [consoleText, logFile]) {
        expect(text).not.toContain(key);
        expect(text).not.toContain(key.slice(2));
      }
      expect(statSync(`${root}/var/log/infernet-node/infernet_node.log`).uid).toBe(NOBODY);
    }, 60_000);

    test("default: systemd-analyze verify passes on deploy/infernet-node.service", async () => {
      // Debian's systemd package brings systemd-analyze; installing it does not make systemd PID 1 (that is
      // systemd-sysv), so it is safe on a machine or container that runs without systemd.
      if (!Bun.which("systemd-analyze") && Bun.which("apt-get") && process.getuid?.() === 0)
        await run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", "systemd"], {
          env: { DEBIAN_FRONTEND: "noninteractive" },
        });
      const analyze = Bun.which("systemd-analyze");
      if (!analyze)
        throw new Error(
          "systemd-analyze is not installed, so the unit cannot be verified here: install Debian's systemd package (scripts/setup.sh does)",
        );
      // The scratch root needs systemd's own units (sysinit.target, …) for the dependency checks.
      // (symlinks kept as they are: masked units point at /dev/null).
      if (!existsSync(`${root}/usr/lib/systemd/system`)) {
        mkdirSync(`${root}/usr/lib/systemd`, { recursive: true });
        const copy = await run(["cp", "-a", "/usr/lib/systemd/system", `${root}/usr/lib/systemd/`]);
        expect(copy.code).toBe(0);
      }
      expect(readFileSync(`${root}/etc/systemd/system/infernet-node.service`, "utf8")).toBe(
        readFileSync(join(repoRoot, "deploy/infernet-node.service"), "utf8"),
      );
      const verify = async () =>
        run([analyze, "verify", `--root=${root}`, "/etc/systemd/system/infernet-node.service"]);
      const good = await verify();
      // verify exits 0 on unknown keys and values it ignores, so any output counts as a failure.
      expect(good.out).toBe("");
      expect(good.code).toBe(0);

      // And it would notice: a misspelt key and a bad value are reported.
      const unit = `${root}/etc/systemd/system/infernet-node.service`;
      const original = readFileSync(unit, "utf8");
      writeFileSync(
        unit,
        original.replace("KillMode=mixed", "KillMode=bogus").replace("Restart=", "Restrt="),
      );
      const bad = await verify();
      writeFileSync(unit, original);
      expect(bad.out).toContain("Unknown key 'Restrt'");
      expect(bad.out).toContain("bogus");
    });
  });
});
