// What the on-chain benchmarks (bench/deliver, bench/scale) share: an Infernet-compliant echo container served
// over HTTP on loopback (in process, so Docker start-up does not count), the node's orchestrator in front of it,
// and the node's chain side (chain service + Processor) started in process on a test chain.
import { encodeAbiParameters } from "viem";
import { MULTICALL3_ADDRESS } from "../src/chain/batch-reads.ts";
import type { Processor, ProcessorSettings } from "../src/chain/processor.ts";
import { type ChainService, createChainService } from "../src/chain/service.ts";
import type { Config } from "../src/config/schema.ts";
import { createLog } from "../src/lib/log.ts";
import { createOrchestrator } from "../src/orchestration/orchestrator.ts";
import type { TestChain } from "../test/fixtures/anvil.ts";
import { read } from "../test/fixtures/chain-helpers.ts";
import { compileContracts } from "../test/fixtures/contracts/compile.ts";
import { chainNodeConfig, startProcessorNode } from "../test/fixtures/processor-node.ts";

/** The echo container: answers /service_output with the five-key on-chain form around its input. */
export function startEchoContainer() {
  const server = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    async fetch(req) {
      const body = (await req.json()) as { data?: unknown };
      const input = typeof body.data === "string" ? body.data : "";
      return Response.json({
        raw_input: input,
        processed_input: "",
        raw_output: encodeAbiParameters([{ type: "string" }], ["echo"]).slice(2),
        processed_output: "",
        proof: "",
      });
    },
  });
  const directory = {
    statuses: () => [],
    endpoint: (id: string) =>
      id === "echo" ? { baseUrl: `http://127.0.0.1:${server.port}`, headers: {} } : undefined,
  };
  const orchestrator = createOrchestrator({
    directory,
    jobTimeoutMs: 30_000,
    log: createLog("orchestrator"),
  });
  return { server, orchestrator };
}

/** The node's config for a benchmark chain: one unmanaged "echo" container, `sync_period` 0.5 s. */
export function benchConfig(chain: TestChain, chainOverrides: Record<string, unknown> = {}): Config {
  return chainNodeConfig(chain, {
    chain: { snapshot_sync: { batch_size: 500, sleep: 0, sync_period: 0.5 }, ...chainOverrides },
  });
}

export interface BenchNode {
  chain: ChainService;
  processor?: Processor;
  stop(): Promise<void>;
}

/** The node's chain side: listener and processor, or the listener alone (a baseline). */
export async function startBenchNode(
  config: Config,
  run: ReturnType<typeof startEchoContainer>["orchestrator"]["run"] | undefined,
  settings: Partial<ProcessorSettings> = {},
): Promise<BenchNode> {
  if (run) {
    const node = await startProcessorNode(config, {
      run: (job) => run(job),
      settings: { tickMs: 100, simulationAttempts: 3, containerRetryBaseMs: 2_000, ...settings },
    });
    return { chain: node.chainService, processor: node.processor, stop: () => node.stop() };
  }
  const chain = createChainService({ config, log: createLog("chain"), sink: { track() {} } });
  const controller = new AbortController();
  await chain.setup?.(controller.signal);
  const running = chain.run?.(controller.signal);
  return {
    chain,
    async stop() {
      controller.abort();
      await running;
    },
  };
}

export async function blockNumber(chain: TestChain): Promise<bigint> {
  return chain.publicClient.getBlockNumber({ cacheTime: 0 });
}

/**
 * Multicall3 at its canonical address, as on nearly every EVM chain the node serves (anvil has none): the node's
 * nodeResponded reads then take one eth_call per chunk instead of one per subscription.
 */
export async function installMulticall3(chain: TestChain): Promise<void> {
  const code = compileContracts().Multicall3?.deployedBytecode;
  if (!code) throw new Error("Multicall3 did not compile");
  await chain.rpc("anvil_setCode", [MULTICALL3_ADDRESS, code]);
}

/** How many of ids first..last have a delivery for interval 1 (Reader.readRedundancyCountBatch, in chunks). */
export async function deliveredCount(chain: TestChain, first: number, last: number): Promise<number> {
  let n = 0;
  for (let start = first; start <= last; start += 2_000) {
    const ids = Array.from({ length: Math.min(2_000, last - start + 1) }, (_, i) => start + i);
    const counts = await read<readonly number[]>(chain, {
      contract: "Reader",
      address: chain.addresses.reader,
      functionName: "readRedundancyCountBatch",
      args: [ids, ids.map(() => 1)],
    });
    n += counts.filter((c) => c > 0).length;
  }
  return n;
}
