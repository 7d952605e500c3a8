// The delegated-subscription journal (see DelegatedJournal): Redis when the node has one (shared by a hot
// standby), otherwise a small SQLite file next to the job store.
import type { Config } from "../config/schema.ts";
import type { Logger } from "../lib/log.ts";
import type { Service } from "../lib/service.ts";
import type { DelegatedJournal } from "../shared/delegated.ts";
import { createEmbeddedDelegatedJournal } from "./embedded-delegated-journal.ts";
import { createRedisDelegatedJournal } from "./redis-delegated-journal.ts";

export function createDelegatedJournal(config: Config, log: Logger): DelegatedJournal & Service {
  if (config.redis) {
    return createRedisDelegatedJournal({
      redis: config.redis,
      key: `${config.redis.key_prefix}delegated`,
      log,
    });
  }
  return createEmbeddedDelegatedJournal({ path: journalPathFor(config.store.path), log });
}

/** `jobs.sqlite` → `jobs.delegated.sqlite` (any other name gets `.delegated.sqlite` appended). */
export function journalPathFor(storePath: string): string {
  return storePath.endsWith(".sqlite")
    ? `${storePath.slice(0, -".sqlite".length)}.delegated.sqlite`
    : `${storePath}.delegated.sqlite`;
}
