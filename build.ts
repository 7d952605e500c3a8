// Builds the single self-contained executable: `bun run build.ts [--single] [--outdir dist]`.
// --single: only the host target (linux x64 → dist/infernet-node). Without it, linux arm64 is attempted too
// (dist/infernet-node-linux-arm64); cross-compiling needs Bun's runtime for that target from the npm registry,
// and when it cannot be had the build says so and still succeeds for the host.
import { parseArgs } from "node:util";
import pkg from "./package.json" with { type: "json" };

const { values } = parseArgs({
  args: Bun.argv.slice(2),
  options: { single: { type: "boolean", default: false }, outdir: { type: "string", default: "dist" } },
});

const version = process.env.INFERNET_NODE_VERSION ?? pkg.version;

interface Target {
  target: "bun-linux-x64" | "bun-linux-arm64";
  outfile: string;
  host: boolean;
}

const targets: Target[] = [
  { target: "bun-linux-x64", outfile: `${values.outdir}/infernet-node`, host: true },
];
if (!values.single)
  targets.push({
    target: "bun-linux-arm64",
    outfile: `${values.outdir}/infernet-node-linux-arm64`,
    host: false,
  });

let failed = false;
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
      define: { INFERNET_NODE_VERSION: JSON.stringify(version) },
    });
    if (!result.success) throw new AggregateError(result.logs, result.logs.map(String).join("\n"));
    await Bun.file(`${outfile}.map`)
      .delete()
      .catch(() => {});
    const size = Bun.file(outfile).size;
    console.log(
      `built ${outfile} (${target}, v${version}, ${(size / 1e6).toFixed(1)} MB) in ${Math.round(performance.now() - started)} ms`,
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
process.exit(failed ? 1 : 0);
