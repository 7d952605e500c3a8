// Recency scores for LRU eviction: wall-clock based so several processes sharing a store agree roughly, but
// strictly increasing within a process so jobs touched in the same millisecond still keep their order.
// now·1024 stays below 2^53 (exact in a double and in a Redis sorted-set score) until the year 2248.

export function createLruClock(now: () => number = Date.now): () => number {
  let last = 0;
  return () => {
    last = Math.max(now() * 1024, last + 1);
    return last;
  };
}
