// Subscription wallet checks (reference WalletChecker, node-behavior §8.7): is the wallet one the Infernet
// WalletFactory made, and does it hold enough of the payment token (native ETH for the zero address).
import { type Address, getAddress } from "viem";
import { ZERO_ADDRESS } from "../shared/subscription.ts";
import { erc20Abi } from "./abi/erc20.ts";
import { walletFactoryAbi } from "./abi/wallet-factory.ts";
import type { ChainClient } from "./rpc.ts";

export interface BalanceCheck {
  ok: boolean;
  /** The wallet's total balance of the token (not its unlocked balance, as in the reference). */
  balance: bigint;
}

export interface WalletChecker {
  isValidWallet(wallet: string, blockNumber?: bigint): Promise<boolean>;
  balanceOf(wallet: string, token: string, blockNumber?: bigint): Promise<bigint>;
  hasEnoughBalance(
    wallet: string,
    token: string,
    amount: bigint,
    blockNumber?: bigint,
  ): Promise<BalanceCheck>;
}

export function createWalletChecker(client: ChainClient, walletFactory: Address): WalletChecker {
  const at = (blockNumber?: bigint) => (blockNumber === undefined ? {} : { blockNumber });
  const balanceOf = async (wallet: string, token: string, blockNumber?: bigint): Promise<bigint> => {
    const address = getAddress(wallet);
    if (token.toLowerCase() === ZERO_ADDRESS) return client.getBalance({ address, ...at(blockNumber) });
    return client.readContract({
      address: getAddress(token),
      abi: erc20Abi,
      functionName: "balanceOf",
      args: [address],
      ...at(blockNumber),
    });
  };
  return {
    isValidWallet: (wallet, blockNumber) =>
      client.readContract({
        address: walletFactory,
        abi: walletFactoryAbi,
        functionName: "isValidWallet",
        args: [getAddress(wallet)],
        ...at(blockNumber),
      }),
    balanceOf,
    async hasEnoughBalance(wallet, token, amount, blockNumber) {
      const balance = await balanceOf(wallet, token, blockNumber);
      return { ok: balance >= amount, balance };
    },
  };
}
