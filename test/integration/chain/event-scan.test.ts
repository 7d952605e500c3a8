// The event scan bound as the processor binds it (client.getLogs for the Coordinator's two events) on a real
// chain, including a cancellation orphaned by a reorganisation (anvil evm_revert: the chain gets shorter and
// grows again without it): the cursor rewinds, and confirmCancelled keeps the subscription (defect 10b).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { parseAbiItem } from "viem";
import { createCoordinator } from "../../../src/chain/coordinator.ts";
import { confirmCancelled, createEventScanner, type ScanEvent } from "../../../src/chain/event-scan.ts";
import { createRpc } from "../../../src/chain/rpc.ts";
import { createLog } from "../../../src/lib/log.ts";
import { startChain, type TestChain } from "../../fixtures/anvil.ts";
import { cancelSubscription, createSubscription, deliver } from "../../fixtures/chain-helpers.ts";

let chain: TestChain & AsyncDisposable;
beforeAll(async () => {
  chain = await startChain();
}, 120_000);
afterAll(async () => {
  await chain?.[Symbol.asyncDispose]();
});

const cancelledEvent = parseAbiItem("event SubscriptionCancelled(uint32 indexed id)");
const fulfilledEvent = parseAbiItem("event SubscriptionFulfilled(uint32 indexed id, address indexed node)");

describe("event scan on anvil", () => {
  test("behavior: events in 2-block ranges; an orphaned cancellation rewinds the cursor and is not confirmed", async () => {
    const rpc = createRpc({ urls: [chain.rpcUrl], timeoutMs: 10_000, maxRetries: 0, log: createLog("rpc") });
    const coordinator = createCoordinator(rpc.client, chain.addresses.coordinator);
    const scanner = createEventScanner({
      getLogs: (from, to) =>
        rpc.client.getLogs({
          address: chain.addresses.coordinator,
          events: [cancelledEvent, fulfilledEvent],
          fromBlock: from,
          toBlock: to,
        }),
      log: createLog("event-scan"),
      maxRange: 2n,
      maxCallsPerStep: 100,
      startBack: 0n,
    });
    const head = () => rpc.client.getBlockNumber();
    const readActiveAt = async (id: number) => (await coordinator.getSubscription(id)).activeAt;

    await scanner.advance(await head());
    const kept = await createSubscription(chain, { frequency: 10, period: 60 });
    const delivered = await createSubscription(chain, { containers: "echo" });
    await deliver(chain, { id: delivered.id, interval: 1 });
    await chain.mine(3);
    const beforeReorg = await chain.snapshot();
    await cancelSubscription(chain, kept.id);
    const cancelledHead = await head();

    const seen: ScanEvent[] = [];
    const step = await scanner.advance(cancelledHead);
    seen.push(...step.events);
    expect(step.error).toBeUndefined();
    expect(step.scannedTo).toBe(cancelledHead);
    expect(seen.map(({ kind, id }) => ({ kind, id }))).toEqual([
      { kind: "fulfilled", id: delivered.id },
      { kind: "cancelled", id: kept.id },
    ]);
    expect((await confirmCancelled(readActiveAt, [kept.id])).cancelled).toEqual([kept.id]);

    // The block holding the cancellation is orphaned: the chain is shorter, then grows again without it.
    await chain.revert(beforeReorg);
    const shorter = await head();
    expect(shorter).toBeLessThan(cancelledHead);
    const rewound = await scanner.advance(shorter);
    expect(rewound.scannedTo).toBe(shorter);
    expect(rewound.events).toEqual([]);
    await chain.mine(2);
    const after = await scanner.advance(await head());
    expect(after.events).toEqual([]);
    expect(after.scannedTo).toBe(await head());

    // What the processor does with the event it saw before the reorg: confirm it, and keep the subscription.
    expect(await confirmCancelled(readActiveAt, [kept.id])).toEqual({ cancelled: [], unconfirmed: [] });
  }, 60_000);
});
