// The few JSON-RPC calls the transaction manager makes, over any EIP-1193 `request` (the node's ChainClient, or
// in tests a small object standing in for a provider that misbehaves), decoded from their raw JSON answers.
import type { Address, Hex } from "viem";

/** An EIP-1193 provider: what the manager needs from a client. */
export interface TxRpc {
  request(args: { method: string; params?: unknown }): Promise<unknown>;
}

export interface MinedReceipt {
  transactionHash: Hex;
  blockNumber: bigint;
  blockHash: Hex;
  gasUsed: bigint;
  status: "success" | "reverted";
}

export function txRpcCalls(rpc: TxRpc) {
  const call = (method: string, params: unknown[]) => rpc.request({ method, params });
  const decodeReceipt = (raw: Record<string, Hex> | null, hash?: Hex): MinedReceipt | undefined => {
    if (!raw?.blockNumber || !raw.blockHash) return undefined;
    return {
      transactionHash: raw.transactionHash ?? (hash as Hex),
      blockNumber: BigInt(raw.blockNumber),
      blockHash: raw.blockHash,
      gasUsed: BigInt(raw.gasUsed ?? "0x0"),
      // Pre-Byzantium receipts carry no status; every chain the node serves has one.
      status: raw.status === "0x0" ? "reverted" : "success",
    };
  };
  return {
    async transactionCount(address: Address, tag: "latest" | "pending"): Promise<number> {
      return Number(BigInt((await call("eth_getTransactionCount", [address, tag])) as Hex));
    },
    /** The hash the node answers (for logs); the manager relies on the hash it computed before sending. */
    async sendRaw(raw: Hex): Promise<unknown> {
      return call("eth_sendRawTransaction", [raw]);
    },
    async receipt(hash: Hex): Promise<MinedReceipt | undefined> {
      return decodeReceipt(
        (await call("eth_getTransactionReceipt", [hash])) as Record<string, Hex> | null,
        hash,
      );
    },
    /** Every receipt of a block in one request (eth_getBlockReceipts); undefined when the block is unknown. */
    async blockReceipts(block: bigint): Promise<MinedReceipt[] | undefined> {
      const raw = (await call("eth_getBlockReceipts", [`0x${block.toString(16)}`])) as Array<
        Record<string, Hex>
      > | null;
      if (!Array.isArray(raw)) return undefined;
      return raw.map((r) => decodeReceipt(r)).filter((r): r is MinedReceipt => r !== undefined);
    },
    /** Whether any node in reach knows this transaction (in a pool or mined). */
    async transactionKnown(hash: Hex): Promise<boolean> {
      return (await call("eth_getTransactionByHash", [hash])) !== null;
    },
    /** A block's hash and base fee; undefined when the chain has no such block (shorter after a reorg). */
    async block(
      at: bigint | "latest",
    ): Promise<{ hash: Hex; baseFeePerGas: bigint | undefined } | undefined> {
      const tag = at === "latest" ? at : `0x${at.toString(16)}`;
      const raw = (await call("eth_getBlockByNumber", [tag, false])) as Record<string, Hex> | null;
      if (!raw?.hash) return undefined;
      return { hash: raw.hash, baseFeePerGas: raw.baseFeePerGas ? BigInt(raw.baseFeePerGas) : undefined };
    },
    async priorityFee(): Promise<bigint> {
      return BigInt((await call("eth_maxPriorityFeePerGas", [])) as Hex);
    },
    async gasPrice(): Promise<bigint> {
      return BigInt((await call("eth_gasPrice", [])) as Hex);
    },
  };
}

export type TxRpcCalls = ReturnType<typeof txRpcCalls>;
