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
