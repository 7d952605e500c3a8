// Secrets never leak, through the release binary: a node configured with every secret the config can hold (the
// wallet key without 0x, a container's bearer token, credentials and an API key in a container URL, an API key in
// a container's env, the Docker registry password, the Redis password, credentials and API keys in the RPC URL
// and its fallback) and with the Metric Sender on, pointed at a local Fluent Forward receiver. Every route is
// driven, errors included, until each secret has been used (the primary RPC fails, the down service's jobs
// fail, the stats go out); then stdout, stderr, the log file, every reply and every stats byte are searched for
// each secret, with and without 0x. The whole test run's node output gets the same search at the end of
// scripts/test.sh (scripts/secret-scan.ts).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { privateKeyToAccount } from "viem/accounts";
import { getSharedChain, type TestChain } from "../../fixtures/anvil.ts";
import { buildBinary, runBinary } from "../../fixtures/binary.ts";
import { delegatedSubscription, latestTimestamp } from "../../fixtures/chain-helpers.ts";
import { signedDelegatedRequest } from "../../fixtures/e2e-chain.ts";
import { type FluentReceiver, startFluentReceiver } from "../../fixtures/fluent.ts";
import { freePort, waitFor } from "../../fixtures/net.ts";
import { type RawServer, rawServer } from "../../fixtures/raw-http.ts";
import { type PrivateRedis, startPrivateRedis, uniqueKeyPrefix } from "../../fixtures/redis.ts";
import { secretsIn, TEST_SECRETS } from "../../fixtures/secrets.ts";
import { finishedJob, type NodeFixture, startNode } from "../../integration/server/node-process.ts";

const S = TEST_SECRETS;
let chain: TestChain;
let redis: PrivateRedis;
let fluent: FluentReceiver;
/** The bearer-protected remote service: answers every job with a JSON output. */
let remote: RawServer;
let f: NodeFixture;
/** Every reply the node served: status, headers and body. */
const served: string[] = [];

beforeAll(async () => {
  chain = await getSharedChain();
  redis = await startPrivateRedis({ args: ["--requirepass", S.redisPassword] });
  fluent = startFluentReceiver();
  const output = '{"answer":"from the remote service"}';
  remote = rawServer(() => [
    `HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: ${output.length}\r\n\r\n${output}`,
  ]);
  const dead = freePort();
  const anvil = new URL(chain.rpcUrl);
  f = await startNode("sec-secrets", {
    store: "embedded",
    containers: {
      echo: { env: { OPENAI_API_KEY: S.containerApiKey } },
      echo2: { url: remote.url, bearer: S.bearer },
      // A service that is down, reached through a URL with credentials: its jobs fail, its probe fails.
      inner: {
        external: true,
        url: `http://svc:${S.serviceUrlPassword}@127.0.0.1:${dead}/api`,
        bearer: S.downBearer,
      },
    },
    extra: {
      redis: {
        host: redis.host,
        port: redis.port,
        password: S.redisPassword,
        key_prefix: uniqueKeyPrefix("sec-secrets"),
      },
      docker: { username: "sec-user", password: S.dockerPassword },
      forward_stats: true,
      stats: { host: "127.0.0.1", port: fluent.port, node_interval: 1, live_interval: 0.2 },
      chain: {
        enabled: true,
        // The primary and the first fallback are down (every call to them fails and is logged); the second
        // fallback is anvil, with credentials (anvil serves only "/", so no API key in its path).
        rpc_url: `http://rpcuser:${S.rpcPassword}@127.0.0.1:${dead}/v3/${S.rpcApiKey}`,
        rpc_fallback_urls: [
          `http://127.0.0.1:${dead}/rpc?apikey=${S.fallbackApiKey}`,
          `http://fbuser:${S.fallbackPassword}@${anvil.host}/`,
        ],
        rpc_timeout: 5,
        registry_address: chain.addresses.registry,
        trail_head_blocks: 0,
        snapshot_sync: { sleep: 0, sync_period: 0.1 },
        wallet: { private_key: S.privateKey.slice(2) },
      },
    },
  });
}, 180_000);

afterAll(async () => {
  await f?.[Symbol.asyncDispose]();
  remote?.[Symbol.dispose]();
  await fluent?.[Symbol.asyncDispose]();
  await redis?.[Symbol.asyncDispose]();
});

/** One request to the node; its whole reply (status line, headers, body) is kept in `served`. */
async function call(
  method: string,
  path: string,
  body?: unknown,
  type = "application/json",
): Promise<Response> {
  const res = await fetch(`${f.node.url}${path}`, {
    method,
    headers: body === undefined ? {} : { "content-type": type },
    ...(body === undefined ? {} : { body: typeof body === "string" ? body : JSON.stringify(body) }),
  });
  // A stream that fails after its id line ends with a reset connection: keep what arrived.
  let text = "";
  const reader = res.body?.getReader();
  try {
    for (;;) {
      const chunk = await reader?.read();
      if (!chunk || chunk.done) break;
      text += new TextDecoder().decode(chunk.value);
    }
  } catch (error) {
    text += `\n(connection ended: ${String(error)})`;
  }
  served.push(`${method} ${path} → ${res.status} ${JSON.stringify([...res.headers])}\n${text}`);
  return new Response(text, { status: res.status, headers: res.headers });
}

describe("a node configured with every kind of secret", () => {
  test("default: it runs with them: the key is the wallet, the bearer reaches the service, the fallback RPC serves", async () => {
    const wallet = privateKeyToAccount(S.privateKey).address;
    const info = await waitFor(
      "/info with the chain connected",
      async () => {
        const body = (await (await call("GET", "/info")).json()) as {
          chain: { address: string; enabled: boolean };
        };
        return body.chain.enabled && body.chain.address !== "" ? body : undefined;
      },
      60_000,
    );
    expect(info.chain.address.toLowerCase()).toBe(wallet.toLowerCase());
    const res = await call("POST", "/api/jobs", { containers: [f.ids.echo2], data: { q: 1 } });
    const { id } = (await res.json()) as { id: string };
    expect(await finishedJob(f.node.url, id)).toMatchObject({
      status: "success",
      result: { output: { answer: "from the remote service" } },
    });
    expect(remote.requests.some((request) => request.includes(`Bearer ${S.bearer}`))).toBe(true);
  });

  test("behavior: check-config's summary holds none of them (key in the file, or with 0x in INFERNET_PRIVATE_KEY)", async () => {
    const binary = await buildBinary();
    const args = ["check-config", "--config", join(f.dir, "config.json")];
    const envs: Record<string, string>[] = [{}, { INFERNET_PRIVATE_KEY: S.privateKey }];
    for (const env of envs) {
      const result = await runBinary(binary, args, { env });
      expect(result.stdout).toContain("chain: on");
      const leaked = secretsIn(result.stdout + result.stderr);
      expect({ env: Object.keys(env), leaked }).toEqual({ env: Object.keys(env), leaked: [] });
    }
  });

  test("behavior: no secret in any reply, log line, stats record or output, after every route and error", async () => {
    // Jobs on every container and path: good ones, the down service, malformed and refused ones.
    const ids: string[] = [];
    for (const container of [f.ids.echo, f.ids.echo2, f.ids.inner]) {
      const res = await call("POST", "/api/jobs", { containers: [container], data: { container } });
      ids.push(((await res.json()) as { id: string }).id);
    }
    const batch = await call("POST", "/api/jobs/batch", [
      { containers: [f.ids.echo], data: {} },
      { containers: [f.ids.inner], data: {} },
      { containers: ["nope"], data: {} },
      { containers: [f.ids.echo] },
    ]);
    for (const item of (await batch.json()) as { id?: string }[]) if (item.id) ids.push(item.id);
    for (const container of [f.ids.echo2, f.ids.inner]) {
      await call("POST", "/api/jobs/stream", { containers: [container], data: {} });
    }
    await call("POST", "/api/jobs", "{not json");
    await call("POST", "/api/jobs", { containers: [f.ids.echo], data: {} }, "text/plain");
    await call("POST", "/api/jobs", { containers: [f.ids.echo], data: 5 });
    await call("POST", "/api/jobs", { containers: ["nope"], data: {} });
    // Delegated: one expired (the refusal echoes the whole message back) and one the chain side takes.
    const now = await latestTimestamp(chain);
    for (const expiry of [now - 60, now + 3600]) {
      const sub = await delegatedSubscription(chain, { containers: f.ids.echo, activeAt: now + 86_400 });
      await call(
        "POST",
        "/api/jobs",
        await signedDelegatedRequest(chain, { sub, nonce: expiry, expiry, data: {} }),
      );
    }
    await call("PUT", "/api/status", { id: "sec-ext", status: "running", containers: [f.ids.echo] });
    await call("PUT", "/api/status", { id: "sec-ext", status: "done", containers: [f.ids.echo] });
    for (const id of ids) await finishedJob(f.node.url, id);
    for (const id of ids) await call("GET", `/api/jobs?id=${id}&intermediate=true`);
    await call("GET", "/api/jobs");
    await call("GET", "/api/jobs?pending=true");
    for (const path of [
      "/health",
      "/ready",
      "/info",
      "/resources",
      "/metrics",
      "/dashboard",
      "/dashboard/data",
    ]) {
      await call("GET", path);
    }
    await call("HEAD", "/info");
    await call("OPTIONS", "/api/jobs");
    await call("DELETE", "/api/jobs");
    await call("GET", "/nope");
    // The secrets were all in play: the primary RPC and the down service failed and were logged.
    const log = () => readFileSync(join(f.dir, "node.log"), "utf8");
    await waitFor("the primary RPC's failure in the log", () => log().includes("RPC request failed"), 30_000);
    const failed = (await (await call("GET", `/api/jobs?id=${ids[2]}`)).json()) as { status: string }[];
    expect(failed[0]?.status).toBe("failed");
    await waitFor("node and live stats records", () => {
      const tags = new Set(fluent.entries.map((entry) => entry.tag));
      return tags.has("stats.node") && tags.has("stats.live");
    });
    // Shutdown writes its own lines and the last stats record.
    expect(await f.node.stop()).toBe(0);
    // The pipes drain after the exit: wait for the last line before reading what the node printed.
    await waitFor("the node's last line on stderr", () => f.node.output().includes('"msg":"Node stopped"'));

    const sources: Record<string, string> = {
      replies: served.join("\n"),
      stderr: f.node.output(),
      stdout: f.node.stdout(),
      "log file": log(),
      "stats bytes": Buffer.from(fluent.bytes()).toString("latin1"),
      "stats records": JSON.stringify(fluent.entries),
    };
    // Not vacuous: each source has content, and the replies include the failures.
    for (const [name, text] of Object.entries(sources)) {
      if (name !== "stdout") expect({ name, empty: text.length === 0 }).toEqual({ name, empty: false });
    }
    expect(sources.replies).toContain("Signature expired");
    for (const [name, text] of Object.entries(sources)) {
      expect({ source: name, leaked: secretsIn(text) }).toEqual({ source: name, leaked: [] });
    }
  }, 120_000);
});
