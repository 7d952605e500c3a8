// The block watcher's chain clock: the latest block's timestamp plus the time since that block was first seen,
// whatever the host's wall clock says.
import { describe, expect, test } from "bun:test";
import { type BlockInfo, createBlockWatcher } from "../../../src/chain/block-watcher.ts";

function block(number: number, timestamp: number, hash = `0x${number.toString(16)}`): BlockInfo {
  return { number: BigInt(number), timestamp, hash, baseFeePerGas: null };
}

function watcherOver(blocks: BlockInfo[]) {
  let mono = 5_000;
  let next = 0;
  const watcher = createBlockWatcher({
    getLatestBlock: async () => blocks[Math.min(next++, blocks.length - 1)] as BlockInfo,
    periodMs: 100,
    monotonic: () => mono,
    sleep: async () => {},
  });
  return { watcher, advance: (ms: number) => (mono += ms) };
}

describe("block watcher", () => {
  test("no block yet: no chain time", () => {
    const { watcher } = watcherOver([block(1, 100)]);
    expect(watcher.latest()).toBeNull();
    expect(watcher.chainNowMs()).toBeNull();
  });

  test("chain time runs from the block's timestamp, by the monotonic clock, between blocks", async () => {
    const { watcher, advance } = watcherOver([block(10, 1_000), block(10, 1_000), block(11, 1_002)]);
    await watcher.poll();
    expect(watcher.chainNowMs()).toBe(1_000_000);
    advance(700);
    await watcher.poll(); // the same block again: its first sighting still counts
    expect(watcher.chainNowMs()).toBe(1_000_700);
    advance(600);
    await watcher.poll(); // a new block resets the origin to its own timestamp
    expect(watcher.latest()?.number).toBe(11n);
    expect(watcher.chainNowMs()).toBe(1_002_000);
  });

  test("a chain far behind the host's clock gives the chain's time, not the host's", async () => {
    const hostNowS = Math.floor(Date.now() / 1000);
    const { watcher } = watcherOver([block(5, hostNowS - 60)]);
    await watcher.poll();
    expect(Math.round((watcher.chainNowMs() as number) / 1000)).toBe(hostNowS - 60);
  });

  test("a reorganisation to a block with the same number and another hash is taken as the new head", async () => {
    const { watcher, advance } = watcherOver([block(7, 500, "0xa"), block(7, 501, "0xb")]);
    await watcher.poll();
    advance(300);
    await watcher.poll();
    expect(watcher.latest()?.hash).toBe("0xb");
    expect(watcher.chainNowMs()).toBe(501_000);
  });

  test("run() keeps polling through failures and reports them", async () => {
    const errors: number[] = [];
    let calls = 0;
    const controller = new AbortController();
    const watcher = createBlockWatcher({
      getLatestBlock: async () => {
        calls++;
        if (calls <= 2) throw new Error("502");
        if (calls >= 4) controller.abort();
        return block(calls, 1_000 + calls);
      },
      periodMs: 1,
      sleep: async () => {},
      onError: (_e, consecutive) => errors.push(consecutive),
    });
    await watcher.run(controller.signal);
    expect(errors).toEqual([1, 2]);
    expect(watcher.latest()?.number).toBe(4n);
    expect(watcher.consecutiveFailures()).toBe(0);
  });
});
