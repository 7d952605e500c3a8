// The consumers' getContainerInputs for deliveries that start together, in one eth_call: calls made within a few
// milliseconds of each other are gathered and sent through Multicall3 (allowFailure: a consumer that reverts gets
// the empty input, as the reference gives it), so a burst of 200 due callbacks costs one read instead of 200.
// Without Multicall3, or for a lone call, each is its own eth_call as before.
import { type Address, getAddress, type Hex } from "viem";
import { consumerAbi } from "./abi/consumer.ts";
import { MULTICALL_BATCH_BYTES, MULTICALL3_ADDRESS } from "./batch-reads.ts";
import type { ChainClient } from "./rpc.ts";

export interface InputRequest {
  owner: string;
  id: number;
  interval: number;
  /** Seconds since the epoch (the chain's). */
  timestamp: number;
  node: Address;
}

/** getContainerInputs, gathered: resolves with the bytes, or undefined when the consumer reverted (or the read failed). */
export type ReadInputs = (request: InputRequest) => Promise<Hex | undefined>;

/** How long a call waits for others to join it, ms. */
const GATHER_MS = 5;
/** Calls in one Multicall3 request at most. */
const MAX_GATHERED = 500;

export function createInputReads(client: ChainClient, hasMulticall: () => Promise<boolean>): ReadInputs {
  const waiting: Array<{ request: InputRequest; resolve(value: Hex | undefined): void }> = [];
  let scheduled = false;

  const call = (request: InputRequest) => ({
    address: getAddress(request.owner),
    abi: consumerAbi,
    functionName: "getContainerInputs" as const,
    args: [request.id, request.interval, Math.floor(request.timestamp), request.node] as const,
  });

  const one = (request: InputRequest): Promise<Hex | undefined> =>
    client.readContract(call(request)).then(
      (inputs) => inputs,
      () => undefined,
    );

  async function flush(): Promise<void> {
    const batch = waiting.splice(0, MAX_GATHERED);
    scheduled = waiting.length > 0;
    if (scheduled) setTimeout(flush, 0);
    const multicall = batch.length > 1 && (await hasMulticall().catch(() => false));
    if (!multicall) {
      await Promise.all(batch.map(async ({ request, resolve }) => resolve(await one(request))));
      return;
    }
    try {
      const results = await client.multicall({
        contracts: batch.map(({ request }) => call(request)),
        allowFailure: true,
        multicallAddress: MULTICALL3_ADDRESS,
        batchSize: MULTICALL_BATCH_BYTES,
      });
      for (const [i, { resolve }] of batch.entries()) {
        const result = results[i];
        resolve(result?.status === "success" ? result.result : undefined);
      }
    } catch {
      // The gathered read itself failed (an outage): each on its own, as without Multicall3.
      await Promise.all(batch.map(async ({ request, resolve }) => resolve(await one(request))));
    }
  }

  return (request) =>
    new Promise((resolve) => {
      waiting.push({ request, resolve });
      if (scheduled) return;
      scheduled = true;
      setTimeout(flush, GATHER_MS);
    });
}
