// Reading a provider's refusal of an eth_getLogs range (issue 17, defect 4). Providers cap a call by blocks or by
// results, and say so in words that differ from one client to the next (../shared/notes/rpc-providers.md); many
// name the range they would accept. This module only parses: `suggestedLogRange(error)` says whether a failed
// eth_getLogs is a range/size refusal (a smaller range may work) and, when the text names one, which range or
// how many blocks. The event scanner (event-scan.ts) decides what to do with it.
//
// It reads the error as client.getLogs surfaces it through our transport (rpc.ts), by walking the `cause` chain:
//   - a non-retryable JSON-RPC error (-32602, 35, …): InvalidParamsRpcError → InvalidParamsRpcError → RpcRequestError
//     (viem's buildRequest wraps it once in the endpoint's transport and once in the client's);
//   - a retryable one (-32005, -32603, a timeout, HTTP 5xx): UnknownRpcError → RpcUnavailableError (ours, after
//     the retries) → LimitExceededRpcError / InternalRpcError / TimeoutError / HttpRequestError → …
// so it matches on meaning (codes, HTTP status, several case-insensitive patterns), never on one exact string.
import { HttpRequestError, hexToBigInt, TimeoutError } from "viem";

/** What a refusal says about the range that would work (all inclusive block numbers / counts). */
export interface LogRangeHint {
  /** The provider named a range to use instead: [from, to]. */
  from?: bigint;
  to?: bigint;
  /** The provider named its largest accepted span, in blocks. */
  maxBlocks?: bigint;
}

/** Codes providers use for a getLogs range or result cap (Infura -32005, Alchemy/BlockPI -32602, others -32603 / 35). */
const REFUSAL_CODES = new Set([-32005, -32602, -32603, 35]);

/** A range named as two hex block numbers: "Try with this block range [0x10, 0x2f]" (Infura, Alchemy). */
const HEX_RANGE = /\[\s*(0x[0-9a-f]+)\s*,\s*(0x[0-9a-f]+)\s*\]/i;
/** A range named in decimal: "retry with the range 100-200". */
const DECIMAL_RANGE = /retry with the range\s+(\d[\d,_]*)\s*-\s*(\d[\d,_]*)/i;
/** A span named in blocks, in the wordings seen (BlockPI, QuickNode, thirdweb, geth-likes, …). */
const MAX_BLOCKS: RegExp[] = [
  /limited to (?:a |an )?(\d[\d,_]*)\s*(?:-\s*)?(?:blocks? )?range/i,
  /max(?:imum)? (?:allowed )?(?:block range|number of (?:requested )?blocks)(?: allowed)?(?: is| of|:)?\s*(\d[\d,_]*)/i,
  /block range (?:limit|is limited to|must not exceed|cannot exceed|should not exceed)(?: of|:)?\s*(\d[\d,_]*)/i,
  /range (?:of |exceeds? (?:the )?limit of )(\d[\d,_]*) blocks/i,
];
/** A range or result refusal without numbers we can use: shrink by halving. */
const REFUSAL_TEXT: RegExp[] = [
  /block range/i,
  /range (?:is )?too (?:large|wide|big)/i,
  /too (?:large|wide|big) (?:a )?(?:block )?range/i,
  /response size/i,
  /response (?:is )?too (?:large|big)/i,
  /more than \d[\d,_]* (?:results|logs)/i,
  /max(?:imum)? (?:number of )?(?:results|logs)/i,
  /too many (?:results|logs|events)/i,
  /query returned more than/i,
  /(?:logs?|results?) (?:limit|count) exceeded/i,
  /exceeds? (?:the )?(?:max(?:imum)? )?(?:result|log|response)/i,
  /requested blocks/i,
];
/** Rate limits share -32005 with result caps: those are outages to back off from, not ranges to shrink. */
const RATE_LIMIT_TEXT =
  /rate.?limit|too many requests|request (?:count|rate) exceeded|exceeded .*(?:quota|capacity)/i;

/**
 * Whether a failed eth_getLogs was refused for its range or result size, and what range the provider would take.
 * Returns a hint when the message names a range ("[0x…, 0x…]", "retry with the range A-B", Infura's `data`
 * {from, to}) or a span ("limited to N block range", "max block range N", "Maximum allowed number of requested
 * blocks is N"); "refusal" for a range/size refusal without usable numbers, HTTP 413 or a timeout; undefined for
 * anything else (an outage, a rate limit, an unrelated error), which a smaller range would not cure.
 */
export function suggestedLogRange(error: unknown): LogRangeHint | "refusal" | undefined {
  const texts: string[] = [];
  let refusalCode = false;
  let refusal = false;
  let dataHint: LogRangeHint | undefined;
  let current: unknown = error;
  for (let depth = 0; current !== null && current !== undefined && depth < 12; depth++) {
    if (current instanceof TimeoutError) refusal = true;
    if (typeof current === "object") {
      const e = current as {
        code?: unknown;
        status?: unknown;
        details?: unknown;
        message?: unknown;
        data?: unknown;
      };
      if (e.status === 413 || (current instanceof HttpRequestError && e.status === 413)) refusal = true;
      if (typeof e.code === "number" && REFUSAL_CODES.has(e.code)) refusalCode = true;
      if (typeof e.details === "string") texts.push(e.details);
      else if (typeof e.message === "string") texts.push(e.message);
      dataHint ??= hintFromData(e.data);
    } else if (typeof current === "string") {
      texts.push(current);
    }
    current = (current as { cause?: unknown }).cause;
  }
  const text = texts.join(" | ");
  if (RATE_LIMIT_TEXT.test(text)) return undefined;
  const hint = hintFromText(text) ?? dataHint;
  if (hint) return hint;
  if (refusal || REFUSAL_TEXT.some((pattern) => pattern.test(text))) return "refusal";
  // -32005 is "limit exceeded": without a rate-limit wording it is the result cap (Infura).
  if (refusalCode && /limit exceeded|-32005/i.test(text)) return "refusal";
  return undefined;
}

/** A timeout anywhere in the chain (the provider may be choking on the range, or be down: both cost a full wait). */
export function isTimeout(error: unknown): boolean {
  let current: unknown = error;
  for (let depth = 0; current !== null && current !== undefined && depth < 12; depth++) {
    if (current instanceof TimeoutError) return true;
    current = (current as { cause?: unknown }).cause;
  }
  return false;
}

function hintFromText(text: string): LogRangeHint | undefined {
  const hex = HEX_RANGE.exec(text);
  if (hex?.[1] && hex[2])
    return ordered(hexToBigInt(hex[1] as `0x${string}`), hexToBigInt(hex[2] as `0x${string}`));
  const decimal = DECIMAL_RANGE.exec(text);
  if (decimal?.[1] && decimal[2]) return ordered(toBigInt(decimal[1]), toBigInt(decimal[2]));
  for (const pattern of MAX_BLOCKS) {
    const match = pattern.exec(text);
    if (match?.[1]) {
      const maxBlocks = toBigInt(match[1]);
      if (maxBlocks > 0n) return { maxBlocks };
    }
  }
  return undefined;
}

/** Infura puts the range it suggests in the error's data too: {from: "0x…", to: "0x…", limit}. */
function hintFromData(data: unknown): LogRangeHint | undefined {
  if (typeof data !== "object" || data === null) return undefined;
  const { from, to } = data as { from?: unknown; to?: unknown };
  if (typeof from !== "string" || typeof to !== "string") return undefined;
  if (!/^0x[0-9a-f]+$/i.test(from) || !/^0x[0-9a-f]+$/i.test(to)) return undefined;
  return ordered(hexToBigInt(from as `0x${string}`), hexToBigInt(to as `0x${string}`));
}

/** A reversed range is nonsense from the provider: keep only that it was a refusal with a range. */
function ordered(from: bigint, to: bigint): LogRangeHint | undefined {
  return from <= to ? { from, to } : undefined;
}

function toBigInt(digits: string): bigint {
  return BigInt(digits.replace(/[,_]/g, ""));
}
