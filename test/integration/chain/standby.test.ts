// Hot standby: two nodes with the same wallet and one Redis. Exactly one holds the chain lease and sends; the
// other takes over when the holder stops renewing (died), and every interval is delivered exactly once. The
// lease fences by the holder's own monotonic clock: a process paused past its lease wakes up not sending.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { encodeAbiParameters, keccak256 } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { createRpc } from "../../../src/chain/rpc.ts";
import { createTransactionManager, NotAllowedToSendError } from "../../../src/chain/transactions.ts";
import type { Config } from "../../../src/config/schema.ts";
import { createLog } from "../../../src/lib/log.ts";
import type { OrchestratorJob } from "../../../src/orchestration/orchestrator.ts";
import type { ContainerResult } from "../../../src/shared/jobs.ts";
import { createRedisLease } from "../../../src/store/redis-lease.ts";
import { startChain, type TestChain } from "../../fixtures/anvil.ts";
import { read, requestCallback } from "../../fixtures/chain-helpers.ts";
import { waitFor } from "../../fixtures/net.ts";
import { chainNodeConfig, type ProcessorNode, startProcessorNode } from "../../fixtures/processor-node.ts";
import { type RedisEndpoint, sharedRedis, uniqueKeyPrefix } from "../../fixtures/redis.ts";

const TTL_MS = 2_000;
let chain: TestChain & AsyncDisposable;
let redis: RedisEndpoint;

beforeAll(async () => {
  [chain, redis] = await Promise.all([startChain(), sharedRedis()]);
});
afterAll(async () => {
  await chain?.[Symbol.asyncDispose]();
});

function configFor(): Config {
  return chainNodeConfig(chain);
}

async function echo(job: OrchestratorJob): Promise<ContainerResult[]> {
  const input = typeof job.data === "string" ? job.data : "";
  return [
    {
      container: "echo",
      output: {
        raw_input: input,
        processed_input: "",
        raw_output: encodeAbiParameters([{ type: "string" }], ["echo"]).slice(2),
        processed_output: "",
        proof: "",
      },
    },
  ];
}

function lease(key: string, owner: string) {
  return createRedisLease({
    redis: { host: redis.host, port: redis.port, db: 0 },
    key,
    owner,
    ttlMs: TTL_MS,
    log: createLog("lease").child({ node: owner }),
  });
}

interface Member {
  node: ProcessorNode;
  lease: ReturnType<typeof lease>;
  controller: AbortController;
  leaseRun: Promise<void> | undefined;
}

async function member(key: string, name: string): Promise<Member> {
  const l = lease(key, name);
  const controller = new AbortController();
  await l.setup?.(controller.signal);
  const leaseRun = l.run?.(controller.signal);
  const node = await startProcessorNode(configFor(), { run: echo, name, lease: l });
  return { node, lease: l, controller, leaseRun };
}

/** Stops a member the way a crash does: no release, the lease just stops being renewed. */
async function crash(m: Member): Promise<void> {
  m.controller.abort();
  await m.leaseRun;
  await m.node.stop();
}

async function redundancyCount(id: number): Promise<number> {
  return read<number>(chain, {
    contract: "EIP712Coordinator",
    address: chain.addresses.coordinator,
    functionName: "redundancyCount",
    args: [keccak256(encodeAbiParameters([{ type: "uint32" }, { type: "uint32" }], [id, 1]))],
  });
}

const sent = (m: Member, id: number) => m.node.logs.filter((r) => r.msg === "Sent tx" && r.id === id);

describe("hot standby", () => {
  test("behavior: only the lease holder sends; when it dies the standby takes over; each interval once", async () => {
    const key = `${uniqueKeyPrefix("standby")}chain-lease`;
    const a = await member(key, "a");
    const b = await member(key, "b");
    try {
      expect(a.lease.held()).toBe(true);
      expect(b.lease.held()).toBe(false);
      const before = [];
      for (let i = 0; i < 3; i++) before.push((await requestCallback(chain, { containers: "echo" })).id);
      for (const id of before) {
        await waitFor(`delivery of ${id}`, async () =>
          (await redundancyCount(id)) === 1 ? true : undefined,
        );
      }
      for (const id of before) {
        expect(sent(a, id)).toHaveLength(1);
        expect(sent(b, id)).toHaveLength(0);
      }

      const crashedAt = performance.now();
      await crash(a);
      await waitFor("take-over", async () => (b.lease.held() ? true : undefined), TTL_MS * 5);
      // The standby waits out the lease (ttl) and takes it at its next step (ttl/3); reported, not asserted.
      console.log(
        `standby take-over ${Math.round(performance.now() - crashedAt)} ms after the crash (ttl ${TTL_MS} ms)`,
      );
      const after = [];
      for (let i = 0; i < 3; i++) after.push((await requestCallback(chain, { containers: "echo" })).id);
      for (const id of after) {
        await waitFor(`delivery of ${id}`, async () =>
          (await redundancyCount(id)) === 1 ? true : undefined,
        );
        expect(sent(b, id)).toHaveLength(1);
      }
      // The earlier ones, which b also tracks, are not delivered again.
      for (const id of before) expect(await redundancyCount(id)).toBe(1);
      for (const id of before) expect(sent(b, id)).toHaveLength(0);
    } finally {
      await crash(b);
      await b.lease.close?.();
    }
  });

  test("error: a holder paused past its lease wakes up not holding it, and its transactions are refused", async () => {
    const key = `${uniqueKeyPrefix("standby-pause")}chain-lease`;
    const l = lease(key, "paused");
    const controller = new AbortController();
    await l.setup?.(controller.signal);
    try {
      expect(l.held()).toBe(true);
      // The whole process stops (as under SIGSTOP): no timer, no renewal.
      Bun.sleepSync(TTL_MS + 200);
      expect(l.held()).toBe(false);
      const rpc = createRpc({ urls: [chain.rpcUrl], timeoutMs: 5_000, maxRetries: 0, log: createLog("rpc") });
      const txs = createTransactionManager({
        client: rpc.client,
        account: privateKeyToAccount(chain.accounts.other.privateKey),
        chainId: chain.chainId,
        log: createLog("tx"),
        canSend: () => l.held(),
      });
      const refused = await txs
        .send({ to: chain.accounts.other.address, data: "0x", gas: 21_000n })
        .catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(NotAllowedToSendError);
      expect(txs.stats().sent).toBe(0);
    } finally {
      controller.abort();
      await l.close?.();
    }
  });
});
