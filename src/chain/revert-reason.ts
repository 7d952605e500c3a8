// Why a mined transaction reverted. The transaction's own execution is what counts, and only a trace shows it:
// replaying the call with eth_call at blockNumber-1 runs it on the state its block STARTED from, without the
// transactions mined before it in the same block, so a revert caused by one of those (two escrows sharing an
// allowance, a second delivery for an interval another transaction just filled) replays as a success and was
// logged "unknown". debug_traceTransaction with the callTracer (anvil, geth, erigon, reth and the paid tiers of
// most providers) gives the revert output of the real execution; when the provider refuses it (free tiers,
// method not found, timeouts) the replay is the fallback, and its answer says it is one.
import type { Address, Hex } from "viem";
import { decodeRevertData, findRevertData } from "./infernet-errors.ts";
import type { ChainClient } from "./rpc.ts";
import { rpcErrorText } from "./rpc.ts";

/** One frame of the callTracer's answer (the fields used here). */
export interface CallFrame {
  output?: string;
  error?: string;
  revertReason?: string;
  calls?: CallFrame[];
}

export interface MinedTransaction {
  hash: Hex;
  from: Address;
  to: Address;
  data: Hex;
  blockNumber: bigint;
}

const HEX = /^0x[0-9a-fA-F]*$/;
/** Appended to a reason learned by the replay: it may not be what happened in the block. */
export const REPLAY_LABEL = "(replayed on the state before its block)";

/**
 * The reason a traced call failed, as one log line; undefined when the trace shows no failure. The top frame's
 * output carries the revert data (Solidity bubbles a callee's revert up); when it is empty, the deepest failed
 * call with data explains it (a low-level call whose failure the caller turned into a bare revert). A failure
 * without data (out of gas, invalid opcode) is named by the tracer's error text.
 */
export function revertOfTrace(frame: CallFrame): string | undefined {
  if (!frame.error) return undefined;
  const data = revertDataOf(frame);
  if (data !== undefined) return decodeRevertData(data).reason;
  return /execution reverted/i.test(frame.error) ? "reverted without a reason" : frame.error;
}

function revertDataOf(frame: CallFrame): Hex | undefined {
  if (typeof frame.output === "string" && HEX.test(frame.output) && frame.output.length >= 10) {
    return frame.output as Hex;
  }
  for (const call of frame.calls ?? []) {
    if (!call.error) continue;
    const inner = revertDataOf(call);
    if (inner !== undefined) return inner;
  }
  return undefined;
}

/**
 * The decoded reason of a mined reverted transaction: from its trace when the provider traces, else from the
 * replay on its block's parent state, labelled as such. Never throws: an RPC failure becomes the text.
 */
export async function minedRevertReason(client: ChainClient, tx: MinedTransaction): Promise<string> {
  let trace: CallFrame | undefined;
  try {
    trace = (await client.request({
      method: "debug_traceTransaction",
      params: [tx.hash, { tracer: "callTracer" }],
    } as never)) as CallFrame | undefined;
  } catch {
    trace = undefined; // not offered by this provider (or not now): the replay below
  }
  if (trace && typeof trace === "object") {
    const reason = revertOfTrace(trace);
    // A trace without a failure cannot be of a reverted transaction (a node that pruned it, a reorg): replay.
    if (reason !== undefined) return reason;
  }
  return await replayedReason(client, tx);
}

async function replayedReason(client: ChainClient, tx: MinedTransaction): Promise<string> {
  try {
    await client.call({
      account: tx.from,
      to: tx.to,
      data: tx.data,
      blockNumber: tx.blockNumber > 0n ? tx.blockNumber - 1n : tx.blockNumber,
    });
    return `unknown: the call succeeds when ${REPLAY_LABEL.slice(1, -1)}`;
  } catch (error) {
    const data = findRevertData(error);
    if (data === undefined) return `unknown: the replay failed (${rpcErrorText(error)})`;
    return `${decodeRevertData(data).reason} ${REPLAY_LABEL}`;
  }
}
