// The node's payment wallet escrow on a real anvil with the Infernet Wallet contract: escrows in flight in one
// token share one allowance, so each approval sets what all of them still need (approve SETS it; the reference's
// per-delivery amount let a second escrow overwrite the first). The delivery itself is the `send` the caller
// passes in; here it is one whose outcome the test settles, so the reservations can be watched step by step.
// The end-to-end race (two proof deliveries in one block, both mined) is in test/e2e/chain/proofs.test.ts.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { type Address, getAddress, type Hex, zeroAddress } from "viem";
import {
  createPaymentWallet,
  type PaymentWallet,
  PaymentWalletError,
} from "../../../src/chain/payment-wallet.ts";
import { createRpc } from "../../../src/chain/rpc.ts";
import { createTransactionManager, type SentTx, type TxOutcome } from "../../../src/chain/transactions.ts";
import { createWallet } from "../../../src/chain/wallet.ts";
import { createWalletChecker } from "../../../src/chain/wallet-checker.ts";
import { createLog } from "../../../src/lib/log.ts";
import { startChain, type TestChain } from "../../fixtures/anvil.ts";
import { createWallet as createInfernetWallet, fund, read } from "../../fixtures/chain-helpers.ts";

let chain: TestChain & AsyncDisposable;
let nodeWallet: Address;
const ETH = getAddress(zeroAddress);

beforeAll(async () => {
  chain = await startChain();
  nodeWallet = await createInfernetWallet(chain, chain.accounts.node);
  await fund(chain, nodeWallet, 10n ** 18n);
});
afterAll(async () => {
  await chain?.[Symbol.asyncDispose]();
});

/** A payment wallet as the processor builds it, and a receipt watcher for its approvals (stop it when done). */
function paymentWalletAt(address: Address | null): PaymentWallet & { stop(): void } {
  const client = createRpc({
    urls: [chain.rpcUrl],
    timeoutMs: 5_000,
    maxRetries: 1,
    log: createLog("rpc"),
  }).client;
  const wallet = createWallet({
    client,
    privateKey: chain.accounts.node.privateKey,
    paymentAddress: address,
    maxGasLimit: 1_000_000,
    allowedSimErrors: [],
    simulationAttempts: 1,
    log: createLog("wallet"),
    transactions: (account) =>
      createTransactionManager({ client, account, chainId: chain.chainId, log: createLog("tx") }),
  });
  // Automine: every approval is mined at once; the manager learns it on its next block check.
  const watcher = setInterval(() => {
    void client.getBlockNumber({ cacheTime: 0 }).then((n) => wallet.transactions.onBlock(n));
  }, 50);
  const paymentWallet = createPaymentWallet({
    client,
    address,
    wallet,
    walletChecker: createWalletChecker(client, chain.addresses.walletFactory),
    log: createLog("payment-wallet"),
  });
  return Object.assign(paymentWallet, { stop: () => clearInterval(watcher) });
}

/** A delivery the test settles by hand: `send` hands it over, `settle` decides its outcome. */
function delivery(): {
  send: () => Promise<SentTx>;
  settle(status: "success" | "reverted"): void;
  sent: boolean;
} {
  let resolve!: (outcome: TxOutcome) => void;
  const outcome = new Promise<TxOutcome>((r) => {
    resolve = r;
  });
  const hash = `0x${"ab".repeat(32)}` as Hex;
  const d = {
    sent: false,
    send: async (): Promise<SentTx> => {
      d.sent = true;
      return { hash, nonce: 0, data: "0x", outcome };
    },
    settle: (status: "success" | "reverted") => resolve({ status, hash, blockNumber: 1n, gasUsed: 1n }),
  };
  return d;
}

const allowanceOnChain = (token: Address) =>
  read<bigint>(chain, {
    contract: "Wallet",
    address: nodeWallet,
    functionName: "allowance",
    args: [chain.accounts.node.address, token],
  });

describe("payment wallet escrow", () => {
  test("behavior: two escrows in one token at once: the allowance covers both; each ends with its delivery's outcome", async () => {
    const pw = paymentWalletAt(nodeWallet);
    try {
      const a = delivery();
      const b = delivery();
      const [sentA, sentB] = await Promise.all([pw.escrow(ETH, 1n, a.send), pw.escrow(ETH, 2n, b.send)]);
      expect(a.sent && b.sent).toBe(true);
      // approve SETS the allowance: whichever approval went last, it counted both escrows.
      expect(await allowanceOnChain(ETH)).toBe(3n);
      expect(pw.outstanding()).toEqual({ [ETH]: 3n });

      a.settle("success");
      await sentA.outcome;
      expect(pw.outstanding()).toEqual({ [ETH]: 2n });
      // Another token has its own allowance: escrows in ETH do not count in it.
      const token = getAddress(chain.addresses.token);
      const c = delivery();
      const sentC = await pw.escrow(token, 7n, c.send);
      expect(await allowanceOnChain(token)).toBe(7n);
      expect(pw.outstanding()).toEqual({ [ETH]: 2n, [token]: 7n });

      b.settle("reverted");
      c.settle("success");
      await Promise.all([sentB.outcome, sentC.outcome]);
      expect(pw.outstanding()).toEqual({});
      // Alone again: the next escrow approves just its own amount.
      const d = delivery();
      await pw.escrow(ETH, 5n, d.send);
      expect(await allowanceOnChain(ETH)).toBe(5n);
      d.settle("success");
    } finally {
      pw.stop();
    }
  });

  test("error: a delivery that is not sent (send throws) ends its reservation; its error is the caller's", async () => {
    const pw = paymentWalletAt(nodeWallet);
    try {
      const refused = pw.escrow(ETH, 4n, () => Promise.reject(new Error("simulation reverted")));
      await expect(refused).rejects.toThrow("simulation reverted");
      expect(pw.outstanding()).toEqual({});
    } finally {
      pw.stop();
    }
  });

  test("error: a payment wallet another address owns: PaymentWalletError, no approval, nothing sent", async () => {
    const foreign = await createInfernetWallet(chain, chain.accounts.other);
    const pw = paymentWalletAt(foreign);
    try {
      const d = delivery();
      await expect(pw.escrow(ETH, 1n, d.send)).rejects.toThrow(PaymentWalletError);
      await expect(pw.escrow(ETH, 1n, d.send)).rejects.toThrow(/is owned by .*, not by this node's address/);
      expect(d.sent).toBe(false);
      expect(pw.outstanding()).toEqual({});
    } finally {
      pw.stop();
    }
  });

  test("error: no payment_address configured: PaymentWalletError naming the setting", async () => {
    const pw = paymentWalletAt(null);
    try {
      await expect(pw.escrow(ETH, 1n, delivery().send)).rejects.toThrow(/set chain.wallet.payment_address/);
    } finally {
      pw.stop();
    }
  });
});
