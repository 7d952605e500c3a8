// The test contracts behave as chain-interface.md states: subscriptions, the deliverCompute check order and
// its custom errors, redundancy, intervals, lazy delivery into the Inbox, payments with the fee split and
// wallet escrow, proof verification, delegated subscriptions (EIP-712), Reader batches, and the fixture itself.
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import { type Address, type Hex, type TransactionReceipt, zeroAddress } from "viem";
import {
  getSharedChain,
  PROTOCOL_FEE_BPS,
  SPEC_ADDRESSES,
  startChain,
  type TestChain,
} from "../../fixtures/anvil.ts";
import {
  approve,
  balanceOf,
  cancelRange,
  cancelSubscription,
  containerIdOf,
  createSubscription,
  createSubscriptions,
  createWallet,
  type DeliverParams,
  decodeEvents,
  delegatedSubscription,
  delegateKey,
  deliver,
  expectedContainerInputs,
  fund,
  getSubscription,
  latestTimestamp,
  mineAt,
  nodeRespondedKey,
  read,
  redundancyKey,
  requestCallback,
  type SubscriptionStruct,
  sendReverting,
  setupWallet,
  signDelegatedSubscription,
  simulateDeliver,
  simulateRevert,
  UINT32_MAX,
  write,
} from "../../fixtures/chain-helpers.ts";

let chain: TestChain & AsyncDisposable;
let snap: Hex;

beforeAll(async () => {
  chain = await startChain();
});
afterAll(async () => {
  await chain?.[Symbol.asyncDispose]();
});
beforeEach(async () => {
  snap = await chain.snapshot();
});
afterEach(async () => {
  await chain.revert(snap);
});

const coordinator = () => ({ contract: "EIP712Coordinator", address: chain.addresses.coordinator });

async function readCoordinator<T>(functionName: string, args: readonly unknown[] = []): Promise<T> {
  return await read<T>(chain, { ...coordinator(), functionName, args });
}

async function errorOfDelivery(p: DeliverParams, blockTag: "latest" | "pending" = "pending") {
  return (await simulateDeliver(chain, p, blockTag))?.errorName;
}

function eventNames(abiName: string, receipt: Pick<TransactionReceipt, "logs">) {
  return decodeEvents(chain, abiName, receipt).map((e) => e.eventName);
}

describe("deployment", () => {
  test("default: core addresses match the spec table and the Registry resolves them", async () => {
    for (const [key, address] of Object.entries(SPEC_ADDRESSES)) {
      expect(chain.addresses[key as keyof typeof SPEC_ADDRESSES]).toBe(address);
    }
    const registry = { contract: "Registry", address: chain.addresses.registry };
    expect(await read(chain, { ...registry, functionName: "COORDINATOR" })).toBe(chain.addresses.coordinator);
    expect(await read(chain, { ...registry, functionName: "INBOX" })).toBe(chain.addresses.inbox);
    expect(await read(chain, { ...registry, functionName: "READER" })).toBe(chain.addresses.reader);
    expect(await read(chain, { ...registry, functionName: "FEE" })).toBe(chain.addresses.fee);
    expect(await read(chain, { ...registry, functionName: "WALLET_FACTORY" })).toBe(
      chain.addresses.walletFactory,
    );
  });

  test("default: id() starts at 1, Fee is 500 bps to the deployer, EIP-712 domain", async () => {
    expect(await readCoordinator<number>("id")).toBe(1);
    const fee = { contract: "Fee", address: chain.addresses.fee };
    expect(await read(chain, { ...fee, functionName: "FEE" })).toBe(PROTOCOL_FEE_BPS);
    expect(await read(chain, { ...fee, functionName: "FEE_RECIPIENT" })).toBe(
      chain.accounts.deployer.address,
    );
    expect(await readCoordinator("EIP712_NAME")).toBe("InfernetCoordinator");
    expect(await readCoordinator("EIP712_VERSION")).toBe("1");
    expect(await readCoordinator("eip712Domain")).toEqual([
      "0x0f",
      "InfernetCoordinator",
      "1",
      31337n,
      chain.addresses.coordinator,
      `0x${"00".repeat(32)}`,
      [],
    ]);
  });

  test("error: Fee.updateFee by a non-owner reverts Unauthorized", async () => {
    const p = {
      contract: "Fee",
      address: chain.addresses.fee,
      functionName: "updateFee",
      args: [100],
      from: chain.accounts.other,
    };
    expect((await simulateRevert(chain, p))?.selector).toBe("0x82b42900");
    await write(chain, { ...p, from: chain.accounts.deployer });
    expect(await read(chain, { contract: "Fee", address: chain.addresses.fee, functionName: "FEE" })).toBe(
      100,
    );
  });
});

describe("Ownable (Fee)", () => {
  const fee = () => ({ contract: "Fee", address: chain.addresses.fee });

  test("default: transferOwnership moves the fee recipient; zero address is refused", async () => {
    const { deployer, other } = chain.accounts;
    const transfer = { ...fee(), functionName: "transferOwnership", from: deployer };
    expect((await simulateRevert(chain, { ...transfer, args: [zeroAddress] }))?.errorName).toBe(
      "NewOwnerIsZeroAddress",
    );
    const receipt = await write(chain, { ...transfer, args: [other.address] });
    expect(decodeEvents(chain, "Fee", receipt, "OwnershipTransferred").map((e) => e.args)).toEqual([
      { oldOwner: deployer.address, newOwner: other.address },
    ]);
    expect(await read(chain, { ...fee(), functionName: "FEE_RECIPIENT" })).toBe(other.address);
  });

  test("behavior: two-step handover", async () => {
    const { deployer, other } = chain.accounts;
    const complete = {
      ...fee(),
      functionName: "completeOwnershipHandover",
      args: [other.address],
      from: deployer,
    };
    expect((await simulateRevert(chain, complete))?.errorName).toBe("NoHandoverRequest");
    await write(chain, { ...fee(), functionName: "requestOwnershipHandover", from: other });
    const expiresAt = await read<bigint>(chain, {
      ...fee(),
      functionName: "ownershipHandoverExpiresAt",
      args: [other.address],
    });
    expect(expiresAt).toBe(BigInt(await latestTimestamp(chain)) + 48n * 3600n);
    await write(chain, complete);
    expect(await read(chain, { ...fee(), functionName: "owner" })).toBe(other.address);
  });
});

describe("subscriptions", () => {
  test("default: created through a consumer, owned by it, active at block time + period", async () => {
    const { id, receipt } = await createSubscription(chain, {
      containers: ["A", "B"],
      frequency: 3,
      period: 60,
      redundancy: 2,
      lazy: true,
    });
    expect(id).toBe(1);
    expect(await readCoordinator<number>("id")).toBe(2);
    const block = await chain.publicClient.getBlock({ blockNumber: receipt.blockNumber });
    expect(await getSubscription(chain, id)).toEqual({
      owner: chain.addresses.subscriptionConsumer,
      activeAt: Number(block.timestamp) + 60,
      period: 60,
      frequency: 3,
      redundancy: 2,
      containerId: containerIdOf("A,B"),
      lazy: true,
      verifier: zeroAddress,
      paymentAmount: 0n,
      paymentToken: zeroAddress,
      wallet: zeroAddress,
    });
    expect(eventNames("EIP712Coordinator", receipt)).toEqual(["SubscriptionCreated"]);
  });

  test("behavior: an unknown id reads as an all-zero struct", async () => {
    const sub = await getSubscription(chain, 42);
    expect(sub.owner).toBe(zeroAddress);
    expect(sub.activeAt).toBe(0);
    expect(sub.containerId).toBe(`0x${"00".repeat(32)}`);
  });

  test("behavior: cancel sets activeAt to 2^32-1 and emits even when already cancelled", async () => {
    const { id } = await createSubscription(chain);
    const first = await cancelSubscription(chain, id);
    expect((await getSubscription(chain, id)).activeAt).toBe(UINT32_MAX);
    const again = await cancelSubscription(chain, id);
    expect(eventNames("EIP712Coordinator", first)).toEqual(["SubscriptionCancelled"]);
    expect(eventNames("EIP712Coordinator", again)).toEqual(["SubscriptionCancelled"]);
  });

  test("error: cancelSubscription by anyone but the owner reverts NotSubscriptionOwner", async () => {
    const { id } = await createSubscription(chain);
    const info = await simulateRevert(chain, {
      ...coordinator(),
      functionName: "cancelSubscription",
      args: [id],
      from: chain.accounts.consumerOwner,
    });
    expect(info?.errorName).toBe("NotSubscriptionOwner");
  });

  test("behavior: getSubscriptionInterval", async () => {
    const now = await latestTimestamp(chain);
    expect(await readCoordinator("getSubscriptionInterval", [now, 0])).toBe(1);
    expect(await readCoordinator("getSubscriptionInterval", [now - 25, 10])).toBe(3);
    expect(await readCoordinator("getSubscriptionInterval", [now, 10])).toBe(1);
  });

  test("behavior: callback consumer stores its inputs; subscription consumers return abi.encode(id, interval)", async () => {
    const { id } = await requestCallback(chain, { inputs: "0xdeadbeef", redundancy: 2 });
    const sub = await getSubscription(chain, id);
    expect([sub.frequency, sub.period, sub.redundancy, sub.lazy]).toEqual([1, 0, 2, false]);
    const args = [id, 1, 0, chain.accounts.node.address] as const;
    const inputs = (address: Address, contract: string, a: readonly unknown[] = args) =>
      read(chain, { contract, address, functionName: "getContainerInputs", args: a });
    expect(await inputs(chain.addresses.callbackConsumer, "TestCallbackConsumer")).toBe("0xdeadbeef");
    const { id: id2 } = await createSubscription(chain);
    expect(
      await inputs(chain.addresses.subscriptionConsumer, "TestSubscriptionConsumer", [
        id2,
        7,
        0,
        zeroAddress,
      ]),
    ).toBe(expectedContainerInputs(id2, 7));
    await write(chain, {
      contract: "TestSubscriptionConsumer",
      address: chain.addresses.subscriptionConsumer,
      functionName: "setContainerInputs",
      args: [id2, "0x0102"],
      from: chain.accounts.other,
    });
    expect(
      await inputs(chain.addresses.subscriptionConsumer, "TestSubscriptionConsumer", [
        id2,
        7,
        0,
        zeroAddress,
      ]),
    ).toBe("0x0102");
  });
});

describe("deliverCompute", () => {
  test("default: eager delivery calls back with the data and the count, then SubscriptionFulfilled", async () => {
    const { id } = await createSubscription(chain, { redundancy: 2 });
    const receipt = await deliver(chain, { id, interval: 1, input: "0x01", output: "0x0202", proof: "0x03" });
    expect(eventNames("TestSubscriptionConsumer", receipt)).toContain("ComputeReceived");
    const coordinatorEvents = decodeEvents(chain, "EIP712Coordinator", receipt, "SubscriptionFulfilled");
    expect(coordinatorEvents.map((l) => l.args)).toEqual([{ id, node: chain.accounts.node.address }]);
    const delivery = await read(chain, {
      contract: "TestSubscriptionConsumer",
      address: chain.addresses.subscriptionConsumer,
      functionName: "getDelivery",
      args: [0n],
    });
    expect(delivery).toEqual({
      subscriptionId: id,
      interval: 1,
      redundancy: 1,
      node: chain.accounts.node.address,
      input: "0x01",
      output: "0x0202",
      proof: "0x03",
      containerId: `0x${"00".repeat(32)}`,
      index: 0n,
    });
    expect(await readCoordinator("redundancyCount", [redundancyKey(id, 1)])).toBe(1);
    expect(
      await readCoordinator("nodeResponded", [nodeRespondedKey(id, 1, chain.accounts.node.address)]),
    ).toBe(true);
    expect(
      await readCoordinator("nodeResponded", [nodeRespondedKey(id, 1, chain.accounts.other.address)]),
    ).toBe(false);

    // A second node fills the redundancy; its callback reports count 2.
    await deliver(chain, { id, interval: 1, from: chain.accounts.other });
    expect(await readCoordinator("redundancyCount", [redundancyKey(id, 1)])).toBe(2);
    const second = await read<{ redundancy: number; node: Address }>(chain, {
      contract: "TestSubscriptionConsumer",
      address: chain.addresses.subscriptionConsumer,
      functionName: "getDelivery",
      args: [1n],
    });
    expect([second.redundancy, second.node]).toEqual([2, chain.accounts.other.address]);
  });

  test("error: SubscriptionNotFound comes first", async () => {
    expect(await errorOfDelivery({ id: 77, interval: 5 })).toBe("SubscriptionNotFound");
  });

  test("error: SubscriptionNotActive before activeAt, and for cancelled subscriptions", async () => {
    const { id } = await createSubscription(chain, { period: 3600, frequency: 2 });
    expect(await errorOfDelivery({ id, interval: 9 })).toBe("SubscriptionNotActive");
    const { id: cancelled } = await createSubscription(chain);
    await cancelSubscription(chain, cancelled);
    expect(await errorOfDelivery({ id: cancelled, interval: 1 })).toBe("SubscriptionNotActive");
  });

  test("error: IntervalMismatch for early and late intervals; SubscriptionCompleted past the last one", async () => {
    const { id } = await createSubscription(chain, { period: 100, frequency: 2 });
    const { activeAt } = await getSubscription(chain, id);
    await mineAt(chain, activeAt + 10); // interval 1
    expect(await errorOfDelivery({ id, interval: 2 }, "latest")).toBe("IntervalMismatch");
    expect(await errorOfDelivery({ id, interval: 1 }, "latest")).toBeUndefined();
    await deliver(chain, { id, interval: 1 });
    await mineAt(chain, activeAt + 110); // interval 2
    expect(await errorOfDelivery({ id, interval: 1 }, "latest")).toBe("IntervalMismatch");
    await deliver(chain, { id, interval: 2 });
    expect(await readCoordinator("redundancyCount", [redundancyKey(id, 2)])).toBe(1);
    await mineAt(chain, activeAt + 210); // interval 3 > frequency 2
    expect(await errorOfDelivery({ id, interval: 2 }, "latest")).toBe("IntervalMismatch");
    expect(await errorOfDelivery({ id, interval: 3 }, "latest")).toBe("SubscriptionCompleted");
  });

  test("error: a filled callback gives IntervalCompleted (even to the node that filled it)", async () => {
    const { id } = await createSubscription(chain);
    await deliver(chain, { id, interval: 1 });
    expect(await errorOfDelivery({ id, interval: 1 })).toBe("IntervalCompleted");
    expect(await errorOfDelivery({ id, interval: 1, from: chain.accounts.other })).toBe("IntervalCompleted");
  });

  test("error: redundancy 0 can never be delivered (IntervalCompleted)", async () => {
    const { id } = await createSubscription(chain, { redundancy: 0 });
    expect(await errorOfDelivery({ id, interval: 1 })).toBe("IntervalCompleted");
  });

  test("error: NodeRespondedAlready while redundancy is not met", async () => {
    const { id } = await createSubscription(chain, { redundancy: 3 });
    await deliver(chain, { id, interval: 1 });
    expect(await errorOfDelivery({ id, interval: 1 })).toBe("NodeRespondedAlready");
  });

  test("behavior: checks run before payments, and payments before the consumer callback", async () => {
    // Wrong interval on a paid subscription with invalid wallets: the interval check wins.
    const { id } = await createSubscription(chain, {
      paymentAmount: 10n,
      wallet: chain.accounts.other.address,
    });
    expect(await errorOfDelivery({ id, interval: 2 })).toBe("IntervalMismatch");
    expect(await errorOfDelivery({ id, interval: 1 })).toBe("InvalidWallet");
    // A disallowed node on a paid subscription with invalid wallets: InvalidWallet, not NodeNotAllowed.
    const { id: allowId } = await createSubscription(chain, {
      consumer: "allowlistConsumer",
      paymentAmount: 10n,
      wallet: chain.accounts.other.address,
    });
    expect(await errorOfDelivery({ id: allowId, interval: 1, from: chain.accounts.other })).toBe(
      "InvalidWallet",
    );
  });

  test("error: consumer reverts bubble up (NodeNotAllowed, Error(string)) and undo the marks", async () => {
    const { id } = await createSubscription(chain, { consumer: "allowlistConsumer" });
    const denied = await simulateDeliver(chain, { id, interval: 1, from: chain.accounts.other });
    expect([denied?.selector, denied?.errorName]).toEqual(["0x42764946", "NodeNotAllowed"]);
    const mined = await sendReverting(chain, {
      ...coordinator(),
      functionName: "deliverCompute",
      args: [id, 1, "0x", "0x", "0x", zeroAddress],
      from: chain.accounts.other,
    });
    expect(mined.status).toBe("reverted");
    expect(await readCoordinator("redundancyCount", [redundancyKey(id, 1)])).toBe(0);
    await deliver(chain, { id, interval: 1 }); // the allowlisted node
    expect(
      await read(chain, {
        contract: "TestAllowlistConsumer",
        address: chain.addresses.allowlistConsumer,
        functionName: "isAllowedNode",
        args: [chain.accounts.node.address],
      }),
    ).toBe(true);

    const { id: failing } = await createSubscription(chain, { consumer: "failingConsumer" });
    const failed = await simulateDeliver(chain, { id: failing, interval: 1 });
    expect(failed?.errorName).toBe("Error");
    expect(failed?.args).toEqual(["TestFailingConsumer: failure"]);
    const failingConsumer = {
      contract: "TestFailingConsumer",
      address: chain.addresses.failingConsumer,
      functionName: "setFailMode",
      from: chain.accounts.other,
    };
    await write(chain, { ...failingConsumer, args: [1] });
    expect((await simulateDeliver(chain, { id: failing, interval: 1 }))?.errorName).toBe("ConsumerFailed");
    await write(chain, { ...failingConsumer, args: [2] });
    expect((await simulateDeliver(chain, { id: failing, interval: 1 }))?.data).toBe("0x");
  });

  test("error: a consumer re-entering deliverCompute makes it revert Reentrancy()", async () => {
    const { id } = await createSubscription(chain, { consumer: "failingConsumer", redundancy: 2 });
    await write(chain, {
      contract: "TestFailingConsumer",
      address: chain.addresses.failingConsumer,
      functionName: "setFailMode",
      args: [5],
      from: chain.accounts.other,
    });
    const info = await simulateDeliver(chain, { id, interval: 1 });
    expect([info?.selector, info?.errorName]).toEqual(["0xab143c06", "Reentrancy"]);
  });

  test("error: the failing consumer's getContainerInputs can revert as well", async () => {
    const failing = { contract: "TestFailingConsumer", address: chain.addresses.failingConsumer };
    const inputs = { ...failing, functionName: "getContainerInputs", args: [3, 1, 0, zeroAddress] };
    expect(await read(chain, inputs)).toBe(expectedContainerInputs(3, 1));
    await write(chain, {
      ...failing,
      functionName: "setFailInputs",
      args: [true],
      from: chain.accounts.other,
    });
    expect((await simulateRevert(chain, { ...inputs, from: chain.accounts.node }))?.args).toEqual([
      "TestFailingConsumer: inputs",
    ]);
  });

  test("error: rawReceiveCompute from anyone but the Coordinator reverts NotCoordinator", async () => {
    const info = await simulateRevert(chain, {
      contract: "TestSubscriptionConsumer",
      address: chain.addresses.subscriptionConsumer,
      functionName: "rawReceiveCompute",
      args: [1, 1, 1, zeroAddress, "0x", "0x", "0x", `0x${"00".repeat(32)}`, 0n],
      from: chain.accounts.node,
    });
    expect(info?.selector).toBe("0x9ec853e6");
  });
});

describe("lazy delivery and Inbox", () => {
  test("default: output goes to the Inbox; the consumer gets empty data, the containerId and the index", async () => {
    const { id } = await createSubscription(chain, { lazy: true, redundancy: 2, containers: "lazy-one" });
    const receipt = await deliver(chain, { id, interval: 1, input: "0xaa", output: "0xbb", proof: "0xcc" });
    const cid = containerIdOf("lazy-one");
    const inboxLogs = decodeEvents(chain, "Inbox", receipt, "NewInboxItem");
    expect(inboxLogs.map((l) => l.args)).toEqual([
      { containerId: cid, node: chain.accounts.node.address, index: 0n },
    ]);
    const block = await chain.publicClient.getBlock({ blockNumber: receipt.blockNumber });
    const item = await read(chain, {
      contract: "Inbox",
      address: chain.addresses.inbox,
      functionName: "read",
      args: [cid, chain.accounts.node.address, 0n],
    });
    expect(item).toEqual({
      timestamp: Number(block.timestamp),
      subscriptionId: id,
      interval: 1,
      input: "0xaa",
      output: "0xbb",
      proof: "0xcc",
    });
    const delivery = await read<{ input: Hex; output: Hex; proof: Hex; containerId: Hex; index: bigint }>(
      chain,
      {
        contract: "TestSubscriptionConsumer",
        address: chain.addresses.subscriptionConsumer,
        functionName: "getDelivery",
        args: [0n],
      },
    );
    expect([delivery.input, delivery.output, delivery.proof, delivery.containerId, delivery.index]).toEqual([
      "0x",
      "0x",
      "0x",
      cid,
      0n,
    ]);
    // Same container, another node: its own list starts at index 0 as well.
    await deliver(chain, { id, interval: 1, from: chain.accounts.other });
    expect(
      await read(chain, {
        contract: "Inbox",
        address: chain.addresses.inbox,
        functionName: "items",
        args: [cid, chain.accounts.other.address, 0n],
      }),
    ).toEqual([Number((await chain.publicClient.getBlock()).timestamp), id, 1, "0x", "0x", "0x"]);
  });

  test("behavior: anyone may write; writeViaCoordinator is Coordinator-only", async () => {
    const cid = containerIdOf("manual");
    await write(chain, {
      contract: "Inbox",
      address: chain.addresses.inbox,
      functionName: "write",
      args: [cid, "0x01", "0x02", "0x"],
      from: chain.accounts.other,
    });
    const item = await read<{ subscriptionId: number; interval: number; output: Hex }>(chain, {
      contract: "Inbox",
      address: chain.addresses.inbox,
      functionName: "read",
      args: [cid, chain.accounts.other.address, 0n],
    });
    expect([item.subscriptionId, item.interval, item.output]).toEqual([0, 0, "0x02"]);
    const info = await simulateRevert(chain, {
      contract: "Inbox",
      address: chain.addresses.inbox,
      functionName: "writeViaCoordinator",
      args: [cid, chain.accounts.other.address, 1, 1, "0x", "0x", "0x"],
      from: chain.accounts.other,
    });
    expect(info?.errorName).toBe("NotCoordinator");
  });
});

describe("payments", () => {
  const A = 1000n;

  async function paidSetup(token: Address) {
    const consumerWallet = await setupWallet(chain, {
      owner: chain.accounts.consumerOwner,
      token,
      fundAmount: 5n * A,
      spender: chain.addresses.subscriptionConsumer,
      allowance: 3n * A,
    });
    const nodeWallet = await setupWallet(chain, {
      owner: chain.accounts.node,
      token,
      fundAmount: 2n * A,
      spender: chain.accounts.node.address,
      allowance: 2n * A,
    });
    return { consumerWallet, nodeWallet };
  }

  for (const kind of ["token", "ETH"] as const) {
    test(`default: ${kind}: the node wallet gets 90% and the fee recipient 10% (fee applied twice)`, async () => {
      const token = kind === "token" ? chain.addresses.token : zeroAddress;
      const { consumerWallet, nodeWallet } = await paidSetup(token);
      const { id } = await createSubscription(chain, {
        paymentToken: token,
        paymentAmount: A,
        wallet: consumerWallet,
      });
      const recipient = chain.accounts.deployer.address;
      const before = await balanceOf(chain, recipient, token);
      const receipt = await deliver(chain, { id, interval: 1, nodeWallet, from: chain.accounts.node });
      expect(await balanceOf(chain, nodeWallet, token)).toBe(2n * A + 900n);
      expect(await balanceOf(chain, consumerWallet, token)).toBe(4n * A);
      // the node, not the fee recipient, pays the gas
      expect((await balanceOf(chain, recipient, token)) - before).toBe(100n);
      const allowance = await read(chain, {
        contract: "Wallet",
        address: consumerWallet,
        functionName: "allowance",
        args: [chain.addresses.subscriptionConsumer, token],
      });
      expect(allowance).toBe(2n * A);
      const walletEvents = decodeEvents(chain, "Wallet", receipt, "Transfer");
      expect(walletEvents.map((l) => l.args)).toEqual([
        { spender: chain.addresses.subscriptionConsumer, token, to: recipient, amount: 100n },
        { spender: chain.addresses.subscriptionConsumer, token, to: nodeWallet, amount: 900n },
      ]);
    });
  }

  test("behavior: with paymentAmount 0 the node wallet is ignored", async () => {
    const { id } = await createSubscription(chain, { wallet: chain.accounts.other.address });
    expect(
      await errorOfDelivery({ id, interval: 1, nodeWallet: chain.accounts.other.address }),
    ).toBeUndefined();
  });

  test("error: InvalidWallet when the node wallet or the subscription wallet is not factory-made", async () => {
    const token = chain.addresses.token;
    const { consumerWallet, nodeWallet } = await paidSetup(token);
    const { id } = await createSubscription(chain, {
      paymentToken: token,
      paymentAmount: A,
      wallet: consumerWallet,
    });
    expect(await errorOfDelivery({ id, interval: 1, nodeWallet: zeroAddress })).toBe("InvalidWallet");
    expect(await errorOfDelivery({ id, interval: 1, nodeWallet: chain.accounts.node.address })).toBe(
      "InvalidWallet",
    );
    const { id: badSub } = await createSubscription(chain, {
      paymentToken: token,
      paymentAmount: A,
      wallet: chain.accounts.consumerOwner.address,
    });
    expect(await errorOfDelivery({ id: badSub, interval: 1, nodeWallet })).toBe("InvalidWallet");
  });

  test("error: a fee above 32767 bps overflows 2*F in uint16 (Panic 0x11)", async () => {
    const token = chain.addresses.token;
    const { consumerWallet, nodeWallet } = await paidSetup(token);
    const { id } = await createSubscription(chain, {
      paymentToken: token,
      paymentAmount: A,
      wallet: consumerWallet,
    });
    await write(chain, {
      contract: "Fee",
      address: chain.addresses.fee,
      functionName: "updateFee",
      args: [40_000],
      from: chain.accounts.deployer,
    });
    const info = await simulateDeliver(chain, { id, interval: 1, nodeWallet });
    expect([info?.errorName, info?.args]).toEqual(["Panic", [0x11n]]);
  });

  test("error: InsufficientAllowance / InsufficientFunds from the consumer wallet", async () => {
    const token = chain.addresses.token;
    const nodeWallet = await createWallet(chain, chain.accounts.node);
    const unapproved = await setupWallet(chain, {
      owner: chain.accounts.consumerOwner,
      token,
      fundAmount: A,
    });
    const { id } = await createSubscription(chain, {
      paymentToken: token,
      paymentAmount: A,
      wallet: unapproved,
    });
    const noAllowance = await simulateDeliver(chain, { id, interval: 1, nodeWallet });
    expect([noAllowance?.errorName, noAllowance?.selector]).toEqual(["InsufficientAllowance", "0x13be252b"]);
    const empty = await setupWallet(chain, {
      owner: chain.accounts.consumerOwner,
      token,
      fundAmount: 0n,
      spender: chain.addresses.subscriptionConsumer,
      allowance: A,
    });
    const { id: id2 } = await createSubscription(chain, {
      paymentToken: token,
      paymentAmount: A,
      wallet: empty,
    });
    const noFunds = await simulateDeliver(chain, { id: id2, interval: 1, nodeWallet });
    expect([noFunds?.errorName, noFunds?.selector]).toEqual(["InsufficientFunds", "0x356680b7"]);
  });
});

describe("wallets", () => {
  test("default: WalletFactory.createWallet emits WalletCreated and only its wallets are valid", async () => {
    const wallet = await createWallet(chain, chain.accounts.consumerOwner.address, chain.accounts.other);
    const factory = { contract: "WalletFactory", address: chain.addresses.walletFactory };
    expect(await read(chain, { ...factory, functionName: "isValidWallet", args: [wallet] })).toBe(true);
    expect(
      await read(chain, { ...factory, functionName: "isValidWallet", args: [chain.addresses.token] }),
    ).toBe(false);
    expect(await read(chain, { contract: "Wallet", address: wallet, functionName: "owner" })).toBe(
      chain.accounts.consumerOwner.address,
    );
  });

  test("behavior: approve sets outright, withdraw only the unlocked balance, plain ETH is accepted", async () => {
    const owner = chain.accounts.consumerOwner;
    const wallet = await createWallet(chain, owner);
    await fund(chain, wallet, 100n); // plain ETH transfer → receive()
    await approve(chain, { wallet, owner, spender: chain.accounts.other.address, amount: 50n });
    await approve(chain, { wallet, owner, spender: chain.accounts.other.address, amount: 7n });
    const allowance = await read(chain, {
      contract: "Wallet",
      address: wallet,
      functionName: "allowance",
      args: [chain.accounts.other.address, zeroAddress],
    });
    expect(allowance).toBe(7n);
    const withdraw = { contract: "Wallet", address: wallet, functionName: "withdraw", from: owner };
    expect((await simulateRevert(chain, { ...withdraw, args: [zeroAddress, 101n] }))?.errorName).toBe(
      "InsufficientFunds",
    );
    expect(
      (await simulateRevert(chain, { ...withdraw, args: [zeroAddress, 1n], from: chain.accounts.other }))
        ?.errorName,
    ).toBe("Unauthorized");
    const receipt = await write(chain, { ...withdraw, args: [zeroAddress, 60n] });
    expect(eventNames("Wallet", receipt)).toEqual(["Withdrawl"]);
    expect(await balanceOf(chain, wallet)).toBe(40n);
    const cTransfer = await simulateRevert(chain, {
      contract: "Wallet",
      address: wallet,
      functionName: "cTransfer",
      args: [owner.address, zeroAddress, owner.address, 1n],
      from: owner,
    });
    expect(cTransfer?.errorName).toBe("NotCoordinator");
  });
});

describe("proof verification", () => {
  const A = 1000n;
  const VF = 50n;

  async function proofSetup(opts: { atomic?: boolean; result?: boolean } = {}) {
    const token = chain.addresses.token;
    const verifier = {
      contract: "MockVerifier",
      address: chain.addresses.verifier,
      from: chain.accounts.other,
    };
    await write(chain, { ...verifier, functionName: "setToken", args: [token, true, VF] });
    if (opts.atomic)
      await write(chain, { ...verifier, functionName: "setAtomic", args: [true, opts.result ?? true] });
    const consumerWallet = await setupWallet(chain, {
      owner: chain.accounts.consumerOwner,
      token,
      fundAmount: 5n * A,
      spender: chain.addresses.subscriptionConsumer,
      allowance: A,
    });
    const nodeWallet = await setupWallet(chain, {
      owner: chain.accounts.node,
      token,
      fundAmount: A,
      spender: chain.accounts.node.address,
      allowance: A,
    });
    const { id } = await createSubscription(chain, {
      paymentToken: token,
      paymentAmount: A,
      wallet: consumerWallet,
      verifier: chain.addresses.verifier,
    });
    return { token, consumerWallet, nodeWallet, id };
  }

  const locked = (wallet: Address, token: Address) =>
    read<bigint>(chain, {
      contract: "Wallet",
      address: wallet,
      functionName: "lockedBalanceOf",
      args: [token],
    });

  test("default: fees are paid, both sides are escrowed, a ProofRequest is stored and the verifier is asked", async () => {
    const { token, consumerWallet, nodeWallet, id } = await proofSetup();
    const recipientBefore = await balanceOf(chain, chain.accounts.deployer.address, token);
    const receipt = await deliver(chain, { id, interval: 1, proof: "0x5eed", nodeWallet });
    const block = await chain.publicClient.getBlock({ blockNumber: receipt.blockNumber });
    // protocol: 2F·A/1e4 = 100 plus F·VF/1e4 = 2; verifier wallet (the verifier itself): 48
    expect((await balanceOf(chain, chain.accounts.deployer.address, token)) - recipientBefore).toBe(102n);
    expect(await balanceOf(chain, chain.addresses.verifier, token)).toBe(48n);
    expect(await locked(nodeWallet, token)).toBe(A);
    expect(await locked(consumerWallet, token)).toBe(850n);
    expect(
      await readCoordinator("proofRequests", [nodeRespondedKey(id, 1, chain.accounts.node.address)]),
    ).toEqual([Number(block.timestamp) + 7 * 24 * 3600, nodeWallet, 850n]);
    const requested = decodeEvents(chain, "MockVerifier", receipt, "ProofRequested");
    expect(requested.map((l) => l.args)).toEqual([
      { subscriptionId: id, interval: 1, node: chain.accounts.node.address, proof: "0x5eed" },
    ]);
  });

  test("behavior: valid proof pays the escrow to the node wallet", async () => {
    const { token, consumerWallet, nodeWallet, id } = await proofSetup();
    await deliver(chain, { id, interval: 1, nodeWallet });
    const receipt = await write(chain, {
      contract: "MockVerifier",
      address: chain.addresses.verifier,
      functionName: "finalize",
      args: [id, 1, chain.accounts.node.address, true],
      from: chain.accounts.other,
    });
    const verified = decodeEvents(chain, "EIP712Coordinator", receipt, "ProofVerified");
    expect(verified.map((l) => l.args)).toEqual([
      {
        id,
        interval: 1,
        node: chain.accounts.node.address,
        active: true,
        verifier: chain.addresses.verifier,
        valid: true,
      },
    ]);
    expect(await locked(nodeWallet, token)).toBe(0n);
    expect(await locked(consumerWallet, token)).toBe(0n);
    expect(await balanceOf(chain, nodeWallet, token)).toBe(A + 850n);
    expect(await balanceOf(chain, consumerWallet, token)).toBe(5n * A - A);
    // the node's allowance is restored by the unlock
    expect(
      await read(chain, {
        contract: "Wallet",
        address: nodeWallet,
        functionName: "allowance",
        args: [chain.accounts.node.address, token],
      }),
    ).toBe(A);
    expect(
      (
        await simulateRevert(chain, {
          contract: "MockVerifier",
          address: chain.addresses.verifier,
          functionName: "finalize",
          args: [id, 1, chain.accounts.node.address, true],
          from: chain.accounts.other,
        })
      )?.errorName,
    ).toBe("ProofRequestNotFound");
  });

  test("behavior: invalid proof slashes the node's stake to the consumer wallet", async () => {
    const { token, consumerWallet, nodeWallet, id } = await proofSetup();
    await deliver(chain, { id, interval: 1, nodeWallet });
    await write(chain, {
      contract: "MockVerifier",
      address: chain.addresses.verifier,
      functionName: "finalize",
      args: [id, 1, chain.accounts.node.address, false],
      from: chain.accounts.other,
    });
    expect(await balanceOf(chain, nodeWallet, token)).toBe(0n);
    expect(await balanceOf(chain, consumerWallet, token)).toBe(5n * A - 150n + A);
  });

  test("error: only the verifier may finalize within the week; after expiry anyone can and the node is paid", async () => {
    const { token, nodeWallet, id } = await proofSetup();
    await deliver(chain, { id, interval: 1, nodeWallet });
    const finalize = {
      ...coordinator(),
      functionName: "finalizeProofVerification",
      args: [id, 1, chain.accounts.node.address, false],
      from: chain.accounts.other,
    };
    expect((await simulateRevert(chain, finalize))?.errorName).toBe("UnauthorizedVerifier");
    await chain.increaseTime(7 * 24 * 3600 + 10);
    const receipt = await write(chain, finalize);
    const verified = decodeEvents(chain, "EIP712Coordinator", receipt, "ProofVerified");
    expect(verified[0]?.args.active).toBe(false);
    expect(await balanceOf(chain, nodeWallet, token)).toBe(A + 850n);
  });

  test("error: ProofRequestNotFound when nothing is pending", async () => {
    const info = await simulateRevert(chain, {
      ...coordinator(),
      functionName: "finalizeProofVerification",
      args: [1, 1, chain.accounts.node.address, true],
      from: chain.accounts.other,
    });
    expect(info?.errorName).toBe("ProofRequestNotFound");
  });

  test("behavior: an atomic verifier finalizes inside the delivery transaction", async () => {
    const { token, nodeWallet, id } = await proofSetup({ atomic: true, result: true });
    const receipt = await deliver(chain, { id, interval: 1, nodeWallet });
    expect(eventNames("EIP712Coordinator", receipt)).toEqual(["ProofVerified", "SubscriptionFulfilled"]);
    expect(await balanceOf(chain, nodeWallet, token)).toBe(A + 850n);
  });

  test("error: a verifier fee above the remainder underflows (Panic 0x11)", async () => {
    const { token, consumerWallet, nodeWallet, id } = await proofSetup();
    await approve(chain, {
      wallet: consumerWallet,
      owner: chain.accounts.consumerOwner,
      spender: chain.addresses.subscriptionConsumer,
      token,
      amount: 5n * A,
    });
    await write(chain, {
      contract: "MockVerifier",
      address: chain.addresses.verifier,
      functionName: "setToken",
      args: [token, true, 901n],
      from: chain.accounts.other,
    });
    const info = await simulateDeliver(chain, { id, interval: 1, nodeWallet });
    expect([info?.errorName, info?.args]).toEqual(["Panic", [0x11n]]);
  });

  test("error: UnsupportedVerifierToken; node wallet without approval gives InsufficientAllowance", async () => {
    const { token, nodeWallet, id } = await proofSetup();
    const unapprovedNode = await setupWallet(chain, { owner: chain.accounts.node, token, fundAmount: A });
    expect(await errorOfDelivery({ id, interval: 1, nodeWallet: unapprovedNode })).toBe(
      "InsufficientAllowance",
    );
    await write(chain, {
      contract: "MockVerifier",
      address: chain.addresses.verifier,
      functionName: "setToken",
      args: [token, false, 0n],
      from: chain.accounts.other,
    });
    expect(await errorOfDelivery({ id, interval: 1, nodeWallet })).toBe("UnsupportedVerifierToken");
  });
});

describe("delegated subscriptions (EIP-712)", () => {
  async function signed(nonce: number, overrides: Partial<SubscriptionStruct> = {}, expiryIn = 3600) {
    const sub = { ...(await delegatedSubscription(chain)), ...overrides };
    const expiry = (await latestTimestamp(chain)) + expiryIn;
    const sig = await signDelegatedSubscription(chain, { nonce, expiry, sub });
    return { sub, expiry, sig, args: [nonce, expiry, sub, sig.v, sig.r, sig.s] as const };
  }

  const createDelegatee = (args: readonly unknown[], from = chain.accounts.node) => ({
    ...coordinator(),
    functionName: "createSubscriptionDelegatee",
    args,
    from,
  });

  test("default: createSubscriptionDelegatee stores the struct as signed and records the nonce", async () => {
    const { sub, args } = await signed(5, { redundancy: 2 });
    const receipt = await write(chain, createDelegatee(args));
    expect(eventNames("EIP712Coordinator", receipt)).toEqual(["SubscriptionCreated"]);
    expect(await getSubscription(chain, 1)).toEqual(sub);
    expect(await readCoordinator("delegateCreatedIds", [delegateKey(chain.addresses.delegator, 5)])).toBe(1);
    expect(await readCoordinator("maxSubscriberNonce", [chain.addresses.delegator])).toBe(5);
    // lower nonces are fine and do not lower maxSubscriberNonce
    const second = await signed(3);
    await write(chain, createDelegatee(second.args));
    expect(await readCoordinator("delegateCreatedIds", [delegateKey(chain.addresses.delegator, 3)])).toBe(2);
    expect(await readCoordinator("maxSubscriberNonce", [chain.addresses.delegator])).toBe(5);
  });

  test("behavior: a replay of (owner, nonce) returns the existing id without any check", async () => {
    const { args } = await signed(1);
    await write(chain, createDelegatee(args));
    const [nonce, , sub] = args;
    const { result } = await chain.publicClient.simulateContract({
      account: chain.accounts.other,
      address: chain.addresses.coordinator,
      abi: chain.abis.EIP712Coordinator ?? [],
      functionName: "createSubscriptionDelegatee",
      args: [nonce, 0, sub, 0, `0x${"00".repeat(32)}`, `0x${"00".repeat(32)}`],
    });
    expect(result as unknown).toBe(1);
  });

  test("error: SignatureExpired, InvalidSignature (v 0/1), SignerMismatch, owner without getSigner", async () => {
    const expired = await signed(1, {}, 0);
    expect((await simulateRevert(chain, createDelegatee(expired.args), "latest"))?.errorName).toBe(
      "SignatureExpired",
    );
    const ok = await signed(2);
    const [n, e, s, v, r, sv] = ok.args;
    const yParity = await simulateRevert(chain, createDelegatee([n, e, s, v - 27, r, sv]));
    expect([yParity?.selector, yParity?.errorName]).toEqual(["0x8baa579f", "InvalidSignature"]);
    const other = await signDelegatedSubscription(chain, {
      nonce: 2,
      expiry: ok.expiry,
      sub: ok.sub,
      signer: chain.accounts.other,
    });
    const mismatch = await simulateRevert(chain, createDelegatee([n, e, s, other.v, other.r, other.s]));
    expect(mismatch?.errorName).toBe("SignerMismatch");
    const noSigner = await signed(3, { owner: chain.addresses.subscriptionConsumer });
    expect((await simulateRevert(chain, createDelegatee(noSigner.args)))?.data).toBe("0x");
  });

  test("behavior: deliverComputeDelegatee creates then delivers; later nodes hit the existing id", async () => {
    const { args } = await signed(9, { redundancy: 2 });
    const deliverArgs = [...args, 1, "0x01", "0x02", "0x", zeroAddress] as const;
    const delegatee = (from = chain.accounts.node) => ({
      ...coordinator(),
      functionName: "deliverComputeDelegatee",
      args: deliverArgs,
      from,
    });
    const nextId = await readCoordinator<number>("id");
    const receipt = await write(chain, delegatee());
    expect(eventNames("EIP712Coordinator", receipt)).toEqual([
      "SubscriptionCreated",
      "SubscriptionFulfilled",
    ]);
    expect(await readCoordinator("delegateCreatedIds", [delegateKey(chain.addresses.delegator, 9)])).toBe(
      nextId,
    );
    const again = await write(chain, delegatee(chain.accounts.other));
    expect(eventNames("EIP712Coordinator", again)).toEqual(["SubscriptionFulfilled"]);
    expect(await readCoordinator("redundancyCount", [redundancyKey(nextId, 1)])).toBe(2);
    expect((await simulateRevert(chain, delegatee(chain.accounts.deployer)))?.errorName).toBe(
      "IntervalCompleted",
    );
  });
});

describe("Reader", () => {
  const reader = () => ({ contract: "Reader", address: chain.addresses.reader });

  test("default: readSubscriptionBatch is [start, end) with zero structs for unknown ids", async () => {
    await createSubscription(chain, { containers: "one" });
    await createSubscription(chain, { containers: "two" });
    const batch = await read<SubscriptionStruct[]>(chain, {
      ...reader(),
      functionName: "readSubscriptionBatch",
      args: [1, 4],
    });
    expect(batch.map((s) => s.containerId)).toEqual([
      containerIdOf("one"),
      containerIdOf("two"),
      `0x${"00".repeat(32)}`,
    ]);
    expect(batch[2]?.owner).toBe(zeroAddress);
    expect(await read(chain, { ...reader(), functionName: "readSubscriptionBatch", args: [2, 2] })).toEqual(
      [],
    );
  });

  test("default: readRedundancyCountBatch pairs ids and intervals", async () => {
    const { id } = await createSubscription(chain, { redundancy: 2 });
    await deliver(chain, { id, interval: 1 });
    expect(
      await read(chain, {
        ...reader(),
        functionName: "readRedundancyCountBatch",
        args: [
          [id, id, 99],
          [1, 2, 1],
        ],
      }),
    ).toEqual([1, 0, 0]);
    expect(
      await read(chain, { ...reader(), functionName: "readRedundancyCountBatch", args: [[], []] }),
    ).toEqual([]);
  });

  test("error: endId < startId panics 0x11; a short intervals array panics 0x32", async () => {
    const underflow = await simulateRevert(chain, {
      ...reader(),
      functionName: "readSubscriptionBatch",
      args: [5, 2],
      from: chain.accounts.other,
    });
    expect([underflow?.errorName, underflow?.args]).toEqual(["Panic", [0x11n]]);
    const outOfBounds = await simulateRevert(chain, {
      ...reader(),
      functionName: "readRedundancyCountBatch",
      args: [[1, 2], [1]],
      from: chain.accounts.other,
    });
    expect([outOfBounds?.errorName, outOfBounds?.args]).toEqual(["Panic", [0x32n]]);
  });
});

describe("fixture", () => {
  test("behavior: bulk creation cycles containers, ids are consecutive, cancelRange cancels", async () => {
    const { firstId, lastId, ids } = await createSubscriptions(chain, {
      count: 2500,
      containers: ["a", "b,c", "d"],
      chunkSize: 1000,
      period: 30,
      frequency: 5,
      redundancy: 2,
    });
    expect(firstId).toBe(1);
    expect(lastId).toBe(2500);
    expect(ids).toHaveLength(2500);
    expect(await readCoordinator<number>("id")).toBe(2501);
    const expected = [containerIdOf("a"), containerIdOf("b,c"), containerIdOf("d")];
    for (const id of [1, 2, 3, 1000, 1001, 1002, 2000, 2001, 2500]) {
      const sub = await getSubscription(chain, id);
      expect(sub.containerId).toBe(expected[(id - 1) % 3] as Hex);
      expect([sub.owner, sub.period, sub.frequency, sub.redundancy]).toEqual([
        chain.addresses.bulkConsumer,
        30,
        5,
        2,
      ]);
    }
    await cancelRange(chain, 10, 20);
    expect((await getSubscription(chain, 9)).activeAt).not.toBe(UINT32_MAX);
    expect((await getSubscription(chain, 10)).activeAt).toBe(UINT32_MAX);
    expect((await getSubscription(chain, 19)).activeAt).toBe(UINT32_MAX);
    expect((await getSubscription(chain, 20)).activeAt).not.toBe(UINT32_MAX);
  });

  test("behavior: snapshot and revert restore state", async () => {
    const id = await chain.snapshot();
    await createSubscription(chain);
    expect(await readCoordinator<number>("id")).toBe(2);
    await chain.revert(id);
    expect(await readCoordinator<number>("id")).toBe(1);
  });

  test("behavior: stop makes the RPC unreachable; restart brings the same state back on the same port", async () => {
    await using own = await startChain();
    const port = own.port;
    const wallet = own.walletClient(own.accounts.consumerOwner);
    const hash = await wallet.writeContract({
      address: own.addresses.subscriptionConsumer,
      abi: own.abis.TestSubscriptionConsumer ?? [],
      functionName: "subscribe",
      args: ["restart-me", 1, 0, 1, false, zeroAddress, 0n, zeroAddress, zeroAddress],
    });
    await own.publicClient.waitForTransactionReceipt({ hash });
    const blockBefore = await own.publicClient.getBlockNumber();
    await own.stop();
    await expect(own.rpc("eth_blockNumber")).rejects.toThrow();
    await own.restart();
    expect(own.port).toBe(port);
    expect(await own.publicClient.getBlockNumber()).toBe(blockBefore);
    expect(
      await own.publicClient.readContract({
        address: own.addresses.coordinator,
        abi: own.abis.EIP712Coordinator ?? [],
        functionName: "id",
      }),
    ).toBe(2);
    await own.mine(3);
    expect(await own.publicClient.getBlockNumber()).toBe(blockBefore + 3n);
  });

  test("behavior: without automine the deployment lands in one block; blocks come from mine()", async () => {
    await using manual = await startChain({ noMining: true });
    expect(manual.addresses.registry).toBe(SPEC_ADDRESSES.registry);
    expect(await manual.publicClient.getBlockNumber()).toBe(1n);
    await manual.mine(2);
    expect(await manual.publicClient.getBlockNumber()).toBe(3n);
  });

  test("behavior: getSharedChain returns one instance per process", async () => {
    const a = await getSharedChain();
    const b = await getSharedChain();
    expect(a).toBe(b);
    expect(a.addresses.registry).toBe(SPEC_ADDRESSES.registry);
  });
});
