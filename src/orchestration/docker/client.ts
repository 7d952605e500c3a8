// The one place that constructs a dockerode client. Everything else receives a `DockerClientFactory`, so
// unmanaged mode never constructs one and tests can inject a counting or fake-engine factory at this edge.
import Docker from "dockerode";

export type DockerClient = Docker;
export type DockerClientFactory = () => DockerClient;

/** Connects to the engine named by DOCKER_HOST, else the local socket (/var/run/docker.sock). */
export const createDockerClient: DockerClientFactory = () => new Docker();

/** HTTP status of a dockerode error (404 for "no such container/image"), if it carries one. */
export function dockerStatus(error: unknown): number | undefined {
  const status = (error as { statusCode?: unknown } | null)?.statusCode;
  return typeof status === "number" ? status : undefined;
}

/** The daemon's own message without dockerode's "(HTTP code 500) server error - " prefix. */
export function dockerMessage(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return text.replace(/^\(HTTP code \d+\)\s*[^-]*-\s*/, "").trim();
}

/** A Docker call that got no reply in time: the engine is hung or overloaded, not merely refusing. */
export class DockerTimeoutError extends Error {
  override readonly name = "DockerTimeoutError";
}

/**
 * Runs one non-streaming Docker call with a deadline. A hung engine never answers and never closes the socket,
 * so without this the periodic check (and with it /health) would wait forever. `call` gets a signal that aborts
 * the request at the deadline, so a hung engine does not also collect one open socket per check. Never used for
 * the event stream or pulls: those are long by nature.
 */
export async function withTimeout<T>(
  what: string,
  ms: number,
  call: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  const controller = new AbortController();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      controller.abort();
      reject(new DockerTimeoutError(`${what}: the Docker engine did not reply within ${ms} ms`));
    }, ms);
  });
  try {
    return await Promise.race([call(controller.signal), deadline]);
  } finally {
    clearTimeout(timer);
  }
}
