// The nonce manager and receipt watcher against a real anvil: several transactions in one block with
// consecutive nonces, a transaction priced out by a base-fee spike replaced with bumped fees and mined, a nonce
// used behind the node's back resynchronised, a lost broadcast reply (the provider is wrapped so that it
// forwards eth_sendRawTransaction to anvil and then answers 502), a foreign transaction at our next nonce and
// one blocking our nonces, and the Wallet's gas cap and pending-block simulation.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { encodeFunctionData, type Hex, HttpRequestError } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { coordinatorAbi } from "../../../src/chain/abi/coordinator.ts";
import { createRpc } from "../../../src/chain/rpc.ts";
import { createTransactionManager, type TransactionManager } from "../../../src/chain/transactions.ts";
import { createWallet, GasLimitError, SimulationRevertedError } from "../../../src/chain/wallet.ts";
import { createLog } from "../../../src/lib/log.ts";
import { startChain, type TestChain } from "../../fixtures/anvil.ts";

let chain: TestChain & AsyncDisposable;
const recipient = "0x000000000000000000000000000000000000dEaD";

beforeAll(async () => {
  chain = await startChain();
});
afterAll(async () => {
  await chain?.[Symbol.asyncDispose]();
});

function manager(replaceAfterBlocks = 2, loseReplies = 0): TransactionManager {
  const rpc = createRpc({ urls: [chain.rpcUrl], timeoutMs: 5_000, maxRetries: 1, log: createLog("rpc") });
  let toLose = loseReplies;
  // A proxy in front of anvil that executes the broadcast and loses its reply (a 502), `loseReplies` times.
  const lossy = {
    async request(args: { method: string; params?: unknown }) {
      const result = await rpc.client.request(args as never);
      if (args.method === "eth_sendRawTransaction" && toLose > 0) {
        toLose--;
        throw new HttpRequestError({ url: chain.rpcUrl, status: 502, details: "Bad Gateway" });
      }
      return result;
    },
  };
  return createTransactionManager({
    client: loseReplies > 0 ? lossy : rpc.client,
    account: privateKeyToAccount(chain.accounts.other.privateKey),
    chainId: chain.chainId,
    log: createLog("transactions"),
    replaceAfterBlocks,
  });
}

async function mineAndCheck(txs: TransactionManager, blocks = 1): Promise<void> {
  for (let i = 0; i < blocks; i++) {
    await chain.rpc("evm_mine");
    await txs.onBlock(await chain.publicClient.getBlockNumber());
  }
}

describe("transaction manager", () => {
  test("behavior: five concurrent sends get consecutive nonces and are mined in one block", async () => {
    const txs = manager();
    await chain.rpc("evm_setAutomine", [false]);
    try {
      const sent = await Promise.all(
        Array.from({ length: 5 }, () => txs.send({ to: recipient, data: "0x", gas: 21_000n })),
      );
      const nonces = sent.map((s) => s.nonce);
      expect(new Set(nonces).size).toBe(5);
      expect(Math.max(...nonces) - Math.min(...nonces)).toBe(4);
      await mineAndCheck(txs);
      const outcomes = await Promise.all(sent.map((s) => s.outcome));
      expect(outcomes.every((o) => o.status === "success")).toBe(true);
      const blocks = new Set(outcomes.map((o) => (o.status === "dropped" ? -1n : o.blockNumber)));
      expect(blocks.size).toBe(1);
      expect(txs.stats()).toMatchObject({ sent: 5, confirmed: 5, pending: 0 });
    } finally {
      await chain.rpc("evm_setAutomine", [true]);
    }
  });

  test("behavior: a transaction priced out by a base-fee spike is replaced with bumped fees and mined", async () => {
    const txs = manager(2);
    await chain.rpc("evm_setAutomine", [false]);
    try {
      const sent = await txs.send({ to: recipient, data: "0x", gas: 21_000n });
      // The next blocks' base fee jumps far above what the transaction offers: it stays in the mempool.
      await chain.rpc("anvil_setNextBlockBaseFeePerGas", [`0x${(500n * 10n ** 9n).toString(16)}`]);
      await mineAndCheck(txs, 3);
      expect(txs.stats().replaced).toBe(1);
      await mineAndCheck(txs, 1);
      const outcome = await sent.outcome;
      expect(outcome.status).toBe("success");
      expect(outcome.hash).not.toBe(sent.hash);
      expect(txs.stats()).toMatchObject({ confirmed: 1, replaced: 1, pending: 0 });
    } finally {
      await chain.rpc("evm_setAutomine", [true]);
    }
  });

  test("error: a nonce used behind the node's back is resynchronised and the send succeeds", async () => {
    const txs = manager();
    const first = await txs.send({ to: recipient, data: "0x", gas: 21_000n });
    await mineAndCheck(txs, 0);
    // Another process with the same key sends a transaction: the manager's next nonce is now stale.
    const other = chain.walletClient(chain.accounts.other);
    const hash = await other.sendTransaction({ to: recipient, value: 1n });
    // Mined, not just pending: a pending one could be replaced by ours (same nonce, higher fee) instead.
    await chain.publicClient.waitForTransactionReceipt({ hash });
    const second = await txs.send({ to: recipient, data: "0x", gas: 21_000n });
    expect(second.nonce).toBe(first.nonce + 2);
    await txs.onBlock(await chain.publicClient.getBlockNumber());
    expect((await second.outcome).status).toBe("success");
  });

  test("behavior: a lost broadcast reply: the same transaction is sent again ('already imported'), one mined", async () => {
    const txs = manager(2, 2);
    const sender = chain.accounts.other.address;
    await chain.rpc("evm_setAutomine", [false]);
    try {
      const head = await chain.publicClient.getBlockNumber();
      await txs.onBlock(head);
      const before = await chain.publicClient.getTransactionCount({ address: sender });
      const sent = await txs.send({ to: recipient, data: "0x", gas: 21_000n });
      expect(sent.nonce).toBe(before);
      expect(txs.stats()).toMatchObject({ sent: 1, lostReplies: 1, pending: 1 });
      // The next block's check sends the same bytes again: anvil already has them (and that reply is lost too).
      await txs.onBlock(head + 1n);
      await txs.onBlock(head + 2n);
      expect(txs.stats().rebroadcasts).toBe(1);
      await mineAndCheck(txs, 1);
      const outcome = await sent.outcome;
      expect(outcome).toMatchObject({ status: "success", hash: sent.hash });
      expect(await chain.publicClient.getTransactionCount({ address: sender })).toBe(before + 1);
      const block = await chain.publicClient.getBlock({
        blockNumber: (outcome as { blockNumber: bigint }).blockNumber,
      });
      expect(block.transactions).toEqual([sent.hash]);
      // The next send takes the next nonce: nothing went out twice.
      const next = await txs.send({ to: recipient, data: "0x", gas: 21_000n });
      expect(next.nonce).toBe(before + 1);
      await mineAndCheck(txs, 1);
      expect((await next.outcome).status).toBe("success");
      expect(txs.stats()).toMatchObject({ sent: 2, confirmed: 2, dropped: 0, pending: 0 });
    } finally {
      await chain.rpc("evm_setAutomine", [true]);
    }
  });

  test("behavior: a lost reply to a transaction mined at once (automine): success, no second transaction", async () => {
    const txs = manager(2, 1);
    const sender = chain.accounts.other.address;
    await txs.onBlock(await chain.publicClient.getBlockNumber());
    const before = await chain.publicClient.getTransactionCount({ address: sender });
    const sent = await txs.send({ to: recipient, data: "0x", gas: 21_000n });
    await txs.onBlock(await chain.publicClient.getBlockNumber());
    expect(await sent.outcome).toMatchObject({ status: "success", hash: sent.hash });
    expect(await chain.publicClient.getTransactionCount({ address: sender })).toBe(before + 1);
    expect(txs.stats()).toMatchObject({ sent: 1, confirmed: 1, lostReplies: 1, pending: 0 });
  });

  test("error: a foreign transaction pending at our next nonce: ours goes after it, nothing reverts or repeats", async () => {
    const txs = manager();
    const sender = chain.accounts.other.address;
    await chain.rpc("evm_setAutomine", [false]);
    try {
      const first = await txs.send({ to: recipient, data: "0x", gas: 21_000n });
      // Another process with the same key sends at our next nonce, paying far more than we would.
      const other = chain.walletClient(chain.accounts.other);
      const foreign = await other.sendTransaction({
        to: recipient,
        value: 1n,
        nonce: first.nonce + 1,
        maxFeePerGas: 500n * 10n ** 9n,
        maxPriorityFeePerGas: 100n * 10n ** 9n,
      });
      const second = await txs.send({ to: recipient, data: "0x", gas: 21_000n });
      expect(second.nonce).toBe(first.nonce + 2);
      await mineAndCheck(txs, 1);
      expect((await first.outcome).status).toBe("success");
      expect((await second.outcome).status).toBe("success");
      expect((await chain.publicClient.getTransactionReceipt({ hash: foreign })).status).toBe("success");
      expect(await chain.publicClient.getTransactionCount({ address: sender })).toBe(first.nonce + 3);
      expect(txs.stats()).toMatchObject({ sent: 2, confirmed: 2, reverted: 0, dropped: 0, pending: 0 });
    } finally {
      await chain.rpc("evm_setAutomine", [true]);
    }
  });

  test("behavior: a nonce blocking ours (a foreign transaction the pool dropped) is filled by a self-transfer", async () => {
    const txs = manager(2);
    const sender = chain.accounts.other.address;
    await chain.rpc("evm_setAutomine", [false]);
    try {
      const nonce = await chain.publicClient.getTransactionCount({ address: sender });
      await txs.onBlock(await chain.publicClient.getBlockNumber());
      // An old lease holder's transaction at our next nonce: the pool holds it, so ours goes after it ...
      const other = chain.walletClient(chain.accounts.other);
      const foreign = await other.sendTransaction({ to: recipient, value: 1n, nonce });
      const sent = await txs.send({ to: recipient, data: "0x", gas: 21_000n });
      expect(sent.nonce).toBe(nonce + 1);
      // ... then the pool evicts it: nothing is at that nonce, and ours cannot be mined behind the gap.
      await chain.rpc("anvil_dropTransaction", [foreign]);
      await mineAndCheck(txs, 2);
      expect(txs.stats()).toMatchObject({ filled: 0, pending: 1 });
      await mineAndCheck(txs, 1); // stuck for replace_after_blocks: filled
      expect(txs.stats().filled).toBe(1);
      // Anvil evicted ours with the foreign one (as pools do with a nonce gap): once the fill is mined, ours is
      // the lowest nonce and is sent again with bumped fees after replace_after_blocks.
      for (let i = 0; i < 6 && txs.stats().pending > 0; i++) await mineAndCheck(txs, 1);
      const outcome = await sent.outcome;
      expect(outcome.status).toBe("success");
      expect(txs.stats().replaced).toBeLessThanOrEqual(1);
      expect(await chain.publicClient.getTransactionCount({ address: sender })).toBe(nonce + 2);
      const latest = await chain.publicClient.getBlockNumber();
      const blocks = await Promise.all(
        Array.from({ length: 8 }, (_, i) =>
          chain.publicClient.getBlock({ blockNumber: latest - BigInt(i), includeTransactions: true }),
        ),
      );
      const all = blocks.flatMap((block) => block.transactions);
      const fill = all.find((t) => t.nonce === nonce);
      expect(fill).toMatchObject({ value: 0n, gas: 21_000n });
      expect(fill?.to?.toLowerCase()).toBe(sender.toLowerCase());
      expect(all.filter((t) => t.nonce === nonce + 1).map((t) => t.hash)).toEqual([outcome.hash]);
      expect(txs.stats()).toMatchObject({ confirmed: 1, reverted: 0, pending: 0, feeCapped: false });
    } finally {
      await chain.rpc("evm_setAutomine", [true]);
    }
  });

  test("behavior: transactions removed by a reorganisation are sent again with their nonces, each mined once", async () => {
    const txs = manager();
    const sender = chain.accounts.other.address;
    await chain.rpc("evm_setAutomine", [false]);
    try {
      const sent = await Promise.all([0, 1].map(() => txs.send({ to: recipient, data: "0x", gas: 21_000n })));
      await mineAndCheck(txs, 1);
      const outcomes = await Promise.all(sent.map((s) => s.outcome));
      expect(outcomes.map((o) => o.status)).toEqual(["success", "success"]);
      const minedIn = (outcomes[0] as { blockNumber: bigint }).blockNumber;
      await mineAndCheck(txs, 1);
      const nonceBefore = await chain.publicClient.getTransactionCount({ address: sender });

      // The last two blocks are replaced by empty ones: both transactions are gone from chain and pool.
      await chain.rpc("anvil_reorg", [2, []]);
      for (const s of sent) {
        expect(await chain.publicClient.getTransactionReceipt({ hash: s.hash }).catch(() => null)).toBeNull();
      }
      expect(await chain.publicClient.getTransactionCount({ address: sender })).toBe(nonceBefore - 2);

      await mineAndCheck(txs, 1); // the manager notices and sends both again
      expect(txs.stats()).toMatchObject({ reorged: 2, pending: 2 });
      await mineAndCheck(txs, 2);
      expect(txs.stats()).toMatchObject({ reorged: 2, pending: 0 });
      expect(await chain.publicClient.getTransactionCount({ address: sender })).toBe(nonceBefore);
      // Same nonces, same transactions (same fees: same hashes), each in the chain once.
      for (const s of sent) {
        const receipt = await chain.publicClient.getTransactionReceipt({ hash: s.hash });
        expect(receipt.status).toBe("success");
        expect(receipt.blockNumber).toBeGreaterThan(minedIn);
      }
    } finally {
      await chain.rpc("evm_setAutomine", [true]);
    }
  });

  test("behavior: a block replaced by one holding the same transaction changes nothing", async () => {
    const txs = manager();
    await chain.rpc("evm_setAutomine", [false]);
    try {
      const sent = await txs.send({ to: recipient, data: "0x", gas: 21_000n });
      await mineAndCheck(txs, 1);
      expect((await sent.outcome).status).toBe("success");
      const raw = await chain.rpc<Hex>("eth_getRawTransactionByHash", [sent.hash]);
      // The block is replaced by another one that holds the same transaction again.
      await chain.rpc("anvil_reorg", [1, [[raw, 0]]]);
      const receipt = await chain.publicClient.getTransactionReceipt({ hash: sent.hash });
      expect(receipt.status).toBe("success");
      await mineAndCheck(txs, 2);
      expect(txs.stats()).toMatchObject({ reorged: 0, pending: 0, sent: 1 });
    } finally {
      await chain.rpc("evm_setAutomine", [true]);
    }
  });
});

describe("wallet", () => {
  const rpc = () =>
    createRpc({ urls: [chain.rpcUrl], timeoutMs: 5_000, maxRetries: 1, log: createLog("rpc") });
  const walletWith = (maxGasLimit: number, allowedSimErrors: string[] = []) => {
    const client = rpc().client;
    return createWallet({
      client,
      privateKey: chain.accounts.node.privateKey,
      paymentAddress: null,
      maxGasLimit,
      allowedSimErrors,
      simulationAttempts: 1,
      log: createLog("wallet"),
      transactions: (account) =>
        createTransactionManager({ client, account, chainId: chain.chainId, log: createLog("tx") }),
    });
  };
  const deliverMissing: Hex = encodeFunctionData({
    abi: coordinatorAbi,
    functionName: "deliverCompute",
    args: [999_999, 1, "0x", "0x", "0x", "0x0000000000000000000000000000000000000000"],
  });

  test("error: a reverting simulation names the Infernet error and sends nothing", async () => {
    const wallet = walletWith(5_000_000);
    const error = await wallet.execute(chain.addresses.coordinator, deliverMissing).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SimulationRevertedError);
    expect((error as SimulationRevertedError).revert.infernet?.message).toBe("Subscription not found");
    expect(wallet.transactions.stats().sent).toBe(0);
  });

  test("behavior: an allowed simulation error is sent anyway with gas = max_gas_limit", async () => {
    const wallet = walletWith(300_000, ["0x1a00354f"]);
    const sent = await wallet.execute(chain.addresses.coordinator, deliverMissing);
    expect(sent.skipped).toBe(true);
    expect(sent.gas).toBe(300_000n);
    await wallet.transactions.onBlock(await chain.publicClient.getBlockNumber());
    expect((await sent.outcome).status).toBe("reverted");
  });

  test("error: a transaction needing more than max_gas_limit is refused before sending", async () => {
    const wallet = walletWith(21_000);
    const data = encodeFunctionData({ abi: coordinatorAbi, functionName: "id" });
    const error = await wallet.execute(chain.addresses.coordinator, data).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(GasLimitError);
    expect(wallet.transactions.stats().sent).toBe(0);
  });
});
