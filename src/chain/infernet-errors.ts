// Revert reasons a node meets when it simulates or sends a delivery (chain-interface.md §7), recognised by their
// 4-byte selector and logged with the exact messages Ritual's end-to-end suite matches (node-behavior §8.4).
// Pure: decoding never touches the network.
import { decodeAbiParameters, type Hex } from "viem";

export type InfernetErrorLevel = "info" | "error";

export interface InfernetErrorInfo {
  name: string;
  selector: Hex;
  message: string;
  level: InfernetErrorLevel;
}

const TABLE: ReadonlyArray<[name: string, selector: Hex, message: string, level: InfernetErrorLevel]> = [
  [
    "InvalidWallet",
    "0x23455ba1",
    "Invalid wallet, please make sure you're using a wallet created from Infernet's `WalletFactory`.",
    "error",
  ],
  ["IntervalMismatch", "0x4db310c3", "Interval mismatch. The interval is not the current one.", "error"],
  [
    "IntervalCompleted",
    "0x2f4ca85b",
    "Interval completed. Redundancy has been already met for the current interval",
    "info",
  ],
  ["UnauthorizedVerifier", "0xb9857aa1", "Verifier is not authorized.", "error"],
  ["NodeRespondedAlready", "0x88a21e4f", "Node already responded for this interval", "info"],
  ["SubscriptionNotFound", "0x1a00354f", "Subscription not found", "error"],
  ["ProofRequestNotFound", "0x1d68b37c", "Proof request not found", "error"],
  ["NotSubscriptionOwner", "0xa7fba711", "Caller is not the owner of the subscription", "error"],
  [
    "SubscriptionCompleted",
    "0xae6704a7",
    "Subscription is already completed, another node has likely already delivered the response",
    "info",
  ],
  ["SubscriptionNotActive", "0xefb74efe", "Subscription is not active", "error"],
  [
    "UnsupportedVerifierToken",
    "0xe2372799",
    "Unsupported verifier token. Attempting to pay a `IVerifier`-contract in a token it does not support receiving payments in",
    "error",
  ],
  ["SignerMismatch", "0x10c74b03", "Signer does not match.", "error"],
  ["SignatureExpired", "0x0819bdcd", "EIP-712 Signature has expired.", "error"],
  ["TransferFailed", "0x90b8ec18", "Token transfer failed.", "error"],
  [
    "InsufficientFunds",
    "0x356680b7",
    // (sic) the reference's text has no space before "or attempting"; Ritual's tests match it as is.
    "Insufficient funds. You either are trying to withdraw `amount > unlockedBalance` or are trying to escrow `amount > unlockedBalance`or attempting to unlock `amount > lockedBalance`",
    "error",
  ],
  ["InsufficientAllowance", "0x13be252b", "Insufficient allowance.", "error"],
  ["NodeNotAllowed", "0x42764946", "Node is not allowed to deliver this subscription.", "error"],
  ["InsufficientBalance", "0xf4d678b8", "Insufficient balance.", "error"],
];

export const INFERNET_ERRORS: ReadonlyMap<string, InfernetErrorInfo> = new Map(
  TABLE.map(([name, selector, message, level]) => [selector, { name, selector, message, level }]),
);

/** Other errors worth a name in logs (not Infernet's: no message of their own in the reference). */
const OTHER_NAMES: Record<string, string> = {
  "0x8baa579f": "InvalidSignature",
  "0xab143c06": "Reentrancy",
  "0x9ec853e6": "NotCoordinator",
  "0xb12d13eb": "ETHTransferFailed",
  "0x7939f424": "TransferFromFailed",
  "0x82b42900": "Unauthorized",
};

const PANIC_SELECTOR = "0x4e487b71";
const ERROR_STRING_SELECTOR = "0x08c379a0";

export interface DecodedRevert {
  /** Revert data as sent by the node ("0x" when the revert carried none). */
  data: Hex;
  /** 0x + 8 hex digits, when the data has at least four bytes. */
  selector?: Hex;
  /** Set when the selector is an Infernet custom error. */
  infernet?: InfernetErrorInfo;
  /** One line for logs: the error's name and arguments, e.g. `Error("reverting")`, `Panic(0x11)`, `NodeNotAllowed()`. */
  reason: string;
}

/** Decodes revert data into a name an operator can read, recognising Infernet's custom errors. */
export function decodeRevertData(data: Hex): DecodedRevert {
  const lower = data.toLowerCase() as Hex;
  if (lower.length < 10) return { data: lower, reason: "reverted without a reason" };
  const selector = lower.slice(0, 10) as Hex;
  const infernet = INFERNET_ERRORS.get(selector);
  if (infernet) return { data: lower, selector, infernet, reason: `${infernet.name}()` };
  const body = `0x${lower.slice(10)}` as Hex;
  if (selector === ERROR_STRING_SELECTOR) {
    try {
      const [text] = decodeAbiParameters([{ type: "string" }], body);
      return { data: lower, selector, reason: `Error(${JSON.stringify(text)})` };
    } catch {
      return { data: lower, selector, reason: "Error(<undecodable>)" };
    }
  }
  if (selector === PANIC_SELECTOR) {
    try {
      const [code] = decodeAbiParameters([{ type: "uint256" }], body);
      return { data: lower, selector, reason: `Panic(0x${code.toString(16)})` };
    } catch {
      return { data: lower, selector, reason: "Panic(<undecodable>)" };
    }
  }
  const other = OTHER_NAMES[selector];
  return { data: lower, selector, reason: other ? `${other}()` : `custom error ${selector}` };
}

/**
 * Revert data somewhere in an error from the RPC (viem wraps the JSON-RPC error's `data` at various depths).
 * undefined when the failure is not a revert (transport error, nonce problem, …).
 */
export function findRevertData(error: unknown): Hex | undefined {
  let reverted = false;
  let current: unknown = error;
  for (let depth = 0; current && depth < 10; depth++) {
    const candidate = current as { data?: unknown; code?: unknown; cause?: unknown; details?: unknown };
    const data = candidate.data;
    if (typeof data === "string" && /^0x[0-9a-fA-F]*$/.test(data)) return data as Hex;
    if (data && typeof data === "object" && typeof (data as { data?: unknown }).data === "string") {
      const inner = (data as { data: string }).data;
      if (/^0x[0-9a-fA-F]*$/.test(inner)) return inner as Hex;
    }
    // JSON-RPC code 3 / "execution reverted" without data further down: a revert with no reason.
    if (candidate.code === 3) reverted = true;
    if (typeof candidate.details === "string" && /execution reverted/i.test(candidate.details))
      reverted = true;
    current = candidate.cause;
  }
  return reverted ? "0x" : undefined;
}

/**
 * The text `allowed_sim_errors` entries are matched against (case-insensitive substrings), like the reference's
 * `str(error)`: the decoded reason, the raw data and the error's own message.
 */
export function revertText(decoded: DecodedRevert, error?: unknown): string {
  const own = error instanceof Error ? error.message : "";
  const message =
    decoded.selector === ERROR_STRING_SELECTOR ? decoded.reason.replace(/^Error\("(.*)"\)$/, "$1") : "";
  return `execution reverted: ${message} ${decoded.reason} ${decoded.infernet?.message ?? ""} ${decoded.data} ${own}`;
}
