// Batched per-subscription reads the Reader has no function for (nodeResponded): one eth_call through
// Multicall3 where the chain has it at its canonical address, plain calls in parallel where it does not (a bare
// anvil, some private chains), at most PLAIN_CALL_CONCURRENCY in flight. Detected once per connection.
import type { Address } from "viem";
import { coordinatorAbi } from "./abi/coordinator.ts";
import { nodeRespondedKey } from "./coordinator.ts";
import type { ChainClient } from "./rpc.ts";

/** Multicall3's address on nearly every EVM chain (same deployer, same nonce). */
export const MULTICALL3_ADDRESS: Address = "0xcA11bde05977b3631167028862bE2a173976CA11";
/** Calldata per aggregate3 call, bytes: far above what one processor tick asks (viem's default is 1 KiB). */
export const MULTICALL_BATCH_BYTES = 256 * 1024;

export interface BatchReads {
  /** Whether Multicall3 is used (false until detected). */
  readonly multicall: boolean;
  /** Whether the chain has Multicall3 at its canonical address (asked once per connection). */
  hasMulticall(): Promise<boolean>;
  /** nodeResponded(id, interval, node) for each pair, in order, at `blockNumber` (latest when omitted). */
  nodeResponded(
    pairs: ReadonlyArray<{ id: number; interval: number }>,
    node: Address,
    blockNumber?: bigint,
  ): Promise<boolean[]>;
}

/**
 * Runs `fn` over `items` with at most `limit` calls in flight and settles each one: a failure is that item's
 * only (the due check and the cancellation check read many things at once without flooding the provider).
 */
export async function settleBounded<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<R>,
): Promise<PromiseSettledResult<R>[]> {
  const results: PromiseSettledResult<R>[] = new Array(items.length);
  let nextIndex = 0;
  const worker = async (): Promise<void> => {
    while (nextIndex < items.length) {
      const index = nextIndex++;
      try {
        results[index] = { status: "fulfilled", value: await fn(items[index] as T, index) };
      } catch (reason) {
        results[index] = { status: "rejected", reason };
      }
    }
  };
  const workers = Math.max(1, Math.min(Math.floor(limit), items.length));
  await Promise.all(Array.from({ length: workers }, worker));
  return results;
}

/** Plain nodeResponded calls in flight at once on a chain without Multicall3 (before: all of them at once). */
const PLAIN_CALL_CONCURRENCY = 8;

export function createBatchReads(client: ChainClient, coordinator: Address): BatchReads {
  let multicall: boolean | undefined;
  const detect = async (): Promise<boolean> => {
    if (multicall === undefined) {
      const code = await client.getCode({ address: MULTICALL3_ADDRESS });
      multicall = code !== undefined && code !== "0x";
    }
    return multicall;
  };
  return {
    get multicall() {
      return multicall ?? false;
    },
    hasMulticall: detect,
    async nodeResponded(pairs, node, blockNumber) {
      if (pairs.length === 0) return [];
      const at = blockNumber === undefined ? {} : { blockNumber };
      const calls = pairs.map(({ id, interval }) => ({
        address: coordinator,
        abi: coordinatorAbi,
        functionName: "nodeResponded" as const,
        args: [nodeRespondedKey(id, interval, node)] as const,
      }));
      if (await detect()) {
        return client.multicall({
          contracts: calls,
          allowFailure: false,
          multicallAddress: MULTICALL3_ADDRESS,
          batchSize: MULTICALL_BATCH_BYTES,
          ...at,
        });
      }
      const settled = await settleBounded(calls, PLAIN_CALL_CONCURRENCY, (call) =>
        client.readContract({ ...call, ...at }),
      );
      return settled.map((result) => {
        if (result.status === "rejected") throw result.reason;
        return result.value;
      });
    },
  };
}
