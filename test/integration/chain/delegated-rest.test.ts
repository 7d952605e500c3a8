// Delegated subscriptions over REST with the chain enabled (the binary against anvil): signed the way
// infernet_client signs them, with r and s as JSON integers above 2^53, checked by the Guardian and handed to
// the chain side, whose processor verifies the signature.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { getSharedChain, type TestChain } from "../../fixtures/anvil.ts";
import { buildBinary, withoutNodeModules } from "../../fixtures/binary.ts";
import {
  containerIdOf,
  delegatedSubscription,
  latestTimestamp,
  type SubscriptionStruct,
} from "../../fixtures/chain-helpers.ts";
import { signedDelegatedRequest } from "../../fixtures/e2e-chain.ts";
import { freePort, waitFor } from "../../fixtures/net.ts";

let chain: TestChain;
let proc: ReturnType<typeof Bun.spawn> | undefined;
let base = "";
let logPath = "";

beforeAll(async () => {
  chain = await getSharedChain();
  const binary = await buildBinary();
  const dir = mkdtempSync(join(tmpdir(), "delegated-rest-"));
  logPath = join(dir, "node.log");
  const port = await freePort();
  const config = {
    manage_containers: false,
    forward_stats: false,
    server: { port, host: "127.0.0.1" },
    log: { path: join(dir, "node.log") },
    store: { path: join(dir, "jobs.sqlite") },
    chain: {
      enabled: true,
      rpc_url: chain.rpcUrl,
      registry_address: chain.addresses.registry,
      wallet: { private_key: chain.accounts.node.privateKey },
      snapshot_sync: { sleep: 0 },
    },
    // Nothing listens there: these tests stop at the hand-over to the chain side.
    containers: [{ id: "hello-world", url: "http://127.0.0.1:9" }],
  };
  const path = join(dir, "config.json");
  writeFileSync(path, JSON.stringify(config));
  proc = Bun.spawn(withoutNodeModules(binary, ["--config", path]), {
    cwd: dir,
    stdout: "ignore",
    stderr: "ignore",
  });
  base = `http://127.0.0.1:${port}`;
  await waitFor("the node's /info", async () =>
    (await fetch(`${base}/info`)).status === 200 ? true : undefined,
  );
}, 120_000);

afterAll(async () => {
  proc?.kill("SIGTERM");
  await proc?.exited;
});

/** The body infernet_client sends: r and s written as plain JSON integers (far above 2^53). */
function delegatedBody(sub: SubscriptionStruct, nonce: number, expiry: number): Promise<string> {
  return signedDelegatedRequest(chain, { sub, nonce, expiry, data: { prompt: "hi" } });
}

async function post(path: string, body: string): Promise<{ status: number; json: unknown }> {
  const res = await fetch(`${base}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body,
  });
  return { status: res.status, json: await res.json() };
}

/** Log records of the node's processor with this message. */
async function processorLog(msg: string): Promise<Array<Record<string, unknown>>> {
  const text = await Bun.file(logPath).text();
  return text
    .split("\n")
    .filter((line) => line.includes(`"msg":"${msg}"`))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

describe("delegated subscriptions over REST (chain enabled)", () => {
  test("default: a signed delegated subscription is accepted with {} and handed to the chain side", async () => {
    const sub = await delegatedSubscription(chain);
    const expiry = (await latestTimestamp(chain)) + 3600;
    const reply = await post("/api/jobs", await delegatedBody(sub, 1, expiry));
    expect(reply).toEqual({ status: 200, json: {} });
    // The processor recovers the EIP-712 signer from r/s read losslessly and finds it equals getSigner().
    const tracked = await waitFor("the processor to verify it", async () => {
      const records = await processorLog("Tracked new delegate subscription");
      return records.find((r) => r.owner === sub.owner && r.nonce === 1);
    });
    expect(tracked).toBeDefined();
    expect(await processorLog("Subscription signer mismatch")).toHaveLength(0);
  });

  test("behavior: a batch item that is a delegated subscription yields {}", async () => {
    const sub = await delegatedSubscription(chain);
    const expiry = (await latestTimestamp(chain)) + 3600;
    const reply = await post("/api/jobs/batch", `[${await delegatedBody(sub, 2, expiry)}]`);
    expect(reply).toEqual({ status: 200, json: [{}] });
  });

  test("error: an expired signature is the Guardian's 405", async () => {
    const sub = await delegatedSubscription(chain);
    const reply = await post("/api/jobs", await delegatedBody(sub, 3, 1_000));
    expect(reply.status).toBe(405);
    expect((reply.json as { error: string }).error).toBe("Signature expired");
  });

  test("error: a container set this node does not serve is a 405 naming the hash", async () => {
    const sub = { ...(await delegatedSubscription(chain)), containerId: containerIdOf("not-here") };
    const expiry = (await latestTimestamp(chain)) + 3600;
    const reply = await post("/api/jobs", await delegatedBody(sub, 4, expiry));
    expect(reply.status).toBe(405);
    expect(reply.json).toEqual({
      error: "Container-set not supported",
      params: { containers_hash: containerIdOf("not-here").toLowerCase() },
    });
  });
});
