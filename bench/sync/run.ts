// Snapshot-sync benchmark: 10,000 subscriptions on anvil (test SDK contracts), synced by the real chain service
// with batch_size 1000 and sleep 0. Reports wall time of the snapshot sync and the JSON-RPC requests it sent
// (from the RPC client's own counters).
//   bun run bench/sync/run.ts [--count 10000] [--batch 1000] [--logs]
// --logs keeps the listener's info lines (10,000 "Relayed subscription creation") on stderr; by default the
// console level is warn so the numbers measure syncing, not the terminal.
import { parseArgs } from "node:util";
import * as v from "valibot";
import { createChainService } from "../../src/chain/service.ts";
import { ConfigSchema } from "../../src/config/schema.ts";
import { configureLogging, createLog } from "../../src/lib/log.ts";
import { startChain } from "../../test/fixtures/anvil.ts";
import { createSubscriptions } from "../../test/fixtures/chain-helpers.ts";
import { createSubscriptionTracker } from "../../test/fixtures/subscription-recorder.ts";

const { values } = parseArgs({
  options: {
    count: { type: "string", default: "10000" },
    batch: { type: "string", default: "1000" },
    logs: { type: "boolean", default: false },
  },
});
const count = Number(values.count);
const batchSize = Number(values.batch);
configureLogging({ consoleLevel: values.logs ? "info" : "warn", consoleFormat: "json" });

await using chain = await startChain();
const t0 = performance.now();
const created = await createSubscriptions(chain, { count, containers: ["a", "b", "a,b", "c"] });
await chain.mine(1);
console.log(`created ${count} subscriptions (ids ${created.firstId}..${created.lastId}) in ${ms(t0)} ms`);

const config = v.parse(ConfigSchema, {
  manage_containers: false,
  containers: [{ id: "a" }, { id: "b" }],
  chain: {
    enabled: true,
    rpc_url: chain.rpcUrl,
    registry_address: chain.addresses.registry,
    trail_head_blocks: 1,
    wallet: { private_key: chain.accounts.node.privateKey },
    snapshot_sync: { batch_size: batchSize, sleep: 0, starting_sub_id: 0, sync_period: 0.5 },
  },
});
const tracker = createSubscriptionTracker({ log: createLog("tracker") });
const service = createChainService({ config, log: createLog("chain"), sink: tracker });
const signal = new AbortController().signal;
const t1 = performance.now();
await service.setup?.(signal);
const setupMs = ms(t1);
const setupRequests = service.rpc.stats().requests;

const listener = service.listener();
if (!listener) throw new Error("chain service did not connect");
service.rpc.resetCounters();
const t2 = performance.now();
await listener.step(signal);
const syncMs = ms(t2);
const stats = service.rpc.stats();
const progress = listener.progress();
const batches = Math.ceil(count / batchSize);

console.log(`setup (eth_chainId + Registry): ${setupMs} ms, ${setupRequests} requests`);
console.log(
  `snapshot sync: ${count} subscriptions, batch_size ${batchSize} (${batches} batches), sleep 0: ${syncMs} ms`,
);
console.log(`  requests: ${stats.requests} total ${JSON.stringify(stats.byMethod)}`);
console.log(
  `  per batch: ${((stats.requests - 2) / batches).toFixed(2)} (excluding 1 eth_blockNumber + 1 id() per step)`,
);
console.log(
  `  relayed ${progress.relayed}, ignored ${progress.ignored}, tracked ${tracker.count()}, last_sub_id ${progress.last_sub_id}`,
);
// Baseline in the same run: the bare Reader calls the sync needs at least (one readSubscriptionBatch per batch),
// made straight with viem and no node logic, so the ratio shows what the listener adds on top.
const readerAbi = chain.abis.Reader;
if (!readerAbi) throw new Error("no Reader ABI in the test chain");
const t3 = performance.now();
for (let start = 1; start <= count; start += batchSize) {
  await chain.publicClient.readContract({
    address: chain.addresses.reader,
    abi: readerAbi,
    functionName: "readSubscriptionBatch",
    args: [start, Math.min(start + batchSize, count + 1)],
  });
}
const baselineMs = ms(t3);
console.log(
  `  baseline (bare readSubscriptionBatch calls, viem): ${baselineMs} ms; sync / baseline = ${(Number(syncMs) / Number(baselineMs)).toFixed(2)}`,
);
const ok = progress.last_sub_id === created.lastId && progress.relayed + progress.ignored === count;
console.log(ok ? "OK" : "MISMATCH");
if (!ok) process.exitCode = 1;

function ms(since: number): string {
  return (performance.now() - since).toFixed(0);
}
