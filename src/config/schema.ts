// The config.json schema: every field of the reference v1.4.0 with its default, plus our additions (each with
// a default, so an existing file loads unchanged). Coercion follows pydantic's lax mode: numeric strings become
// numbers ("port": "3000"), booleans accept "true"/"false"/"yes"/"no"/0/1. Cross-field rules live in load.ts.
import * as v from "valibot";

const INT_TEXT = /^[+-]?\d+$/;
const FLOAT_TEXT = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;
const TRUE_WORDS = new Set(["true", "yes", "on", "1", "y", "t"]);
const FALSE_WORDS = new Set(["false", "no", "off", "0", "n", "f"]);

/** Integer, also from a numeric string or bigint in the safe range. */
const int = () =>
  v.pipe(
    v.union([v.number(), v.string(), v.bigint()], "expected an integer"),
    v.rawTransform(({ dataset, addIssue, NEVER }) => {
      const raw = dataset.value;
      const text = typeof raw === "string" ? raw.trim() : String(raw);
      const value = typeof raw === "number" ? raw : INT_TEXT.test(text) ? Number(text) : Number.NaN;
      if (!Number.isSafeInteger(value)) {
        addIssue({ message: `expected an integer, got ${JSON.stringify(String(raw))}` });
        return NEVER;
      }
      return value;
    }),
  );

/** Number (int or float), also from a numeric string. */
const float = () =>
  v.pipe(
    v.union([v.number(), v.string()], "expected a number"),
    v.rawTransform(({ dataset, addIssue, NEVER }) => {
      const raw = dataset.value;
      const value = typeof raw === "number" ? raw : FLOAT_TEXT.test(raw.trim()) ? Number(raw) : Number.NaN;
      if (!Number.isFinite(value)) {
        addIssue({ message: `expected a number, got ${JSON.stringify(raw)}` });
        return NEVER;
      }
      return value;
    }),
  );

/** Token amount (wei): any non-negative integer, kept exact as a bigint. */
const amount = () =>
  v.pipe(
    v.union([v.number(), v.string(), v.bigint()], "expected a non-negative integer amount"),
    v.rawTransform(({ dataset, addIssue, NEVER }) => {
      const raw = dataset.value;
      const text = typeof raw === "string" ? raw.trim() : String(raw);
      if ((typeof raw === "number" && !Number.isSafeInteger(raw)) || !/^\d+$/.test(text)) {
        addIssue({ message: `expected a non-negative integer amount, got ${JSON.stringify(String(raw))}` });
        return NEVER;
      }
      return BigInt(text);
    }),
  );

const bool = () =>
  v.pipe(
    v.union([v.boolean(), v.number(), v.string()], "expected a boolean"),
    v.rawTransform(({ dataset, addIssue, NEVER }) => {
      const raw = dataset.value;
      if (typeof raw === "boolean") return raw;
      const word = String(raw).trim().toLowerCase();
      if (TRUE_WORDS.has(word)) return true;
      if (FALSE_WORDS.has(word)) return false;
      addIssue({ message: `expected a boolean, got ${JSON.stringify(raw)}` });
      return NEVER;
    }),
  );

const str = () => v.string("expected a string");
const nullableStr = () => v.nullish(str(), null);
const port = () =>
  v.pipe(
    int(),
    v.minValue(1, "must be a port between 1 and 65535"),
    v.maxValue(65535, "must be a port between 1 and 65535"),
  );
const nonNegative = (what: string) => v.minValue<number, 0, string>(0, `${what} must not be negative`);
const positive = (what: string) => v.minValue<number, 1, string>(1, `${what} must be at least 1`);
const strList = () => v.optional(v.array(str(), "expected a list of strings"), []);

export const ContainerSchema = v.object({
  id: v.pipe(
    str(),
    v.trim(),
    v.minLength(1, "must not be empty"),
    v.regex(/^[^,\s]+$/, "must not contain commas or spaces"),
  ),
  image: v.optional(str(), ""),
  url: v.optional(str(), ""),
  bearer: v.optional(str(), ""),
  port: v.optional(port(), 3000),
  external: v.optional(bool(), true),
  gpu: v.optional(bool(), false),
  accepted_payments: v.optional(
    v.record(str(), amount(), "expected an object of token address → amount"),
    {},
  ),
  allowed_ips: strList(),
  allowed_addresses: strList(),
  allowed_delegate_addresses: strList(),
  description: v.optional(str(), ""),
  command: v.optional(str(), ""),
  env: v.optional(v.record(str(), v.unknown(), "expected an object of NAME → value"), {}),
  generates_proofs: v.optional(bool(), false),
  volumes: strList(),
});

export const WalletSchema = v.object({
  max_gas_limit: v.optional(v.pipe(int(), positive("max_gas_limit")), 5_000_000),
  private_key: nullableStr(),
  payment_address: nullableStr(),
  allowed_sim_errors: strList(),
  // Additions: the transaction manager's replacement policy and fee ceiling.
  replace_after_blocks: v.optional(v.pipe(int(), positive("replace_after_blocks")), 5),
  fee_bump_percent: v.optional(
    v.pipe(int(), v.minValue(11, "fee_bump_percent must be at least 11 (nodes refuse smaller bumps)")),
    25,
  ),
  max_fee_per_gas: v.nullish(v.pipe(int(), positive("max_fee_per_gas")), null),
  reorg_depth: v.optional(v.pipe(int(), nonNegative("reorg_depth")), 12),
});

const SnapshotSyncSchema = v.object({
  sleep: v.optional(v.pipe(float(), nonNegative("sleep")), 1.0),
  batch_size: v.optional(v.pipe(int(), positive("batch_size")), 500),
  starting_sub_id: v.optional(v.pipe(int(), nonNegative("starting_sub_id")), 0),
  sync_period: v.optional(v.pipe(float(), nonNegative("sync_period")), 0.5),
});

const ChainSchema = v.object({
  enabled: v.optional(bool(), false),
  rpc_url: nullableStr(),
  trail_head_blocks: v.optional(v.pipe(int(), nonNegative("trail_head_blocks")), 1),
  registry_address: nullableStr(),
  wallet: v.nullish(WalletSchema, null),
  snapshot_sync: v.optional(SnapshotSyncSchema, {}),
  // Additions: RPC failover and bounds.
  rpc_fallback_urls: strList(),
  rpc_timeout: v.optional(v.pipe(float(), v.minValue(0.1, "rpc_timeout must be at least 0.1 s")), 30),
  rpc_max_retries: v.optional(v.pipe(int(), nonNegative("rpc_max_retries")), 5),
  // Hot standby: with Redis configured, node processes sharing the wallet hold a lease in Redis; only the holder
  // sends. A standby takes over at most this long after the holder stops renewing.
  // 11 s: a standby polls every ttl/3, so it takes over at most ttl + ttl/3 (≈ 14.7 s) after the holder's last
  // renewal — within the 15 s an operator is promised by default.
  lease_ttl: v.optional(v.pipe(float(), v.minValue(1, "lease_ttl must be at least 1 s")), 11),
});

const RateLimitSchema = v.object({
  num_requests: v.optional(v.pipe(int(), positive("num_requests")), 60),
  period: v.optional(v.pipe(float(), v.minValue(0.001, "period must be positive")), 60),
  // Addition: IPv6 clients share a bucket per network of this many leading bits (unset → 64; 128 = per address).
  ipv6_prefix: v.optional(
    v.pipe(int(), v.minValue(1, "ipv6_prefix must be 1-128"), v.maxValue(128, "ipv6_prefix must be 1-128")),
  ),
});

const ServerSchema = v.object({
  port: v.optional(port(), 4000),
  rate_limit: v.optional(RateLimitSchema, {}),
  // Additions.
  host: v.optional(str(), "0.0.0.0"),
  trusted_proxies: strList(),
  status_allowed_ips: v.nullish(v.array(str(), "expected a list of IPs/CIDRs"), null),
  // Who may open GET /dashboard; null → loopback only.
  dashboard_allowed_ips: v.nullish(v.array(str(), "expected a list of IPs/CIDRs"), null),
  max_body_bytes: v.optional(v.pipe(int(), positive("max_body_bytes")), 16 * 1024 * 1024),
  max_batch_jobs: v.optional(v.pipe(int(), positive("max_batch_jobs")), 1000),
  // Who may scrape GET /metrics; null → loopback only (a scraper elsewhere is an explicit choice).
  metrics_allowed_ips: v.nullish(v.array(str(), "expected a list of IPs/CIDRs"), null),
});

// The Metric Sender's fluent-bit sidecar (the reference hardcoded fluentbit:24224). Intervals in seconds.
const StatsSchema = v.object({
  host: v.optional(v.pipe(str(), v.trim(), v.minLength(1, "must not be empty")), "fluentbit"),
  port: v.optional(port(), 24224),
  node_interval: v.optional(v.pipe(float(), v.minValue(1, "node_interval must be at least 1 s")), 3600),
  live_interval: v.optional(v.pipe(float(), v.minValue(0.1, "live_interval must be at least 0.1 s")), 60),
  // Records kept while the receiver is unreachable; the oldest are dropped (and counted) beyond it.
  max_queue: v.optional(v.pipe(int(), positive("max_queue")), 1000),
});

const DockerSchema = v.object({
  username: str(),
  password: str(),
  server_address: v.optional(str(), ""),
});

const LogSchema = v.object({
  path: v.optional(str(), "infernet_node.log"),
  max_file_size: v.optional(v.pipe(int(), nonNegative("max_file_size")), 1_073_741_824),
  backup_count: v.optional(v.pipe(int(), nonNegative("backup_count")), 2),
  // Additions.
  level: v.optional(
    v.picklist(["debug", "info", "warn", "error"], "expected debug, info, warn or error"),
    "info",
  ),
  format: v.optional(v.picklist(["auto", "pretty", "json"], "expected auto, pretty or json"), "auto"),
});

const RedisSchema = v.object({
  host: v.optional(str(), "redis"),
  port: v.optional(port(), 6379),
  // Additions.
  password: nullableStr(),
  db: v.optional(v.pipe(int(), nonNegative("db")), 0),
  key_prefix: v.optional(str(), "infernet:"),
});

const StoreSchema = v.object({
  path: v.optional(str(), "infernet_jobs.sqlite"),
  max_completed_jobs: v.optional(v.pipe(int(), positive("max_completed_jobs")), 100_000),
  completed_ttl: v.optional(v.pipe(float(), nonNegative("completed_ttl")), 0),
  pending_ttl: v.optional(v.pipe(float(), v.minValue(1, "pending_ttl must be at least 1 s")), 900),
  // This node's identity in a shared store (several nodes on one Redis): recovery after a restart fails only
  // jobs this instance left running. null → "<hostname>:<server.port>", stable across restarts.
  instance_id: nullableStr(),
});

export const ConfigSchema = v.object({
  containers: v.optional(v.array(ContainerSchema, "expected a list of containers"), []),
  chain: v.optional(ChainSchema, {}),
  docker: v.nullish(DockerSchema, null),
  forward_stats: v.optional(bool(), true),
  stats: v.optional(StatsSchema, {}),
  log: v.optional(LogSchema, {}),
  manage_containers: v.optional(bool(), true),
  // Absent → the embedded store (our default); present → Redis with the reference's defaults.
  redis: v.nullish(RedisSchema, null),
  server: v.optional(ServerSchema, {}),
  startup_wait: v.optional(v.pipe(float(), nonNegative("startup_wait")), 5.0),
  // Additions.
  store: v.optional(StoreSchema, {}),
  container_bind_address: v.optional(str(), "127.0.0.1"),
  container_host: nullableStr(),
  container_ready_timeout: v.optional(v.pipe(float(), nonNegative("container_ready_timeout")), 60),
  job_timeout: v.optional(v.pipe(float(), v.minValue(0.1, "job_timeout must be at least 0.1 s")), 180),
  stream_timeout: v.optional(v.pipe(float(), v.minValue(0.1, "stream_timeout must be at least 0.1 s")), 60),
  shutdown_timeout: v.optional(v.pipe(float(), v.minValue(1, "shutdown_timeout must be at least 1 s")), 30),
});

export type Config = v.InferOutput<typeof ConfigSchema>;
export type ContainerConfig = v.InferOutput<typeof ContainerSchema>;
export type ChainConfig = Config["chain"];
export type WalletConfig = NonNullable<ChainConfig["wallet"]>;
