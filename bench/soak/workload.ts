// The mixed load shared by the 2-minute load test (test/e2e/load.test.ts) and the soak (bench/soak/run.ts):
// the release binary with a Redis job store and chain lease, on anvil (1-second blocks) with the project's
// contracts and its managed echo containers, driven by off-chain jobs (offchain-load.ts) and on-chain
// subscriptions and callbacks (chain-load.ts) at a steady rate, while the node's process is sampled.
//
// Phases: warm-up (the same mix, short), then quiet (everything owed finished, the node idle) and a baseline
// sample; then the load, sampled every `sampleEveryS`; then quiet again and a final sample. fds and TCP
// connections are compared between the two quiet samples, so what a client or a burst holds open does not count.
import { type ChainNode, startChainNode } from "../../test/fixtures/chain-node.ts";
import { type E2EChain, startE2EChain } from "../../test/fixtures/e2e-chain.ts";
import { startPrivateRedis, uniqueKeyPrefix } from "../../test/fixtures/redis.ts";
import { type FaultProxy, type Faults, startFaultProxy } from "../../test/fixtures/rpc-fault-proxy.ts";
import { type ChainCounts, type ChainMix, createChainLoad } from "./chain-load.ts";
import { type LatencyFigures, latencyLog } from "./latency.ts";
import { createOffchainLoad, type OffchainCounts, type OffchainMix } from "./offchain-load.ts";
import { type ProcessSample, sampleProcess, tcpByPeer } from "./process-sample.ts";

export interface LoadPlan {
  warmupS: number;
  loadS: number;
  sampleEveryS: number;
  /** Latency windows compared first to last (the soak reports one per minute). */
  windowS: number;
  offchain: OffchainMix;
  chain: ChainMix;
}

/** The mix both run: 13 off-chain jobs/s (8 single, a batch of 4, a stream), a recurring subscription every 4 s and a callback every 3 s. */
export const MIX = {
  offchain: { singlesPerS: 8, batchesPerS: 1, batchSize: 4, streamsPerS: 1, statusReadsPerS: 2 },
  chain: { subscriptionEveryS: 4, callbackEveryS: 3, frequency: 2, period: 6 },
} as const satisfies Pick<LoadPlan, "offchain" | "chain">;

export type Phase = "warm-up" | "quiet" | "load";

export interface Sample extends ProcessSample {
  phase: Phase;
  /**
   * Seconds since the load phase started: negative during warm-up; the quiet sample after warm-up counts from
   * the warm-up's end.
   */
  atS: number;
  /** Off-chain jobs completed correctly, and deliveries recorded, so far (all phases). */
  jobs: number;
  deliveries: number;
  /** Completed jobs per second and their latency, over the interval since the previous sample. */
  jobsPerS: number;
  latency: LatencyFigures;
  /** Problems so far: wrong, lost or refused jobs, failed status reads, wrong or duplicate deliveries. */
  errors: number;
  inFlight: number;
}

export interface LatencyWindow extends LatencyFigures {
  fromS: number;
  toS: number;
}

export interface ProcessorDeliveries {
  sent: number;
  confirmed: number;
  reverted: number;
  replaced: number;
  failed: number;
}

export interface WorkloadResult {
  plan: LoadPlan;
  samples: Sample[];
  /** Latency of the load phase in `windowS` windows. */
  windows: LatencyWindow[];
  /** After warm-up, once quiet; and after the load, once quiet. */
  baseline: Sample;
  final: Sample;
  /** The TCP connections of the baseline and final samples by peer (see tcpByPeer). */
  baselinePeers: Record<string, number>;
  finalPeers: Record<string, number>;
  peakRssKb: number;
  offchain: OffchainCounts;
  chain: ChainCounts;
  /** The node's own delivery counters (/health processor). */
  processor: ProcessorDeliveries;
  /** Deliveries still owed at the end. */
  missing: string[];
  errors: string[];
  /** Seconds the node took to become quiet after the load stopped. */
  settleS: number;
}

export interface LoadRig extends AsyncDisposable {
  chain: E2EChain;
  node: ChainNode;
  /** The node's process id (the binary itself). */
  pid(): number;
  port: number;
  /** Remote ports the node connects to, by name (rpc, redis, each container id): for tcpByPeer. */
  peers: Record<string, number>;
  /** The JSON-RPC fault proxy between the node and anvil, when the rig was started with faults. */
  proxy?: FaultProxy;
}

export interface RigOptions {
  /** Put a seeded JSON-RPC fault proxy between the node and anvil, with these faults. */
  faults?: Faults;
  /** chain.wallet.max_fee_per_gas for the node (wei). */
  maxFeePerGas?: bigint;
}

/**
 * Its own Redis, anvil with the project's contracts, and the node on them with a Redis job store and chain
 * lease; disposing stops all three (nothing outlives a soak run).
 */
export async function startLoadRig(name: string, opts: RigOptions = {}): Promise<LoadRig> {
  await using stack = new AsyncDisposableStack();
  const redis = stack.use(await startPrivateRedis());
  const chain = stack.use(await startE2EChain({ blockTime: 1 }));
  const proxy = opts.faults
    ? stack.use(await startFaultProxy({ upstream: chain.rpcUrl, seed: 17, faults: opts.faults }))
    : undefined;
  const node = stack.use(
    await startChainNode(name, chain, {
      redis: { host: redis.host, port: redis.port, key_prefix: uniqueKeyPrefix(name) },
      ...(proxy ? { rpcUrl: proxy.url } : {}),
      ...(opts.maxFeePerGas !== undefined
        ? { chainSettings: { wallet: { max_fee_per_gas: Number(opts.maxFeePerGas) } } }
        : {}),
    }),
  );
  const owned = stack.move();
  const containers = node.config.containers as { id: string; port: number }[];
  return {
    chain,
    node,
    port: Number(new URL(node.url).port),
    ...(proxy ? { proxy } : {}),
    peers: {
      rpc: proxy ? Number(new URL(proxy.url).port) : chain.port,
      redis: redis.port,
      ...Object.fromEntries(containers.map((c) => [c.id, c.port])),
    },
    pid() {
      const pid = node.process.pid();
      if (pid === undefined) throw new Error("the node is not running");
      return pid;
    },
    [Symbol.asyncDispose]: () => owned.disposeAsync(),
  };
}

async function processorDeliveries(
  url: string,
): Promise<ProcessorDeliveries & { running: number; pending_txs: number }> {
  const body = (await (await fetch(`${url}/health`)).json()) as {
    checks?: { processor?: { deliveries: ProcessorDeliveries; running: number; pending_txs: number } };
  };
  const processor = body.checks?.processor;
  if (!processor) throw new Error("/health has no processor check");
  return { ...processor.deliveries, running: processor.running, pending_txs: processor.pending_txs };
}

/** Polls `check` every `everyMs` until it is true or `timeoutMs` passed; returns whether it became true. */
async function eventually(
  check: () => Promise<boolean> | boolean,
  timeoutMs: number,
  everyMs = 500,
): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const ok = await Promise.resolve()
      .then(check)
      .catch(() => false);
    if (ok) return true;
    if (performance.now() >= deadline) return false;
    await Bun.sleep(everyMs);
  }
}

/**
 * Runs `plan` against `rig`; `onSample` sees each sample as it is taken (for live output). Never throws for
 * what the node does wrong: the result carries it, and the caller asserts or reports.
 */
export async function runWorkload(
  rig: LoadRig,
  plan: LoadPlan,
  onSample: (sample: Sample) => void = () => {},
): Promise<WorkloadResult> {
  const latency = latencyLog();
  const container = rig.node.containers.echo;
  const offchain = createOffchainLoad({ url: rig.node.url, container, mix: plan.offchain, latency });
  const chainLoad = createChainLoad({ chain: rig.chain, container, mix: plan.chain });
  const samples: Sample[] = [];
  let loadStartMs = plan.warmupS * 1000;
  let lastSampleMs = 0;
  let lastJobs = 0;

  const take = async (phase: Phase): Promise<Sample> => {
    await chainLoad.poll().catch(() => undefined);
    const nowMs = latency.now();
    const off = offchain.counts();
    const ch = chainLoad.counts();
    const intervalS = Math.max(0.001, (nowMs - lastSampleMs) / 1000);
    const sample: Sample = {
      phase,
      atS: Math.round((nowMs - loadStartMs) / 100) / 10,
      ...sampleProcess(rig.pid(), rig.port),
      jobs: off.completed,
      deliveries: ch.delivered,
      jobsPerS: (off.completed - lastJobs) / intervalS,
      latency: latency.between(lastSampleMs, nowMs),
      errors:
        off.wrong + off.lost + off.refused + off.statusErrors + ch.duplicates + ch.wrong + ch.createErrors,
      inFlight: offchain.inFlight(),
    };
    lastSampleMs = nowMs;
    lastJobs = off.completed;
    samples.push(sample);
    onSample(sample);
    return sample;
  };

  /** Runs the mix for `seconds`, sampling every `sampleEveryS`. */
  const drive = async (phase: Phase, seconds: number) => {
    offchain.start();
    chainLoad.start();
    const startedAt = latency.now();
    for (let n = 1; ; n++) {
      const due = startedAt + n * plan.sampleEveryS * 1000;
      const end = startedAt + seconds * 1000;
      await Bun.sleep(Math.max(0, Math.min(due, end) - latency.now()));
      if (latency.now() >= end - 1) break;
      await take(phase);
    }
    await Promise.all([offchain.stop(), chainLoad.stop()]);
  };

  /**
   * Everything owed done (bounded), the node idle, then fds and TCP connections steady over 6 s (bounded):
   * the quiet sample.
   */
  const quiet = async (): Promise<Sample> => {
    const owedTimeoutMs = (plan.chain.frequency * plan.chain.period + 120) * 1000;
    await eventually(async () => {
      await chainLoad.poll();
      return chainLoad.missing().length === 0;
    }, owedTimeoutMs);
    await eventually(async () => {
      const p = await processorDeliveries(rig.node.url);
      return p.running === 0 && p.pending_txs === 0;
    }, 60_000);
    let previous = sampleProcess(rig.pid(), rig.port);
    let steady = 0;
    await eventually(
      () => {
        const now = sampleProcess(rig.pid(), rig.port);
        const same =
          now.fds === previous.fds && now.tcpIn === previous.tcpIn && now.tcpOut === previous.tcpOut;
        steady = same ? steady + 1 : 0;
        previous = now;
        // 6 s unchanged: longer than the gap between two sweeps of the node's idle container connections (4 s).
        return steady >= 6;
      },
      45_000,
      1_000,
    );
    return await take("quiet");
  };

  await take("warm-up");
  await drive("warm-up", plan.warmupS);
  const baseline = await quiet();
  const baselinePeers = tcpByPeer(rig.pid(), rig.port, rig.peers);
  loadStartMs = latency.now();
  // The warm-up and its quiet stretch do not count towards the load's first interval.
  lastSampleMs = loadStartMs;
  lastJobs = offchain.counts().completed;
  await drive("load", plan.loadS);
  const loadEndMs = latency.now();
  const final = await quiet();
  const finalPeers = tcpByPeer(rig.pid(), rig.port, rig.peers);

  const windows: LatencyWindow[] = [];
  for (let from = 0; from < plan.loadS; from += plan.windowS) {
    const to = Math.min(plan.loadS, from + plan.windowS);
    windows.push({
      fromS: from,
      toS: to,
      ...latency.between(loadStartMs + from * 1000, loadStartMs + to * 1000),
    });
  }
  const processor = await processorDeliveries(rig.node.url);
  return {
    plan,
    samples,
    windows,
    baseline,
    final,
    baselinePeers,
    finalPeers,
    peakRssKb: Math.max(...samples.map((s) => s.rssKb)),
    offchain: offchain.counts(),
    chain: chainLoad.counts(),
    processor: {
      sent: processor.sent,
      confirmed: processor.confirmed,
      reverted: processor.reverted,
      replaced: processor.replaced,
      failed: processor.failed,
    },
    missing: chainLoad.missing(),
    errors: [...offchain.errors(), ...chainLoad.errors()],
    settleS: Math.round((final.atS - (loadEndMs - loadStartMs) / 1000) * 10) / 10,
  };
}
