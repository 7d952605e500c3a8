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
import { createDeadline } from "./deadline.ts";
import { interruptedResult } from "./interrupted.ts";
import { createLruClock } from "./lru-clock.ts";
import type { StoreOptions } from "./options.ts";

export interface EmbeddedStoreOptions extends StoreOptions {
  /** SQLite file; ":memory:" for a throw-away store. */
  path: string;
  /** Clock for TTLs (tests may pass their own). */
  now?: () => number;
  /** How often run() drops expired rows (and, while writes fail, probes whether they work again). */
  sweepEveryMs?: number;
  /** How long setDone waits for a result that cannot be written yet before returning with it kept for retry. */
  writeWaitMs?: number;
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
CREATE TABLE IF NOT EXISTS write_probe (one INTEGER PRIMARY KEY, at INTEGER NOT NULL);
`;

/** Pending counts are cached this long; writes invalidate the cache. */
const COUNT_MAX_AGE_MS = 250;
/** Results of accepted jobs kept in memory for retry while the file cannot be written, at most. */
const MAX_HELD_RESULTS = 10_000;

/**
 * A failure the disk may recover from (full, an I/O error): a job result is then kept and written again later.
 * Anything else (a constraint, a bug) would fail the same way every time.
 */
function isTransientWriteError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" && (code === "SQLITE_FULL" || code.startsWith("SQLITE_IOERR"));
}

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
    probe: db.prepare<null, [number]>("INSERT OR REPLACE INTO write_probe (one, at) VALUES (1, ?)"),
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
  const resultWait = createDeadline(options.writeWaitMs ?? 2_000);

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
   * Runs a write; a SQLite failure (disk full, locked) becomes a 503 naming SQLite's reason and shows in
   * health() until a later write lands. The in-memory completed count changes inside the transaction, so it is
   * put back when the transaction rolls back: else every failed write would shift the cap for good.
   */
  function write<T>(what: string, work: (s: ReturnType<typeof prepare>) => T): T {
    const s = statements();
    const countBefore = completedCount;
    try {
      const out = (db as Database).transaction(() => {
        flushTouches(s);
        return work(s);
      })();
      if (lastError !== undefined) {
        log.info("job store writes work again", { op: what, previous_error: lastError });
        lastError = undefined;
      }
      pendingCountedAt = Number.NEGATIVE_INFINITY;
      return out;
    } catch (error) {
      completedCount = countBefore;
      const reason = error instanceof Error ? error.message : String(error);
      lastError = `${what} failed: ${reason}`;
      log.error("job store write failed", { op: what, error });
      throw new NodeError(`job store write failed: ${reason}`, {
        cause: error,
        status: 503,
        retryable: true,
      });
    }
  }

  /**
   * Group commit: the job writes issued during one event-loop turn (32 clients submitting and finishing jobs at
   * once) go into one transaction, flushed by setImmediate, instead of one commit each. Each caller's promise
   * settles when its write is durable, so "stored" still means stored; a fast job's running and done records
   * often share a commit.
   */
  interface BatchItem {
    work: (s: ReturnType<typeof prepare>) => void;
    resolve: () => void;
    reject: (e: unknown) => void;
    /** The result of an accepted job: kept and written again while the disk refuses it, never dropped. */
    hold: boolean;
  }
  const batch: BatchItem[] = [];
  let flushScheduled = false;
  /**
   * Job results the file refused (disk full): written again with the next batch and by a retry timer, ahead of
   * newer writes, until they land or the store closes. New jobs meanwhile are refused (setRunning fails fast),
   * so this only holds the results of jobs that were already accepted.
   */
  const held: BatchItem[] = [];
  let retryTimer: ReturnType<typeof setTimeout> | undefined;
  let closing = false;
  let retries = 0;

  function flushBatch(): void {
    flushScheduled = false;
    const items = [...held.splice(0), ...batch.splice(0)];
    if (items.length === 0) return;
    try {
      write(items.length === 1 ? "write" : `batch of ${items.length} writes`, (s) => {
        for (const item of items) item.work(s);
      });
      retries = 0;
      for (const item of items) item.resolve();
    } catch (error) {
      for (const item of items) {
        if (item.hold && isTransientWriteError((error as NodeError).cause) && held.length < MAX_HELD_RESULTS)
          held.push(item);
        else item.reject(error);
      }
      if (held.length > 0) scheduleRetry();
    }
  }

  function scheduleRetry(): void {
    if (retryTimer || closing) return;
    const delay = Math.min(5_000, 250 * 2 ** Math.min(retries++, 5));
    retryTimer = setTimeout(() => {
      retryTimer = undefined;
      flushBatch();
    }, delay);
  }

  function enqueue(work: (s: ReturnType<typeof prepare>) => void, hold = false): Promise<void> {
    statements();
    return new Promise((resolve, reject) => {
      batch.push({ work, resolve, reject, hold });
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
    // While writes fail, a one-row write tells whether they work again, before the sweep (which may delete
    // nothing, and a transaction that changes nothing commits on a full disk too): /health must not stay red
    // after the disk has room (a load balancer would then never send the job that proves it) nor turn green
    // before.
    if (lastError !== undefined) write("probe", (s) => s.probe.run(now()));
    write("sweep", (s) => {
      s.sweepPending.run(now());
      if (completedTtlMs > 0) completedCount -= s.sweepCompleted.run(now() - completedTtlMs).changes;
    });
  }

  const store: EmbeddedJobStore = {
    name: "store",

    async setup() {
      closing = false;
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
      let callerWaits = true;
      const landed = enqueue((s) => storeCompleted(s, client, job, value), true).catch((error: unknown) => {
        // Past the wait nobody else hears of it: the job stays "running" until recovered at the next start.
        if (!callerWaits)
          log.error("job result could not be stored", { id: job.id, error: describeError(error) });
        throw error;
      });
      // Refused by a full disk: the result is held and written once there is room. The caller (a job finishing,
      // PUT /api/status) gets on after a bounded wait, as with Redis; meanwhile readers see the job running.
      if (await resultWait.wait(landed)) return landed;
      callerWaits = false;
      landed.catch(() => undefined);
      log.warn("job result held until the job store can write it", { id: job.id, held: held.length });
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
      if (lastError) {
        const waiting = held.length > 0 ? `; ${held.length} job results waiting to be written` : "";
        return { ok: false, detail: `${lastError}${waiting}` };
      }
      return { ok: true, detail: `embedded (${options.path})` };
    },

    async close() {
      closing = true;
      if (retryTimer) clearTimeout(retryTimer);
      retryTimer = undefined;
      if (db) flushBatch();
      // One last attempt failed: what is still held is lost; those jobs are recovered as failed at the next start.
      for (const item of held.splice(0)) {
        item.reject(new NodeError("job store closed before the result could be written", { status: 503 }));
      }
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
