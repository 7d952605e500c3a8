// The node's JSON-RPC client on viem. One EIP-1193 transport that owns retries, failover and counting, so
// every caller (listener, registry, later the processor) gets the same behaviour:
// - every JSON-RPC request actually sent is counted by method (no batching: one HTTP request = one call);
// - transport failures, timeouts and rate limits (429, -32005) are retried with capped exponential backoff,
//   moving to the next URL (chain.rpc_url, then chain.rpc_fallback_urls) on each failure;
// - except eth_sendRawTransaction, which is sent exactly once per call: a lost reply (502/504, a timeout) may
//   hide a broadcast that happened, and a blind retry turns it into "nonce too low" / "already known" (and, for
//   a process that lost the chain lease meanwhile, into a transaction it was no longer allowed to send). The
//   transaction manager rebroadcasts the same signed bytes itself, after checking the lease. A failure still
//   moves the preferred URL on, so its next call goes elsewhere;
// - contract reverts and other answers from the node are not retried: they are answers, not outages;
// - when retries run out the caller gets a retryable NodeError; callers back off and resume, never exit;
// - URLs in logs and errors are redacted (credentials; API keys in the path are registered secrets), and
//   /health shows only scheme://host.
// Any http(s) or ws(s) URL the config loader accepted works, single-label hosts such as http://localhost:8545
// or http://anvil:8545 included (the reference's validators.url rejected those, bug §11.24).
import {
  BaseError,
  type Chain,
  createPublicClient,
  custom,
  type EIP1193RequestFn,
  HttpRequestError,
  http,
  type PublicClient,
  RpcRequestError,
  TimeoutError,
  type Transport,
  webSocket,
} from "viem";
import { NodeError } from "../lib/errors.ts";
import type { Logger } from "../lib/log.ts";
import { redactText, urlOrigin } from "../lib/redact.ts";
import { backoffMs, sleep } from "../lib/time.ts";
import { isTimeout, suggestedLogRange } from "./log-range.ts";

/** The viem public client every chain binding reads through (our retrying, counting transport). */
export type ChainClient = PublicClient<Transport, Chain | undefined>;

export interface RpcOptions {
  /** Primary first, then fallbacks, tried in turn. */
  urls: readonly string[];
  /** Per-request timeout (chain.rpc_timeout). */
  timeoutMs: number;
  /** Retries after the first attempt for a retryable failure (chain.rpc_max_retries). */
  maxRetries: number;
  log: Logger;
  /** Backoff between attempts: base·2^n, capped. Defaults 250 ms and 5 s. */
  backoffBaseMs?: number;
  backoffMaxMs?: number;
}

export interface RpcStats {
  /** JSON-RPC requests sent, retries included. */
  requests: number;
  byMethod: Record<string, number>;
  /** Attempts that failed with a retryable error. */
  failures: number;
  failuresByMethod: Record<string, number>;
  /** Requests and retryable failures per endpoint, keyed scheme://host (paths may hold API keys). */
  byEndpoint: Record<string, { requests: number; failures: number }>;
  /** Requests that failed after every retry. */
  exhausted: number;
  /** Switches to another URL after a failure. */
  failovers: number;
  /** The URL currently preferred, as scheme://host only (paths may hold API keys). */
  url: string;
  lastError?: string;
  lastErrorAt?: string;
}

export interface Rpc {
  readonly client: ChainClient;
  stats(): RpcStats;
  /** Zeroes the request counters (benchmarks measure one phase at a time). */
  resetCounters(): void;
}

/** RPC failed after all retries; retryable so loops back off and try again later. */
export class RpcUnavailableError extends NodeError {
  override name = "RpcUnavailableError";
}

/** Methods whose request is not idempotent for the caller: sent once, the caller decides what to do next. */
const NOT_RETRIED = new Set(["eth_sendRawTransaction"]);
const RETRYABLE_RPC_CODES = new Set([-32005, -32603, -32002]);
const RETRYABLE_HTTP = (status: number) =>
  status === 408 || status === 425 || status === 429 || status >= 500;
const RATE_LIMIT_TEXT = /rate.?limit|too many requests/i;

/** Outage, timeout or rate limit (worth another try, maybe elsewhere) versus a real answer such as a revert. */
export function isRetryableRpcError(error: unknown): boolean {
  let current: unknown = error;
  for (let depth = 0; current && depth < 8; depth++) {
    if (current instanceof NodeError && current.retryable) return true;
    if (current instanceof TimeoutError) return true;
    if (current instanceof HttpRequestError)
      return current.status === undefined || RETRYABLE_HTTP(current.status);
    if (current instanceof RpcRequestError) {
      return RETRYABLE_RPC_CODES.has(current.code) || RATE_LIMIT_TEXT.test(current.details);
    }
    const code = (current as { code?: unknown }).code;
    if (typeof code === "number" && RETRYABLE_RPC_CODES.has(code)) return true;
    if (current instanceof TypeError) return true; // fetch's "connection refused" family
    current = (current as { cause?: unknown }).cause;
  }
  return false;
}

/** A refusal of an eth_getLogs range or result size (not a timeout, which may be an outage). */
function isLogRangeRefusal(error: unknown): boolean {
  return suggestedLogRange(error) !== undefined && !isTimeout(error);
}

/** One line, no secrets: viem's short message plus its details, without the request body dump. */
export function rpcErrorText(error: unknown): string {
  // Our own error somewhere in viem's wrapping says it best (method, attempts, cause).
  for (let current: unknown = error, depth = 0; current && depth < 8; depth++) {
    if (current instanceof NodeError) return current.shortMessage;
    current = (current as { cause?: unknown }).cause;
  }
  if (error instanceof BaseError) {
    const details = error.details && error.details !== error.shortMessage ? ` (${error.details})` : "";
    // The status says what went wrong with an HTTP reply (404: a wrong path, 401/403: a missing key).
    const http = error.walk((e) => e instanceof HttpRequestError && e.status !== undefined);
    const status =
      http instanceof HttpRequestError && http.status !== undefined ? ` HTTP ${http.status}` : "";
    return oneLine(`${error.shortMessage.split("\n")[0]}${status}${details}`);
  }
  if (error instanceof Error) return oneLine(error.message.split("\n")[0] ?? error.name);
  return oneLine(String(error));
}

function oneLine(text: string): string {
  return redactText(text.replace(/\s*\n\s*/g, " ").trim());
}

export function createRpc(options: RpcOptions): Rpc {
  const { log, timeoutMs, maxRetries } = options;
  const urls = options.urls.filter((url) => url.length > 0);
  if (urls.length === 0) throw new NodeError("chain.rpc_url is not set");
  const baseMs = options.backoffBaseMs ?? 250;
  const maxMs = options.backoffMaxMs ?? 5_000;

  // One viem transport per URL, without viem's own retries: this module owns retrying and counting.
  const endpoints = urls.map((url) => {
    const factory = /^wss?:/i.test(url)
      ? webSocket(url, { retryCount: 0, timeout: timeoutMs, reconnect: true })
      : http(url, { retryCount: 0, timeout: timeoutMs, batch: false });
    return { url, request: factory({ retryCount: 0, timeout: timeoutMs }).request };
  });

  let preferred = 0;
  let counters = emptyCounters();
  let lastError: string | undefined;
  let lastErrorAt: string | undefined;

  const request = (async ({ method, params }: { method: string; params?: unknown }) => {
    let failure: unknown;
    const retries = NOT_RETRIED.has(method) ? 0 : maxRetries;
    for (let attempt = 0; attempt <= retries; attempt++) {
      const endpoint = endpoints[preferred] ?? endpoints[0];
      if (!endpoint) break;
      counters.requests++;
      counters.byMethod[method] = (counters.byMethod[method] ?? 0) + 1;
      const perEndpoint = endpointCounters(counters, endpoint.url);
      perEndpoint.requests++;
      try {
        return await endpoint.request({ method, params } as Parameters<typeof endpoint.request>[0]);
      } catch (error) {
        if (!isRetryableRpcError(error)) throw error;
        // A provider's range or result cap on eth_getLogs is an answer, not an outage: the event scan shrinks its
        // range at once (retrying the same range 6 times cost ~8 s per refusal).
        if (method === "eth_getLogs" && isLogRangeRefusal(error)) throw error;
        failure = error;
        counters.failures++;
        counters.failuresByMethod[method] = (counters.failuresByMethod[method] ?? 0) + 1;
        perEndpoint.failures++;
        lastError = rpcErrorText(error);
        lastErrorAt = new Date().toISOString();
        if (endpoints.length > 1) {
          preferred = (preferred + 1) % endpoints.length;
          counters.failovers++;
        }
        if (attempt === retries) break;
        const delay = backoffMs(attempt, baseMs, maxMs);
        log.warn("RPC request failed, retrying", {
          method,
          url: urlOrigin(endpoint.url),
          attempt: attempt + 1,
          retry_in_ms: delay,
          error: lastError,
        });
        await sleep(delay);
      }
    }
    counters.exhausted++;
    throw new RpcUnavailableError(
      `RPC request ${method} failed after ${retries + 1} attempt${retries === 0 ? "" : "s"}: ${rpcErrorText(failure)}`,
      { retryable: true, cause: failure, meta: { method } },
    );
  }) as EIP1193RequestFn;

  const transport = custom({ request }, { retryCount: 0, name: "infernet-rpc" });
  // cacheTime 0: getBlockNumber must ask every time (viem caches it for the polling interval by default).
  // No multicall batching: every read is its own eth_call, pinned to a block by the caller.
  const client = createPublicClient({ transport, cacheTime: 0, batch: { multicall: false } });

  return {
    client,
    stats: () => ({
      requests: counters.requests,
      byMethod: { ...counters.byMethod },
      failures: counters.failures,
      failuresByMethod: { ...counters.failuresByMethod },
      byEndpoint: structuredClone(counters.byEndpoint),
      exhausted: counters.exhausted,
      failovers: counters.failovers,
      url: urlOrigin(endpoints[preferred]?.url ?? ""),
      ...(lastError === undefined ? {} : { lastError, lastErrorAt }),
    }),
    resetCounters: () => {
      counters = emptyCounters();
    },
  };
}

function endpointCounters(
  counters: ReturnType<typeof emptyCounters>,
  url: string,
): { requests: number; failures: number } {
  const key = urlOrigin(url);
  let entry = counters.byEndpoint[key];
  if (!entry) {
    entry = { requests: 0, failures: 0 };
    counters.byEndpoint[key] = entry;
  }
  return entry;
}

function emptyCounters() {
  return {
    requests: 0,
    byMethod: {} as Record<string, number>,
    failures: 0,
    failuresByMethod: {} as Record<string, number>,
    byEndpoint: {} as Record<string, { requests: number; failures: number }>,
    exhausted: 0,
    failovers: 0,
  };
}
