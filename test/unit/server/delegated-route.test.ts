import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { containerSetId } from "../../../src/chain/container-lookup.ts";
import type { DelegatedSubscriptionMessage } from "../../../src/shared/messages.ts";
import { jsonInit, makeConfig, makeTestApp, staticDirectory, type TestApp } from "./fixtures.ts";

const R = "57896044618658097711785492504343953926634992332820282019728792003956564819968";
const NOW_MS = 1_700_000_000_000;

/** The raw body infernet_client sends for request_delegated_subscription (r, s as JSON integers). */
function body(containers: string[], expiry = 1_700_000_010, extra = "") {
  return `{"signature":{"nonce":7,"expiry":${expiry},"v":28,"r":${R},"s":12345678901234567890123},"subscription":{"owner":"0x70997970C51812dc3A010C7d01b50e0d17dc79C8","active_at":0,"period":4,"frequency":1,"redundancy":1,"containers":"${containerSetId(containers)}","lazy":false,"verifier":"0x0000000000000000000000000000000000000000","payment_amount":1000000000000000000000,"payment_token":"0x0000000000000000000000000000000000000000","wallet":"0x0000000000000000000000000000000000000000"},"data":{"input":"hi"}${extra}}`;
}

const submitted: DelegatedSubscriptionMessage[] = [];
let enabled: TestApp;
let disabled: TestApp;

beforeAll(async () => {
  const config = makeConfig({
    containers: [{ id: "echo" }],
    chain: {
      enabled: true,
      rpc_url: "http://127.0.0.1:1",
      registry_address: `0x${"1".repeat(40)}`,
      wallet: { private_key: `0x${"2".repeat(64)}` },
    },
  });
  const table = new Map([[containerSetId(["echo"]), ["echo"]]]);
  enabled = await makeTestApp(config, staticDirectory({ echo: "http://127.0.0.1:1" }), {
    now: () => NOW_MS,
    chain: { enabled: true, address: () => "0x70997970C51812dc3A010C7d01b50e0d17dc79C8" },
    delegated: {
      sink: { submit: async (msg) => void submitted.push(msg) },
      lookup: (hash) => table.get(hash),
    },
  });
  disabled = await makeTestApp(makeConfig({ containers: [{ id: "echo" }] }), staticDirectory({}), {
    now: () => NOW_MS,
  });
});

afterAll(async () => {
  await enabled[Symbol.asyncDispose]();
  await disabled[Symbol.asyncDispose]();
});

describe("delegated subscriptions over POST /api/jobs", () => {
  test("default", async () => {
    const res = await enabled.request("/api/jobs", jsonInit("POST", body(["echo"])));
    expect(res.status).toBe(200);
    expect(await res.text()).toBe("{}\n");
    const msg = submitted.at(-1);
    expect(msg?.signature.r).toBe(BigInt(R));
    expect(msg?.signature.s).toBe(12345678901234567890123n);
    expect(msg?.subscription.payment_amount).toBe(10n ** 21n);
    expect(msg?.data).toEqual({ input: "hi" });
    const info = (await (await enabled.request("/info")).json()) as { chain: unknown };
    expect(info.chain).toEqual({ address: "0x70997970C51812dc3A010C7d01b50e0d17dc79C8", enabled: true });
  });

  test("behavior: explicit type 1 and expiry == now are accepted", async () => {
    const res = await enabled.request(
      "/api/jobs",
      jsonInit("POST", body(["echo"], 1_700_000_000, ',"type":1')),
    );
    expect(res.status).toBe(200);
  });

  test("error: chain disabled is a 405 carrying the message", async () => {
    const res = await disabled.request("/api/jobs", jsonInit("POST", body(["echo"])));
    expect(res.status).toBe(405);
    const text = await res.text();
    expect(text).toStartWith(
      '{"error":"Chain not enabled","params":{"delegated_subscription":{"data":{"input":"hi"},"id":"',
    );
    expect(text).toContain(`"r":${R}`);
  });

  test("error: expired signature, unknown hash, bad fields", async () => {
    const expired = await enabled.request("/api/jobs", jsonInit("POST", body(["echo"], 1_699_999_999)));
    expect(expired.status).toBe(405);
    expect(((await expired.json()) as { error: string }).error).toBe("Signature expired");
    const unknown = await enabled.request("/api/jobs", jsonInit("POST", body(["nope"])));
    expect(unknown.status).toBe(405);
    expect(await unknown.json()).toEqual({
      error: "Container-set not supported",
      params: { containers_hash: containerSetId(["nope"]) },
    });
    const badOwner = await enabled.request(
      "/api/jobs",
      jsonInit("POST", body(["echo"]).replace("0x70997970C5", "0xZZ")),
    );
    expect(badOwner.status).toBe(400);
    expect(await badOwner.json()).toMatchObject({ params: { field: "subscription.owner" } });
    const hugeNonce = await enabled.request(
      "/api/jobs",
      jsonInit("POST", body(["echo"]).replace('"nonce":7', '"nonce":4294967296')),
    );
    expect(hugeNonce.status).toBe(400);
    expect(await hugeNonce.json()).toMatchObject({ params: { field: "signature.nonce" } });
  });

  test("error: chain enabled but no delegated-subscription sink wired is a 503, not an acceptance", async () => {
    await using unwired = await makeTestApp(
      makeConfig({
        containers: [{ id: "echo" }],
        chain: {
          enabled: true,
          rpc_url: "http://127.0.0.1:1",
          registry_address: `0x${"1".repeat(40)}`,
          wallet: { private_key: `0x${"2".repeat(64)}` },
        },
      }),
      staticDirectory({}),
      { now: () => NOW_MS },
    );
    const res = await unwired.request("/api/jobs", jsonInit("POST", body(["echo"])));
    expect(res.status).toBe(503);
    expect(await res.json()).toEqual({
      error: "Delegated subscriptions are not available on this node",
      params: {},
    });
  });

  test("behavior: batches mix delegated and off-chain items; streaming refuses delegated", async () => {
    const batch = await enabled.request(
      "/api/jobs/batch",
      jsonInit("POST", `[${body(["echo"])},${body(["nope"])}]`),
    );
    const items = (await batch.json()) as unknown[];
    expect(items[0]).toEqual({});
    expect(items[1]).toMatchObject({ error: "Container-set not supported" });
    const stream = await enabled.request("/api/jobs/stream", jsonInit("POST", body(["echo"])));
    expect(stream.status).toBe(405);
    expect(await stream.json()).toEqual({
      error: "Streaming only supported for OffchainJob requests.",
      params: {},
    });
  });
});
