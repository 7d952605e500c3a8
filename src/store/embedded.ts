// The embedded job store (the default when no `redis` is configured): one SQLite file in WAL mode, so results
// survive a restart without running Redis. Pending and completed jobs live in separate tables, like the
// reference's two Redis databases; per-client listing uses the (client, id) primary key, never a full scan.
import { Database, type Statement } from "bun:sqlite";
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { describeError, NodeError, StartupError } from "../lib/errors.ts";
import { parseJson, stringifyJsonFast } from "../lib/json.ts";
import type { Service, ServiceHealth } from "../lib/service.ts";
import { loop } from "../lib/service.ts";
import type { JobListFilter, JobResult, JobStore } from "../shared/jobs.ts";
import { interruptedResult } from "./interrupted.ts";
import { createLruClock } from "./lru-clock.ts";
import type { StoreOptions } from "./options.ts";

export interface EmbeddedStoreOptions extends StoreOptions {
  /** SQLite file; ":memory:" for a throw-away store. */
  path: string;
  /** Clock for TTLs (tests may pass their own). */
  now?: () => number;
  /** How often run() drops expired rows. */
  sweepEveryMs?: number;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS pending (
  client TEXT NOT NULL, id TEXT NOT NULL, owner TEXT NOT NULL, containers TEXT NOT NULL,
  value TEXT NOT NULL, expires INTEGER NOT NULL, PRIMARY KEY (client, id));
CREATE INDEX IF NOT EXISTS pending_expires ON pending (expires);
CREATE INDEX IF NOT EXISTS pending_owner ON pending (owner);
CREATE TABLE IF NOT EXISTS completed (
  client TEXT NOT NULL, id TEXT NOT NULL, value TEXT NOT NULL, done INTEGER NOT NULL, used INTEGER NOT NULL,
  PRIMARY KEY (client, id));
CREATE INDEX IF NOT EXISTS completed_used ON completed (used);
CREATE INDEX IF NOT EXISTS completed_done ON completed (done);
`;

/** Pending counts are cached this long; writes invalidate the cache. */
const COUNT_MAX_AGE_MS = 250;

type Row = { value: string };
type PendingRow = { client: string; value: string; containers: string };

function prepare(db: Database) {
  return {
    upsertPending: db.prepare<
      null,
      [string, string, string, string, string, number]
    >(`INSERT INTO pending (client, id, owner, containers, value, expires) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT (client, id) DO UPDATE SET owner = excluded.owner, containers = excluded.containers,
       value = excluded.value, expires = excluded.expires`),
    deletePending: db.prepare<null, [string, string]>("DELETE FROM pending WHERE client = ? AND id = ?"),
    completedExists: db.prepare<{ one: number }, [string, string]>(
      "SELECT 1 AS one FROM completed WHERE client = ? AND id = ?",
    ),
    upsertCompleted: db.prepare<null, [string, string, string, number, number]>(
      `INSERT INTO completed (client, id, value, done, used) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (client, id) DO UPDATE SET value = excluded.value, done = excluded.done, used = excluded.used`,
    ),
    evictLru: db.prepare<null, [number]>(
      "DELETE FROM completed WHERE rowid IN (SELECT rowid FROM completed ORDER BY used LIMIT ?)",
    ),
    getCompleted: db.prepare<Row, [string, string, number]>(
      "SELECT value FROM completed WHERE client = ? AND id = ? AND done > ?",
    ),
    touchCompleted: db.prepare<null, [number, string, string]>(
      "UPDATE completed SET used = ? WHERE client = ? AND id = ?",
    ),
    getPending: db.prepare<Row, [string, string, number]>(
      "SELECT value FROM pending WHERE client = ? AND id = ? AND expires > ?",
    ),
    listPending: db.prepare<{ id: string }, [string, number]>(
      "SELECT id FROM pending WHERE client = ? AND expires > ? ORDER BY rowid",
    ),
    listCompleted: db.prepare<{ id: string }, [string, number]>(
      "SELECT id FROM completed WHERE client = ? AND done > ? ORDER BY rowid",
    ),
    countPending: db.prepare<{ n: number }, [number]>("SELECT COUNT(*) AS n FROM pending WHERE expires > ?"),
    countCompleted: db.prepare<{ n: number }, []>("SELECT COUNT(*) AS n FROM completed"),
    ownPending: db.prepare<PendingRow, [string, number]>(
      "SELECT client, value, containers FROM pending WHERE owner = ? AND expires > ?",
    ),
    deleteOwnPending: db.prepare<null, [string]>("DELETE FROM pending WHERE owner = ?"),
    sweepPending: db.prepare<null, [number]>("DELETE FROM pending WHERE expires <= ?"),
    sweepCompleted: db.prepare<null, [number]>("DELETE FROM completed WHERE done <= ?"),
  } satisfies Record<string, Statement>;
}

export type EmbeddedJobStore = JobStore & Service;

export function createEmbeddedStore(options: EmbeddedStoreOptions): EmbeddedJobStore {
  const { log, instanceId, pendingTtlMs, completedTtlMs, maxCompleted } = options;
  const now = options.now ?? Date.now;
  const lruScore = createLruClock(now);
  let db: Database | undefined;
  let sql: ReturnType<typeof prepare> | undefined;
  let completedCount = 0;
  let pendingCached = 0;
  let pendingCountedAt = Number.NEGATIVE_INFINITY;
  let lastError: string | undefined;

  /** Oldest `done` still alive; -1 (everything) when completed results do not expire. */
  const completedCutoff = () => (completedTtlMs > 0 ? now() - completedTtlMs : -1);

  function open(): ReturnType<typeof prepare> {
    if (sql) return sql;
    let handle: Database;
    try {
      if (options.path !== ":memory:") mkdirSync(dirname(options.path), { recursive: true });
      handle = new Database(options.path, { create: true, strict: true });
      // WAL: readers never block the writer; NORMAL sync is durable across a process crash (the case that
      // matters here) and only risks the last transactions on power loss. busy_timeout blocks the event loop,
      // so keep it short: only a second process on the same file (unsupported) would ever wait on it.
      handle.exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 1000;");
      handle.exec(SCHEMA);
    } catch (error) {
      throw new StartupError(`cannot open the job store file ${options.path}: ${describeError(error)}`, {
        cause: error,
        meta: { path: options.path },
      });
    }
    db = handle;
    sql = prepare(handle);
    completedCount = sql.countCompleted.get()?.n ?? 0;
    log.info("job store opened", { kind: "embedded", path: options.path, completed: completedCount });
    return sql;
  }

  function statements(): ReturnType<typeof prepare> {
    if (!sql) throw new NodeError("job store is not open", { status: 503, retryable: true });
    return sql;
  }

  /**
   * LRU touches from get(), applied in the next write transaction (before any eviction) rather than each in a
   * commit of its own: reads stay read-only, which makes get() several times cheaper. A crash loses only the
   * recency of the last reads, never a result.
   */
  const touches = new Map<string, { client: string; id: string; used: number }>();
  const MAX_TOUCHES = 1_000;

  function flushTouches(s: ReturnType<typeof prepare>): void {
    for (const { client, id, used } of touches.values()) s.touchCompleted.run(used, client, id);
    touches.clear();
  }

  /**
   * Runs a write; a SQLite failure (disk full, locked) becomes a 503 and shows in health(). The in-memory
   * completed count changes inside the transaction, so it is put back when the transaction rolls back: else
   * every failed write would shift the cap for good.
   */
  function write<T>(what: string, work: (s: ReturnType<typeof prepare>) => T): T {
    const s = statements();
    const countBefore = completedCount;
    try {
      const out = (db as Database).transaction(() => {
        flushTouches(s);
        return work(s);
      })();
      lastError = undefined;
      pendingCountedAt = Number.NEGATIVE_INFINITY;
      return out;
    } catch (error) {
      completedCount = countBefore;
      lastError = `${what} failed: ${error instanceof Error ? error.message : String(error)}`;
      log.error("job store write failed", { op: what, error });
      throw new NodeError("job store write failed", { cause: error, status: 503, retryable: true });
    }
  }

  /**
   * Group commit: the job writes issued during one event-loop turn (32 clients submitting and finishing jobs at
   * once) go into one transaction, flushed by setImmediate, instead of one commit each. Each caller's promise
   * settles when its write is durable, so "stored" still means stored; a fast job's running and done records
   * often share a commit.
   */
  const batch: Array<{
    work: (s: ReturnType<typeof prepare>) => void;
    resolve: () => void;
    reject: (e: unknown) => void;
  }> = [];
  let flushScheduled = false;

  function flushBatch(): void {
    flushScheduled = false;
    const items = batch.splice(0);
    if (items.length === 0) return;
    try {
      write(items.length === 1 ? "write" : `batch of ${items.length} writes`, (s) => {
        for (const item of items) item.work(s);
      });
      for (const item of items) item.resolve();
    } catch (error) {
      for (const item of items) item.reject(error);
    }
  }

  function enqueue(work: (s: ReturnType<typeof prepare>) => void): Promise<void> {
    statements();
    return new Promise((resolve, reject) => {
      batch.push({ work, resolve, reject });
      if (!flushScheduled) {
        flushScheduled = true;
        setImmediate(flushBatch);
      }
    });
  }

  function storeCompleted(
    s: ReturnType<typeof prepare>,
    client: string,
    job: JobResult,
    value = stringifyJsonFast(job),
  ): void {
    s.deletePending.run(client, job.id);
    const existed = s.completedExists.get(client, job.id) !== null;
    s.upsertCompleted.run(client, job.id, value, now(), lruScore());
    if (!existed) completedCount++;
    const excess = completedCount - maxCompleted;
    if (excess > 0) completedCount -= s.evictLru.run(excess).changes;
  }

  function sweep(): void {
    write("sweep", (s) => {
      s.sweepPending.run(now());
      if (completedTtlMs > 0) completedCount -= s.sweepCompleted.run(now() - completedTtlMs).changes;
    });
  }

  const store: EmbeddedJobStore = {
    name: "store",

    async setup() {
      open();
      const recovered = await store.recoverInterrupted();
      if (recovered > 0) log.warn("marked interrupted jobs as failed", { count: recovered });
    },

    async run(signal) {
      await loop(signal, options.sweepEveryMs ?? 5_000, async () => sweep(), log, "job store sweep");
    },

    async setRunning(client, job, extra) {
      const containers = JSON.stringify(extra?.containers ?? []);
      const value = stringifyJsonFast(job);
      await enqueue((s) =>
        s.upsertPending.run(client, job.id, instanceId, containers, value, now() + pendingTtlMs),
      );
    },

    async setDone(client, job) {
      const value = stringifyJsonFast(job);
      await enqueue((s) => storeCompleted(s, client, job, value));
    },

    async get(client, ids) {
      const s = statements();
      const cutoff = completedCutoff();
      const completed: JobResult[] = [];
      const pending: JobResult[] = [];
      for (const id of ids) {
        const row = s.getCompleted.get(client, id, cutoff);
        if (!row) continue;
        completed.push(parseJson(row.value) as JobResult);
        touches.set(`${client}\0${id}`, { client, id, used: lruScore() });
      }
      const at = now();
      for (const id of ids) {
        const row = s.getPending.get(client, id, at);
        if (row) pending.push(parseJson(row.value) as JobResult);
      }
      if (touches.size >= MAX_TOUCHES) write("touch", () => undefined);
      return [...completed, ...pending];
    },

    async listIds(client, filter: JobListFilter) {
      const s = statements();
      const pending = filter === "completed" ? [] : s.listPending.all(client, now()).map((row) => row.id);
      const completed =
        filter === "pending" ? [] : s.listCompleted.all(client, completedCutoff()).map((row) => row.id);
      return [...pending, ...completed];
    },

    pendingCount() {
      if (!sql) return 0;
      const at = now();
      if (at - pendingCountedAt < COUNT_MAX_AGE_MS) return pendingCached;
      pendingCached = sql.countPending.get(at)?.n ?? 0;
      pendingCountedAt = at;
      return pendingCached;
    },

    async recoverInterrupted() {
      return write("recoverInterrupted", (s) => {
        const rows = s.ownPending.all(instanceId, now());
        for (const row of rows) {
          const job = parseJson(row.value) as JobResult;
          storeCompleted(s, row.client, interruptedResult(job, JSON.parse(row.containers) as string[]));
        }
        s.deleteOwnPending.run(instanceId);
        return rows.length;
      });
    },

    health(): ServiceHealth {
      if (!db) return { ok: false, detail: "job store not open" };
      if (lastError) return { ok: false, detail: lastError };
      return { ok: true, detail: `embedded (${options.path})` };
    },

    async close() {
      if (db) flushBatch();
      if (db && touches.size > 0) {
        try {
          write("touch", () => undefined);
        } catch {
          // Logged by write(); only recency is lost.
        }
      }
      db?.close();
      db = undefined;
      sql = undefined;
    },
  };
  return store;
}
