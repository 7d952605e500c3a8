// Tiny structured logger. One JSON object per line to the log file (rotated by size), and to the console a
// readable `time level component message key=value` line on a TTY (JSON lines otherwise, for log shippers, or
// whenever LOG_FORMAT=json); colours on a terminal unless NO_COLOR is set.
// Not pino: its worker-thread transports break inside `bun build --compile` binaries.
import { closeSync, existsSync, openSync, renameSync, rmSync, statSync, writeSync } from "node:fs";
import { redactText, redactValue } from "./redact.ts";
import type { ServiceHealth } from "./service.ts";

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

/** Something the log file itself went through (it cannot be written, it can again): said on the console only. */
type FileProblem = (level: LogLevel, msg: string, fields: LogFields) => void;

/** After a failed write, the file is tried again at most this often; lines in between are dropped and counted. */
const FILE_RETRY_MS = 1_000;

/**
 * A size-rotated JSON-lines file: `path`, `path.1`, … `path.<backups>`, like Python's RotatingFileHandler.
 * A write that fails (a full disk, a file system gone read-only) never reaches the caller: logging must not
 * take down the code that logs. The failure is reported once on the console, lines are dropped (counted) while
 * it lasts, and the file is tried again at most once a second; the first line that lands again is preceded by
 * a record saying how many were lost.
 */
class RotatingFile {
  private fd: number | undefined;
  private size: number;
  private failingSince: number | undefined;
  private lastAttempt = 0;
  private dropped = 0;
  private lastError = "";
  /** The last write stopped mid-line: the next one starts on a new line so that its line stays whole. */
  private partial = false;
  constructor(
    private readonly path: string,
    private readonly maxBytes: number,
    private readonly backups: number,
    private readonly problem: FileProblem,
  ) {
    this.fd = openSync(path, "a");
    this.size = statSync(path).size;
  }
  write(line: string): void {
    const now = Date.now();
    if (this.failingSince !== undefined && now - this.lastAttempt < FILE_RETRY_MS) {
      this.dropped++;
      return;
    }
    this.lastAttempt = now;
    try {
      if (this.failingSince !== undefined) this.recover(now);
      this.append(line);
    } catch (error) {
      this.dropped++;
      this.lastError = error instanceof Error ? error.message : String(error);
      if (this.failingSince !== undefined) return;
      this.failingSince = now;
      this.problem(
        "error",
        "cannot write the log file; log lines are dropped until it can be written again",
        {
          path: this.path,
          error: error instanceof Error ? error.message : String(error),
        },
      );
    }
  }
  /** The file takes writes again: first a record of what was lost (which may itself fail: then still failing). */
  private recover(now: number): void {
    const lost = {
      ts: new Date(now).toISOString(),
      level: "warn",
      msg: "log file writable again; lines were dropped while it was not",
      component: "log",
      dropped: this.dropped,
      since: new Date(this.failingSince ?? now).toISOString(),
    };
    this.append(`${JSON.stringify(lost)}\n`);
    this.problem("warn", lost.msg, { path: this.path, dropped: this.dropped, since: lost.since });
    this.failingSince = undefined;
    this.dropped = 0;
  }
  /** Undefined while the file takes every line. */
  failure(): ServiceHealth | undefined {
    if (this.failingSince === undefined) return undefined;
    return {
      ok: false,
      detail: `cannot write ${this.path} since ${new Date(this.failingSince).toISOString()} (${this.lastError}); ${this.dropped} lines dropped`,
    };
  }
  private append(line: string): void {
    const text = this.partial ? `\n${line}` : line;
    const bytes = Buffer.byteLength(text);
    if (this.maxBytes > 0 && this.size + bytes > this.maxBytes && this.size > 0) this.rotate();
    this.fd ??= openSync(this.path, "a");
    const buffer = Buffer.from(text);
    // A regular file takes part of a write when the disk fills up mid-line, then refuses the rest.
    const written = writeSync(this.fd, buffer);
    this.size += written;
    this.partial = written < buffer.length;
    if (this.partial) throw new Error(`ENOSPC: only ${written} of ${buffer.length} bytes written`);
  }
  private rotate(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
    if (this.backups <= 0) rmSync(this.path, { force: true });
    for (let i = this.backups - 1; i >= 1; i--) {
      if (existsSync(`${this.path}.${i}`)) renameSync(`${this.path}.${i}`, `${this.path}.${i + 1}`);
    }
    if (this.backups > 0) renameSync(this.path, `${this.path}.1`);
    this.fd = openSync(this.path, "a");
    this.size = 0;
    this.partial = false;
  }
  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
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
  if (next.file)
    file = new RotatingFile(next.file.path, next.file.maxBytes, next.file.backups, (level, msg, fields) =>
      writeConsole(makeRecord(level, msg, { component: "log" }, fields)),
    );
}

/**
 * The log file's health while it cannot be written (for /health, where it shows as degraded: the node still
 * works), undefined while it can or when there is none.
 */
export function logFileHealth(): ServiceHealth | undefined {
  return file?.failure();
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

function makeRecord(level: LogLevel, msg: string, bindings: LogFields, fields?: LogFields): LogRecord {
  return {
    ts: new Date().toISOString(),
    level,
    msg: redactText(msg),
    ...(redactValue({ ...bindings, ...fields }) as LogFields),
  } as LogRecord;
}

function writeConsole(record: LogRecord): void {
  if (LEVELS[record.level] < LEVELS[settings.consoleLevel]) return;
  const line =
    settings.consoleFormat === "pretty"
      ? formatPretty(record, useColor(process.env, Boolean(process.stderr.isTTY)))
      : `${JSON.stringify(record)}\n`;
  process.stderr.write(line);
}

function emit(level: LogLevel, msg: string, bindings: LogFields, fields?: LogFields): void {
  const record = makeRecord(level, msg, bindings, fields);
  writeConsole(record);
  if (file && settings.file && LEVELS[level] >= LEVELS[settings.file.level]) {
    file.write(`${JSON.stringify(record)}\n`);
  }
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
