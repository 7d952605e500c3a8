// The chain lease in Redis: among node processes configured with the same wallet and one Redis, exactly one
// holds `<key_prefix>chain-lease:<address>` and sends transactions; the others stand by and take over when it
// expires (the holder died, or cannot reach Redis).
//
// Fencing: the holder renews every ttl/3 with a compare-and-expire script and trusts the lease only until
// (start of its last successful acquire/renew request) + ttl − margin by its own monotonic clock. A process that
// was paused (SIGSTOP, a long GC, a VM migration) past that instant stops sending before it talks to Redis again,
// while Redis's own expiry (counted from when Redis applied the command, necessarily later) lets the standby in
// only after it. Beyond that, the chain itself fences: both processes share the wallet, so the Coordinator's
// nodeResponded check and the shared nonce refuse a second delivery for the same interval.
//
// When Redis is down no process can renew: the holder stops sending when its lease runs out, and nobody sends
// until Redis answers again. Safety (never two senders) is chosen over liveness.
import { describeError } from "../lib/errors.ts";
import type { Logger } from "../lib/log.ts";
import type { Service } from "../lib/service.ts";
import { sleep } from "../lib/time.ts";
import type { SendLease } from "../shared/lease.ts";
import { failFastRedis, type RedisEndpointOptions } from "./redis-fail-fast.ts";

export interface RedisLeaseOptions {
  redis: RedisEndpointOptions;
  key: string;
  /** This process's identity in the lease value (instance id plus a random part: a restart is a new owner). */
  owner: string;
  ttlMs: number;
  log: Logger;
}

const RENEW_SCRIPT = `if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("PEXPIRE", KEYS[1], ARGV[2]) else return 0 end`;
const RELEASE_SCRIPT = `if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) else return 0 end`;

export function createRedisLease(options: RedisLeaseOptions): SendLease & Service {
  const { key, owner, ttlMs, log } = options;
  // Clock drift and the request's own latency are covered by this margin (at least 500 ms, a tenth of the ttl).
  const marginMs = Math.max(500, ttlMs / 10);
  const stepMs = Math.max(100, Math.floor(ttlMs / 3));
  let validUntil = 0;
  let holder: string | undefined;
  let wasHeld = false;
  let standbySince = performance.now();
  let lastError: string | undefined;
  // Fail fast: a lease request that waits is worthless, the next step tries again.
  const client = failFastRedis(options.redis, {
    connectionName: `infernet-node:${owner}:lease`,
    commandTimeoutMs: Math.max(250, Math.floor(stepMs / 2)),
    reconnectMaxMs: 1_000,
  });
  client.on("error", (error: Error) => {
    lastError = describeError(error);
  });

  const held = () => performance.now() < validUntil;

  async function step(): Promise<void> {
    const startedAt = performance.now();
    try {
      if (wasHeld) {
        const renewed = (await client.eval(RENEW_SCRIPT, 1, key, owner, String(ttlMs))) as number;
        if (renewed === 1) {
          validUntil = startedAt + ttlMs - marginMs;
          return;
        }
      } else {
        const taken = await client.set(key, owner, "PX", ttlMs, "NX");
        if (taken === "OK") {
          validUntil = startedAt + ttlMs - marginMs;
          holder = owner;
          wasHeld = true;
          lastError = undefined;
          log.info("Holding the chain lease: this node sends transactions", {
            key,
            waited_ms: Math.round(performance.now() - standbySince),
          });
          return;
        }
      }
      holder = (await client.get(key)) ?? undefined;
    } catch (error) {
      lastError = describeError(error);
      if (wasHeld && held()) return; // keep what we have until it runs out
    }
    if (wasHeld) {
      wasHeld = false;
      validUntil = 0;
      standbySince = performance.now();
      log.warn("Lost the chain lease: standing by, sending nothing", { key, holder, error: lastError });
    }
  }

  return {
    name: "chain-lease",
    held,
    describe: () =>
      held() ? "held" : `standby${holder ? `: held by ${holder}` : ""}${lastError ? ` (${lastError})` : ""}`,
    async setup() {
      await client.connect().catch((error: unknown) => {
        lastError = describeError(error);
      });
      await step();
      if (!wasHeld) log.info("Standing by: another node holds the chain lease", { key, holder });
    },
    async run(signal) {
      while (!signal.aborted) {
        await sleep(stepMs, signal);
        if (!signal.aborted) await step();
      }
    },
    async close() {
      if (held()) await client.eval(RELEASE_SCRIPT, 1, key, owner).catch(() => undefined);
      validUntil = 0;
      client.disconnect();
    },
    health: () => ({ ok: true, detail: held() ? "held" : "standby", holder: holder ?? null }),
  };
}
