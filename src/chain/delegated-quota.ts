// Bounds on the delegated subscriptions a node holds in memory until it delivers them (anyone can POST them):
// how many in all, per owner contract and per client address, how large one may be, and how many bytes all of
// them take. A submission over a bound is refused at once (the REST server answers 503 with the reason);
// nothing already held is dropped to make room.
import { NodeError } from "../lib/errors.ts";

export interface DelegatedQuotaLimits {
  maxCount: number;
  maxPerOwner: number;
  maxPerClient: number;
  /** Bytes of one subscription's `data` (as JSON). */
  maxItemBytes: number;
  /** Bytes of every held subscription's `data` together. */
  maxTotalBytes: number;
}

export class DelegatedQuotaError extends NodeError {
  override name = "DelegatedQuotaError";
}

interface Held {
  owner: string;
  client: string;
  bytes: number;
}

export interface DelegatedQuota {
  /** Reserves room for `key` (replacing what the same key held); throws DelegatedQuotaError when over a bound. */
  admit(key: string, entry: Held): void;
  release(key: string): void;
  stats(): { count: number; bytes: number };
}

export function createDelegatedQuota(limits: DelegatedQuotaLimits): DelegatedQuota {
  const held = new Map<string, Held>();
  const perOwner = new Map<string, number>();
  const perClient = new Map<string, number>();
  let bytes = 0;
  const bump = (map: Map<string, number>, key: string, by: number) => {
    const next = (map.get(key) ?? 0) + by;
    if (next > 0) map.set(key, next);
    else map.delete(key);
  };
  const release = (key: string) => {
    const entry = held.get(key);
    if (!entry) return;
    held.delete(key);
    bump(perOwner, entry.owner, -1);
    bump(perClient, entry.client, -1);
    bytes -= entry.bytes;
  };
  return {
    admit(key, entry) {
      const previous = held.get(key);
      const refuse = (why: string) => {
        throw new DelegatedQuotaError(why, { meta: { owner: entry.owner } });
      };
      if (entry.bytes > limits.maxItemBytes) {
        refuse(`delegated subscription data is ${entry.bytes} bytes, more than ${limits.maxItemBytes}`);
      }
      const same = (a: string | undefined, b: string) => (a === b ? 1 : 0);
      if (!previous && held.size >= limits.maxCount) {
        refuse(`the node holds ${limits.maxCount} delegated subscriptions already; try later`);
      }
      if ((perOwner.get(entry.owner) ?? 0) - same(previous?.owner, entry.owner) >= limits.maxPerOwner) {
        refuse(`owner ${entry.owner} has ${limits.maxPerOwner} delegated subscriptions pending already`);
      }
      if ((perClient.get(entry.client) ?? 0) - same(previous?.client, entry.client) >= limits.maxPerClient) {
        refuse(`client ${entry.client} has ${limits.maxPerClient} delegated subscriptions pending already`);
      }
      if (bytes - (previous?.bytes ?? 0) + entry.bytes > limits.maxTotalBytes) {
        refuse(`delegated subscriptions held take ${limits.maxTotalBytes} bytes already; try later`);
      }
      release(key);
      held.set(key, entry);
      bump(perOwner, entry.owner, 1);
      bump(perClient, entry.client, 1);
      bytes += entry.bytes;
    },
    release,
    stats: () => ({ count: held.size, bytes }),
  };
}
