// Measures, against the local Docker engine with the example echo image:
//   1. node start → all containers ready, for N example containers (fresh: created; warm: reused, running)
//   2. time to detect a container killed from outside (kill → status "stopped"), and until it is back ready
// Usage: bun run bench/containers/bench.ts [containers=3] [rounds=5]
// Every container it creates carries a per-run label and is removed at the end.
import { randomBytes } from "node:crypto";
import Docker from "dockerode";
import { loadConfig } from "../../src/config/load.ts";
import { createLog } from "../../src/lib/log.ts";
import { createContainers } from "../../src/orchestration/docker/containers.ts";
import { freePort } from "../../test/fixtures/net.ts";

const count = Number(process.argv[2] ?? 3);
const rounds = Number(process.argv[3] ?? 5);
const runId = `bench-${randomBytes(3).toString("hex")}`;
const labels = { "infernet-node.test-run": runId };
const docker = new Docker();

const build = Bun.spawnSync(["bash", `${import.meta.dir}/../../examples/containers/build.sh`]);
if (build.exitCode !== 0) throw new Error(build.stderr.toString());

const ids = Array.from({ length: count }, (_, i) => `${runId}-svc${i}`);
const ports = ids.map(() => freePort());
const config = loadConfig(
  {
    startup_wait: 0,
    containers: ids.map((id, i) => ({ id, image: "infernet-echo:latest", port: ports[i] })),
  },
  {},
).config;

async function boot() {
  const manager = createContainers({
    config,
    log: createLog("bench"),
    host: "127.0.0.1",
    labels,
    checkIntervalMs: 5000,
    stopTimeoutS: 5,
  });
  const controller = new AbortController();
  const started = performance.now();
  await manager.setup?.(controller.signal);
  const readyMs = performance.now() - started;
  if (!manager.statuses().every((s) => s.ready)) throw new Error("not all ready");
  const running = manager.run?.(controller.signal);
  return {
    manager,
    readyMs,
    async stop() {
      controller.abort();
      await running;
      await manager.close?.();
    },
  };
}

async function until(fn: () => boolean): Promise<number> {
  const started = performance.now();
  while (!fn()) await Bun.sleep(2);
  return performance.now() - started;
}

const stats = (xs: number[]) => {
  const sorted = [...xs].sort((a, b) => a - b);
  const median = sorted[Math.floor(sorted.length / 2)] ?? 0;
  return `median ${median.toFixed(0)} ms (min ${sorted[0]?.toFixed(0)}, max ${sorted.at(-1)?.toFixed(0)}, n=${xs.length})`;
};

try {
  // Fresh: no containers exist yet (pull attempt fails fast offline → local image, create, start, readiness).
  const fresh = await boot();
  // Kill detection while it runs.
  const detect: number[] = [];
  const recover: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const id = ids[i % ids.length] as string;
    const index = ids.indexOf(id);
    const status = () => fresh.manager.statuses()[index];
    const t0 = performance.now();
    await docker.getContainer(id).kill();
    await until(() => status()?.state === "stopped" || status()?.state === "unhealthy");
    detect.push(performance.now() - t0);
    await until(() => status()?.ready === true);
    recover.push(performance.now() - t0);
  }
  await fresh.stop();
  // Warm: the containers exist (stopped) and match: started again.
  const warmStopped: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const node = await boot();
    warmStopped.push(node.readyMs);
    await node.stop();
  }
  console.log(`containers: ${count}, docker ${(await docker.version()).Version}, bun ${Bun.version}`);
  console.log(`start → all ready, fresh (create + start): ${fresh.readyMs.toFixed(0)} ms`);
  console.log(`start → all ready, existing stopped containers: ${stats(warmStopped)}`);
  console.log(`kill → reported (die event):               ${stats(detect)}`);
  console.log(`kill → ready again (restarted by the node): ${stats(recover)}`);
} finally {
  const list = await docker.listContainers({
    all: true,
    filters: { label: [`infernet-node.test-run=${runId}`] },
  });
  await Promise.all(list.map((c) => docker.getContainer(c.Id).remove({ force: true })));
}
