// The memory bound on delegated subscriptions held until delivery (issue: one client could grow the process
// without limit): count in all, per owner, per client, bytes of one and of all; a resubmission replaces.
import { describe, expect, test } from "bun:test";
import * as v from "valibot";
import { createDelegatedQuota, DelegatedQuotaError } from "../../../src/chain/delegated-quota.ts";
import { createProcessor } from "../../../src/chain/processor.ts";
import { ConfigSchema } from "../../../src/config/schema.ts";
import { buildRuleTable } from "../../../src/guardian/rules.ts";
import { createLog } from "../../../src/lib/log.ts";
import type { DelegatedSubscriptionMessage } from "../../../src/shared/messages.ts";

const limits = { maxCount: 3, maxPerOwner: 2, maxPerClient: 2, maxItemBytes: 100, maxTotalBytes: 250 };
const entry = (owner: string, client: string, bytes = 10) => ({ owner, client, bytes });

describe("delegated quota", () => {
  test("default: admits within every bound and frees on release", () => {
    const quota = createDelegatedQuota(limits);
    quota.admit("a", entry("o1", "c1"));
    quota.admit("b", entry("o2", "c2"));
    expect(quota.stats()).toEqual({ count: 2, bytes: 20 });
    quota.release("a");
    expect(quota.stats()).toEqual({ count: 1, bytes: 10 });
  });

  test("error: each bound refuses with its reason", () => {
    const quota = createDelegatedQuota(limits);
    expect(() => quota.admit("big", entry("o", "c", 101))).toThrow("more than 100");
    quota.admit("a", entry("o1", "c1"));
    quota.admit("b", entry("o1", "c2"));
    expect(() => quota.admit("c", entry("o1", "c3"))).toThrow("owner o1 has 2");
    quota.admit("c", entry("o2", "c1"));
    expect(() => quota.admit("d", entry("o3", "c4"))).toThrow("holds 3 delegated subscriptions");
    quota.release("b");
    expect(() => quota.admit("d", entry("o3", "c1"))).toThrow("client c1 has 2");
    quota.admit("d", entry("o3", "c9", 100));
    quota.release("c");
    expect(() => quota.admit("e", entry("o4", "c8", 100))).not.toThrow();
    quota.release("e");
    quota.admit("e", entry("o4", "c8", 100));
    quota.release("a");
    // Held: d and e, 200 bytes; 100 more would make 300 > 250.
    expect(() => quota.admit("f", entry("o5", "c7", 100))).toThrow("take 250 bytes");
    expect(() => quota.admit("f", entry("o5", "c7", 50))).not.toThrow(DelegatedQuotaError);
  });

  test("behavior: a resubmission under the same key replaces, not adds", () => {
    const quota = createDelegatedQuota(limits);
    quota.admit("a", entry("o1", "c1", 90));
    quota.admit("a", entry("o1", "c1", 95));
    quota.admit("a", entry("o1", "c1", 95));
    expect(quota.stats()).toEqual({ count: 1, bytes: 95 });
  });
});

describe("processor: delegated submissions are bounded", () => {
  const config = v.parse(ConfigSchema, {
    manage_containers: false,
    containers: [{ id: "echo" }],
    chain: {
      enabled: true,
      rpc_url: "http://127.0.0.1:9",
      registry_address: "0x5FbDB2315678afecb367f032d93F642f64180aa3",
      wallet: { private_key: `0x${"11".repeat(32)}` },
    },
  });
  const processor = createProcessor({
    config,
    log: createLog("processor-test"),
    rules: buildRuleTable(config.containers),
    lookup: () => ["echo"],
    context: () => undefined,
    head: () => null,
    run: async () => [],
    settings: { maxDelegatedPerClient: 2, maxDelegatedItemBytes: 1_000 },
  });
  const message = (
    nonce: number,
    ip: string,
    data: Record<string, unknown>,
  ): DelegatedSubscriptionMessage => ({
    kind: "delegated",
    id: `job-${nonce}`,
    ip,
    requires_proof: false,
    data,
    subscription: {
      owner: `0x${nonce.toString(16).padStart(40, "0")}`,
      active_at: 0,
      period: 0,
      frequency: 1,
      redundancy: 1,
      containers: `0x${"ab".repeat(32)}`,
      lazy: false,
      verifier: `0x${"0".repeat(40)}`,
      payment_amount: 0n,
      payment_token: `0x${"0".repeat(40)}`,
      wallet: `0x${"0".repeat(40)}`,
    },
    signature: { nonce, expiry: 4_000_000_000, v: 27, r: 1n, s: 1n },
  });

  test("error: a client over its count and data over the size are refused; nothing held is dropped", async () => {
    await processor.submit(message(1, "10.0.0.1", { a: 1 }));
    await processor.submit(message(2, "10.0.0.1", { a: 2 }));
    await expect(processor.submit(message(3, "10.0.0.1", { a: 3 }))).rejects.toThrow("client 10.0.0.1 has 2");
    await expect(processor.submit(message(4, "10.0.0.2", { blob: "x".repeat(2_000) }))).rejects.toThrow(
      "more than 1000",
    );
    await processor.submit(message(5, "10.0.0.2", { a: 5 }));
    expect(processor.health()).toMatchObject({ delegated: 3 });
    expect(processor.keys().filter((k) => k.startsWith("d:"))).toHaveLength(3);
  });
});
