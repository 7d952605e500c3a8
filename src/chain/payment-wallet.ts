// The node's own Infernet payment Wallet (chain.wallet.payment_address): where paid deliveries are paid to, and
// where proof-gated deliveries lock their stake. Before such a delivery the node approves its own EOA as spender
// of the payment (reference §8.10.5 step 10), through the same nonce manager as the deliveries, and waits for it.
import { type Address, encodeFunctionData, getAddress } from "viem";
import { NodeError } from "../lib/errors.ts";
import { paymentWalletAbi } from "./abi/payment-wallet.ts";
import type { ChainClient } from "./rpc.ts";
import type { Wallet } from "./wallet.ts";
import type { WalletChecker } from "./wallet-checker.ts";

export interface PaymentWallet {
  readonly address: Address | null;
  owner(): Promise<Address>;
  balance(token: string): Promise<bigint>;
  allowance(spender: string, token: string): Promise<bigint>;
  /** Sets the allowance of `spender` for `token` to `amount` and waits until it is mined and visible. */
  approve(spender: string, token: string, amount: bigint): Promise<void>;
}

export class PaymentWalletError extends NodeError {
  override name = "PaymentWalletError";
}

export function createPaymentWallet(deps: {
  client: ChainClient;
  address: string | null;
  wallet: Wallet;
  walletChecker: WalletChecker;
}): PaymentWallet {
  const { client, wallet } = deps;
  const address = deps.address ? getAddress(deps.address) : null;
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
  return {
    address,
    owner,
    balance: (token) => deps.walletChecker.balanceOf(need(), token),
    allowance,
    async approve(spender, token, amount) {
      const target = need();
      const holder = await owner();
      if (holder.toLowerCase() !== wallet.address.toLowerCase()) {
        throw new PaymentWalletError(
          `payment wallet ${target} is owned by ${holder}, not by this node's address ${wallet.address}`,
        );
      }
      const data = encodeFunctionData({
        abi: paymentWalletAbi,
        functionName: "approve",
        args: [getAddress(spender), getAddress(token), amount],
      });
      const sent = await wallet.execute(target, data, {
        action: "approve",
        token,
        amount: amount.toString(),
      });
      const outcome = await sent.outcome;
      if (outcome.status !== "success") {
        throw new PaymentWalletError(`approve transaction ${outcome.hash} ${outcome.status}`);
      }
      const now = await allowance(spender, token);
      if (now !== amount) throw new PaymentWalletError("Allowance is not equal to the amount set.");
    },
  };
}
