// The Redis job store (used when `redis` is configured), shared by every node process pointed at the same
// Redis: any replica serves any job's result. Writes go through an ordered retrying queue that holds them while
// Redis is away, so jobs accepted while Redis restarts land once it is back (and read back from the queued
// writes meanwhile); reads use a second connection that fails fast, so a client polling during an outage for
// what only Redis holds gets a 503 at once, not a hang.
// Start-up never blocks on Redis: setup waits a few seconds, then the node starts unhealthy and catches up.
import { Redis, type RedisOptions } from "ioredis";
import { describeError, NodeError } from "../lib/errors.ts";
import { parseJson, stringifyJsonFast } from "../lib/json.ts";
import type { Service, ServiceHealth } from "../lib/service.ts";
import { loop } from "../lib/service.ts";
import { sleep } from "../lib/time.ts";
import type { JobListFilter, JobResult, JobStore } from "../shared/jobs.ts";
import { createDeadline } from "./deadline.ts";
import { interruptedResult } from "./interrupted.ts";
import { createLruClock } from "./lru-clock.ts";
import type { StoreOptions } from "./options.ts";
import { COUNT_PENDING, GET, LIST, OWN_PENDING, SET_DONE, SET_RUNNING } from "./redis-scripts.ts";
import { createWriteQueue, type WriteControl } from "./write-queue.ts";

export interface RedisConnectionOptions {
  host: string;
  port: number;
  password?: string | null;
  db: number;
  keyPrefix: string;
}

export interface RedisStoreOptions extends StoreOptions {
  redis: RedisConnectionOptions;
  /**
   * setRunning/setDone wait this long for the write to land; then a write Redis refused (OOM, READONLY) is a
   * 503 and one waiting for an unreachable Redis returns queued.
   */
  writeWaitMs?: number;
  /** setup waits this long for Redis (and start-up recovery) before letting the node start unhealthy. */
  connectWaitMs?: number;
  /**
   * Writes waiting for Redis, at most, before new jobs are refused with a 503. The result of a job this store
   * accepted is queued beyond it: refusing that write would lose a job the client was told was accepted.
   */
  maxQueuedWrites?: number;
  /** A read slower than this fails (503) instead of holding the request. */
  readTimeoutMs?: number;
  /** run() refreshes the cached pending count this often (it also updates after every own write). */
  refreshEveryMs?: number;
  /**
   * An instance's lease: renewed by run() every third of it; once it has run out, other instances fail the
   * instance's running jobs (checked at setup and once per lease).
   */
  leaseMs?: number;
  /** close() waits this long for queued writes before dropping them. */
  closeDrainMs?: number;
}

/** The pending value: the job plus what recovery needs. */
interface PendingEntry {
  job: JobResult;
  owner: string;
  containers: string[];
}

/** A job state written but not landed in Redis yet. */
interface Unlanded {
  client: string;
  job: JobResult;
}

/** Completed results before running ones, each in request order: the order the GET script answers in. */
function completedFirst(jobs: readonly JobResult[]): JobResult[] {
  return [
    ...jobs.filter((job) => job.status !== "running"),
    ...jobs.filter((job) => job.status === "running"),
  ];
}

/** Redis errors that a later retry can fix (loading, failover, memory pressure, script cache flushed). */
const TRANSIENT_REPLY = /^(LOADING|BUSY|OOM|READONLY|MASTERDOWN|TRYAGAIN|CLUSTERDOWN|NOREPLICAS)\b/;

/** An error reply from Redis itself (it is up and answering), as opposed to a connection problem. */
function isReplyError(error: unknown): error is Error {
  return error instanceof Error && error.name === "ReplyError";
}

function isRetryable(error: unknown): boolean {
  if (!isReplyError(error)) return true;
  return TRANSIENT_REPLY.test(error.message);
}

/** Characters encodeURIComponent leaves as they are. */
const URI_SAFE = /^[\w.!~*'()-]*$/;

/**
 * encodeURIComponent, skipped for the usual client addresses and UUID ids that it would return unchanged:
 * every job write builds several keys from them, and the native call plus a fresh string each time showed
 * up in profiles of the write path.
 */
function enc(part: string): string {
  return URI_SAFE.test(part) ? part : encodeURIComponent(part);
}

interface Script {
  lua: string;
  sha: string;
}

function script(lua: string): Script {
  return { lua, sha: new Bun.CryptoHasher("sha1").update(lua).digest("hex") };
}

const SCRIPTS = {
  setRunning: script(SET_RUNNING),
  setDone: script(SET_DONE),
  get: script(GET),
  list: script(LIST),
  countPending: script(COUNT_PENDING),
  ownPending: script(OWN_PENDING),
};

/** EVALSHA, falling back to EVAL when Redis lost its script cache (a restart). */
async function evalScript(client: Redis, s: Script, keys: string[], args: string[]): Promise<unknown> {
  try {
    return await client.evalsha(s.sha, keys.length, ...keys, ...args);
  } catch (error) {
    if (!(error instanceof Error) || !error.message.startsWith("NOSCRIPT")) throw error;
    return await client.eval(s.lua, keys.length, ...keys, ...args);
  }
}

interface BatchedCall {
  s: Script;
  keys: string[];
  args: string[];
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}

/**
 * The job writes issued during one event-loop turn, sent as one explicit pipeline (one socket write). Unlike
 * ioredis auto-pipelining, which holds every new command until the replies of the batch in flight are back,
 * each turn's batch goes out at once, so a write waits one round trip, not up to two. Each call settles with
 * its own reply; a NOSCRIPT reply (Redis lost its script cache) falls back to EVAL for that call.
 */
function createScriptBatcher(
  client: () => Redis,
): (s: Script, keys: string[], args: string[]) => Promise<unknown> {
  let batch: BatchedCall[] = [];
  let scheduled = false;
  function flush(): void {
    scheduled = false;
    const calls = batch;
    batch = [];
    let pipeline: ReturnType<Redis["pipeline"]>;
    try {
      pipeline = client().pipeline();
    } catch (error) {
      for (const call of calls) call.reject(error);
      return;
    }
    for (const call of calls) pipeline.evalsha(call.s.sha, call.keys.length, ...call.keys, ...call.args);
    pipeline.exec().then(
      (replies) => {
        for (let i = 0; i < calls.length; i++) {
          const call = calls[i] as BatchedCall;
          const [error, value] = replies?.[i] ?? [new Error("no reply in pipeline"), undefined];
          if (!error) call.resolve(value);
          else if (error.message.startsWith("NOSCRIPT")) {
            // client() throws once the store is closed: a rejection of this call, not of the loop.
            Promise.resolve()
              .then(() => evalScript(client(), call.s, call.keys, call.args))
              .then(call.resolve, call.reject);
          } else call.reject(error);
        }
      },
      (error: unknown) => {
        for (const call of calls) call.reject(error);
      },
    );
  }
  return (s, keys, args) =>
    new Promise((resolve, reject) => {
      batch.push({ s, keys, args, resolve, reject });
      if (!scheduled) {
        scheduled = true;
        setImmediate(flush);
      }
    });
}

/**
 * The jobs whose running write this store accepted and whose final write has not been issued yet. An entry is
 * dropped when the final write comes, or after pending_ttl (a PUT /api/status "running" never followed up: its
 * pending entry has expired in Redis by then), so the set stays bounded by the jobs in flight.
 */
function createAdmissions(ttlMs: number) {
  /** member → admitted at (ms); insertion order is age order, as a re-admission moves to the end. */
  const at = new Map<string, number>();
  function prune(now: number): void {
    for (const [member, time] of at) {
      if (now - time < ttlMs) return;
      at.delete(member);
    }
  }
  return {
    has: (member: string) => at.has(member),
    add(member: string): void {
      const now = Date.now();
      prune(now);
      at.delete(member);
      at.set(member, now);
    },
    /** True (and forgotten) when `member` was admitted. */
    take: (member: string) => at.delete(member),
  };
}

export type RedisJobStore = JobStore & Service & { queuedWrites(): number };

export function createRedisStore(options: RedisStoreOptions): RedisJobStore {
  const { log, instanceId, pendingTtlMs, completedTtlMs, maxCompleted } = options;
  const P = options.redis.keyPrefix;
  const where = `${options.redis.host}:${options.redis.port}/${options.redis.db}`;
  const writeWaitMs = options.writeWaitMs ?? 2_000;
  const readTimeoutMs = options.readTimeoutMs ?? 5_000;
  const score = createLruClock();
  const nowScore = () => Date.now() * 1024;
  const maxQueuedWrites = options.maxQueuedWrites ?? 10_000;
  // The bound is applied here, per kind of write (refuseWhenFull, admitted), not by the queue itself.
  const queue = createWriteQueue({ maxQueued: Number.POSITIVE_INFINITY, isRetryable, log });
  const admitted = createAdmissions(pendingTtlMs);
  /**
   * The latest state written for a job (member → entry) while that write has not landed in Redis: reads answer
   * it, so a job whose writes wait out an outage (or the backlog after it) is never missing or stale for its
   * client. Bounded by the queue; an entry leaves when its own write lands or is given up.
   */
  const unlanded = new Map<string, Unlanded>();
  /** Settles when the writer is ready again (see whenWriterReady). */
  let writerBack: PromiseWithResolvers<void> | undefined;
  /** Why Redis refused the writer's connection (set until it is ready again). */
  let writerRefused: Error | undefined;
  let writer: Redis | undefined;
  let reader: Redis | undefined;
  let pendingCached = 0;
  let pendingCountedAt = 0;
  let refreshing: Promise<void> | undefined;
  const refreshEveryMs = options.refreshEveryMs ?? 1_000;
  let downSince: number | undefined = Date.now();
  let lastError: string | undefined;
  let recovery: Promise<number> | undefined;
  let closing = false;
  const writeDeadline = createDeadline(writeWaitMs);
  const leaseMs = options.leaseMs ?? 30_000;
  let lastBeat = 0;
  let lastOrphanCheck = Date.now();
  const writeScript = createScriptBatcher(() => clients().writer);

  const key = {
    member: (client: string, id: string) => `${enc(client)}:${enc(id)}`,
    pending: (m: string) => `${P}p:${m}`,
    done: (m: string) => `${P}d:${m}`,
    pendingIndex: (client: string) => `${P}pi:${enc(client)}`,
    doneIndex: (client: string) => `${P}di:${enc(client)}`,
    own: `${P}own:${enc(instanceId)}`,
    ownOf: (owner: string) => `${P}own:${enc(owner)}`,
    alive: (owner: string) => `${P}alive:${enc(owner)}`,
    owners: `${P}owners`,
    pall: `${P}pall`,
    dlru: `${P}dlru`,
    dexp: `${P}dexp`,
  };

  function connect(role: "writer" | "reader"): Redis {
    const base: RedisOptions = {
      host: options.redis.host,
      port: options.redis.port,
      db: options.redis.db,
      connectionName: `infernet-node:${instanceId}:${role}`,
      // Reconnect forever, at most 2 s apart: a restarted Redis is picked up quickly.
      retryStrategy: (times) => Math.min(100 * times, 2_000),
      connectTimeout: 5_000,
      // Commands issued in the same event-loop turn (many jobs at once) go out as one pipeline: one write
      // syscall and one round trip instead of one per command.
      enableAutoPipelining: true,
    };
    if (options.redis.password) base.password = options.redis.password;
    const client =
      role === "writer"
        ? // Commands wait for a reconnect instead of failing; the write queue adds ordering and retries.
          // commandTimeout: a Redis that stops answering without closing the socket fails writes into retries
          // (and health) instead of holding them forever; the scripts are idempotent, so a retry is safe.
          new Redis({ ...base, maxRetriesPerRequest: null, enableOfflineQueue: true, commandTimeout: 10_000 })
        : // Reads fail fast while Redis is away.
          new Redis({
            ...base,
            maxRetriesPerRequest: 0,
            enableOfflineQueue: false,
            commandTimeout: readTimeoutMs,
          });
    client.on("error", (error: Error) => {
      lastError = describeError(error);
      // Redis answered but refuses the connection (a wrong password): writes waiting for the writer fail now,
      // as their commands did before, instead of waiting for a connection that will not come by itself.
      if (role === "writer" && isReplyError(error)) {
        writerRefused = error;
        writerBack?.reject(error);
        writerBack = undefined;
      }
    });
    if (role === "writer") {
      client.on("ready", () => {
        if (downSince !== undefined)
          log.info("Redis connected", { redis: where, queued_writes: queue.size() });
        downSince = undefined;
        lastError = undefined;
        writerRefused = undefined;
        writerBack?.resolve();
        writerBack = undefined;
      });
      client.on("close", () => {
        if (downSince !== undefined || closing) return;
        downSince = Date.now();
        log.warn("Redis connection lost; writes are queued until it is back", {
          redis: where,
          error: lastError,
        });
      });
    }
    return client;
  }

  function clients(): { writer: Redis; reader: Redis } {
    if (!writer || !reader) throw new NodeError("job store is not open", { status: 503, retryable: true });
    return { writer, reader };
  }

  /** A read on the fail-fast connection (or the writer while only it is back); a failure is a 503. */
  async function read<T>(work: (client: Redis) => Promise<T>): Promise<T> {
    const both = clients();
    // The two connections reconnect on their own schedules after an outage: while only the writer is back, it
    // reads too, or a job whose queued write has just landed (and so left the unlanded states) would be a 503.
    const client =
      both.reader.status !== "ready" && both.writer.status === "ready" ? both.writer : both.reader;
    try {
      return await work(client);
    } catch (error) {
      throw new NodeError("job store unavailable", {
        cause: error,
        status: 503,
        retryable: true,
        meta: { redis: where },
      });
    }
  }

  /**
   * Queues a write and waits up to writeWaitMs for it to land. At the deadline, a write that Redis itself
   * refused (out of memory, read-only replica) is given up and refused with a 503: the job is not accepted. A
   * write still waiting for an unreachable Redis is accepted as queued and lands when Redis is back. A write
   * Redis rejects for good is an error at once. With `keep` (the result of a job this store accepted) a write
   * Redis refuses is not given up either: it stays queued and retried, as the client already holds the job's id
   * and giving it up would leave the job "running" until it expired.
   */
  async function write(
    jobKey: string,
    op: () => Promise<void>,
    state: Unlanded,
    keep = false,
  ): Promise<void> {
    const control: WriteControl = {};
    const landed = queue.enqueue(jobKey, op, control);
    unlanded.set(jobKey, state);
    const forget = () => {
      if (unlanded.get(jobKey) === state) unlanded.delete(jobKey);
    };
    landed.then(forget, forget);
    let failed: unknown;
    let settled = false;
    const watched = landed.then(
      () => {
        settled = true;
      },
      (error: unknown) => {
        settled = true;
        failed = error;
        // Those dropped by close() are counted in its one line, not logged one by one.
        if (!control.cancelled && !closing) {
          log.error("job store write dropped", { error: describeError(error) });
        }
      },
    );
    await writeDeadline.wait(watched);
    if (!settled) {
      if (isReplyError(control.lastError) && !keep) {
        control.cancelled = true;
        forget();
        // Redis's own reply names the reason (OOM, READONLY), which the 503 passes on to the client.
        throw new NodeError(`job store refused the write: ${control.lastError.message}`, {
          cause: control.lastError,
          status: 503,
          retryable: true,
          meta: { redis: where },
        });
      }
      if (keep && control.lastError !== undefined) {
        log.warn("job result kept queued: the job store refuses it for now", {
          error: describeError(control.lastError),
          queued: queue.size(),
        });
      } else log.debug("job store write queued", { queued: queue.size() });
      return;
    }
    if (failed !== undefined) {
      throw failed instanceof NodeError
        ? failed
        : new NodeError("job store write failed", { cause: failed, status: 503 });
    }
  }

  /**
   * Resolves at once while the writer is connected, else when it is back. Job writes wait here during an outage
   * rather than in ioredis's offline queue, where the command timeout failed each of them into the write
   * queue's retries: a warning per queued write (10,000 lines for a full queue), and up to one backoff (5 s)
   * of delay before landing once Redis was back.
   */
  function whenWriterReady(): Promise<void> {
    if (writer?.status === "ready") return Promise.resolve();
    if (writerRefused) return Promise.reject(writerRefused);
    writerBack ??= Promise.withResolvers<void>();
    return writerBack.promise;
  }

  /** New work is refused (503) once maxQueuedWrites writes wait for Redis. */
  function refuseWhenFull(): void {
    const queued = queue.size();
    if (queued < maxQueuedWrites) return;
    throw new NodeError("job store unavailable: too many writes waiting for the backend", {
      status: 503,
      retryable: true,
      meta: { queued, redis: where },
    });
  }

  function setPendingCount(reply: unknown): void {
    if (typeof reply !== "number") return;
    pendingCached = reply;
    pendingCountedAt = Date.now();
  }

  async function refreshPendingCount(): Promise<void> {
    if (reader?.status !== "ready") return;
    setPendingCount(await evalScript(reader, SCRIPTS.countPending, [key.pall], [String(nowScore())]));
  }

  async function storeDone(
    client: string,
    job: JobResult,
    m = key.member(client, job.id),
    own = key.own,
  ): Promise<void> {
    const at = score();
    const reply = await writeScript(
      SCRIPTS.setDone,
      [
        key.pending(m),
        key.pendingIndex(client),
        key.pall,
        own,
        key.done(m),
        key.doneIndex(client),
        key.dlru,
        key.dexp,
      ],
      [
        stringifyJsonFast(job),
        String(completedTtlMs),
        String(at),
        enc(job.id),
        m,
        String(maxCompleted),
        P,
        completedTtlMs > 0 ? String(at - completedTtlMs * 1024) : "",
        String(nowScore()),
      ],
    );
    setPendingCount(reply);
  }

  /** Fails the leftover running jobs of `owner` (this instance by default); idempotent, so it may be retried. */
  async function recover(owner = instanceId): Promise<number> {
    const { writer: client } = clients();
    const own = key.ownOf(owner);
    const members = (await evalScript(client, SCRIPTS.ownPending, [own], [String(nowScore())])) as string[];
    let count = 0;
    for (let i = 0; i < members.length; i += 500) {
      const batch = members.slice(i, i + 500);
      const values = await client.mget(...batch.map(key.pending));
      for (const [index, m] of batch.entries()) {
        const value = values[index];
        const sep = m.indexOf(":");
        const entry = value ? (parseJson(value) as PendingEntry) : undefined;
        if (entry?.owner !== owner) {
          await client.zrem(own, m);
          continue;
        }
        await storeDone(
          decodeURIComponent(m.slice(0, sep)),
          interruptedResult(entry.job, entry.containers),
          m,
          own,
        );
        count++;
      }
    }
    return count;
  }

  /**
   * Renews this instance's lease and lists it among the owners of running jobs. While the lease lives, no other
   * instance touches this one's running jobs.
   */
  async function heartbeat(): Promise<void> {
    const { writer: client } = clients();
    await client.multi().set(key.alive(instanceId), "1", "PX", leaseMs).sadd(key.owners, instanceId).exec();
    lastBeat = Date.now();
  }

  /**
   * Fails the running jobs of instances whose lease ran out: a node that died, or a recreated container whose
   * default instance id (its hostname) is gone for good, would otherwise leave them "running" until
   * pending_ttl. A live node that only missed its renewals (an outage longer than the lease) records its real
   * results over these later.
   */
  async function recoverOrphans(): Promise<number> {
    const { writer: client } = clients();
    let count = 0;
    for (const owner of await client.smembers(key.owners)) {
      if (owner === instanceId || (await client.exists(key.alive(owner))) === 1) continue;
      count += await recover(owner);
      // Listed again by its next heartbeat should it come back.
      await client.srem(key.owners, owner);
    }
    lastOrphanCheck = Date.now();
    return count;
  }

  /** The periodic work of run(): the pending count, the lease, and now and then the orphan check. */
  async function tick(): Promise<void> {
    await refreshPendingCount();
    if (writer?.status !== "ready") return;
    if (Date.now() - lastBeat >= leaseMs / 3) await heartbeat();
    if (Date.now() - lastOrphanCheck >= leaseMs) {
      const count = await recoverOrphans();
      if (count > 0) log.warn("marked jobs of a stopped node instance as failed", { count });
    }
  }

  /** The jobs Redis holds for `client` among `ids`: completed ones, then running ones, each in request order. */
  async function getLanded(client: string, ids: readonly string[]): Promise<JobResult[]> {
    const members = ids.map((id) => key.member(client, id));
    const reply = await read(
      (r) =>
        evalScript(
          r,
          SCRIPTS.get,
          [...members.map(key.done), ...members.map(key.pending), key.dlru],
          [String(ids.length), String(score()), ...members],
        ) as Promise<[(string | null)[], (string | null)[]]>,
    );
    const [done, pending] = reply;
    const out: JobResult[] = [];
    for (const value of done) if (value) out.push(parseJson(value) as JobResult);
    for (const value of pending) if (value) out.push((parseJson(value) as PendingEntry).job);
    return out;
  }

  /** The ids Redis lists for `client`: [running, completed]. */
  async function listLanded(client: string, filter: JobListFilter): Promise<[string[], string[]]> {
    const reply = await read(
      (r) =>
        evalScript(
          r,
          SCRIPTS.list,
          [key.pendingIndex(client), key.doneIndex(client)],
          [filter, String(nowScore()), completedTtlMs > 0 ? String(nowScore() - completedTtlMs * 1024) : ""],
        ) as Promise<[string[], string[]]>,
    );
    const [pending, done] = reply;
    return [pending.map((id) => decodeURIComponent(id)), done.map((id) => decodeURIComponent(id))];
  }

  const store: RedisJobStore = {
    name: "store",

    async setup() {
      writer = connect("writer");
      reader = connect("reader");
      log.info("job store opening", { kind: "redis", redis: where, prefix: P, instance: instanceId });
      // Recovery holds every write until it is done, so it can only ever see the previous run's jobs. If Redis
      // is down it keeps retrying in the background and the node starts unhealthy rather than not at all.
      recovery = queue.gate(async () => {
        await heartbeat();
        const own = await recover();
        return own + (await recoverOrphans());
      });
      recovery.then(
        (count) => {
          if (count > 0) log.warn("marked interrupted jobs as failed", { count });
        },
        (error: unknown) => log.error("recovering interrupted jobs failed", { error: describeError(error) }),
      );
      const connectWaitMs = options.connectWaitMs ?? 5_000;
      const readerReady = new Promise<void>((resolve) => {
        if (reader?.status === "ready") resolve();
        reader?.once("ready", () => resolve());
      });
      const done = await Promise.race([
        Promise.all([recovery.catch(() => undefined), readerReady]).then(() => true),
        sleep(connectWaitMs).then(() => false),
      ]);
      if (!done) {
        log.warn("Redis unreachable at start-up; starting anyway, jobs are queued until it answers", {
          redis: where,
          waited_ms: connectWaitMs,
          error: lastError,
        });
      }
    },

    async run(signal) {
      await loop(signal, Math.min(refreshEveryMs, leaseMs / 3), tick, log, "pending count and lease refresh");
    },

    queuedWrites: () => queue.size(),

    async setRunning(client, job, extra) {
      const m = key.member(client, job.id);
      if (!admitted.has(m)) refuseWhenFull();
      const entry: PendingEntry = { job, owner: instanceId, containers: [...(extra?.containers ?? [])] };
      await write(
        m,
        async () => {
          await whenWriterReady();
          const reply = await writeScript(
            SCRIPTS.setRunning,
            [key.pending(m), key.pendingIndex(client), key.pall, key.own],
            [
              stringifyJsonFast(entry),
              String(pendingTtlMs),
              String(score() + pendingTtlMs * 1024),
              enc(job.id),
              m,
              String(nowScore()),
            ],
          );
          setPendingCount(reply);
        },
        { client, job },
      );
      admitted.add(m);
    },

    async setDone(client, job) {
      const m = key.member(client, job.id);
      // The final write of a job accepted here is never refused for room (the client holds its id); any other
      // (a PUT /api/status for a job not started here) is held to the bound.
      const accepted = admitted.take(m);
      if (!accepted) refuseWhenFull();
      await write(
        m,
        async () => {
          await whenWriterReady();
          await storeDone(client, job, m);
        },
        { client, job },
        accepted,
      );
    },

    async get(client, ids) {
      if (ids.length === 0) return [];
      if (unlanded.size === 0) return getLanded(client, ids);
      // Jobs with a write still on its way answer from it (newer than Redis, and there while Redis is away).
      const local = ids.map((id) => unlanded.get(key.member(client, id))?.job);
      const missing = ids.filter((_, i) => local[i] === undefined);
      if (missing.length === ids.length) return getLanded(client, ids);
      const stored = missing.length > 0 ? await getLanded(client, missing) : [];
      const byId = new Map<string, JobResult>();
      for (const job of stored) if (!byId.has(job.id)) byId.set(job.id, job);
      const found: JobResult[] = [];
      for (const [i, id] of ids.entries()) {
        const job = local[i] ?? byId.get(id);
        if (job) found.push(job);
      }
      return completedFirst(found);
    },

    async listIds(client, filter: JobListFilter) {
      const [pending, done] = await listLanded(client, filter);
      if (unlanded.size === 0) return [...pending, ...done];
      // Jobs with a write still on its way are listed by the state it carries.
      const mine = new Map<string, boolean>();
      for (const state of unlanded.values()) {
        if (state.client === client) mine.set(state.job.id, state.job.status === "running");
      }
      if (mine.size === 0) return [...pending, ...done];
      const isRunning = (id: string) => mine.get(id) ?? true;
      const isDone = (id: string) => !(mine.get(id) ?? false);
      const listedPending = pending.filter(isRunning);
      const listedDone = done.filter(isDone);
      const listed = new Set([...listedPending, ...listedDone]);
      for (const [id, running] of mine) {
        if (listed.has(id)) continue;
        if (running && filter !== "completed") listedPending.push(id);
        if (!running && filter !== "pending") listedDone.push(id);
      }
      return [...listedPending, ...listedDone];
    },

    pendingCount() {
      // Never waits on Redis (it backs /info): answers the cached count and refreshes it in the background
      // when stale, so other replicas' jobs and expiries show up even between run() ticks.
      if (Date.now() - pendingCountedAt >= refreshEveryMs && !refreshing) {
        refreshing = refreshPendingCount()
          .catch(() => undefined)
          .finally(() => {
            refreshing = undefined;
          });
      }
      return pendingCached;
    },

    async recoverInterrupted() {
      return queue.gate(recover);
    },

    health(): ServiceHealth {
      if (!writer) return { ok: false, detail: "job store not open" };
      const queued = queue.size();
      if (downSince !== undefined) {
        const since = new Date(downSince).toISOString();
        return {
          ok: false,
          detail: `redis ${where} unreachable since ${since}${lastError ? ` (${lastError})` : ""}; ${queued} writes queued`,
          queued_writes: queued,
        };
      }
      if (queue.retrying() > 0) {
        return {
          ok: false,
          detail: `redis ${where} is failing writes (${lastError ?? "retrying"}); ${queued} writes queued`,
          queued_writes: queued,
        };
      }
      return { ok: true, detail: `redis ${where}`, queued_writes: queued };
    },

    async close() {
      closing = true;
      const drained = await queue.drain(options.closeDrainMs ?? 5_000);
      if (!drained) log.error("job store closing with writes still queued", { queued: queue.size() });
      queue.close();
      writerBack?.reject(new NodeError("job store closed before the write landed", { status: 503 }));
      writerBack = undefined;
      const toClose = [writer, reader];
      writer = undefined;
      reader = undefined;
      for (const client of toClose) {
        if (!client) continue;
        if (client.status === "ready") await client.quit().catch(() => client.disconnect());
        else client.disconnect();
      }
    },
  };
  return store;
}
