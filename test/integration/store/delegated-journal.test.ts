// The delegated-subscription journal, both kinds, against real storage: the embedded SQLite file (kept across a
// reopen, as across a restart) and Redis (shared: what one process saves, the lease holder takes in). Big
// integers (signature r/s, wei amounts) come back exact; while Redis is down a save is refused at once; takeNew
// loses nothing when a command fails or its reply is lost (faults injected by wrapping the Redis connection).
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type Redis from "ioredis";
import { NodeError } from "../../../src/lib/errors.ts";
import { parseJson } from "../../../src/lib/json.ts";
import { createLogger } from "../../../src/lib/log.ts";
import type { DelegatedJournal } from "../../../src/shared/delegated.ts";
import { type DelegatedSubscriptionMessage, parseJobMessage } from "../../../src/shared/messages.ts";
import { journalPathFor } from "../../../src/store/delegated-journal.ts";
import { createEmbeddedDelegatedJournal } from "../../../src/store/embedded-delegated-journal.ts";
import { createRedisDelegatedJournal } from "../../../src/store/redis-delegated-journal.ts";
import { waitFor } from "../../fixtures/net.ts";
import { sharedRedis, startPrivateRedis, uniqueKeyPrefix } from "../../fixtures/redis.ts";

const log = createLogger({ component: "delegated-journal" });
const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

const BIG_R = "115792089237316195423570985008687907853269984665640564039457584007913129639935";

/** A delegated message as REST reads it, with integers above 2^53. */
function message(nonce: number): DelegatedSubscriptionMessage {
  const body = `{"subscription": {"owner": "0x00000000000000000000000000000000000000aa", "active_at": 1700000000, "period": 10, "frequency": 2, "redundancy": 1, "containers": "0x${"22".repeat(32)}", "lazy": false, "verifier": "0x0000000000000000000000000000000000000000", "payment_amount": 123456789012345678901234, "payment_token": "0x0000000000000000000000000000000000000000", "wallet": "0x0000000000000000000000000000000000000000"}, "signature": {"nonce": ${nonce}, "expiry": 2000000000, "v": 28, "r": ${BIG_R}, "s": 98765432109876543210}, "data": {"input": "hello", "n": 18446744073709551617}}`;
  const parsed = parseJobMessage(parseJson(body), `job-${nonce}`, "10.1.2.3");
  if (!parsed.ok || parsed.message.kind !== "delegated") throw new Error("not a delegated message");
  return parsed.message;
}

async function roundTrip(journal: DelegatedJournal): Promise<void> {
  await journal.save("d:a:1", message(1));
  await journal.save("d:a:2", message(2));
  await journal.save("d:a:2", message(2)); // a resubmission replaces
  await journal.remove("d:a:1");
  const loaded = await journal.load();
  expect(loaded.map((entry) => entry.key)).toEqual(["d:a:2"]);
  expect(loaded[0]?.msg).toEqual(message(2));
  expect(loaded[0]?.msg.signature.r).toBe(BigInt(BIG_R));
}

describe("embedded delegated journal", () => {
  test("default: save, replace, remove, load with big integers exact; kept across a reopen", async () => {
    const dir = mkdtempSync(join(tmpdir(), "delegated-journal-"));
    dirs.push(dir);
    const path = journalPathFor(join(dir, "jobs.sqlite"));
    expect(path).toBe(join(dir, "jobs.delegated.sqlite"));
    const first = createEmbeddedDelegatedJournal({ path, log });
    await first.setup?.(AbortSignal.timeout(5_000));
    await roundTrip(first);
    await first.close?.();

    const reopened = createEmbeddedDelegatedJournal({ path, log });
    await reopened.setup?.(AbortSignal.timeout(5_000));
    expect((await reopened.load()).map((entry) => entry.key)).toEqual(["d:a:2"]);
    await reopened.close?.();
  });

  test("error: a file that cannot be opened fails set-up naming it", async () => {
    const journal = createEmbeddedDelegatedJournal({ path: "/proc/no-such-dir/journal.sqlite", log });
    await expect(journal.setup?.(AbortSignal.timeout(5_000))).rejects.toThrow(
      /cannot open the delegated-subscription journal \/proc\/no-such-dir/,
    );
  });
});

describe("Redis delegated journal", () => {
  test("default: the same round trip, and takeNew hands over what any process saved, once", async () => {
    const endpoint = await sharedRedis();
    const key = `${uniqueKeyPrefix("delegated-journal")}delegated`;
    const redis = { host: endpoint.host, port: endpoint.port, db: 0, password: null };
    const holder = createRedisDelegatedJournal({ redis, key, log });
    const standby = createRedisDelegatedJournal({ redis, key, log });
    await holder.setup?.(AbortSignal.timeout(5_000));
    await standby.setup?.(AbortSignal.timeout(5_000));
    try {
      await roundTrip(holder);
      // load() cleared the list of new keys: everything was in the hash.
      expect(await holder.takeNew?.()).toEqual([]);

      await standby.save("d:b:7", message(7));
      await standby.save("d:b:8", message(8));
      await standby.remove("d:b:8"); // finished before the holder looked: skipped
      const taken = await holder.takeNew?.();
      expect(taken?.map((entry) => entry.key)).toEqual(["d:b:7"]);
      expect(taken?.[0]?.msg).toEqual(message(7));
      expect(await holder.takeNew?.()).toEqual([]);
      expect((await holder.load()).map((entry) => entry.key).sort()).toEqual(["d:a:2", "d:b:7"]);
    } finally {
      await holder.close?.();
      await standby.close?.();
    }
  });

  test("error: while Redis is down a save is refused with a 503 at once; it works again when Redis is back", async () => {
    await using server = await startPrivateRedis();
    const redis = { host: server.host, port: server.port, db: 0, password: null };
    const journal = createRedisDelegatedJournal({ redis, key: "outage:delegated", log });
    await journal.setup?.(AbortSignal.timeout(5_000));
    try {
      await server.stop();
      const refused = await journal.save("d:c:1", message(1)).then(
        () => undefined,
        (error: unknown) => error,
      );
      expect(refused).toBeInstanceOf(NodeError);
      expect((refused as NodeError).status).toBe(503);
      expect((refused as NodeError).message).toMatch(/cannot store the delegated subscription: Redis/);
      await waitFor("the journal's health to report Redis down", async () =>
        journal.health?.().ok === false ? true : undefined,
      );

      await server.start();
      const saved = await (async () => {
        for (let i = 0; i < 50; i++) {
          try {
            await journal.save("d:c:2", message(2));
            return true;
          } catch {
            await Bun.sleep(200);
          }
        }
        return false;
      })();
      expect(saved).toBe(true);
      expect((await journal.load()).map((entry) => entry.key)).toEqual(["d:c:2"]);
    } finally {
      await journal.close?.();
    }
  });
});

/**
 * What happens to one Redis command the next time it is called: it fails without running, it runs and its reply
 * is lost, or it runs normally; `before` runs first (another process acting in between).
 */
type Fault = {
  command: "lrange" | "hmget" | "ltrim";
  when: "fails" | "reply-lost" | "succeeds";
  before?: () => Promise<void>;
};

/**
 * The journal's connection with `fault` armed: that command misbehaves once (the Redis edge failing, as a
 * dropped connection or a timeout would make it), everything else goes through untouched.
 */
function faulty(fault: { current: Fault | undefined }): (client: Redis) => Redis {
  return (client) =>
    new Proxy(client, {
      get(target, prop) {
        const value = Reflect.get(target, prop, target);
        if (typeof value !== "function") return value;
        const armed = fault.current;
        if (!armed || prop !== armed.command) return value.bind(target);
        return async (...args: unknown[]) => {
          fault.current = undefined;
          await armed.before?.();
          if (armed.when === "fails") throw new Error(`injected: ${armed.command} failed`);
          const reply = await value.apply(target, args);
          if (armed.when === "reply-lost") throw new Error(`injected: ${armed.command}'s reply lost`);
          return reply;
        };
      },
    });
}

describe("Redis delegated journal: takeNew never loses a saved subscription", () => {
  const cases: Array<{ name: string; fault: Fault; first: string[] | "throws"; second: string[] }> = [
    // The read fails: nothing was removed; the next step takes them.
    {
      name: "LRANGE fails",
      fault: { command: "lrange", when: "fails" },
      first: "throws",
      second: ["d:e:1", "d:e:2"],
    },
    // Today's defect: the keys were popped before the hash was read, and a failed read lost them.
    {
      name: "HMGET fails",
      fault: { command: "hmget", when: "fails" },
      first: "throws",
      second: ["d:e:1", "d:e:2"],
    },
    // The trim fails: what was read is handed over now and again next step (the processor skips held keys).
    {
      name: "LTRIM fails",
      fault: { command: "ltrim", when: "fails" },
      first: ["d:e:1", "d:e:2"],
      second: ["d:e:1", "d:e:2"],
    },
    // The trim ran but its reply was lost: handed over once, not lost and not repeated.
    {
      name: "LTRIM's reply is lost",
      fault: { command: "ltrim", when: "reply-lost" },
      first: ["d:e:1", "d:e:2"],
      second: [],
    },
  ];

  for (const c of cases) {
    test(`error: ${c.name}: every saved subscription is taken in`, async () => {
      const endpoint = await sharedRedis();
      const key = `${uniqueKeyPrefix("delegated-journal-faults")}delegated`;
      const redis = { host: endpoint.host, port: endpoint.port, db: 0, password: null };
      const fault: { current: Fault | undefined } = { current: undefined };
      const holder = createRedisDelegatedJournal({ redis, key, log, wrapClient: faulty(fault) });
      const standby = createRedisDelegatedJournal({ redis, key, log });
      await holder.setup?.(AbortSignal.timeout(5_000));
      await standby.setup?.(AbortSignal.timeout(5_000));
      try {
        await standby.save("d:e:1", message(1));
        await standby.save("d:e:2", message(2));
        fault.current = c.fault;
        const first = await holder.takeNew?.().then(
          (entries) => entries.map((entry) => entry.key),
          () => "throws" as const,
        );
        expect(first).toEqual(c.first);
        expect(fault.current).toBeUndefined(); // the fault was hit
        const second = await holder.takeNew?.();
        expect(second?.map((entry) => entry.key)).toEqual(c.second);
        expect(second?.[0]?.msg ?? message(1)).toEqual(message(1));
        expect(await holder.takeNew?.()).toEqual([]);
      } finally {
        await holder.close?.();
        await standby.close?.();
      }
    });
  }

  test("behavior: a subscription saved by another process between the read and the trim stays for the next step", async () => {
    const endpoint = await sharedRedis();
    const key = `${uniqueKeyPrefix("delegated-journal-race")}delegated`;
    const redis = { host: endpoint.host, port: endpoint.port, db: 0, password: null };
    const fault: { current: Fault | undefined } = { current: undefined };
    const holder = createRedisDelegatedJournal({ redis, key, log, wrapClient: faulty(fault) });
    const standby = createRedisDelegatedJournal({ redis, key, log });
    await holder.setup?.(AbortSignal.timeout(5_000));
    await standby.setup?.(AbortSignal.timeout(5_000));
    try {
      await standby.save("d:f:1", message(1));
      await standby.save("d:f:2", message(2));
      fault.current = {
        command: "ltrim",
        when: "succeeds",
        before: () => standby.save("d:f:3", message(3)),
      };
      expect((await holder.takeNew?.())?.map((entry) => entry.key)).toEqual(["d:f:1", "d:f:2"]);
      expect(fault.current).toBeUndefined();
      expect((await holder.takeNew?.())?.map((entry) => entry.key)).toEqual(["d:f:3"]);
      expect(await holder.takeNew?.()).toEqual([]);
    } finally {
      await holder.close?.();
      await standby.close?.();
    }
  });
});
