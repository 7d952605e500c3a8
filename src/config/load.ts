// Reads and validates config.json. Every problem is collected into ONE ConfigError whose lines read
// `path: reason`; unknown keys are warnings naming the key. Only this module (and main.ts) reads process.env.
import * as v from "valibot";
import { ConfigError } from "../lib/errors.ts";
import { parseCidr } from "../lib/ip.ts";
import { parseJson } from "../lib/json.ts";
import { registerSecret } from "../lib/redact.ts";
import { assignPorts } from "./ports.ts";
import { type Config, ConfigSchema, WalletSchema } from "./schema.ts";

/** Environment variable that supplies the wallet private key, so it need not sit in config.json. */
export const PRIVATE_KEY_ENV = "INFERNET_PRIVATE_KEY";
/** Environment variable that names the config file (the reference's). */
export const CONFIG_PATH_ENV = "INFERNET_CONFIG_PATH";

export interface LoadedConfig {
  config: Config;
  warnings: string[];
}

export async function loadConfigFile(
  path: string,
  env: Record<string, string | undefined>,
): Promise<LoadedConfig> {
  const file = Bun.file(path);
  if (!(await file.exists())) throw new ConfigError([`${path}: file not found`]);
  let raw: unknown;
  try {
    raw = parseJson(await file.text());
  } catch (error) {
    throw new ConfigError([
      `${path}: not valid JSON (${error instanceof Error ? error.message : String(error)})`,
    ]);
  }
  return loadConfig(raw, env);
}

/** Validates an already-parsed config object. Throws ConfigError listing every problem. */
export function loadConfig(raw: unknown, env: Record<string, string | undefined>): LoadedConfig {
  if (!raw || typeof raw !== "object" || Array.isArray(raw))
    throw new ConfigError(["(root): expected a JSON object"]);
  const warnings = unknownKeys(raw, ConfigSchema, "").map(
    (path) => `unknown config key "${path}" is ignored`,
  );
  const result = v.safeParse(ConfigSchema, raw, { abortEarly: false, abortPipeEarly: true });
  if (!result.success) {
    throw new ConfigError(result.issues.map((issue) => `${issuePath(issue)}: ${issueMessage(issue)}`));
  }
  const config = applyEnv(result.output, env);
  const problems = crossFieldProblems(config);
  if (problems.length > 0) throw new ConfigError(problems);
  warnings.push(...managedModeWarnings(config));
  const ports = assignPorts(config.containers);
  warnings.push(...ports.warnings);
  const final: Config = { ...config, containers: ports.containers };
  registerSecret(final.chain.wallet?.private_key);
  registerSecret(final.docker?.password);
  registerSecret(final.redis?.password);
  for (const container of final.containers) registerSecret(container.bearer);
  // RPC providers put API keys in the URL path (…/v3/<key>): keep that part out of every log line and error.
  for (const url of [final.chain.rpc_url, ...final.chain.rpc_fallback_urls])
    registerSecret(urlSecretPart(url));
  return { config: deepFreeze(final), warnings };
}

function applyEnv(config: Config, env: Record<string, string | undefined>): Config {
  const key = env[PRIVATE_KEY_ENV]?.trim();
  if (!key) return config;
  // No wallet object in the file: the schema's defaults for one, with the key from the environment.
  const wallet = config.chain.wallet ?? v.parse(WalletSchema, { private_key: key });
  return { ...config, chain: { ...config.chain, wallet: { ...wallet, private_key: key } } };
}

const ADDRESS = /^0x[0-9a-fA-F]{40}$/;
const PRIVATE_KEY = /^(0x)?[0-9a-fA-F]{64}$/;
const ENV_NAME = /^[^=\s]+$/;

function crossFieldProblems(config: Config): string[] {
  const problems: string[] = [];
  const { chain } = config;
  if (chain.enabled) {
    // The reference's messages are kept inside ours: operators and scripts grep for them.
    if (!chain.rpc_url)
      problems.push(
        "chain.rpc_url: required when chain.enabled is true (rpc_url must be defined when chain is enabled)",
      );
    if (!chain.registry_address)
      problems.push(
        "chain.registry_address: required when chain.enabled is true (registry_address must be defined when chain is enabled)",
      );
    if (!chain.wallet)
      problems.push(
        "chain.wallet: required when chain.enabled is true (wallet must be defined when chain is enabled)",
      );
    else if (!chain.wallet.private_key)
      problems.push(
        `chain.wallet.private_key: required when chain.enabled is true, in the file or in ${PRIVATE_KEY_ENV} (private_key must be defined when chain is enabled)`,
      );
  }
  for (const [field, url] of [
    ["chain.rpc_url", chain.rpc_url],
    ...chain.rpc_fallback_urls.map((u, i) => [`chain.rpc_fallback_urls[${i}]`, u]),
  ] as const) {
    if (url && !isRpcUrl(url)) problems.push(`${field}: not a valid http(s) or ws(s) URL`);
  }
  const seen = new Map<string, number>();
  config.containers.forEach((container, i) => {
    const at = `containers[${i}]`;
    const first = seen.get(container.id);
    if (first !== undefined)
      problems.push(`${at}.id: duplicate id "${container.id}" (also containers[${first}])`);
    else seen.set(container.id, i);
    if (config.manage_containers && !container.image) {
      problems.push(
        `${at}.image: required when manage_containers is true (image must be defined when manage_containers is set to true)`,
      );
    }
    if (container.url && !/^https?:\/\/[^\s]+$/.test(container.url))
      problems.push(`${at}.url: not a valid http(s) URL`);
    container.allowed_ips.forEach((entry, j) => {
      const parsed = parseCidr(entry);
      if (typeof parsed === "string") problems.push(`${at}.allowed_ips[${j}]: ${parsed}`);
    });
    for (const [name, value] of Object.entries(container.env)) {
      if (!ENV_NAME.test(name)) problems.push(`${at}.env.${name}: invalid variable name (no "=" or spaces)`);
      if (value !== null && typeof value === "object")
        problems.push(
          `${at}.env.${name}: must be a string, number or boolean, not ${Array.isArray(value) ? "a list" : "an object"}`,
        );
    }
    container.volumes.forEach((volume, j) => {
      const problem = volumeProblem(volume);
      if (problem) problems.push(`${at}.volumes[${j}]: ${problem}`);
    });
  });
  for (const key of [
    "trusted_proxies",
    "status_allowed_ips",
    "metrics_allowed_ips",
    "dashboard_allowed_ips",
  ] as const) {
    config.server[key]?.forEach((entry, i) => {
      const parsed = parseCidr(entry);
      if (typeof parsed === "string") problems.push(`server.${key}[${i}]: ${parsed}`);
    });
  }
  return problems;
}

/**
 * Problems that the reference only finds when the chain starts (malformed addresses and keys). They are not
 * load errors, so that the reference's own config.sample.json with its "0x..." placeholders still loads;
 * the node checks them before it starts the chain, and check-config reports them.
 */
export function chainStartupProblems(config: Config): string[] {
  const { chain } = config;
  if (!chain.enabled) return [];
  const problems: string[] = [];
  if (chain.registry_address && !ADDRESS.test(chain.registry_address)) {
    problems.push("chain.registry_address: not a valid address (0x followed by 40 hex digits)");
  }
  const wallet = chain.wallet;
  if (wallet?.private_key && !PRIVATE_KEY.test(wallet.private_key)) {
    problems.push("chain.wallet.private_key: not a valid private key (64 hex digits, 0x optional)");
  }
  if (wallet?.payment_address && !ADDRESS.test(wallet.payment_address)) {
    problems.push("chain.wallet.payment_address: not a valid address (0x followed by 40 hex digits)");
  }
  config.containers.forEach((container, i) => {
    for (const token of Object.keys(container.accepted_payments)) {
      if (!ADDRESS.test(token))
        problems.push(`containers[${i}].accepted_payments: "${token}" is not a token address`);
    }
    for (const field of ["allowed_addresses", "allowed_delegate_addresses"] as const) {
      container[field].forEach((address, j) => {
        if (!ADDRESS.test(address)) problems.push(`containers[${i}].${field}[${j}]: not a valid address`);
      });
    }
  });
  return problems;
}

/** The path and query of a URL, the part that may carry an API key; undefined when there is none. */
function urlSecretPart(url: string | null): string | undefined {
  if (!url) return undefined;
  try {
    const parsed = new URL(url);
    const part = `${parsed.pathname}${parsed.search}`;
    return part.length > 1 ? part : undefined;
  } catch {
    return undefined;
  }
}

function managedModeWarnings(config: Config): string[] {
  if (!config.manage_containers) return [];
  const warnings: string[] = [];
  if (config.containers.some((c) => c.url))
    warnings.push(
      "containers.url is set: jobs for those containers go to that URL, not to the managed container's port",
    );
  if (config.containers.some((c) => c.bearer))
    warnings.push("containers.bearer is set: it is sent only to containers that also set url");
  return warnings;
}

function isRpcUrl(url: string): boolean {
  try {
    const parsed = new URL(url);
    return (
      ["http:", "https:", "ws:", "wss:"].includes(parsed.protocol) &&
      parsed.hostname !== "" &&
      !/\s/.test(url)
    );
  } catch {
    return false;
  }
}

/** Docker bind string `host:container[:mode]`: both paths non-empty, container path absolute. */
function volumeProblem(volume: string): string | undefined {
  const parts = volume.split(":");
  if (parts.length < 2 || parts.length > 3)
    return `"${volume}" must look like host_path:container_path[:mode]`;
  const [host = "", container = "", mode] = parts;
  if (!host) return `"${volume}": the host path or volume name is empty`;
  if (!container.startsWith("/")) return `"${volume}": the container path must be absolute`;
  if (
    mode !== undefined &&
    !/^(ro|rw|z|Z|nocopy|consistent|cached|delegated|r?shared|r?slave|r?private)(,(ro|rw|z|Z|nocopy|r?shared|r?slave|r?private))*$/.test(
      mode,
    )
  ) {
    return `"${volume}": unknown mode "${mode}"`;
  }
  return undefined;
}

/** valibot reports a missing key as an object-level issue; say "required" instead of its generic text. */
function issueMessage(issue: v.BaseIssue<unknown>): string {
  if (issue.type === "object" && issue.input === undefined && issue.expected?.startsWith('"'))
    return "required";
  return issue.message;
}

function issuePath(issue: v.BaseIssue<unknown>): string {
  const path = issue.path ?? [];
  let out = "";
  for (const item of path) {
    const key = (item as { key: unknown }).key;
    out += typeof key === "number" ? `[${key}]` : out ? `.${String(key)}` : String(key);
  }
  return out || "(root)";
}

type AnySchema = { type: string; entries?: Record<string, AnySchema>; wrapped?: AnySchema; item?: AnySchema };

/** Paths of keys in `raw` that the schema does not know (records such as env are open by design). */
function unknownKeys(raw: unknown, schema: AnySchema, prefix: string): string[] {
  let current = schema;
  while (current.wrapped) current = current.wrapped;
  if (current.type === "array" && current.item && Array.isArray(raw)) {
    const item = current.item;
    return raw.flatMap((value, i) => unknownKeys(value, item, `${prefix}[${i}]`));
  }
  if (current.type !== "object" || !current.entries || !raw || typeof raw !== "object" || Array.isArray(raw))
    return [];
  const entries = current.entries;
  return Object.entries(raw).flatMap(([key, value]) => {
    const path = prefix ? `${prefix}.${key}` : key;
    const inner = entries[key];
    return inner ? unknownKeys(value, inner, path) : [path];
  });
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === "object" && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const inner of Object.values(value)) deepFreeze(inner);
  }
  return value;
}
