// POST /api/jobs, POST /api/jobs/batch, POST /api/jobs/stream, GET /api/jobs.

import type { Context } from "hono";
import { Hono } from "hono";
import { getQueryParams } from "hono/utils/url";
import { checkDelegatedSubscription } from "../../guardian/delegated.ts";
import { checkOffchainJob, type GuardianError } from "../../guardian/offchain.ts";
import { describeError } from "../../lib/errors.ts";
import type { JobListFilter, JobResult } from "../../shared/jobs.ts";
import { type BodyProblem, type JobMessage, parseJobMessage } from "../../shared/messages.ts";
import { readJsonBody, readJsonRequest } from "../body.ts";
import type { AppDeps, AppEnv, LimitFor } from "../context.ts";
import { errorReply, jsonReply, sendError, sendJson, withReplyHeaders } from "../json-response.ts";

/** The outcome of one job request, as a reply body and status (batches collect the bodies). */
type Outcome =
  | { status: 200; body: Record<string, unknown>; message?: JobMessage }
  | { status: 400 | 405 | 503; body: { error: string; params: Record<string, unknown> } };

const STREAM_HEADERS = {
  "Content-Type": "application/octet-stream",
  "X-Content-Type-Options": "nosniff",
  "Cache-Control": "no-store",
};

function invalid(problem: BodyProblem): Outcome {
  return { status: 400, body: { error: "Invalid request body", params: { ...problem } } };
}

/**
 * A route's work after client resolution and rate limiting, on the raw request: the hono route and the native
 * route in app.ts (Bun.serve `routes`) both call it, so their replies are the same.
 */
export type JobHandler = (
  request: Request,
  client: string,
  replyHeaders: Record<string, string> | undefined,
) => Promise<Response>;

export interface JobRoutes {
  app: Hono<AppEnv>;
  /** POST /api/jobs. */
  submit: JobHandler;
  /** GET /api/jobs. */
  list: JobHandler;
}

export function createJobRoutes(deps: AppDeps & { now: () => number }, limit: LimitFor): JobRoutes {
  const { config, rules, runner, store, log } = deps;
  const maxBytes = config.server.max_body_bytes;
  const chainEnabled = config.chain.enabled;
  const noLookup = () => undefined;
  const app = new Hono<AppEnv>();

  /**
   * A Guardian refusal: the reference's 405, counted by kind and reason for /metrics. A refused delegated
   * subscription is also logged: it is an owner's signed request that will never run (an expired signature, an
   * owner not allowed), and the client only ever sees the reply.
   */
  function rejected(error: GuardianError, msg: JobMessage): Outcome {
    deps.observe?.guardianRejection(msg.kind, error.error);
    if (msg.kind === "delegated") {
      log.warn("Delegated subscription refused", {
        reason: error.error,
        owner: msg.subscription.owner,
        nonce: msg.signature.nonce,
        expiry: msg.signature.expiry,
        ip: msg.ip,
      });
    }
    return { status: 405, body: { error: error.error, params: error.params } };
  }

  /** Parse + guardian; for `dispatch`, also starts the job (or hands the subscription to the chain side). */
  async function handle(body: unknown, client: string, dispatch: boolean): Promise<Outcome> {
    const parsed = parseJobMessage(body, crypto.randomUUID(), client);
    if (!parsed.ok) return invalid(parsed.problem);
    const msg = parsed.message;
    if (msg.kind === "offchain") {
      const error = checkOffchainJob(msg, rules);
      if (error) return rejected(error, msg);
      if (!dispatch) return { status: 200, body: { id: msg.id }, message: msg };
      try {
        await runner.start(msg);
      } catch (err) {
        log.error("could not enqueue job", { id: msg.id, error: describeError(err) });
        return {
          status: 503,
          body: { error: "Could not enqueue job", params: { reason: describeError(err) } },
        };
      }
      return { status: 200, body: { id: msg.id } };
    }
    if (chainEnabled && !deps.delegated) {
      // The chain is on but nothing takes delegated subscriptions (no processor wired): say so rather than
      // accept what would never run, or blame the container set.
      return {
        status: 503,
        body: { error: "Delegated subscriptions are not available on this node", params: {} },
      };
    }
    const check = checkDelegatedSubscription(msg, {
      rules,
      chainEnabled,
      now: deps.now() / 1000,
      lookup: deps.delegated?.lookup ?? noLookup,
    });
    if (!check.ok) return rejected(check.error, msg);
    if (!dispatch) return { status: 200, body: {}, message: msg };
    try {
      await deps.delegated?.sink.submit(msg);
    } catch (err) {
      log.error("could not submit delegated subscription", { error: describeError(err) });
      return {
        status: 503,
        body: { error: "Could not submit delegated subscription", params: { reason: describeError(err) } },
      };
    }
    return { status: 200, body: {} };
  }

  const reply = (c: Context<AppEnv>, outcome: Outcome) => sendJson(c, outcome.body, outcome.status);

  const submit: JobHandler = async (request, client, replyHeaders) => {
    const body = await readJsonRequest(request, { requireJsonType: true, maxBytes });
    if (!body.ok) return errorReply(replyHeaders, body.status, body.error, body.params);
    const outcome = await handle(body.value, client, true);
    return jsonReply(replyHeaders, outcome.body, outcome.status);
  };

  app.post("/api/jobs", limit("create_job"), (c) =>
    submit(c.req.raw, c.get("client"), c.get("replyHeaders")),
  );

  // The reference read batch bodies whatever the content type; so do we. A malformed item gets its own 400-style
  // entry (with its index) instead of failing the whole batch with a 500 as the reference did.
  app.post("/api/jobs/batch", limit("create_job_batch"), async (c) => {
    const body = await readJsonBody(c, { requireJsonType: false, maxBytes });
    if (!body.ok) return sendError(c, body.status, body.error, body.params);
    const items = body.value;
    if (!Array.isArray(items)) return sendError(c, 400, "Expected a list", { type: typeof items });
    if (items.length > config.server.max_batch_jobs) {
      return sendError(c, 400, "Too many jobs in batch", {
        count: items.length,
        max: config.server.max_batch_jobs,
      });
    }
    const client = c.get("client");
    // The items are started together: their store writes then share one write deadline (and one Redis round
    // trip), instead of a batch during a Redis outage taking one deadline per item.
    const outcomes = await Promise.all(items.map((item) => handle(item, client, true)));
    const out = outcomes.map((outcome, index) =>
      outcome.status === 400
        ? { error: outcome.body.error, params: { index, ...outcome.body.params } }
        : outcome.body,
    );
    return sendJson(c, out);
  });

  app.post("/api/jobs/stream", limit("create_job_stream"), async (c) => {
    const body = await readJsonBody(c, { requireJsonType: true, maxBytes });
    if (!body.ok) return sendError(c, body.status, body.error, body.params);
    const outcome = await handle(body.value, c.get("client"), false);
    if (outcome.status !== 200) return reply(c, outcome);
    const msg = outcome.message;
    if (msg?.kind !== "offchain") {
      return sendError(c, 405, "Streaming only supported for OffchainJob requests.");
    }
    let stream: ReadableStream;
    try {
      stream = await runner.stream(msg, c.req.raw.signal);
    } catch (err) {
      return sendError(c, 503, "Could not enqueue job", { reason: describeError(err) });
    }
    return c.body(stream, 200, withReplyHeaders(c, { ...STREAM_HEADERS, "X-Job-Id": msg.id }));
  });

  /**
   * Completed results then running ones, each in request order, as the store answers; jobs this process runs
   * or has just finished are answered from memory, so polling costs no store read.
   */
  async function getJobs(client: string, ids: string[]): Promise<JobResult[]> {
    if (ids.length === 1) {
      // The usual poll: one id, answered from memory while the job runs and just after.
      const job = runner.peek(client, ids[0] as string);
      if (job) return [job];
    }
    const local = ids.map((id) => runner.peek(client, id));
    const missing = ids.filter((_, i) => local[i] === undefined);
    if (missing.length === ids.length) return store.get(client, ids);
    const stored = missing.length > 0 ? await store.get(client, missing) : [];
    const byId = new Map<string, JobResult>();
    for (const job of stored) if (!byId.has(job.id)) byId.set(job.id, job);
    const completed: JobResult[] = [];
    const pending: JobResult[] = [];
    for (let i = 0; i < ids.length; i++) {
      const job = local[i] ?? byId.get(ids[i] ?? "");
      if (job) (job.status === "running" ? pending : completed).push(job);
    }
    return [...completed, ...pending];
  }

  const list: JobHandler = async (request, client, replyHeaders) => {
    // One pass over the query string for every parameter (first value wins for the flags, as c.req.query);
    // the same parser as c.req.queries().
    // Without a key it returns every parameter (the type hono's queries() declares for this call).
    const query = getQueryParams(request.url) as Record<string, string[]>;
    const ids = query.id;
    try {
      if (ids && ids.length > 0) {
        const results = await getJobs(client, ids);
        if (query.intermediate?.[0] === "true") return jsonReply(replyHeaders, results);
        return jsonReply(replyHeaders, results.map(withoutIntermediate));
      }
      const pending = query.pending?.[0];
      const filter: JobListFilter =
        pending === "true" ? "pending" : pending === "false" ? "completed" : "all";
      return jsonReply(replyHeaders, await store.listIds(client, filter));
    } catch (err) {
      log.error("job store read failed", { error: describeError(err) });
      return errorReply(replyHeaders, 503, "Job store unavailable", { reason: describeError(err) });
    }
  };

  app.get("/api/jobs", limit("get_job"), (c) => list(c.req.raw, c.get("client"), c.get("replyHeaders")));

  return { app, submit, list };
}

function withoutIntermediate(job: JobResult): Omit<JobResult, "intermediate_results"> {
  return { id: job.id, status: job.status, result: job.result };
}
