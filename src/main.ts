// Entry point: CLI parsing, config loading, logging set-up, signals and exit codes.
// Exit codes: 0 clean shutdown, 1 configuration or fatal start-up problem (or the shutdown deadline passed).
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { CONFIG_PATH_ENV, chainStartupProblems, loadConfigFile } from "./config/load.ts";
import type { Config } from "./config/schema.ts";
import { ConfigError, describeError } from "./lib/errors.ts";
import { closeLogging, configureLogging, consoleFormatFor, createLog, type LogSettings } from "./lib/log.ts";
import { urlOrigin } from "./lib/redact.ts";
import { runServices } from "./lib/service.ts";
import { createNode } from "./node.ts";
import { COMPAT_VERSION, NODE_COMMIT, NODE_VERSION } from "./version.ts";

const HELP = `infernet-node ${NODE_VERSION} — Infernet Node (drop-in for Ritual's infernet-node v${COMPAT_VERSION})

Usage:
  infernet-node [--config PATH]               run the node
  infernet-node check-config [--config PATH]  validate the config and print a summary; starts nothing
  infernet-node --version                     print the version
  infernet-node --help                        print this help

The config path defaults to $${CONFIG_PATH_ENV} or ./config.json.
The wallet private key may be given in $INFERNET_PRIVATE_KEY instead of config.json.
`;

interface Cli {
  command: "run" | "check-config" | "version" | "help";
  configPath: string;
}

function parseCli(argv: string[]): Cli | string {
  let command: Cli["command"] = "run";
  let configPath = process.env[CONFIG_PATH_ENV] || "config.json";
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? "";
    if (arg === "--version" || arg === "-v") command = "version";
    else if (arg === "--help" || arg === "-h") command = "help";
    else if (arg === "check-config") command = "check-config";
    else if (arg === "--config" || arg === "-c") {
      const next = argv[++i];
      if (!next) return "--config needs a path";
      configPath = next;
    } else if (arg.startsWith("--config=")) configPath = arg.slice("--config=".length);
    else return `unknown argument "${arg}" (see --help)`;
  }
  return { command, configPath };
}

function summary(config: Config, path: string): string {
  const lines = [
    `config ${path}: ok`,
    `containers: ${config.containers.length === 0 ? "none" : config.containers.map((c) => `${c.id} (port ${c.port}${c.url ? `, url ${urlOrigin(c.url)}` : ""})`).join(", ")}`,
    `manage_containers: ${config.manage_containers}`,
    `chain: ${config.chain.enabled ? `on (rpc ${urlOrigin(config.chain.rpc_url ?? "")}, registry ${config.chain.registry_address})` : "off"}`,
    `store: ${config.redis ? `redis ${config.redis.host}:${config.redis.port}` : `embedded (${config.store.path})`}`,
    `server: ${config.server.host}:${config.server.port}, rate limit ${config.server.rate_limit.num_requests}/${config.server.rate_limit.period}s`,
  ];
  return `${lines.join("\n")}\n`;
}

async function main(): Promise<number> {
  const cli = parseCli(process.argv.slice(2));
  if (typeof cli === "string") {
    process.stderr.write(`infernet-node: ${cli}\n`);
    return 1;
  }
  if (cli.command === "version") {
    process.stdout.write(
      `infernet-node ${NODE_VERSION} (commit ${NODE_COMMIT}, compatible with infernet-node v${COMPAT_VERSION})\n`,
    );
    return 0;
  }
  if (cli.command === "help") {
    process.stdout.write(HELP);
    return 0;
  }
  let loaded: Awaited<ReturnType<typeof loadConfigFile>>;
  try {
    loaded = await loadConfigFile(cli.configPath, process.env);
  } catch (error) {
    process.stderr.write(
      `infernet-node: ${error instanceof ConfigError ? error.message : describeError(error)}\n`,
    );
    return 1;
  }
  const { config, warnings } = loaded;
  const startupProblems = chainStartupProblems(config);
  if (cli.command === "check-config") {
    for (const warning of warnings) process.stderr.write(`warning: ${warning}\n`);
    if (startupProblems.length > 0) {
      process.stderr.write(`infernet-node: ${new ConfigError(startupProblems).message}\n`);
      return 1;
    }
    process.stdout.write(summary(config, cli.configPath));
    return 0;
  }
  if (startupProblems.length > 0) {
    process.stderr.write(`infernet-node: ${new ConfigError(startupProblems).message}\n`);
    return 1;
  }
  return runNode(config, warnings);
}

const LOG_LEVELS = new Set(["debug", "info", "warn", "error", "silent"]);

/** LOG_LEVEL from the environment when it names a level, else the config's. */
function consoleLevel(config: Config): LogSettings["consoleLevel"] {
  const fromEnv = process.env.LOG_LEVEL;
  return fromEnv && LOG_LEVELS.has(fromEnv) ? (fromEnv as LogSettings["consoleLevel"]) : config.log.level;
}

async function runNode(config: Config, warnings: string[]): Promise<number> {
  const format = consoleFormatFor(config.log.format, process.env, Boolean(process.stderr.isTTY));
  try {
    mkdirSync(dirname(config.log.path), { recursive: true });
    configureLogging({
      consoleLevel: consoleLevel(config),
      consoleFormat: format,
      file: {
        path: config.log.path,
        maxBytes: config.log.max_file_size,
        backups: config.log.backup_count,
        level: "debug",
      },
    });
  } catch (error) {
    process.stderr.write(
      `infernet-node: cannot open the log file log.path ${config.log.path}: ${describeError(error)}\n`,
    );
    return 1;
  }
  const log = createLog("node");
  for (const warning of warnings) log.warn(warning);
  log.info("Starting infernet-node", {
    version: NODE_VERSION,
    commit: NODE_COMMIT,
    compat: COMPAT_VERSION,
    pid: process.pid,
  });

  const controller = new AbortController();
  let deadlinePassed = false;
  let firstSignalAt = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    if (controller.signal.aborted) {
      // A signal that arrives with the first one (a wrapper forwarding SIGTERM to its process group, say) is the
      // same request; one sent a second later is an operator insisting.
      if (performance.now() - firstSignalAt < 1000) return;
      log.warn("second signal, exiting now", { signal });
      process.exit(1);
    }
    firstSignalAt = performance.now();
    log.info("Shutting down node", { signal, deadline_s: config.shutdown_timeout });
    controller.abort();
    // A hard deadline: whatever has not drained by then is recorded as failed on the next start.
    setTimeout(() => {
      deadlinePassed = true;
      log.error("shutdown deadline passed, exiting", { deadline_s: config.shutdown_timeout });
      closeLogging();
      process.exit(1);
    }, config.shutdown_timeout * 1000).unref();
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);
  // Every part recovers from its own failures; a stray throw from a library callback (a socket event, say)
  // is logged rather than allowed to end a node that is otherwise serving.
  process.on("unhandledRejection", (reason) => log.error("unhandled rejection", { error: reason }));
  process.on("uncaughtException", (error) => log.error("uncaught exception", { error }));

  const startedAt = performance.now();
  try {
    const node = createNode(config, log, warnings);
    await runServices(node.services, {
      signal: controller.signal,
      log,
      setupTimeoutMs: setupTimeoutMs(config),
      onReady: () => log.info("Node ready", { startup_ms: Math.round(performance.now() - startedAt) }),
    });
  } catch (error) {
    if (controller.signal.aborted) {
      // Stopped while starting up (a signal during image pulls or the chain connection): a clean stop.
      log.info("Node stopped during start-up", { reason: describeError(error) });
      closeLogging();
      return deadlinePassed ? 1 : 0;
    }
    log.error(`Node failed to start: ${describeError(error)}`, { error });
    closeLogging();
    return 1;
  }
  log.info("Node stopped");
  closeLogging();
  return deadlinePassed ? 1 : 0;
}

/** Each setup step (pulls, readiness, registry) is bounded; generous enough for image pulls. */
function setupTimeoutMs(config: Config): number {
  return (600 + config.startup_wait + config.container_ready_timeout) * 1000;
}

process.exit(await main());
