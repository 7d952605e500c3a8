// Builds the single self-contained executable.
//   bun run build.ts [--single] [--outdir dist]   → dist/infernet-node (linux x64), dist/infernet-node-linux-arm64
//   bun run build.ts --release [--single] [--outdir dist/release]
//              → infernet-node-<version>-linux-x64, …-linux-arm64, infernet-node.service, infernet-node-wait-ready,
//                SHA256SUMS
// --single: only the host target (linux x64). Otherwise linux arm64 is attempted too; cross-compiling needs Bun's
// runtime for that target from the npm registry, and when it cannot be had the build says so and still succeeds
// for the host (a release then ships, and SHA256SUMS lists, the host binary only).
// The version has one source, package.json; the commit is `git rev-parse --short=12 HEAD` (+ "-dirty" when
// tracked files differ from it), or $INFERNET_NODE_COMMIT when building outside a git checkout.
import { createHash } from "node:crypto";
import { chmodSync, mkdirSync } from "node:fs";
import { basename } from "node:path";
import { parseArgs } from "node:util";
import pkg from "./package.json" with { type: "json" };

const { values } = parseArgs({
  args: Bun.argv.slice(2),
  options: {
    single: { type: "boolean", default: false },
    release: { type: "boolean", default: false },
    outdir: { type: "string" },
  },
});

const version = pkg.version;
const commit = process.env.INFERNET_NODE_COMMIT || gitCommit();
const outdir = values.outdir ?? (values.release ? "dist/release" : "dist");
mkdirSync(outdir, { recursive: true });

function gitCommit(): string {
  const head = Bun.spawnSync(["git", "rev-parse", "--short=12", "HEAD"], { cwd: import.meta.dir });
  if (head.exitCode !== 0) return "unknown";
  const dirty =
    Bun.spawnSync(["git", "diff", "--quiet", "HEAD", "--"], { cwd: import.meta.dir }).exitCode !== 0;
  return `${head.stdout.toString().trim()}${dirty ? "-dirty" : ""}`;
}

interface Target {
  target: "bun-linux-x64" | "bun-linux-arm64";
  outfile: string;
  host: boolean;
}

const name = (arch: "x64" | "arm64", host: boolean) =>
  values.release
    ? `${outdir}/infernet-node-${version}-linux-${arch}`
    : `${outdir}/infernet-node${host ? "" : `-linux-${arch}`}`;
const targets: Target[] = [{ target: "bun-linux-x64", outfile: name("x64", true), host: true }];
if (!values.single) targets.push({ target: "bun-linux-arm64", outfile: name("arm64", false), host: false });

let failed = false;
const built: string[] = [];
for (const { target, outfile, host } of targets) {
  const started = performance.now();
  try {
    const result = await Bun.build({
      entrypoints: ["src/main.ts"],
      compile: { target, outfile },
      minify: true,
      sourcemap: "linked",
      // Precompiled bytecode: start-up parses far less JavaScript (bun-stack.md: ~150 → ~55 ms for a bundle
      // this size, +7 MB). It needs ESM output because main.ts uses top-level await.
      bytecode: true,
      format: "esm",
      define: {
        INFERNET_NODE_VERSION: JSON.stringify(version),
        INFERNET_NODE_COMMIT: JSON.stringify(commit),
      },
    });
    if (!result.success) throw new AggregateError(result.logs, result.logs.map(String).join("\n"));
    await Bun.file(`${outfile}.map`)
      .delete()
      .catch(() => {});
    built.push(outfile);
    const size = Bun.file(outfile).size;
    console.log(
      `built ${outfile} (${target}, v${version}, commit ${commit}, ${(size / 1e6).toFixed(1)} MB) in ${Math.round(performance.now() - started)} ms`,
    );
  } catch (error) {
    const reason = error instanceof Error ? error.message.split("\n")[0] : String(error);
    if (host) {
      console.error(`build for ${target} failed: ${reason}`);
      failed = true;
    } else {
      console.error(`skipped ${target}: cannot build it here (${reason}); the host binary is unaffected`);
    }
  }
}

if (values.release && !failed) {
  // The systemd unit and its readiness wait ship beside the binaries, covered by the same checksums.
  for (const [from, to] of [
    ["deploy/infernet-node.service", "infernet-node.service"],
    ["deploy/wait-ready.sh", "infernet-node-wait-ready"],
  ] as const) {
    await Bun.write(`${outdir}/${to}`, Bun.file(from));
    chmodSync(`${outdir}/${to}`, to.endsWith(".service") ? 0o644 : 0o755);
    built.push(`${outdir}/${to}`);
  }
  // The format `sha256sum -c SHA256SUMS` reads: "<hex>  <file name>".
  const lines: string[] = [];
  for (const file of built) {
    const hash = createHash("sha256")
      .update(await Bun.file(file).bytes())
      .digest("hex");
    lines.push(`${hash}  ${basename(file)}`);
  }
  await Bun.write(`${outdir}/SHA256SUMS`, `${lines.join("\n")}\n`);
  console.log(`wrote ${outdir}/SHA256SUMS (${built.length} file${built.length === 1 ? "" : "s"})`);
}
process.exit(failed ? 1 : 0);
