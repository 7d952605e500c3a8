// The chain's head and the chain's clock, for the whole chain side, from one `eth_getBlockByNumber("latest")`
// per poll. It runs on its own loop, so the processor's per-block work (receipts, fee replacement, reorg checks,
// the event scan) goes on while the listener is busy with a long snapshot sync or backing off after failures
// (the processor used to take its head from the listener and stood still meanwhile).
//
// Chain time: the Coordinator computes intervals from `block.timestamp`, so due-ness must follow the chain, not
// the host. The chain's "now" is the latest block's timestamp plus the time elapsed (by a monotonic clock) since
// that block was first seen: it agrees with the chain when the host's clock is skewed, stands still between
// blocks only as far as the chain does, and still moves on a dev chain that mines only on demand.

export interface BlockInfo {
  number: bigint;
  /** Seconds since the epoch, as the block says. */
  timestamp: number;
  hash: string;
  baseFeePerGas: bigint | null;
}

export interface BlockWatcherDeps {
  getLatestBlock(): Promise<BlockInfo>;
  /** Pause between polls, ms (snapshot_sync.sync_period). */
  periodMs: number;
  /** Milliseconds from an arbitrary origin that never goes backwards (default performance.now). */
  monotonic?: () => number;
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
  /** Told of a failed poll (already counted); the loop keeps going with capped backoff. */
  onError?(error: unknown, consecutive: number): void;
}

export interface BlockWatcher {
  /** The newest block seen, or null before the first poll answered. */
  latest(): BlockInfo | null;
  /** The chain's current time in ms (latest block's timestamp plus the time since it was seen); null before a block. */
  chainNowMs(): number | null;
  /** One poll now; returns the newest block (which may be the one seen before). Throws what the RPC throws. */
  poll(): Promise<BlockInfo>;
  /** Polls every `periodMs` until `signal` aborts; never throws. */
  run(signal: AbortSignal): Promise<void>;
  consecutiveFailures(): number;
}

const MAX_BACKOFF_MS = 10_000;

export function createBlockWatcher(deps: BlockWatcherDeps): BlockWatcher {
  const monotonic = deps.monotonic ?? (() => performance.now());
  let latest: BlockInfo | null = null;
  let seenAt = 0;
  let failures = 0;

  function observe(block: BlockInfo): void {
    // A reorganisation can make the head lower or change its hash; the newest answer is the chain's view.
    if (latest && block.number === latest.number && block.hash === latest.hash) return;
    // Time since the block was seen only counts from its first sighting; a block with an older timestamp than the
    // one before (a reorg onto a slower branch) restarts the count from its own timestamp.
    latest = block;
    seenAt = monotonic();
  }

  async function poll(): Promise<BlockInfo> {
    const block = await deps.getLatestBlock();
    observe(block);
    return latest ?? block;
  }

  return {
    latest: () => latest,
    chainNowMs: () => (latest === null ? null : latest.timestamp * 1000 + (monotonic() - seenAt)),
    poll,
    consecutiveFailures: () => failures,
    async run(signal) {
      while (!signal.aborted) {
        try {
          await poll();
          failures = 0;
          await deps.sleep(deps.periodMs, signal);
        } catch (error) {
          if (signal.aborted) return;
          failures++;
          deps.onError?.(error, failures);
          await deps.sleep(Math.min(MAX_BACKOFF_MS, deps.periodMs * 2 ** Math.min(failures, 10)), signal);
        }
      }
    },
  };
}
