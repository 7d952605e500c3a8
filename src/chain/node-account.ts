// The node's EOA, derived from the configured private key (the key itself never leaves the chain side).
import type { Address, Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";

/** The key with its 0x: it may come with or without, as the reference allows. */
export function normalisePrivateKey(privateKey: string): Hex {
  return (privateKey.startsWith("0x") ? privateKey : `0x${privateKey}`) as Hex;
}

/** Checksummed address of the wallet key. */
export function nodeAddress(privateKey: string): Address {
  return privateKeyToAccount(normalisePrivateKey(privateKey)).address;
}
