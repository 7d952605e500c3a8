// The node's own Infernet payment Wallet (chain.wallet.payment_address): where paid deliveries are paid to, and
// where proof-gated deliveries lock their stake. Before such a delivery the node approves its own EOA as spender
// of the stake (reference §8.10.5 step 10), through the same nonce manager as the deliveries, and waits for it;
// the delivery's `cLock` inside the Coordinator then spends that allowance.
//
// Escrows in one token share ONE allowance, and `approve` SETS it. The reference approves each delivery's
// amount, so two proof deliveries in flight race: approve(A), approve(B), deliver(A) spends the allowance,
// deliver(B) finds none and reverts (InsufficientAllowance). Two ways out:
//   - serialise escrows per token (approve, deliver, wait for the delivery mined, then the next): correct, but
//     every proof delivery in a token then costs two blocks of latency and they go out one at a time;
//   - approve the SUM the node's escrows in flight still need, which is what is done here. Every transaction
//     goes through one nonce manager, so the chain executes them in the order they were handed to it. An
//     escrow is reserved before its approval is sent and released only when its delivery's outcome settles
//     (mined, dropped) or when the delivery is not sent at all. An approval is computed and handed to the
//     nonce manager under a per-token lock, so approvals go out in the order their sums were computed. Take
//     a delivery that executes after an approval P: either its escrow was reserved when P's sum was computed
//     (then P counts it), or it was reserved later, and then its own approval was computed after P's, goes
//     out after P and executes after P and before the delivery, setting a sum that counts it. So the last
//     approval before a run of deliveries counts every one of them: the allowance never falls short. It can
//     be MORE than needed (a counted delivery mined before the approval), which is harmless: the spender is
//     this node's own EOA, only the Coordinator spends it, and the next approval sets it afresh. Deliveries
//     of one token need not wait for each other. (This relies on the nonce manager never handing a nonce
//     below one already in flight, issue 17 defect 2.)
import { type Address, encodeFunctionData, getAddress } from "viem";
import { NodeError } from "../lib/errors.ts";
import type { Logger } from "../lib/log.ts";
import { paymentWalletAbi } from "./abi/payment-wallet.ts";
import type { ChainClient } from "./rpc.ts";
import type { SentTx } from "./transactions.ts";
import type { Wallet } from "./wallet.ts";
import type { WalletChecker } from "./wallet-checker.ts";

export interface PaymentWallet {
  readonly address: Address | null;
  owner(): Promise<Address>;
  balance(token: string): Promise<bigint>;
  allowance(spender: string, token: string): Promise<bigint>;
  /**
   * Stakes `amount` of `token` for one delivery: approves this node's EOA for it plus what its other escrows in
   * that token still need, waits until the approval is mined, then calls `send` (the delivery, whose cLock spends
   * it) and returns what `send` returned. The reservation ends when that transaction's outcome settles or when
   * `send` throws (its error is rethrown). Throws PaymentWalletError when the approval fails.
   */
  escrow<T extends SentTx>(token: string, amount: bigint, send: () => Promise<T>): Promise<T>;
  /** Escrows reserved now, per token (checksummed address) → amount still to be spent by their deliveries. */
  outstanding(): Record<string, bigint>;
}

export class PaymentWalletError extends NodeError {
  override name = "PaymentWalletError";
}

export function createPaymentWallet(deps: {
  client: ChainClient;
  address: string | null;
  wallet: Wallet;
  walletChecker: WalletChecker;
  /** For the approvals' debug lines (the amount approved, which is a sum). */
  log?: Logger;
}): PaymentWallet {
  const { client, wallet } = deps;
  const address = deps.address ? getAddress(deps.address) : null;
  /** token → reservation id → amount: the escrows whose deliveries may still spend the allowance. */
  const reserved = new Map<Address, Map<number, bigint>>();
  /** token → the tail of its approvals, so each token's approvals reach the nonce manager one at a time. */
  const approvalTails = new Map<Address, Promise<unknown>>();
  let nextReservation = 0;

  const need = (): Address => {
    if (!address) {
      throw new PaymentWalletError(
        "PaymentWallet has no address: set chain.wallet.payment_address to a Wallet made by the WalletFactory",
      );
    }
    return address;
  };
  const allowance = (spender: string, token: string) =>
    client.readContract({
      address: need(),
      abi: paymentWalletAbi,
      functionName: "allowance",
      args: [getAddress(spender), getAddress(token)],
    });
  const owner = () => client.readContract({ address: need(), abi: paymentWalletAbi, functionName: "owner" });

  function reserve(token: Address, amount: bigint): () => void {
    const id = nextReservation++;
    const ofToken = reserved.get(token) ?? new Map<number, bigint>();
    reserved.set(token, ofToken);
    ofToken.set(id, amount);
    return () => {
      const current = reserved.get(token);
      if (!current?.delete(id)) return;
      if (current.size === 0) reserved.delete(token);
    };
  }

  const sumReserved = (token: Address) => {
    let sum = 0n;
    for (const amount of reserved.get(token)?.values() ?? []) sum += amount;
    return sum;
  };

  /** Runs `task` after the previous task of this token has finished (either way). */
  function inTokenOrder<T>(token: Address, task: () => Promise<T>): Promise<T> {
    const result = (approvalTails.get(token) ?? Promise.resolve()).then(task);
    const tail = result.catch(() => undefined);
    approvalTails.set(token, tail);
    void tail.then(() => {
      if (approvalTails.get(token) === tail) approvalTails.delete(token);
    });
    return result;
  }

  /** Sends the approval of everything reserved in `token` (this escrow included); resolves once it has a nonce. */
  function sendApproval(target: Address, token: Address): Promise<SentTx> {
    return inTokenOrder(token, async () => {
      const total = sumReserved(token);
      deps.log?.debug("Approving the node's allowance in its payment wallet", {
        token,
        allowance: total.toString(),
      });
      const data = encodeFunctionData({
        abi: paymentWalletAbi,
        functionName: "approve",
        args: [wallet.address, token, total],
      });
      return await wallet.execute(target, data, { action: "approve", token, amount: total.toString() });
    });
  }

  return {
    address,
    owner,
    balance: (token) => deps.walletChecker.balanceOf(need(), token),
    allowance,
    async escrow(tokenText, amount, send) {
      const target = need();
      const token = getAddress(tokenText);
      const holder = await owner();
      if (holder.toLowerCase() !== wallet.address.toLowerCase()) {
        throw new PaymentWalletError(
          `payment wallet ${target} is owned by ${holder}, not by this node's address ${wallet.address}`,
        );
      }
      const release = reserve(token, amount);
      try {
        const approval = await sendApproval(target, token);
        const outcome = await approval.outcome;
        if (outcome.status !== "success") {
          throw new PaymentWalletError(`approve transaction ${outcome.hash} ${outcome.status}`);
        }
        // At least this escrow's amount: the approval set the sum of the reserved ones, and since then only
        // deliveries counted in it can have spent from it (or a later approval set a sum that counts this one).
        const now = await allowance(wallet.address, token);
        if (now < amount) {
          throw new PaymentWalletError(
            `Allowance is not equal to the amount set: ${now} after approving, ${amount} needed`,
          );
        }
        const tx = await send();
        void tx.outcome.then(release, release);
        return tx;
      } catch (error) {
        release();
        throw error;
      }
    },
    outstanding() {
      const out: Record<string, bigint> = {};
      for (const token of reserved.keys()) out[token] = sumReserved(token);
      return out;
    },
  };
}
