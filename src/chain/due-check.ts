// TEMPORARY stand-in (replaced by the real module): the interface the processor is written against.
import type { Address } from "viem";
import type { Logger } from "../lib/log.ts";
import type { BatchReads } from "./batch-reads.ts";
import type { Reader } from "./reader.ts";
import type { WalletChecker } from "./wallet-checker.ts";

export interface DueItem {
  key: string;
  id: number;
  interval: number;
  redundancy: number;
  frequency: number;
  payment?: { wallet: string; token: string; amount: bigint };
}
export type DueVerdict =
  | { kind: "ready" }
  | { kind: "redundancy-met"; count: number; last: boolean }
  | { kind: "already-responded" }
  | { kind: "invalid-wallet" }
  | { kind: "insufficient-balance"; balance: bigint }
  | { kind: "retry"; error: string };

export function createDueCheck(deps: {
  reader: Pick<Reader, "readRedundancyCountBatch">;
  nodeResponded: BatchReads["nodeResponded"];
  walletChecker: Pick<WalletChecker, "isValidWallet" | "balanceOf">;
  node: Address;
  chunkSize?: number;
  concurrency?: number;
  log: Logger;
}) {
  return {
    async check(items: DueItem[], block: bigint): Promise<Map<string, DueVerdict>> {
      const out = new Map<string, DueVerdict>();
      for (let i = 0; i < items.length; i += deps.chunkSize ?? 500) {
        const chunk = items.slice(i, i + (deps.chunkSize ?? 500));
        try {
          const [counts, responded] = await Promise.all([
            deps.reader.readRedundancyCountBatch(
              chunk.map((c) => c.id),
              chunk.map((c) => c.interval),
              block,
            ),
            deps.nodeResponded(chunk, deps.node, block),
          ]);
          for (const [j, item] of chunk.entries()) {
            const count = counts[j] ?? 0;
            if (count >= item.redundancy)
              out.set(item.key, { kind: "redundancy-met", count, last: item.interval >= item.frequency });
            else if (responded[j]) out.set(item.key, { kind: "already-responded" });
            else if (item.payment) {
              if (!(await deps.walletChecker.isValidWallet(item.payment.wallet)))
                out.set(item.key, { kind: "invalid-wallet" });
              else {
                const balance = await deps.walletChecker.balanceOf(item.payment.wallet, item.payment.token);
                out.set(
                  item.key,
                  balance >= item.payment.amount
                    ? { kind: "ready" }
                    : { kind: "insufficient-balance", balance },
                );
              }
            } else out.set(item.key, { kind: "ready" });
          }
        } catch (error) {
          for (const item of chunk) out.set(item.key, { kind: "retry", error: String(error) });
        }
      }
      return out;
    },
  };
}
