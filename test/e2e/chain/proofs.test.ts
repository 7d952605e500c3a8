// End to end through the built binary on anvil: Ritual's test_callback_with_proof cases with the mock verifier
// (eager = atomic verification inside the delivery, lazy = finalised afterwards), valid and invalid proofs, and
// the exact balances: the node's stake is locked, then paid or slashed (chain-interface.md "Payments").
import { beforeAll, describe, expect, test } from "bun:test";
import { type Abi, type Address, encodeFunctionData, type Hex, zeroAddress } from "viem";
import { PROTOCOL_FEE_BPS } from "../../fixtures/anvil.ts";
import {
  balanceOf,
  decodeEvents,
  fund,
  requestCallback,
  setupWallet,
  write,
} from "../../fixtures/chain-helpers.ts";
import { aboutSubscription, ONE_ETHER, useChainNode } from "../../fixtures/chain-node.ts";
import {
  abiString,
  decodeEchoOutput,
  deliveriesSent,
  echoInput,
  recorders,
  transactionsFrom,
  waitForDeliveries,
} from "../../fixtures/e2e-chain.ts";

const ctx = useChainNode("e2e-proofs");

const PAYMENT = ONE_ETHER;
/** The verifier's price (Ritual: 0.2 ETH). */
const VERIFIER_FEE = ONE_ETHER / 5n;
const PROOF = "just trust me bro";
const F = BigInt(PROTOCOL_FEE_BPS);

/** What the node earns for a valid proof: the payment less the double protocol fee, less the verifier's price. */
const NODE_INCOME_VALID = PAYMENT - (PAYMENT * 2n * F) / 10_000n - VERIFIER_FEE;
/** What the verifier keeps of its price (the protocol takes its single fee of it). */
const VERIFIER_INCOME = VERIFIER_FEE - (VERIFIER_FEE * F) / 10_000n;

beforeAll(async () => {
  // The node's stake: its payment wallet must hold the full payment unlocked for each proof delivery.
  await fund(ctx.chain, ctx.node.paymentAddress, 10n * ONE_ETHER);
});

/** Sets the mock verifier: ETH at VERIFIER_FEE (or not supported); atomic (eager) with a preset verdict, or recorded (lazy). */
async function configureVerifier(mode: {
  atomic: boolean;
  valid: boolean;
  ethSupported?: boolean;
}): Promise<void> {
  const { chain } = ctx;
  const verifier = chain.addresses.verifier;
  const from = chain.accounts.deployer;
  await write(chain, {
    contract: "MockVerifier",
    address: verifier,
    functionName: "setToken",
    args: [zeroAddress, mode.ethSupported ?? true, VERIFIER_FEE],
    from,
  });
  await write(chain, {
    contract: "MockVerifier",
    address: verifier,
    functionName: "setAtomic",
    args: [mode.atomic, mode.valid],
    from,
  });
}

interface Balances {
  node: bigint;
  verifier: bigint;
}

async function balances(): Promise<Balances> {
  const { chain, node } = ctx;
  return {
    node: await balanceOf(chain, node.paymentAddress),
    verifier: await balanceOf(chain, chain.addresses.verifier),
  };
}

/** A paid (PAYMENT, ETH) callback with the mock verifier on `containers`, from a fresh funded, approved wallet. */
async function requestProof(
  containers: string,
): Promise<{ id: number; wallet: Address; mark: number; fromBlock: bigint }> {
  const { chain, node } = ctx;
  const wallet = await setupWallet(chain, {
    owner: chain.accounts.consumerOwner,
    fundAmount: 2n * PAYMENT,
    spender: chain.addresses.callbackConsumer,
  });
  const mark = node.logs.mark();
  const fromBlock = await chain.publicClient.getBlockNumber();
  const { id } = await requestCallback(chain, {
    containers,
    inputs: echoInput("hello", PROOF),
    paymentToken: zeroAddress,
    paymentAmount: PAYMENT,
    wallet,
    verifier: chain.addresses.verifier,
  });
  return { id, wallet, mark, fromBlock };
}

/** A proof callback on the proof-generating container, delivered; returns its id and the balances before. */
async function proofCallback(): Promise<{ id: number; before: Balances; wallet: Address }> {
  const { chain, node } = ctx;
  const before = await balances();
  const { id, wallet, mark } = await requestProof(node.containers.proofs);
  const [delivery] = await waitForDeliveries(chain, recorders(chain).callback, id);
  expect(decodeEchoOutput(delivery?.output ?? "0x")).toBe("hello");
  // The container's proof (abi.encode(string proof), requires_proof set) is delivered as is.
  expect(delivery?.proof).toBe(abiString(PROOF));
  await node.logs.waitFor(aboutSubscription("Sent tx", id), { from: mark });
  return { id, before, wallet };
}

/** The ProofVerified event of subscription `id` in the node's delivery or in `receipt`. */
async function proofVerdict(id: number, fromBlock: bigint): Promise<boolean | undefined> {
  const { chain } = ctx;
  const logs = await chain.publicClient.getLogs({ address: chain.addresses.coordinator, fromBlock });
  const [event] = decodeEvents(chain, "EIP712Coordinator", { logs }, "ProofVerified").filter(
    (e) => Number(e.args.id) === id,
  );
  return event?.args.valid as boolean | undefined;
}

/**
 * `count` proof callbacks (PAYMENT in ETH, the proof container, each from its own funded wallet) created in ONE
 * block: mining is paused while the requests go into the pool, then one block takes them all. The node sees
 * them in the same step and works on them at the same time.
 */
async function proofCallbacksInOneBlock(count: number): Promise<number[]> {
  const { chain, node } = ctx;
  const from = chain.accounts.consumerOwner;
  const wallets: Address[] = [];
  for (let i = 0; i < count; i++) {
    wallets.push(
      await setupWallet(chain, {
        owner: from,
        fundAmount: 2n * PAYMENT,
        spender: chain.addresses.callbackConsumer,
      }),
    );
  }
  const client = chain.walletClient(from);
  await chain.rpc("evm_setIntervalMining", [0]);
  const hashes: Hex[] = [];
  try {
    let nonce = await chain.publicClient.getTransactionCount({ address: from.address, blockTag: "pending" });
    for (const wallet of wallets) {
      const data = encodeFunctionData({
        abi: chain.abis.TestCallbackConsumer as Abi,
        functionName: "requestCompute",
        args: [
          node.containers.proofs,
          echoInput("hello", PROOF),
          1,
          zeroAddress,
          PAYMENT,
          wallet,
          chain.addresses.verifier,
        ],
      });
      hashes.push(
        await client.sendTransaction({
          to: chain.addresses.callbackConsumer,
          data,
          nonce: nonce++,
          gas: 1_000_000n,
        }),
      );
    }
    await chain.rpc("evm_mine");
  } finally {
    await chain.rpc("evm_setIntervalMining", [1]);
  }
  const receipts = await Promise.all(
    hashes.map((hash) => chain.publicClient.waitForTransactionReceipt({ hash, pollingInterval: 20 })),
  );
  expect(new Set(receipts.map((r) => r.blockNumber)).size).toBe(1);
  return receipts.map((receipt) => {
    const [created] = decodeEvents(chain, "EIP712Coordinator", receipt, "SubscriptionCreated");
    if (!created) throw new Error(`no SubscriptionCreated in ${receipt.transactionHash}`);
    return Number(created.args.id);
  });
}

async function finalize(id: number, valid: boolean): Promise<void> {
  const { chain, node } = ctx;
  await write(chain, {
    contract: "MockVerifier",
    address: chain.addresses.verifier,
    functionName: "finalize",
    args: [id, 1, node.account.address, valid],
    from: chain.accounts.other,
  });
}

describe("proof-gated payments with the mock verifier", () => {
  test("a proof subscription on a container that makes no proofs: ignored, as the listener's guardian says", async () => {
    const { node } = ctx;
    await configureVerifier({ atomic: true, valid: true });
    const { id, mark } = await requestProof(node.containers.echo);
    await node.logs.waitFor(`Ignored subscription creation.*${id}.*container does not generate proof.*`, {
      from: mark,
    });
  });

  test("a verifier that does not take the payment token: `Unsupported verifier token`, nothing delivered", async () => {
    const { chain, node } = ctx;
    await configureVerifier({ atomic: true, valid: true, ethSupported: false });
    const { id, mark, fromBlock } = await requestProof(node.containers.proofs);
    await node.logs.waitFor(/.*Unsupported verifier token.*/, { from: mark });
    const sent = await deliveriesSent(chain, node.account.address, id, fromBlock);
    expect(sent.filter((t) => t.status === "success")).toEqual([]);
  });

  test("eager, valid proof: node +payment×(1−2·fee)−verifier price; verifier +price×(1−fee)", async () => {
    const { chain, node } = ctx;
    await configureVerifier({ atomic: true, valid: true });
    const fromBlock = await chain.publicClient.getBlockNumber();
    const { id, before } = await proofCallback();
    expect(await proofVerdict(id, fromBlock)).toBe(true);
    const after = await balances();
    expect(after.node - before.node).toBe(NODE_INCOME_VALID);
    expect(after.verifier - before.verifier).toBe(VERIFIER_INCOME);
    const sent = await deliveriesSent(chain, node.account.address, id, fromBlock);
    expect(sent.map((t) => t.status)).toEqual(["success"]);
  });

  test("eager, invalid proof: the node is slashed the whole payment; the verifier is paid", async () => {
    const { chain } = ctx;
    await configureVerifier({ atomic: true, valid: false });
    const fromBlock = await chain.publicClient.getBlockNumber();
    const { id, before, wallet } = await proofCallback();
    expect(await proofVerdict(id, fromBlock)).toBe(false);
    const after = await balances();
    expect(after.node - before.node).toBe(-PAYMENT);
    expect(after.verifier - before.verifier).toBe(VERIFIER_INCOME);
    // The consumer paid the protocol and the verifier and got the node's stake: 2 − 0.1 − 0.2 + 1 ETH.
    expect(await balanceOf(chain, wallet)).toBe(
      2n * PAYMENT - (PAYMENT * 2n * F) / 10_000n - VERIFIER_FEE + PAYMENT,
    );
  });

  test("lazy, valid proof: the stake stays locked until finalised, then the node is paid", async () => {
    const { chain } = ctx;
    await configureVerifier({ atomic: false, valid: false });
    const fromBlock = await chain.publicClient.getBlockNumber();
    const { id, before } = await proofCallback();
    expect(await proofVerdict(id, fromBlock)).toBeUndefined();
    expect((await balances()).node).toBe(before.node);
    await finalize(id, true);
    expect(await proofVerdict(id, fromBlock)).toBe(true);
    const after = await balances();
    expect(after.node - before.node).toBe(NODE_INCOME_VALID);
    expect(after.verifier - before.verifier).toBe(VERIFIER_INCOME);
  });

  test("lazy, invalid proof: finalised invalid, the node loses the whole payment", async () => {
    const { chain } = ctx;
    await configureVerifier({ atomic: false, valid: false });
    const fromBlock = await chain.publicClient.getBlockNumber();
    const { id, before } = await proofCallback();
    expect((await balances()).node).toBe(before.node);
    await finalize(id, false);
    expect(await proofVerdict(id, fromBlock)).toBe(false);
    const after = await balances();
    expect(after.node - before.node).toBe(-PAYMENT);
    expect(after.verifier - before.verifier).toBe(VERIFIER_INCOME);
  });

  test("two proof subscriptions in the same token in one block: both delivered, no reverted transaction from the node", async () => {
    const { chain, node } = ctx;
    // Lazy (optimistic) verification: each delivery's stake stays locked, so its allowance stays spent; two
    // escrows that share one allowance cannot both lock.
    await configureVerifier({ atomic: false, valid: false });
    const mark = node.logs.mark();
    const fromBlock = await chain.publicClient.getBlockNumber();
    const ids = await proofCallbacksInOneBlock(2);
    for (const id of ids) {
      const [delivery] = await waitForDeliveries(chain, recorders(chain).callback, id);
      expect(delivery?.proof).toBe(abiString(PROOF));
    }
    const sent = await transactionsFrom(chain, node.account.address, fromBlock);
    expect(sent.filter((t) => t.status === "reverted")).toEqual([]);
    for (const id of ids) {
      expect(sent.filter((t) => t.subscriptionId === id).map((t) => t.status)).toEqual(["success"]);
      await node.logs.waitFor(aboutSubscription("Escrowing reward in wallet", id), { from: mark });
    }
    // Both stakes are locked until the verifier finalises them.
    for (const id of ids) await finalize(id, true);
  });
});
