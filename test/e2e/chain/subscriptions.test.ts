// End to end through the built binary on anvil (1-second blocks): recurring subscriptions over several
// intervals, a cancellation mid-way, a consumer that always reverts (Ritual's test_failing_transaction), and the
// exact log line of every Infernet custom error (Ritual's test_error_logs). Checked on-chain and in the log.
import { beforeAll, describe, expect, test } from "bun:test";
import { type Hex, hexToString, zeroAddress } from "viem";
import {
  cancelSubscription,
  containerIdOf,
  createSubscription,
  decodeEvents,
  expectedContainerInputs,
  latestTimestamp,
  read,
  write,
} from "../../fixtures/chain-helpers.ts";
import { aboutSubscription, escapeRegExp, useChainNode } from "../../fixtures/chain-node.ts";
import {
  decodeBytesPair,
  deliveriesOf,
  deliveriesSent,
  recorders,
  type SentTransaction,
  transactionsFrom,
  waitForDeliveries,
} from "../../fixtures/e2e-chain.ts";
import { waitFor } from "../../fixtures/net.ts";

const ctx = useChainNode("e2e-subs");

/** Seconds between intervals: short, but several 1-second blocks long. */
const PERIOD = 5;

/** What the echo container answers for on-chain data that is not Ritual's (string, string): {"echo": hex}. */
function echoedInput(output: Hex): string {
  const [raw] = decodeBytesPair(output);
  return (JSON.parse(hexToString(raw)) as { echo: string }).echo;
}

/** Waits until the chain's latest block is at or past `timestamp`. */
async function waitForChainTime(timestamp: number): Promise<void> {
  await waitFor(
    `chain time ${timestamp}`,
    async () => (await latestTimestamp(ctx.chain)) >= timestamp,
    120_000,
  );
}

const summary = (txs: SentTransaction[]) => txs.map((t) => [t.interval, t.status]);

describe("recurring and cancelled subscriptions", () => {
  test("recurring: 3 intervals, each delivered once with that interval's inputs, then no longer tracked", async () => {
    const { chain, node } = ctx;
    const mark = node.logs.mark();
    const fromBlock = await chain.publicClient.getBlockNumber();
    const { id } = await createSubscription(chain, {
      containers: node.containers.echo,
      frequency: 3,
      period: PERIOD,
    });

    const deliveries = await waitForDeliveries(chain, recorders(chain).subscription, id, 3, 90_000);
    expect(deliveries.map((d) => d.interval)).toEqual([1, 2, 3]);
    for (const d of deliveries) {
      // getContainerInputs(id, interval, …) of TestSubscriptionConsumer, as unprefixed hex, echoed back.
      expect(echoedInput(d.output)).toBe(expectedContainerInputs(id, d.interval).slice(2));
      expect(d.node).toBe(node.account.address);
    }
    // Done: no longer tracked (past its last interval, or its last interval delivered).
    await node.logs.waitFor(
      aboutSubscription(
        `(Subscription expired|Subscription already completed|Stopped tracking subscription: ${id})`,
        id,
      ),
      { from: mark, timeoutMs: 60_000 },
    );
    expect(summary(await deliveriesSent(chain, node.account.address, id, fromBlock))).toEqual([
      [1, "success"],
      [2, "success"],
      [3, "success"],
    ]);
    for (const interval of [1, 2, 3]) {
      expect(node.logs.matching(`"msg":"Sent tx".*"id":${id},"interval":${interval},`, mark)).toHaveLength(1);
    }
  }, 150_000);

  test("lazy: the output goes to the Inbox, the consumer gets the pointer", async () => {
    const { chain, node } = ctx;
    const { id } = await createSubscription(chain, { containers: node.containers.echo, lazy: true });
    const [delivery] = await waitForDeliveries(chain, recorders(chain).subscription, id);
    expect(delivery).toMatchObject({
      input: "0x",
      output: "0x",
      proof: "0x",
      containerId: containerIdOf(node.containers.echo),
    });
    const item = await read<{ subscriptionId: number; interval: number; output: Hex }>(chain, {
      contract: "Inbox",
      address: chain.addresses.inbox,
      functionName: "read",
      args: [delivery?.containerId, node.account.address, delivery?.index],
    });
    expect(item).toMatchObject({ subscriptionId: id, interval: 1 });
    expect(echoedInput(item.output)).toBe(expectedContainerInputs(id, 1).slice(2));
  });

  test("cancelled mid-way: `subscription cancelled` logged, no transaction after the cancellation", async () => {
    const { chain, node } = ctx;
    const mark = node.logs.mark();
    const fromBlock = await chain.publicClient.getBlockNumber();
    const { id } = await createSubscription(chain, {
      containers: node.containers.echo,
      frequency: 10,
      period: PERIOD,
    });
    await waitForDeliveries(chain, recorders(chain).subscription, id, 1, 60_000);

    const cancel = await cancelSubscription(chain, id);
    await node.logs.waitFor(`subscription cancelled.*${id}`, { from: mark });
    await node.logs.waitFor(aboutSubscription("Subscription cancelled", id), { from: mark });
    // Two more intervals of chain time: a node still tracking it would have sent something by then.
    const cancelledAt = Number(
      (await chain.publicClient.getBlock({ blockNumber: cancel.blockNumber })).timestamp,
    );
    await waitForChainTime(cancelledAt + 2 * PERIOD + 1);

    const sent = await deliveriesSent(chain, node.account.address, id, fromBlock);
    expect(sent.length).toBeGreaterThanOrEqual(1);
    expect(sent.filter((t) => t.block >= cancel.blockNumber)).toEqual([]);
    expect(sent.every((t) => t.status === "success")).toBe(true);
    const delivered = await deliveriesOf(chain, recorders(chain).subscription, id);
    expect(delivered.map((d): number | undefined => d.interval)).toEqual(sent.map((t) => t.interval));
  }, 120_000);
});

describe('a consumer that always reverts (allowed_sim_errors: ["reverting"])', () => {
  test("3 mined-and-reverted attempts, then `Subscription has exceeded the maximum number of attempts`", async () => {
    const { chain, node } = ctx;
    const mark = node.logs.mark();
    const fromBlock = await chain.publicClient.getBlockNumber();
    const receipt = await write(chain, {
      contract: "RevertingConsumer",
      address: chain.e2e.revertingConsumer,
      functionName: "subscribe",
      args: [node.containers.echo, 1, 0, 1, false, zeroAddress, 0n, zeroAddress, zeroAddress],
      from: chain.accounts.consumerOwner,
    });
    const id = Number(decodeEvents(chain, "EIP712Coordinator", receipt, "SubscriptionCreated")[0]?.args.id);

    await node.logs.waitFor(`Subscription has exceeded the maximum number of attempts.*${id}`, {
      from: mark,
      timeoutMs: 60_000,
    });
    const reverted = node.logs
      .records()
      .slice(mark)
      .filter((r) => r.msg === "Transaction reverted" && r.id === id);
    expect(reverted.map((r) => r.attempts)).toEqual([1, 2, 3]);
    for (const r of reverted) expect(String(r.reason)).toContain("reverting");

    // Nothing more is sent once it gave up.
    const target = (await chain.publicClient.getBlockNumber()) + 3n;
    await waitFor("3 more blocks", async () => (await chain.publicClient.getBlockNumber()) >= target);
    expect(summary(await deliveriesSent(chain, node.account.address, id, fromBlock))).toEqual([
      [1, "reverted"],
      [1, "reverted"],
      [1, "reverted"],
    ]);
    expect(await deliveriesOf(chain, recorders(chain).reverting, id)).toEqual([]);
  }, 90_000);
});

/** Ritual's chain/errors.py messages, in InfernetErrorsConsumer's error-id order. */
const INFERNET_ERROR_MESSAGES = [
  [
    "InvalidWallet",
    "Invalid wallet, please make sure you're using a wallet created from Infernet's `WalletFactory`.",
  ],
  ["IntervalMismatch", "Interval mismatch. The interval is not the current one."],
  ["IntervalCompleted", "Interval completed. Redundancy has been already met for the current interval"],
  ["UnauthorizedVerifier", "Verifier is not authorized."],
  ["NodeRespondedAlready", "Node already responded for this interval"],
  ["SubscriptionNotFound", "Subscription not found"],
  ["ProofRequestNotFound", "Proof request not found"],
  ["NotSubscriptionOwner", "Caller is not the owner of the subscription"],
  [
    "SubscriptionCompleted",
    "Subscription is already completed, another node has likely already delivered the response",
  ],
  ["SubscriptionNotActive", "Subscription is not active"],
  [
    "UnsupportedVerifierToken",
    "Unsupported verifier token. Attempting to pay a `IVerifier`-contract in a token it does not support receiving payments in",
  ],
  ["SignerMismatch", "Signer does not match."],
  ["SignatureExpired", "EIP-712 Signature has expired."],
  ["TransferFailed", "Token transfer failed."],
  [
    "InsufficientFunds",
    "Insufficient funds. You either are trying to withdraw `amount > unlockedBalance` or are trying to escrow `amount > unlockedBalance`or attempting to unlock `amount > lockedBalance`",
  ],
  ["InsufficientAllowance", "Insufficient allowance."],
  ["NodeNotAllowed", "Node is not allowed to deliver this subscription."],
  ["InsufficientBalance", "Insufficient balance."],
] as const;

describe("every Infernet custom error produces its exact log line (InfernetErrors.echoThis)", () => {
  let firstId = 0;
  let mark = 0;
  let fromBlock = 0n;

  beforeAll(async () => {
    const { chain, node } = ctx;
    mark = node.logs.mark();
    fromBlock = await chain.publicClient.getBlockNumber();
    firstId = await read<number>(chain, {
      contract: "EIP712Coordinator",
      address: chain.addresses.coordinator,
      functionName: "id",
    });
    await write(chain, {
      contract: "InfernetErrorsConsumer",
      address: chain.e2e.errorsConsumer,
      functionName: "echoEach",
      args: [node.containers.echo],
      from: chain.accounts.consumerOwner,
      gas: 10_000_000n,
    });
  });

  test.each(INFERNET_ERROR_MESSAGES.map(([name, message], errorId) => [name, message, errorId] as const))(
    "%s",
    async (_name, message, errorId) => {
      const { node } = ctx;
      const id = firstId + errorId;
      // Ritual's assertion: the exact message on one line (case-insensitive); here also about this subscription.
      await node.logs.waitFor(escapeRegExp(message), { from: mark });
      const line = await node.logs.waitFor(aboutSubscription(escapeRegExp(message), id, "subscription_id"), {
        from: mark,
      });
      expect(JSON.parse(line).msg).toBe(message);
    },
  );

  test("none of them cost a transaction: the callbacks are dropped after the simulation", async () => {
    const { chain, node } = ctx;
    const ids = new Set(INFERNET_ERROR_MESSAGES.map((_, e) => firstId + e));
    const sent = await transactionsFrom(chain, node.account.address, fromBlock);
    expect(sent.filter((t) => t.subscriptionId !== undefined && ids.has(t.subscriptionId))).toEqual([]);
  });
});
