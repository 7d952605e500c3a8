import { rmSync } from "node:fs";
import { join } from "node:path";
import { createLogger } from "../../../src/lib/log.ts";
import { createEmbeddedStore } from "../../../src/store/embedded.ts";
import { jobStoreContract, type OpenedStore, type StoreHarness } from "./contract.ts";

let counter = 0;

async function embeddedHarness(): Promise<StoreHarness> {
  const dir = join(process.env.INFERNET_TEST_TMP ?? "/tmp", `store-${process.pid}-${counter++}`);
  const path = join(dir, "jobs.sqlite");
  const opened: OpenedStore[] = [];
  return {
    async open(overrides = {}) {
      const store = createEmbeddedStore({
        path,
        instanceId: "test-node",
        pendingTtlMs: 60_000,
        completedTtlMs: 0,
        maxCompleted: 1000,
        log: createLogger({ component: "store" }),
        ...overrides,
      });
      await store.setup?.(AbortSignal.timeout(10_000));
      opened.push(store);
      return store;
    },
    async [Symbol.asyncDispose]() {
      for (const store of opened) await store.close?.();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

jobStoreContract("embedded", embeddedHarness);
