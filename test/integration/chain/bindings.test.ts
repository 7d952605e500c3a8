// The node's hand-written bindings (Registry, Coordinator, Reader, WalletChecker) against the test SDK
// contracts on anvil.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { zeroAddress } from "viem";
import { containerSetId } from "../../../src/chain/container-lookup.ts";
import { createCoordinator } from "../../../src/chain/coordinator.ts";
import { createReader } from "../../../src/chain/reader.ts";
import { resolveRegistry } from "../../../src/chain/registry.ts";
import { createRpc, type Rpc } from "../../../src/chain/rpc.ts";
import { createWalletChecker } from "../../../src/chain/wallet-checker.ts";
import { createLog } from "../../../src/lib/log.ts";
import { CANCELLED_ACTIVE_AT } from "../../../src/shared/subscription.ts";
import { startChain, type TestChain } from "../../fixtures/anvil.ts";
import {
  cancelSubscription,
  createSubscription,
  createWallet,
  deliver,
  fund,
} from "../../fixtures/chain-helpers.ts";

describe("chain bindings on anvil", () => {
  let chain: TestChain & AsyncDisposable;
  let rpc: Rpc;
  beforeAll(async () => {
    chain = await startChain();
    rpc = createRpc({ urls: [chain.rpcUrl], timeoutMs: 5000, maxRetries: 1, log: createLog("rpc") });
  });
  afterAll(async () => {
    await chain?.[Symbol.asyncDispose]();
  });

  test("default: the Registry resolves every contract address", async () => {
    const addresses = await resolveRegistry(rpc.client, chain.addresses.registry.toLowerCase());
    expect(addresses).toEqual({
      registry: chain.addresses.registry,
      coordinator: chain.addresses.coordinator,
      reader: chain.addresses.reader,
      walletFactory: chain.addresses.walletFactory,
      inbox: chain.addresses.inbox,
      fee: chain.addresses.fee,
    });
  });

  test("default: Coordinator and Reader reads, pinned to a block", async () => {
    const coordinator = createCoordinator(rpc.client, chain.addresses.coordinator);
    const reader = createReader(rpc.client, chain.addresses.reader);
    const before = await rpc.client.getBlockNumber();
    const headBefore = await coordinator.headSubscriptionId(before);
    const { id } = await createSubscription(chain, { containers: ["a", "b"], redundancy: 2 });
    const { id: id2 } = await createSubscription(chain, { containers: "a" });
    await cancelSubscription(chain, id2);
    const block = await rpc.client.getBlockNumber();
    expect(await coordinator.headSubscriptionId(before)).toBe(headBefore);
    expect(await coordinator.headSubscriptionId(block)).toBe(id2);

    const sub = await coordinator.getSubscription(id, block);
    expect(sub).toMatchObject({
      owner: chain.addresses.subscriptionConsumer,
      period: 0,
      frequency: 1,
      redundancy: 2,
      containerId: containerSetId(["a", "b"]),
      lazy: false,
      verifier: zeroAddress,
      paymentAmount: 0n,
    });
    const batch = await reader.readSubscriptionBatch(id, id2 + 2, block);
    expect(batch).toHaveLength(3);
    expect(batch[0]).toEqual(sub);
    expect(batch[1]?.activeAt).toBe(CANCELLED_ACTIVE_AT);
    expect(batch[2]?.owner).toBe(zeroAddress); // past the head: an empty struct
    expect(await reader.readSubscriptionBatch(5, 5, block)).toEqual([]); // never a reversed/empty range call

    await deliver(chain, { id, interval: 1 });
    const after = await rpc.client.getBlockNumber();
    expect(await coordinator.redundancyCount(id, 1, after)).toBe(1);
    expect(await coordinator.redundancyCount(id, 1, block)).toBe(0);
    expect(await coordinator.nodeResponded(id, 1, chain.accounts.node.address, after)).toBe(true);
    expect(await coordinator.nodeResponded(id, 1, chain.accounts.other.address, after)).toBe(false);
    expect(await reader.readRedundancyCountBatch([id, id2], [1, 1], after)).toEqual([1, 0]);
    expect(await coordinator.delegateCreatedId(chain.addresses.delegator, 1)).toBe(0);
  });

  test("behavior: a ws:// RPC URL works too (same counters)", async () => {
    const ws = createRpc({
      urls: [chain.rpcUrl.replace(/^http/, "ws")],
      timeoutMs: 5000,
      maxRetries: 1,
      log: createLog("rpc"),
    });
    expect(await ws.client.getChainId()).toBe(chain.chainId);
    expect(ws.stats()).toMatchObject({ requests: 1, byMethod: { eth_chainId: 1 } });
  });

  test("default: WalletChecker validity and balances (native and ERC-20)", async () => {
    const checker = createWalletChecker(rpc.client, chain.addresses.walletFactory);
    const wallet = await createWallet(chain, chain.accounts.consumerOwner);
    expect(await checker.isValidWallet(wallet)).toBe(true);
    expect(await checker.isValidWallet(chain.accounts.other.address)).toBe(false);
    await fund(chain, wallet, 1000n);
    await fund(chain, wallet, 500n, chain.addresses.token);
    expect(await checker.hasEnoughBalance(wallet, zeroAddress, 1000n)).toEqual({ ok: true, balance: 1000n });
    expect(await checker.hasEnoughBalance(wallet, zeroAddress, 1001n)).toEqual({ ok: false, balance: 1000n });
    expect(await checker.hasEnoughBalance(wallet, chain.addresses.token.toLowerCase(), 500n)).toEqual({
      ok: true,
      balance: 500n,
    });
    expect(await checker.balanceOf(chain.accounts.other.address, chain.addresses.token)).toBe(0n);
  });
});
