// Health records with every optional /metrics source present: the chain (sync progress and RPC counters), the
// processor (its health shape, agreed with the chain side) and the Metric Sender.
import type { ServiceHealth } from "../../../src/lib/service.ts";

export const FULL_HEALTH: Record<string, ServiceHealth> = {
  chain: {
    ok: true,
    rpc: {
      byMethod: { eth_call: 7, eth_blockNumber: 3 },
      failures: 1,
      failuresByMethod: { eth_call: 1 },
      exhausted: 0,
      failovers: 0,
    },
    sync: {
      head_block: 120,
      last_synced_block: 117,
      head_sub_id: 40,
      last_sub_id: 40,
      relayed: 30,
      ignored: 10,
    },
  },
  processor: {
    ok: true,
    detail: "running",
    tracked: 30,
    delegated: 2,
    pending_txs: 1,
    deliveries: { sent: 9, confirmed: 7, reverted: 1, replaced: 1, failed: 0 },
    nonce: 12,
    balance_wei: "1000000000000000000",
  },
  stats: { ok: true, records: { sent: 4, dropped: 1 }, queued: 0 },
};
