// One error base for the whole node (viem style): a one-line `shortMessage`, typed `meta` context, a `cause`
// chain, and `retryable`, which loops use to decide between "log and try again" and "give up".
import { redactText } from "./redact.ts";

export interface NodeErrorOptions {
  meta?: Record<string, unknown>;
  cause?: unknown;
  retryable?: boolean;
  /** HTTP status when this error reaches the REST layer. */
  status?: number;
}

export class NodeError extends Error {
  override name = "NodeError";
  readonly shortMessage: string;
  readonly meta: Record<string, unknown>;
  readonly retryable: boolean;
  readonly status: number | undefined;

  constructor(shortMessage: string, options: NodeErrorOptions = {}) {
    super(redactText(shortMessage), options.cause === undefined ? undefined : { cause: options.cause });
    this.shortMessage = redactText(shortMessage);
    this.meta = options.meta ?? {};
    this.retryable = options.retryable ?? false;
    this.status = options.status;
  }

  /** Walks the cause chain; returns the first error for which `fn` is true (or the deepest one). */
  walk(fn?: (error: unknown) => boolean): unknown {
    let current: unknown = this;
    while (current) {
      if (fn?.(current)) return current;
      const next = (current as { cause?: unknown }).cause;
      if (!next) return fn ? undefined : current;
      current = next;
    }
    return undefined;
  }
}

/** The configuration cannot be used; `issues` are `path: reason` lines. Exit code 1. */
export class ConfigError extends NodeError {
  override name = "ConfigError";
  constructor(readonly issues: string[]) {
    super(`invalid configuration:\n${issues.map((issue) => `  - ${issue}`).join("\n")}`, {
      meta: { issues },
    });
  }
}

/** A problem that stops start-up (image missing, port taken, Registry not found…). Exit code 1. */
export class StartupError extends NodeError {
  override name = "StartupError";
}

/** One-line, secret-free description of any thrown value, for logs and replies. */
export function describeError(error: unknown): string {
  if (error instanceof NodeError) return error.shortMessage;
  if (error instanceof Error) return redactText(error.message || error.name);
  return redactText(String(error));
}
