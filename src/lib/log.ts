// Tiny structured logger. One JSON object per line to the log file (rotated by size), and to the console a
// readable `time level component message key=value` line on a TTY (JSON lines otherwise, for log shippers, or
// whenever LOG_FORMAT=json); colours on a terminal unless NO_COLOR is set.
// Not pino: its worker-thread transports break inside `bun build --compile` binaries.
import { closeSync, existsSync, openSync, renameSync, rmSync, statSync, writeSync } from "node:fs";
import { redactText, redactValue } from "./redact.ts";

export type LogLevel = "debug" | "info" | "warn" | "error";
const LEVELS: Record<LogLevel | "silent", number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 99 };

export type LogFields = Record<string, unknown>;
export interface LogRecord {
  ts: string;
  level: LogLevel;
  msg: string;
  component?: string;
  [key: string]: unknown;
}
export type LogSink = (record: LogRecord) => void;

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  child(bindings: LogFields): Logger;
}

export interface LogSettings {
  consoleLevel: LogLevel | "silent";
  consoleFormat: "pretty" | "json";
  file?: { path: string; maxBytes: number; backups: number; level: LogLevel } | undefined;
}

/** A size-rotated JSON-lines file: `path`, `path.1`, … `path.<backups>`, like Python's RotatingFileHandler. */
class RotatingFile {
  private fd: number;
  private size: number;
  constructor(
    private readonly path: string,
    private readonly maxBytes: number,
    private readonly backups: number,
  ) {
    this.fd = openSync(path, "a");
    this.size = statSync(path).size;
  }
  write(line: string): void {
    const bytes = Buffer.byteLength(line);
    if (this.maxBytes > 0 && this.size + bytes > this.maxBytes && this.size > 0) this.rotate();
    writeSync(this.fd, line);
    this.size += bytes;
  }
  private rotate(): void {
    closeSync(this.fd);
    if (this.backups <= 0) rmSync(this.path, { force: true });
    for (let i = this.backups - 1; i >= 1; i--) {
      if (existsSync(`${this.path}.${i}`)) renameSync(`${this.path}.${i}`, `${this.path}.${i + 1}`);
    }
    if (this.backups > 0) renameSync(this.path, `${this.path}.1`);
    this.fd = openSync(this.path, "a");
    this.size = 0;
  }
  close(): void {
    closeSync(this.fd);
  }
}

const COLORS: Record<LogLevel, string> = {
  debug: "\x1b[90m",
  info: "\x1b[32m",
  warn: "\x1b[33m",
  error: "\x1b[31m",
};
const DIM = "\x1b[2m";
const CYAN = "\x1b[36m";
const RESET = "\x1b[0m";

/** A field value as one token: bare when it has no spaces or quotes, else JSON-quoted; errors as "Name: message". */
function fieldText(value: unknown): string {
  if (value && typeof value === "object" && "message" in value && "name" in value) {
    const { name, message } = value as { name: unknown; message: unknown };
    value = `${String(name)}: ${String(message)}`;
  }
  if (typeof value === "string")
    return value !== "" && /^[^\s"=]+$/.test(value) ? value : JSON.stringify(value);
  return JSON.stringify(value) ?? String(value);
}

/**
 * The console line for a person: `HH:MM:SS.mmm LEVEL [component] message key=value …` (UTC time, one line per
 * event: newlines in the message are shown as \n). Colours: level by severity, component cyan, time and keys dim.
 */
export function formatPretty(record: LogRecord, color: boolean): string {
  const { ts, level, msg, component, ...rest } = record;
  const paint = (code: string, text: string) => (color ? `${code}${text}${RESET}` : text);
  const fields = Object.entries(rest)
    .map(([key, value]) => `${paint(DIM, `${key}=`)}${fieldText(value)}`)
    .join(" ");
  const where = component ? `${paint(CYAN, `[${component}]`)} ` : "";
  const text = msg.replace(/\r?\n/g, "\\n");
  return `${paint(DIM, ts.slice(11, 23))} ${paint(COLORS[level], level.toUpperCase().padEnd(5))} ${where}${text}${fields ? ` ${fields}` : ""}\n`;
}

/**
 * The console format: $LOG_FORMAT (pretty or json) wins, then the config's log.format; "auto" is pretty on a
 * terminal and JSON lines anywhere else (a pipe, a file, the journal).
 */
export function consoleFormatFor(
  configured: "auto" | "pretty" | "json",
  env: Record<string, string | undefined>,
  isTTY: boolean,
): "pretty" | "json" {
  const fromEnv = env.LOG_FORMAT;
  if (fromEnv === "pretty" || fromEnv === "json") return fromEnv;
  if (configured !== "auto") return configured;
  return isTTY ? "pretty" : "json";
}

/** Colours only on a terminal, and never when NO_COLOR is set to anything non-empty (no-color.org). */
export function useColor(env: Record<string, string | undefined>, isTTY: boolean): boolean {
  return isTTY && !env.NO_COLOR;
}

function defaultSettings(): LogSettings {
  const envLevel = process.env.LOG_LEVEL as LogLevel | "silent" | undefined;
  return {
    consoleLevel: envLevel && envLevel in LEVELS ? envLevel : "info",
    consoleFormat: consoleFormatFor("auto", process.env, Boolean(process.stderr.isTTY)),
  };
}

let settings: LogSettings = defaultSettings();
let file: RotatingFile | undefined;
const extraSinks = new Set<LogSink>();

/** Applies the log settings from the config; called once by main. */
export function configureLogging(next: LogSettings): void {
  file?.close();
  file = undefined;
  settings = next;
  if (next.file) file = new RotatingFile(next.file.path, next.file.maxBytes, next.file.backups);
}

export function closeLogging(): void {
  file?.close();
  file = undefined;
}

/** Adds a sink that sees every record (tests use it to assert on log lines); returns its remover. */
export function addLogSink(sink: LogSink): () => void {
  extraSinks.add(sink);
  return () => extraSinks.delete(sink);
}

function emit(level: LogLevel, msg: string, bindings: LogFields, fields?: LogFields): void {
  const record = {
    ts: new Date().toISOString(),
    level,
    msg: redactText(msg),
    ...(redactValue({ ...bindings, ...fields }) as LogFields),
  } as LogRecord;
  const rank = LEVELS[level];
  if (rank >= LEVELS[settings.consoleLevel]) {
    const line =
      settings.consoleFormat === "pretty"
        ? formatPretty(record, useColor(process.env, Boolean(process.stderr.isTTY)))
        : `${JSON.stringify(record)}\n`;
    process.stderr.write(line);
  }
  if (file && settings.file && rank >= LEVELS[settings.file.level]) file.write(`${JSON.stringify(record)}\n`);
  for (const sink of extraSinks) sink(record);
}

export function createLogger(bindings: LogFields = {}): Logger {
  return {
    debug: (msg, fields) => emit("debug", msg, bindings, fields),
    info: (msg, fields) => emit("info", msg, bindings, fields),
    warn: (msg, fields) => emit("warn", msg, bindings, fields),
    error: (msg, fields) => emit("error", msg, bindings, fields),
    child: (more) => createLogger({ ...bindings, ...more }),
  };
}

/** Logger tagged with the component name, e.g. `createLog("listener")`. */
export function createLog(component: string): Logger {
  return createLogger({ component });
}
