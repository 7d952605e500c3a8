// Container-set id → ordered pipeline of configured container ids (reference chain/container_lookup.py,
// node-behavior §8.6). The on-chain id is keccak256(abi.encode(string)) of the comma-joined ids; the chain
// never sees the string, so the node keeps a table of the pipelines it could serve.
//
// Memory bound (the reference's table grows factorially: 10 containers → 9.9 M entries): the table holds every
// ordered pipeline without repetition of length 1..L, where L is the longest length for which the total entry
// count stays within `maxEntries` (default 20,000). Up to 7 configured containers that is every length (7 →
// 13,699 entries), so the reference's behaviour is matched exactly. With more containers, pipelines longer than
// L are not recognised (8 containers → L = 5; 20 → L = 3); their subscriptions are ignored as
// `Container-set not supported`, exactly like any pipeline this node cannot serve. A hash cannot be inverted
// without enumerating candidates, so there is no cheaper lazy path for long pipelines; raise `maxEntries` to go
// further (about 150 bytes per entry). The table is built on first use, so a node that never looks up pays
// nothing.
import { encodeAbiParameters, keccak256 } from "viem";

export const DEFAULT_MAX_LOOKUP_ENTRIES = 20_000;

export interface ContainerLookup {
  /** The pipeline for a container-set id (any hex case), or undefined when this node does not know it. */
  lookupContainers(hash: string): string[] | undefined;
  /** Longest pipeline length the table covers. */
  readonly maxPipelineLength: number;
  /** Entries in the table (builds it if needed). */
  size(): number;
}

/** keccak256(abi.encode(string)) of the comma-joined ids, as 0x + lowercase hex. */
export function containerSetId(containers: readonly string[]): string {
  return keccak256(encodeAbiParameters([{ type: "string" }], [containers.join(",")])).toLowerCase();
}

/** Number of ordered pipelines without repetition of exactly length k from n ids: n!/(n−k)!. */
function permutationCount(n: number, k: number): number {
  let count = 1;
  for (let i = 0; i < k; i++) count *= n - i;
  return count;
}

/** Longest L such that Σ_{k=1..L} n!/(n−k)! ≤ maxEntries (at least 1 when there is any id). */
export function coveredLength(n: number, maxEntries: number): number {
  let total = 0;
  let length = 0;
  for (let k = 1; k <= n; k++) {
    total += permutationCount(n, k);
    if (total > maxEntries && k > 1) break;
    length = k;
  }
  return length;
}

export function createContainerLookup(
  containerIds: readonly string[],
  options: { maxEntries?: number } = {},
): ContainerLookup {
  // Duplicate ids collapse, as in the reference's dict of containers.
  const ids = [...new Set(containerIds)];
  const maxPipelineLength = coveredLength(ids.length, options.maxEntries ?? DEFAULT_MAX_LOOKUP_ENTRIES);
  let table: Map<string, readonly string[]> | undefined;

  const build = (): Map<string, readonly string[]> => {
    const out = new Map<string, readonly string[]>();
    const used = new Array<boolean>(ids.length).fill(false);
    const path: string[] = [];
    const visit = () => {
      if (path.length > 0) out.set(containerSetId(path), [...path]);
      if (path.length === maxPipelineLength) return;
      ids.forEach((id, i) => {
        if (used[i]) return;
        used[i] = true;
        path.push(id);
        visit();
        path.pop();
        used[i] = false;
      });
    };
    visit();
    return out;
  };

  return {
    maxPipelineLength,
    lookupContainers(hash) {
      table ??= build();
      const found = table.get(hash.toLowerCase());
      return found ? [...found] : undefined;
    },
    size() {
      table ??= build();
      return table.size;
    },
  };
}

let shared: { key: string; lookup: ContainerLookup } | undefined;

/**
 * Free-function form for callers that hold the configured container ids rather than a ContainerLookup (the
 * REST guardian for delegated subscriptions): one table per distinct id list, kept for the last list used.
 */
export function lookupContainers(hash: string, containerIds: readonly string[]): string[] | undefined {
  const key = containerIds.join("\n");
  if (shared?.key !== key) shared = { key, lookup: createContainerLookup(containerIds) };
  return shared.lookup.lookupContainers(hash);
}
