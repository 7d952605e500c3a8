// Subscriptions through the release binary on anvil: allowed_addresses for on-chain subscriptions (the
// listener's Guardian), and for delegated subscriptions over REST allowed_delegate_addresses on every path
// (single, batch item, stream), the body unable to set the fields the node owns, and the three ways a
// signature can be bad: expired (the Guardian's 405 `Signature expired`), unrecoverable (`Could not recover
// delegatee signer`) and signed by someone other than the owner's signer (`Subscription signer mismatch`), each
// refused and logged. The containers are remote stubs that answer 404 (up, for /health), and every subscription
// becomes active only tomorrow: nothing here is meant to run. (A forged
// signature costing no transaction is shown by test/e2e/chain/delegated.test.ts; the happy path by
// test/integration/chain/delegated-rest.test.ts.)
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { getAddress } from "viem";
import { getSharedChain, type TestChain } from "../../fixtures/anvil.ts";
import {
  createSubscription,
  delegatedSubscription,
  latestTimestamp,
  type SubscriptionStruct,
} from "../../fixtures/chain-helpers.ts";
import { aboutSubscription, type LogWatcher, watchLog } from "../../fixtures/chain-node.ts";
import { delegatedRequestBody, signedDelegatedRequest } from "../../fixtures/e2e-chain.ts";
import { type RawServer, rawServer } from "../../fixtures/raw-http.ts";
import { type NodeFixture, postJson, startNode } from "../../integration/server/node-process.ts";

let chain: TestChain;
let stub: RawServer;
let f: NodeFixture;
let logs: LogWatcher;
const run = `sec-dlg-${Math.random().toString(36).slice(2, 8)}`;
/** Admits the delegator and subscription consumer contracts (listed in upper case: case is ignored). */
const OPEN = `${run}-open`;
/** Admits someone else only. */
const CLOSED = `${run}-closed`;

beforeAll(async () => {
  chain = await getSharedChain();
  stub = rawServer(() => ["HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"]);
  f = await startNode("sec-delegated", {
    store: "embedded",
    extra: {
      manage_containers: false,
      containers: [
        {
          id: OPEN,
          url: stub.url,
          allowed_delegate_addresses: [`0x${chain.addresses.delegator.slice(2).toUpperCase()}`],
          allowed_addresses: [`0x${chain.addresses.subscriptionConsumer.slice(2).toUpperCase()}`],
        },
        {
          id: CLOSED,
          url: stub.url,
          allowed_delegate_addresses: [chain.accounts.other.address],
          allowed_addresses: [chain.accounts.other.address],
        },
      ],
      chain: {
        enabled: true,
        rpc_url: chain.rpcUrl,
        registry_address: chain.addresses.registry,
        trail_head_blocks: 0,
        snapshot_sync: { sleep: 0, sync_period: 0.1 },
        wallet: { private_key: chain.accounts.node.privateKey },
      },
    },
  });
  logs = watchLog(join(f.dir, "node.log"));
}, 180_000);

afterAll(async () => {
  await f?.[Symbol.asyncDispose]();
  stub?.[Symbol.dispose]();
});

/** Far enough ahead that no subscription here ever falls due. */
const tomorrow = () => Math.floor(Date.now() / 1000) + 86_400;

let nextNonce = 1 + Math.floor(Math.random() * 1_000_000);

/** A delegated subscription for `containers`, signed by the owner's signer unless `signer` says otherwise. */
async function signed(
  containers: string | string[],
  opts: { expiry?: number; signer?: TestChain["accounts"]["other"] } = {},
): Promise<{ sub: SubscriptionStruct; nonce: number; body: string }> {
  const sub = await delegatedSubscription(chain, { containers, activeAt: tomorrow() });
  const nonce = nextNonce++;
  const expiry = opts.expiry ?? (await latestTimestamp(chain)) + 3600;
  const body = await signedDelegatedRequest(chain, {
    sub,
    nonce,
    expiry,
    data: { prompt: "hi" },
    ...(opts.signer ? { signer: opts.signer } : {}),
  });
  return { sub, nonce, body };
}

type Path = "single" | "batch" | "stream";
const PATHS: readonly Path[] = ["single", "batch", "stream"];

/** POSTs one delegated body on `path`; returns the status and the (batch: first item's) JSON reply. */
async function submit(path: Path, body: string): Promise<{ status: number; json: unknown }> {
  if (path === "batch") {
    const res = await postJson(`${f.node.url}/api/jobs/batch`, `[${body}]`);
    return { status: res.status, json: ((await res.json()) as unknown[])[0] };
  }
  const res = await postJson(`${f.node.url}/api/jobs${path === "stream" ? "/stream" : ""}`, body);
  return { status: res.status, json: await res.json() };
}

/** Guardian refusals are 405 on single and stream, and the item itself in a batch (whose reply is 200). */
const refusedStatus = (path: Path) => (path === "batch" ? 200 : 405);

describe("allowed_addresses for on-chain subscriptions", () => {
  test("error: an owner not listed is ignored with the spec's error; a listed one is relayed", async () => {
    const mark = logs.mark();
    // Period one day: each becomes active (due) only tomorrow, so nothing runs.
    const admitted = await createSubscription(chain, { containers: OPEN, period: 86_400, frequency: 2 });
    const refused = await createSubscription(chain, {
      containers: [OPEN, CLOSED],
      period: 86_400,
      frequency: 2,
    });
    const line = await logs.waitFor(aboutSubscription("Ignored subscription creation", refused.id), {
      from: mark,
    });
    expect(JSON.parse(line)).toMatchObject({
      err: "Container not allowed for address",
      params: { container: CLOSED, address: chain.addresses.subscriptionConsumer },
    });
    // The listener goes in id order: the admitted one (the lower id) was judged before.
    expect(logs.matching(aboutSubscription("Relayed subscription creation", admitted.id), mark)).toHaveLength(
      1,
    );
    expect(logs.matching(aboutSubscription("Ignored subscription creation", admitted.id), mark)).toEqual([]);
  });
});

describe("allowed_delegate_addresses on every path", () => {
  test("default: a listed owner (any case) is accepted; streaming stays for off-chain jobs only", async () => {
    const mark = logs.mark();
    const accepted: number[] = [];
    for (const path of PATHS) {
      const { nonce, body } = await signed(OPEN);
      const reply = await submit(path, body);
      if (path !== "stream") accepted.push(nonce);
      const expected =
        path === "stream"
          ? { status: 405, json: { error: "Streaming only supported for OffchainJob requests.", params: {} } }
          : { status: 200, json: {} };
      expect({ path, reply }).toEqual({ path, reply: expected });
    }
    // Handed to the chain side, which verified the owner's signature.
    for (const nonce of accepted) {
      await logs.waitFor(new RegExp(`Tracked new delegate subscription.*"nonce":${nonce}[,}]`), {
        from: mark,
      });
    }
  });

  test("error: an owner not listed is refused with the owner's checksum address, on every path", async () => {
    for (const path of PATHS) {
      for (const containers of [CLOSED, [OPEN, CLOSED]]) {
        const { body } = await signed(containers);
        expect({ path, containers, reply: await submit(path, body) }).toEqual({
          path,
          containers,
          reply: {
            status: refusedStatus(path),
            json: {
              error: "Container not allowed for address",
              params: { container: CLOSED, address: getAddress(chain.addresses.delegator) },
            },
          },
        });
      }
    }
  });
});

describe("bad signatures", () => {
  test("error: an expired signature is the Guardian's `Signature expired` on every path, and logged", async () => {
    const expiry = (await latestTimestamp(chain)) - 60;
    for (const path of PATHS) {
      const mark = logs.mark();
      const { sub, nonce, body } = await signed(OPEN, { expiry });
      const reply = await submit(path, body);
      expect({ path, status: reply.status }).toEqual({ path, status: refusedStatus(path) });
      expect((reply.json as { error: string }).error).toBe("Signature expired");
      const line = await logs.waitFor(/"msg":"Delegated subscription refused"/, { from: mark });
      expect(JSON.parse(line)).toMatchObject({
        level: "warn",
        reason: "Signature expired",
        owner: sub.owner,
        nonce,
        expiry,
        ip: "127.0.0.1",
      });
    }
  });

  test("error: a signature nothing can be recovered from is dropped by the chain side and logged", async () => {
    const mark = logs.mark();
    const sub = await delegatedSubscription(chain, { containers: OPEN, activeAt: tomorrow() });
    const nonce = nextNonce++;
    const expiry = (await latestTimestamp(chain)) + 3600;
    // r = s = 0 is no signature at all. The Guardian does not verify signatures (reference §4.3): the reply is
    // the reference's {}, and the chain side refuses it before anything runs.
    const body = delegatedRequestBody(sub, { nonce, expiry, v: 27, r: "0x0", s: "0x0" }, { prompt: "hi" });
    expect(await submit("single", body)).toEqual({ status: 200, json: {} });
    const line = await logs.waitFor("Could not recover delegatee signer", { from: mark });
    expect(JSON.parse(line)).toMatchObject({ level: "error", owner: sub.owner, nonce });
    expect(
      logs.matching(new RegExp(`Tracked new delegate subscription.*"nonce":${nonce}[,}]`), mark),
    ).toEqual([]);
  });

  test("error: a signer other than the owner's is `Subscription signer mismatch`, logged with both addresses", async () => {
    const mark = logs.mark();
    const { sub, nonce, body } = await signed(OPEN, { signer: chain.accounts.other });
    expect(await submit("single", body)).toEqual({ status: 200, json: {} });
    const line = await logs.waitFor("Subscription signer mismatch", { from: mark });
    const record = JSON.parse(line) as Record<string, string>;
    expect(record).toMatchObject({ level: "error", owner: sub.owner, nonce });
    expect(record.recovered?.toLowerCase()).toBe(chain.accounts.other.address.toLowerCase());
    expect(record.signer?.toLowerCase()).toBe(chain.accounts.consumerOwner.address.toLowerCase());
    expect(
      logs.matching(new RegExp(`Tracked new delegate subscription.*"nonce":${nonce}[,}]`), mark),
    ).toEqual([]);
  });
});

describe("the body cannot set server-owned fields", () => {
  test("error: id, ip and kind in a delegated body are ignored (shown by the expired refusal's params)", async () => {
    const expiry = (await latestTimestamp(chain)) - 60;
    const { body } = await signed(CLOSED, { expiry });
    const forged = `{"id":"chosen-by-client","ip":"10.9.9.9","kind":"offchain",${body.slice(1)}`;
    for (const path of PATHS) {
      const reply = await submit(path, forged);
      const shown = (reply.json as { params: { delegated_subscription: { id: string; ip: string } } }).params
        .delegated_subscription;
      expect({ path, ip: shown.ip }).toEqual({ path, ip: "127.0.0.1" });
      expect(shown.id).toMatch(/^[0-9a-f-]{36}$/);
    }
  });
});
