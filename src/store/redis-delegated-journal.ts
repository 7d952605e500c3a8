// The delegated-subscription journal in Redis, shared by the node processes of a hot standby: a hash
// `<key_prefix>delegated` (key → entry) and a list `<key_prefix>delegated:new` of keys saved since the lease
// holder last looked, so that a subscription accepted by a standby's REST server reaches the holder within a
// processor step. Fail fast: while Redis is down a save is refused at once (the request gets a 503) rather than
// queued and maybe lost.
import type Redis from "ioredis";
import { describeError, NodeError } from "../lib/errors.ts";
import type { Logger } from "../lib/log.ts";
import type { Service, ServiceHealth } from "../lib/service.ts";
import type { DelegatedJournal } from "../shared/delegated.ts";
import type { DelegatedSubscriptionMessage } from "../shared/messages.ts";
import { decodeDelegated, encodeDelegated } from "./delegated-codec.ts";
import { failFastRedis, type RedisEndpointOptions } from "./redis-fail-fast.ts";

export interface RedisDelegatedJournalOptions {
  redis: RedisEndpointOptions;
  /** The hash's key; the list of new keys is `<key>:new`. */
  key: string;
  log: Logger;
  /** Per command (default 2 s). */
  commandTimeoutMs?: number;
  /**
   * Wraps the journal's Redis connection (tests inject faults at the Redis edge this way: a failed read, a
   * lost reply); default: the connection as is.
   */
  wrapClient?: (client: Redis) => Redis;
}

/** Keys taken from the list of new ones per step. */
const TAKE_BATCH = 256;

export function createRedisDelegatedJournal(
  options: RedisDelegatedJournalOptions,
): DelegatedJournal & Service {
  const { key, log } = options;
  const newKey = `${key}:new`;
  let lastError: string | undefined;
  const connection = failFastRedis(options.redis, {
    connectionName: "infernet-node:delegated-journal",
    commandTimeoutMs: options.commandTimeoutMs ?? 2_000,
    reconnectMaxMs: 2_000,
  });
  const client = options.wrapClient ? options.wrapClient(connection) : connection;
  client.on("error", (error: Error) => {
    lastError = describeError(error);
  });
  client.on("ready", () => {
    lastError = undefined;
  });
  // setup() connects; until then (and between reconnects) health says why not ready.

  const unavailable = (error: unknown) =>
    new NodeError(`cannot store the delegated subscription: Redis: ${describeError(error)}`, {
      status: 503,
      retryable: true,
      cause: error,
    });

  function decoded(
    entries: Array<[string, string | null]>,
  ): Array<{ key: string; msg: DelegatedSubscriptionMessage }> {
    const out: Array<{ key: string; msg: DelegatedSubscriptionMessage }> = [];
    for (const [entryKey, text] of entries) {
      if (text === null) continue; // removed since (delivered or dropped)
      const msg = decodeDelegated(text);
      if (msg) out.push({ key: entryKey, msg });
      else log.warn("Unreadable delegated subscription in the journal; dropped", { key: entryKey });
    }
    return out;
  }

  return {
    name: "delegated-journal",
    async setup() {
      // Not fatal: the job store reports Redis at start-up; this connection keeps trying on its own.
      await client.connect().catch((error: unknown) => {
        lastError = describeError(error);
      });
    },
    async close() {
      client.disconnect();
    },
    health(): ServiceHealth {
      if (client.status === "ready") return { ok: true };
      return { ok: false, detail: `Redis: ${lastError ?? client.status}` };
    },
    async save(entryKey, msg) {
      let result: Array<[Error | null, unknown]> | null;
      try {
        result = await client
          .multi()
          .hset(key, entryKey, encodeDelegated(msg))
          .rpush(newKey, entryKey)
          .exec();
      } catch (error) {
        throw unavailable(error);
      }
      // A MULTI whose commands fail (OOM, READONLY) resolves with the errors inside.
      const failed = result?.find(([error]) => error !== null)?.[0];
      if (!result || failed) throw unavailable(failed ?? "transaction aborted");
    },
    async remove(entryKey) {
      await client.hdel(key, entryKey);
    },
    async load() {
      // Everything is in the hash: the list of new keys is cleared with it, atomically.
      const result = await client.multi().del(newKey).hgetall(key).exec();
      const all = (result?.[1]?.[1] ?? {}) as Record<string, string>;
      return decoded(Object.entries(all));
    },
    async takeNew() {
      // Read first, remove after: a subscription here was answered 200, so no failure may lose it. A failed
      // LRANGE or HMGET changes nothing (thrown; the next step reads the same keys). Then only the keys read
      // are trimmed from the head: other processes' RPUSHes meanwhile go to the tail and stay. A failed
      // LTRIM (or one whose reply is lost after it ran) does not undo the read: what was read is returned
      // either way, and may come again next step; the processor skips keys it already holds, so at worst an
      // entry is handed over twice, never lost. One taker at a time (the lease holder): two taking at once
      // could trim each other's unread keys from the list, but those stay in the hash, which a process that
      // takes the lease reads whole (load) before it takes new ones.
      const keys = await client.lrange(newKey, 0, TAKE_BATCH - 1);
      if (keys.length === 0) return [];
      const unique = [...new Set(keys)];
      const values = await client.hmget(key, ...unique);
      const entries = decoded(unique.map((entryKey, i) => [entryKey, values[i] ?? null]));
      try {
        await client.ltrim(newKey, keys.length, -1);
      } catch (error) {
        log.warn(
          "Could not remove delegated subscriptions taken from the journal's list; they may come again",
          {
            count: keys.length,
            error: describeError(error),
          },
        );
      }
      return entries;
    },
  };
}
