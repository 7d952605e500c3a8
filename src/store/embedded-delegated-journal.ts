// The delegated-subscription journal of a node without Redis: one SQLite table in its own file (WAL, NORMAL
// sync: durable across a process crash, as the job store), so it never contends with the job store's writes.
import { Database } from "bun:sqlite";
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { describeError, NodeError, StartupError } from "../lib/errors.ts";
import type { Logger } from "../lib/log.ts";
import type { Service } from "../lib/service.ts";
import type { DelegatedJournal } from "../shared/delegated.ts";
import type { DelegatedSubscriptionMessage } from "../shared/messages.ts";
import { decodeDelegated, encodeDelegated } from "./delegated-codec.ts";

export function createEmbeddedDelegatedJournal(options: {
  path: string;
  log: Logger;
}): DelegatedJournal & Service {
  const { path, log } = options;
  let db: Database | undefined;

  function handle(): Database {
    if (!db)
      throw new NodeError("the delegated-subscription journal is not open", { status: 503, retryable: true });
    return db;
  }

  return {
    name: "delegated-journal",
    async setup() {
      try {
        if (path !== ":memory:") mkdirSync(dirname(path), { recursive: true });
        db = new Database(path, { create: true, strict: true });
        db.exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 1000;");
        db.exec("CREATE TABLE IF NOT EXISTS delegated (key TEXT PRIMARY KEY, value TEXT NOT NULL)");
      } catch (error) {
        throw new StartupError(
          `cannot open the delegated-subscription journal ${path}: ${describeError(error)}`,
          {
            cause: error,
            meta: { path },
          },
        );
      }
    },
    async close() {
      db?.close();
      db = undefined;
    },
    async save(key, msg) {
      try {
        handle()
          .query("INSERT OR REPLACE INTO delegated (key, value) VALUES (?, ?)")
          .run(key, encodeDelegated(msg));
      } catch (error) {
        // A full disk, a read-only file: the subscription is refused rather than accepted and lost.
        throw new NodeError(`cannot store the delegated subscription: ${describeError(error)}`, {
          status: 503,
          retryable: true,
          cause: error,
        });
      }
    },
    async remove(key) {
      handle().query("DELETE FROM delegated WHERE key = ?").run(key);
    },
    async load() {
      const rows = handle().query("SELECT key, value FROM delegated").all() as {
        key: string;
        value: string;
      }[];
      const loaded: Array<{ key: string; msg: DelegatedSubscriptionMessage }> = [];
      for (const row of rows) {
        const msg = decodeDelegated(row.value);
        if (msg) loaded.push({ key: row.key, msg });
        else log.warn("Unreadable delegated subscription in the journal; dropped", { key: row.key });
      }
      return loaded;
    },
  };
}
