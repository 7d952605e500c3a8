// TEMPORARY stand-in (replaced by the real module): the interface the processor is written against.
import type { Logger } from "../lib/log.ts";

export interface ScanLog {
  eventName: "SubscriptionCancelled" | "SubscriptionFulfilled";
  args: { id?: number | bigint };
  blockNumber: bigint | null;
}
export interface ScanStep {
  events: Array<{ kind: "cancelled" | "fulfilled"; id: number; blockNumber: bigint }>;
  scannedTo: bigint | null;
  behind: bigint;
  error?: string;
}
export function createEventScanner(deps: {
  getLogs(from: bigint, to: bigint): Promise<ScanLog[]>;
  log: Logger;
  maxRange?: bigint;
  startBack?: bigint;
}) {
  let cursor: bigint | null = null;
  return {
    async advance(head: bigint): Promise<ScanStep> {
      const from = cursor === null ? (head > 100n ? head - 100n : 0n) : cursor + 1n;
      if (from > head) return { events: [], scannedTo: cursor, behind: 0n };
      const to = head - from > 1000n ? from + 1000n : head;
      try {
        const logs = await deps.getLogs(from, to);
        cursor = to;
        return {
          events: logs.map((l) => ({
            kind: l.eventName === "SubscriptionCancelled" ? "cancelled" : "fulfilled",
            id: Number(l.args.id),
            blockNumber: l.blockNumber ?? to,
          })),
          scannedTo: to,
          behind: head - to,
        };
      } catch (error) {
        return { events: [], scannedTo: cursor, behind: head - (cursor ?? from), error: String(error) };
      }
    },
  };
}
export async function confirmCancelled(
  readActiveAt: (id: number) => Promise<number>,
  ids: number[],
): Promise<number[]> {
  const out: number[] = [];
  for (const id of ids) if ((await readActiveAt(id)) === 4294967295) out.push(id);
  return out;
}
