// Micro-benchmark: setDone+get round trips per second for both job stores, each against its raw baseline
// (ioredis SET+GET, bun:sqlite INSERT OR REPLACE+SELECT) measured in the same run, reported as ratios.
// Run: bun run bench/store/store.bench.ts [ops]
import { Database } from "bun:sqlite";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { stringifyJson } from "../../src/lib/json.ts";
import { createLogger } from "../../src/lib/log.ts";
import type { JobResult, JobStore } from "../../src/shared/jobs.ts";
import { createEmbeddedStore } from "../../src/store/embedded.ts";
import { createRedisStore } from "../../src/store/redis.ts";
import { startPrivateRedis } from "../../test/fixtures/redis.ts";

const OPS = Number(process.argv[2] ?? 5000);
const CONCURRENCY = 32;
const log = createLogger({ component: "bench" });
const job = (id: string): JobResult => ({
  id,
  status: "success",
  intermediate_results: [],
  result: { container: "echo", output: { output: "hello world", n: 12345678901234567890n } },
});
const common = { instanceId: "bench", pendingTtlMs: 900_000, completedTtlMs: 0, maxCompleted: 100_000, log };

const ROUNDS = 3;
let round = 0;

/**
 * Runs `op(i)` OPS times with `concurrency` in flight, ROUNDS times on fresh ids; returns the best ops per
 * second (the machine is shared, so the best round is the least disturbed one).
 */
async function measure(concurrency: number, op: (i: number) => Promise<unknown>): Promise<number> {
  for (let i = 0; i < 200; i++) await op(-1 - i); // warm-up
  let best = 0;
  for (let r = 0; r < ROUNDS; r++) {
    const base = round++ * OPS;
    let next = 0;
    const started = performance.now();
    const worker = async () => {
      while (next < OPS) await op(base + next++);
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
    best = Math.max(best, OPS / ((performance.now() - started) / 1000));
  }
  return best;
}

const storeOp = (store: JobStore) => async (i: number) => {
  await store.setDone("10.0.0.1", job(`j${i}`));
  await store.get("10.0.0.1", [`j${i}`]);
};

const rows: [string, number, number][] = [];
const row = (name: string, opsPerSec: number, baseline: number) => rows.push([name, opsPerSec, baseline]);

const dir = mkdtempSync(join(tmpdir(), "store-bench-"));
try {
  // SQLite: raw baseline on a plain key/value table with the same pragmas, then the embedded store.
  const raw = new Database(join(dir, "raw.sqlite"), { create: true, strict: true });
  raw.exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;");
  raw.exec("CREATE TABLE kv (k TEXT PRIMARY KEY, v TEXT NOT NULL)");
  const put = raw.prepare<null, [string, string]>("INSERT OR REPLACE INTO kv (k, v) VALUES (?, ?)");
  const read = raw.prepare<{ v: string }, [string]>("SELECT v FROM kv WHERE k = ?");
  const sqliteRaw = await measure(1, async (i) => {
    put.run(`10.0.0.1:j${i}`, stringifyJson(job(`j${i}`)));
    read.get(`10.0.0.1:j${i}`);
  });
  raw.close();
  row("raw sqlite INSERT+SELECT", sqliteRaw, sqliteRaw);
  const embedded = createEmbeddedStore({ ...common, path: join(dir, "jobs.sqlite") });
  await embedded.setup?.(AbortSignal.timeout(10_000));
  row("embedded setDone+get", await measure(1, storeOp(embedded)), sqliteRaw);
  await embedded.close?.();

  // Redis: raw ioredis SET+GET, then the Redis store, sequential and with CONCURRENCY in flight.
  await using server = await startPrivateRedis();
  const client = new Redis({ host: server.host, port: server.port });
  const rawOp = async (i: number) => {
    await client.set(`raw:10.0.0.1:j${i}`, stringifyJson(job(`j${i}`)));
    await client.get(`raw:10.0.0.1:j${i}`);
  };
  const redisRaw1 = await measure(1, rawOp);
  const redisRawN = await measure(CONCURRENCY, rawOp);
  client.disconnect();
  const store = createRedisStore({
    ...common,
    redis: { host: server.host, port: server.port, db: 0, keyPrefix: "bench:" },
  });
  await store.setup?.(AbortSignal.timeout(10_000));
  row("raw ioredis SET+GET (1 in flight)", redisRaw1, redisRaw1);
  row("redis store setDone+get (1 in flight)", await measure(1, storeOp(store)), redisRaw1);
  row(`raw ioredis SET+GET (${CONCURRENCY} in flight)`, redisRawN, redisRawN);
  row(
    `redis store setDone+get (${CONCURRENCY} in flight)`,
    await measure(CONCURRENCY, storeOp(store)),
    redisRawN,
  );
  await store.close?.();
} finally {
  rmSync(dir, { recursive: true, force: true });
}

console.log(`${OPS} set+get pairs per round, best of ${ROUNDS} (bun ${Bun.version})`);
for (const [name, opsPerSec, baseline] of rows) {
  console.log(
    `${name.padEnd(44)} ${Math.round(opsPerSec).toString().padStart(8)} ops/s  ratio ${(opsPerSec / baseline).toFixed(2)}`,
  );
}
