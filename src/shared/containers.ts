// What the rest of the node may know about the compute containers, without talking to Docker: the Container
// Manager implements this interface; the REST server, the Orchestrator and /health read it.

export type ContainerState =
  | "starting" // created/started, not yet answering HTTP
  | "ready" // running and answering HTTP on its port
  | "unhealthy" // running but failing checks
  | "stopped" // exited, died, or stopped by the node
  | "missing" // removed from Docker; being recreated
  | "remote"; // unmanaged (manage_containers false or a url): reached over HTTP only

export interface ContainerStatus {
  id: string;
  state: ContainerState;
  /** True when jobs can be sent to it. */
  ready: boolean;
  /** Last failure or state-change reason, for /health and logs. */
  detail?: string;
  /** ISO time of the last state change. */
  since: string;
  /** Restarts and recreations by the node since it started (managed mode), for /metrics. */
  restarts?: number;
  /** Liveness probes that found it not answering, since the node started, for /metrics. */
  probe_failures?: number;
}

export interface ContainerEndpoint {
  /** Base URL without trailing slash; the orchestrator appends /service_output, /service-resources. */
  baseUrl: string;
  /** Extra headers, e.g. Authorization: Bearer … for remote services. */
  headers: Record<string, string>;
}

export interface ContainerDirectory {
  /** Current status of every configured container, in config order. */
  statuses(): ContainerStatus[];
  /** Where to send a job for this container id (undefined for an unknown id). */
  endpoint(id: string): ContainerEndpoint | undefined;
  /**
   * A call to the container just got an HTTP reply: it is alive. A container marked down is then probed (or,
   * for a remote service, marked up) at once instead of waiting for its next scheduled check.
   */
  reportAlive?(id: string): void;
}
