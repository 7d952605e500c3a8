// Request messages the REST API accepts, as types and valibot schemas. The reference parsed bodies with dacite
// into `OffchainJobMessage | DelegatedSubscriptionMessage` (first match wins, a `type` key always failed); we
// accept the same shapes with or without a numeric `type`, read big integers exactly, and never let the body
// set the job `id` or the client `ip` (they are not part of these schemas; unknown keys are dropped).
import * as v from "valibot";

/** Where a job's input comes from and where its output goes (the reference's JobLocation). */
export const JobLocation = { ONCHAIN: 0, OFFCHAIN: 1, STREAM: 2 } as const;
export type JobLocation = (typeof JobLocation)[keyof typeof JobLocation];

/** The reference's MessageType values, accepted as an explicit `type` in request bodies. */
export const MessageType = { OffchainJob: 0, DelegatedSubscription: 1 } as const;

const ADDRESS = /^0x[0-9a-fA-F]{40}$/;
const BYTES32 = /^0x[0-9a-fA-F]{64}$/;

/** Unsigned integer of `bits` bits from a JSON number or (above 2^53) a bigint; small ones come out as number. */
function uint(bits: 8 | 16 | 32) {
  const max = 2 ** bits - 1;
  return v.pipe(
    v.union([v.number(), v.bigint()], "expected an integer"),
    v.rawTransform(({ dataset, addIssue, NEVER }) => {
      const raw = dataset.value;
      const value = typeof raw === "bigint" ? Number(raw) : raw;
      if (!Number.isInteger(value) || value < 0 || value > max) {
        addIssue({ message: `expected an integer between 0 and ${max}, got ${String(raw)}` });
        return NEVER;
      }
      return value;
    }),
  );
}

/** uint256 as a bigint (signature r/s, wei amounts are usually above 2^53). */
function uint256() {
  return v.pipe(
    v.union([v.number(), v.bigint()], "expected an integer"),
    v.rawTransform(({ dataset, addIssue, NEVER }) => {
      const raw = dataset.value;
      if (typeof raw === "number" && !Number.isSafeInteger(raw)) {
        addIssue({ message: `expected an integer, got ${raw}` });
        return NEVER;
      }
      const value = BigInt(raw);
      if (value < 0n || value >= 2n ** 256n) {
        addIssue({ message: "expected an integer between 0 and 2^256-1" });
        return NEVER;
      }
      return value;
    }),
  );
}

const address = () =>
  v.pipe(
    v.string("expected an address string"),
    v.regex(ADDRESS, "expected a 0x-prefixed 20-byte hex address"),
  );

/** Any JSON object (not an array, not null): the reference required `data` to be a dict. */
const jsonObject = () =>
  v.custom<Record<string, unknown>>(
    (value) => typeof value === "object" && value !== null && !Array.isArray(value),
    "expected a JSON object",
  );

/** `true`/`false`, and `null` read as false (infernet_client sends `requires_proof: null`). */
const optionalFlag = () =>
  v.pipe(
    v.nullish(v.boolean("expected true, false or null")),
    v.transform((value) => value ?? false),
  );

export const OffchainJobSchema = v.object({
  containers: v.array(v.string("expected a container id string"), "expected a list of container ids"),
  data: jsonObject(),
  requires_proof: optionalFlag(),
});

export const SubscriptionSchema = v.object({
  owner: address(),
  active_at: uint(32),
  period: uint(32),
  frequency: uint(32),
  redundancy: uint(16),
  containers: v.pipe(
    v.string("expected a 0x-prefixed bytes32 hex string"),
    v.regex(BYTES32, "expected a 0x-prefixed bytes32 hex string"),
    v.toLowerCase(),
  ),
  lazy: v.boolean("expected true or false"),
  verifier: address(),
  payment_amount: uint256(),
  payment_token: address(),
  wallet: address(),
});

export const SignatureSchema = v.object({
  nonce: uint(32),
  expiry: uint(32),
  v: uint(8),
  r: uint256(),
  s: uint256(),
});

export const DelegatedSubscriptionSchema = v.object({
  subscription: SubscriptionSchema,
  signature: SignatureSchema,
  data: jsonObject(),
  requires_proof: optionalFlag(),
});

/** Body of PUT /api/status (sent by containers with infernet_client.record_status). */
export const StatusUpdateSchema = v.object({
  // Status first: its issue is the one reported when several fields are wrong (infernet_client's tests send
  // `{"id","status":"invalid"}` and expect "Status is invalid").
  status: v.picklist(["running", "success", "failed"], "Status is invalid"),
  id: v.pipe(
    v.string("expected a job id string"),
    v.minLength(1, "must not be empty"),
    v.maxLength(256, "must be at most 256 characters"),
  ),
  containers: v.array(v.string("expected a container id string"), "expected a list of container ids"),
});

export type OffchainJobBody = v.InferOutput<typeof OffchainJobSchema>;
export type SubscriptionBody = v.InferOutput<typeof SubscriptionSchema>;
export type SignatureBody = v.InferOutput<typeof SignatureSchema>;
export type StatusUpdate = v.InferOutput<typeof StatusUpdateSchema>;

/** An off-chain job as the node runs it: the body plus the id and client address the node assigned. */
export interface OffchainJobMessage extends OffchainJobBody {
  kind: "offchain";
  requires_proof: boolean;
  /** Fresh UUIDv4, never taken from the body. */
  id: string;
  /** The client address the node determined (peer, or X-Forwarded-For from a trusted proxy). */
  ip: string;
}

/** A delegated subscription as handed to the chain side. */
export interface DelegatedSubscriptionMessage extends v.InferOutput<typeof DelegatedSubscriptionSchema> {
  kind: "delegated";
  requires_proof: boolean;
  id: string;
  ip: string;
}

export type JobMessage = OffchainJobMessage | DelegatedSubscriptionMessage;

/** Why a body could not be read as a message: the field (dot path, "" for the body itself) and the reason. */
export interface BodyProblem {
  field: string;
  reason: string;
}

export type ParsedMessage = { ok: true; message: JobMessage } | { ok: false; problem: BodyProblem };

function firstProblem(issues: readonly v.BaseIssue<unknown>[]): BodyProblem {
  const issue = issues[0];
  if (!issue) return { field: "", reason: "invalid body" };
  return { field: v.getDotPath(issue) ?? "", reason: issue.message };
}

/**
 * Reads a parsed JSON body as an off-chain job or a delegated subscription. An explicit numeric `type` picks
 * the kind; without one, a body with `containers` (or without `subscription`) is an off-chain job, as the
 * reference's first-match order did.
 */
export function parseJobMessage(body: unknown, id: string, ip: string): ParsedMessage {
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    return { ok: false, problem: { field: "", reason: "expected a JSON object" } };
  }
  const record = body as Record<string, unknown>;
  let kind: "offchain" | "delegated";
  const type = record.type;
  if (type === undefined || type === null) {
    kind = "containers" in record || !("subscription" in record) ? "offchain" : "delegated";
  } else if (type === MessageType.OffchainJob || type === 0n) {
    kind = "offchain";
  } else if (type === MessageType.DelegatedSubscription || type === 1n) {
    kind = "delegated";
  } else {
    return {
      ok: false,
      problem: { field: "type", reason: "expected 0 (off-chain job) or 1 (delegated subscription)" },
    };
  }
  if (kind === "offchain") {
    const parsed = v.safeParse(OffchainJobSchema, record);
    if (!parsed.success) return { ok: false, problem: firstProblem(parsed.issues) };
    return {
      ok: true,
      message: { kind, id, ip, ...parsed.output, requires_proof: parsed.output.requires_proof ?? false },
    };
  }
  const parsed = v.safeParse(DelegatedSubscriptionSchema, record);
  if (!parsed.success) return { ok: false, problem: firstProblem(parsed.issues) };
  return {
    ok: true,
    message: { kind, id, ip, ...parsed.output, requires_proof: parsed.output.requires_proof ?? false },
  };
}

/** Reads a PUT /api/status body; the status is checked first, so a bad status is named even if fields lack. */
export function parseStatusUpdate(
  body: unknown,
): { ok: true; update: StatusUpdate } | { ok: false; problem: BodyProblem } {
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    return { ok: false, problem: { field: "", reason: "expected a JSON object" } };
  }
  const parsed = v.safeParse(StatusUpdateSchema, body);
  if (!parsed.success) return { ok: false, problem: firstProblem(parsed.issues) };
  return { ok: true, update: parsed.output };
}
