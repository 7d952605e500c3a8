// The node's EOA, derived from the configured private key (the key itself never leaves the chain side).
import type { Address, Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";

/** Checksummed address of the wallet key; the key may come with or without 0x, as the reference allows. */
export function nodeAddress(privateKey: string): Address {
  const key = (privateKey.startsWith("0x") ? privateKey : `0x${privateKey}`) as Hex;
  return privateKeyToAccount(key).address;
}
