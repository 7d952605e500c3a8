// Delivery benchmark on anvil with 1-second blocks (test SDK contracts), the real chain service + Processor +
// Orchestrator in one process, and an Infernet-compliant container served over HTTP on loopback (the echo
// container's on-chain reply, in process, so Docker start-up does not count).
//
// A. 200 callback subscriptions created in one block: blocks and seconds until every one is delivered.
//    Baseline in the same run: the same 200 deliveries sent straight from a script (viem, consecutive nonces,
//    no simulation, no container): the chain's own floor.
// B. 1,000 recurring subscriptions tracked but not due for an hour: JSON-RPC requests per block over 20 blocks.
//    Baseline in the same run: the listener alone (chain service without the processor) over as many blocks.
//
//   bun run bench/deliver/run.ts [--count 200] [--idle 1000] [--blocks 20]
import { parseArgs } from "node:util";
import { encodeAbiParameters, encodeFunctionData } from "viem";
import { coordinatorAbi } from "../../src/chain/abi/coordinator.ts";
import type { Config } from "../../src/config/schema.ts";
import { configureLogging } from "../../src/lib/log.ts";
import { startChain, type TestChain } from "../../test/fixtures/anvil.ts";
import { createSubscriptions } from "../../test/fixtures/chain-helpers.ts";
import {
  benchConfig,
  blockNumber,
  deliveredCount,
  installMulticall3,
  startBenchNode,
  startEchoContainer,
} from "../chain-bench.ts";

const { values } = parseArgs({
  options: {
    count: { type: "string", default: "200" },
    idle: { type: "string", default: "1000" },
    blocks: { type: "string", default: "20" },
  },
});
const count = Number(values.count);
const idleCount = Number(values.idle);
const measureBlocks = Number(values.blocks);
configureLogging({ consoleLevel: "warn", consoleFormat: "json" });

const { server: container, orchestrator } = startEchoContainer();
const configFor = (chain: TestChain): Config => benchConfig(chain);
const startNode = (config: Config, withProcessor: boolean) =>
  startBenchNode(config, withProcessor ? (job) => orchestrator.run(job) : undefined);

async function waitAllDelivered(chain: TestChain, firstId: number, lastId: number, createdBlock: bigint) {
  const t0 = performance.now();
  for (;;) {
    const done = await deliveredCount(chain, firstId, lastId);
    if (done === lastId - firstId + 1) {
      return {
        blocks: Number((await blockNumber(chain)) - createdBlock),
        seconds: (performance.now() - t0) / 1000,
      };
    }
    if (performance.now() - t0 > 120_000) throw new Error(`only ${done} delivered after 120 s`);
    await Bun.sleep(250);
  }
}

// ---------------------------------------------------------------------------------------------------------
// A. 200 callbacks in one block
console.log(`A. ${count} callback subscriptions created in one block (1 s blocks)`);
{
  await using chain = await startChain({ blockTime: 1 });
  await installMulticall3(chain);
  const node = await startNode(configFor(chain), true);
  // Requests per delivery count from here: the node's start-up (chain id, Registry, Multicall3 probe) is not theirs.
  await Bun.sleep(1_500);
  node.chain.rpc.resetCounters();
  const created = await createSubscriptions(chain, { count, containers: ["echo"] });
  const createdBlock = await blockNumber(chain);
  const result = await waitAllDelivered(chain, created.firstId, created.lastId, createdBlock);
  const rpc = node.chain.rpc.stats();
  await node.stop();
  console.log(
    `  node: all ${count} delivered ${result.blocks} blocks after the creating block, ${result.seconds.toFixed(1)} s; ${rpc.requests} RPC requests (${(rpc.requests / count).toFixed(2)} per delivery) ${JSON.stringify(rpc.byMethod)}`,
  );

  // Baseline: the same deliveries straight from a script on a fresh chain.
  await using bare = await startChain({ blockTime: 1 });
  const again = await createSubscriptions(bare, { count, containers: ["echo"] });
  const startBlock = await blockNumber(bare);
  const wallet = bare.walletClient(bare.accounts.node);
  let nonce = await bare.publicClient.getTransactionCount({
    address: bare.accounts.node.address,
    blockTag: "pending",
  });
  const t0 = performance.now();
  const output = encodeAbiParameters(
    [{ type: "bytes" }, { type: "bytes" }],
    [encodeAbiParameters([{ type: "string" }], ["echo"]), "0x"],
  );
  for (let id = again.firstId; id <= again.lastId; id++) {
    await wallet.sendTransaction({
      to: bare.addresses.coordinator,
      data: encodeFunctionData({
        abi: coordinatorAbi,
        functionName: "deliverCompute",
        args: [id, 1, "0x", output, "0x", "0x0000000000000000000000000000000000000000"],
      }),
      gas: 400_000n,
      nonce: nonce++,
    });
  }
  const base = await waitAllDelivered(bare, again.firstId, again.lastId, startBlock);
  console.log(
    `  baseline (script sends the ${count} deliveries directly): ${base.blocks} blocks, ${((performance.now() - t0) / 1000).toFixed(1)} s`,
  );
  console.log(`  node / baseline: ${(result.blocks / Math.max(1, base.blocks)).toFixed(2)}x blocks`);
  console.log(
    result.blocks <= 10 ? "  target (within 10 blocks): met" : "  target (within 10 blocks): MISSED",
  );
}

// ---------------------------------------------------------------------------------------------------------
// B. RPC requests per block with 1,000 idle recurring subscriptions tracked
console.log(`B. ${idleCount} recurring subscriptions, not due for an hour: RPC requests per block`);
{
  await using chain = await startChain({ blockTime: 1 });
  await installMulticall3(chain);
  await createSubscriptions(chain, { count: idleCount, containers: ["echo"], frequency: 10, period: 3600 });
  const perBlock = async (withProcessor: boolean) => {
    const node = await startNode(configFor(chain), withProcessor);
    // Let the snapshot sync finish and the processor take everything over, then measure.
    await Bun.sleep(3_000);
    node.chain.rpc.resetCounters();
    const from = await blockNumber(chain);
    await Bun.sleep(measureBlocks * 1_000);
    const to = await blockNumber(chain);
    const stats = node.chain.rpc.stats();
    await node.stop();
    return {
      perBlock: stats.requests / Number(to - from),
      blocks: Number(to - from),
      byMethod: stats.byMethod,
    };
  };
  const listenerOnly = await perBlock(false);
  const full = await perBlock(true);
  console.log(
    `  baseline (listener alone): ${listenerOnly.perBlock.toFixed(2)} requests/block over ${listenerOnly.blocks} blocks ${JSON.stringify(listenerOnly.byMethod)}`,
  );
  console.log(
    `  node (listener + processor, ${idleCount} tracked): ${full.perBlock.toFixed(2)} requests/block over ${full.blocks} blocks ${JSON.stringify(full.byMethod)}`,
  );
  console.log(
    full.perBlock <= 5 ? "  target (at most 5 per block): met" : "  target (at most 5 per block): MISSED",
  );
}
container.stop(true);
