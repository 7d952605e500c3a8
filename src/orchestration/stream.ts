// Streaming call to the first container of a job (reference §5.6): the payload has destination 2 (STREAM) and,
// as in the reference, no `requires_proof` key; a status >= 400 is a failure (unlike non-streaming calls,
// because there is no JSON body to hand back). The caller relays the chunks and decides what to store.
import { stringifyJsonFast } from "../lib/json.ts";
import type { ContainerDirectory } from "../shared/containers.ts";
import { JobLocation } from "../shared/messages.ts";
import { ContainerCallError, containerPayload, describeFetchFailure } from "./orchestrator.ts";

export interface StreamDeps {
  directory: ContainerDirectory;
  /** Total time for the whole stream (config stream_timeout, seconds → ms). */
  streamTimeoutMs: number;
  fetch?: typeof fetch;
}

export interface ContainerStream {
  chunks: AsyncIterable<Uint8Array>;
  /** Turns an error thrown while reading `chunks` into a clear job error string. */
  describe(error: unknown): string;
}

/** Opens the stream; throws ContainerCallError with a clear message when it cannot be opened. */
export async function openContainerStream(
  deps: StreamDeps,
  id: string,
  data: unknown,
  signal: AbortSignal,
): Promise<ContainerStream> {
  const endpoint = deps.directory.endpoint(id);
  if (!endpoint) throw new ContainerCallError(`Container ${id} is not available`);
  const url = `${endpoint.baseUrl}/service_output`;
  const callSignal = AbortSignal.any([signal, AbortSignal.timeout(deps.streamTimeoutMs)]);
  const describe = (error: unknown) => describeFetchFailure(id, url, error, signal, deps.streamTimeoutMs);
  let response: Response;
  try {
    response = await (deps.fetch ?? fetch)(url, {
      method: "POST",
      headers: { ...endpoint.headers, "Content-Type": "application/json" },
      body: containerPayload(JobLocation.OFFCHAIN, JobLocation.STREAM, stringifyJsonFast(data), undefined),
      signal: callSignal,
    });
  } catch (error) {
    throw new ContainerCallError(describe(error));
  }
  if (response.status >= 400) {
    const text = await response.text().catch(() => "");
    throw new ContainerCallError(
      `Container ${id} replied HTTP ${response.status} ${response.statusText}${text ? `: ${text.slice(0, 200)}` : ""}`,
    );
  }
  const body = response.body;
  if (!body) return { chunks: (async function* () {})(), describe };
  return { chunks: body, describe };
}
