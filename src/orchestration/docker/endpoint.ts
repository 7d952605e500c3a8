// Where jobs for a container go. A container with `url` is a remote service reached at that URL with its
// bearer token, also in managed mode (the reference's behaviour); otherwise the node reaches the published
// port on `host` (config container_host, or host.docker.internal when the node itself runs in Docker).
import type { ContainerConfig } from "../../config/schema.ts";
import type { ContainerEndpoint } from "../../shared/containers.ts";

export function endpointFor(container: ContainerConfig, host: string): ContainerEndpoint {
  if (container.url) {
    return {
      baseUrl: container.url.replace(/\/+$/, ""),
      headers: container.bearer ? { Authorization: `Bearer ${container.bearer}` } : {},
    };
  }
  const hostPart = host.includes(":") && !host.startsWith("[") ? `[${host}]` : host;
  return { baseUrl: `http://${hostPart}:${container.port}`, headers: {} };
}

/** The host of managed containers: config container_host, else by where the node runs (env RUNTIME). */
export function resolveContainerHost(configured: string | null, runtime: string | undefined): string {
  if (configured) return configured;
  return runtime === "docker" ? "host.docker.internal" : "127.0.0.1";
}
