// Secrets never reach logs, errors or API replies. Everything that prints or serialises a value that might
// carry one goes through these helpers, so redaction happens at the source rather than at each call site.

const SECRET_KEY_PATTERN =
  /(private_?key|password|passwd|secret|bearer|authorization|token_secret|api_?key)/i;

export const REDACTED = "[redacted]";

/** True for object keys whose values are secrets (private_key, password, bearer, authorization, ...). */
export function isSecretKey(key: string): boolean {
  return SECRET_KEY_PATTERN.test(key);
}

/**
 * Removes user:password@ credentials from every URL inside a string. The authority ends at the first / ? or #,
 * and the credentials at the LAST @ before it, so a password containing "@" is removed whole.
 */
export function redactUrl(text: string): string {
  return text.replace(/([a-z][a-z0-9+.-]*:\/\/)[^/?#\s]*@/gi, `$1${REDACTED}@`);
}

/**
 * scheme://host[:port] of a URL, for anything shown to others (/health, summaries): RPC providers put API keys
 * in the path (…/v3/<key>), which credential redaction alone would leave visible.
 */
export function urlOrigin(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.protocol}//${parsed.host}`;
  } catch {
    return "(invalid URL)";
  }
}

const registeredSecrets = new Set<string>();

/**
 * Registers a literal secret (a private key, a bearer token, a registry password) so that any string that
 * later contains it, an error message from a library for example, is scrubbed before it is written.
 */
export function registerSecret(secret: string | null | undefined): void {
  if (!secret || secret.length < 6) return;
  registeredSecrets.add(secret);
  if (secret.startsWith("0x")) registeredSecrets.add(secret.slice(2));
}

/** Scrubs registered secrets, 64-hex private-key-like strings after a key word, and URL credentials. */
export function redactText(text: string): string {
  let out = redactUrl(text);
  for (const secret of registeredSecrets) {
    if (out.includes(secret)) out = out.split(secret).join(REDACTED);
  }
  // "Bearer <token>" as in an Authorization header; not a key path such as `containers.bearer is set`, whose
  // next word would otherwise be taken for a token.
  return out.replace(/(?<![\w.])(bearer\s+)[^\s"',]+/gi, `$1${REDACTED}`);
}

/** Deep copy of a value with secret keys replaced and every string scrubbed. */
export function redactValue(value: unknown, depth = 0): unknown {
  if (depth > 8) return "[depth]";
  if (typeof value === "string") return redactText(value);
  if (typeof value === "bigint") return value.toString();
  if (Array.isArray(value)) return value.map((item) => redactValue(item, depth + 1));
  if (value instanceof Error) return serializeError(value, depth + 1);
  if (value && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const [key, inner] of Object.entries(value)) {
      out[key] = isSecretKey(key) && inner ? REDACTED : redactValue(inner, depth + 1);
    }
    return out;
  }
  return value;
}

/** Error → plain object with name, message, meta and the cause chain, all redacted. */
export function serializeError(error: Error, depth = 0): Record<string, unknown> {
  const out: Record<string, unknown> = { name: error.name, message: redactText(error.message) };
  const meta = (error as { meta?: unknown }).meta;
  if (meta !== undefined) out.meta = redactValue(meta, depth + 1);
  if (error.stack) out.stack = redactText(error.stack.split("\n").slice(0, 8).join("\n"));
  if (error.cause !== undefined && depth < 4) {
    out.cause =
      error.cause instanceof Error
        ? serializeError(error.cause, depth + 1)
        : redactValue(error.cause, depth + 1);
  }
  return out;
}
