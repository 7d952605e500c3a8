// Off-chain job results as the REST API returns them (the reference's JobResult / ContainerResult), and the
// job store interface with its two implementations (Redis when `redis` is configured, embedded otherwise).

export type JobStatus = "running" | "success" | "failed";

export type ContainerResult = { container: string; output: unknown } | { container: string; error: string };

export interface JobResult {
  id: string;
  status: JobStatus;
  intermediate_results: ContainerResult[];
  result: ContainerResult | null;
}

export type JobListFilter = "pending" | "completed" | "all";

/**
 * Jobs are namespaced by client (the requester's IP as the node determined it). Pending (running) jobs are kept
 * apart from completed ones; pending entries expire after `store.pending_ttl`; completed ones are bounded.
 */
export interface JobStore {
  /**
   * Records a job as running (pending), with the pending TTL, owned by this node instance. `containers` (the
   * job's pipeline) lets recovery name the first container when the node stops mid-job. Resolves once the write
   * is durable, or once it is queued for retry when the backend is briefly unreachable (see health()); rejects
   * (NodeError, status 503) only when the store cannot accept more work.
   */
  setRunning(client: string, job: JobResult, options?: { containers?: readonly string[] }): Promise<void>;
  /** Records a finished job (success or failed) and removes its pending entry. */
  setDone(client: string, job: JobResult): Promise<void>;
  /** Results for these ids: found completed ones first (in request order), then found pending ones. */
  get(client: string, ids: readonly string[]): Promise<JobResult[]>;
  /** Job ids of this client: pending ids then completed ids for "all". */
  listIds(client: string, filter: JobListFilter): Promise<string[]>;
  /** Pending off-chain jobs across all clients, answered from memory (never blocks on the backend). */
  pendingCount(): number;
  /** On start: marks jobs this node left running at its last stop as failed; returns how many. */
  recoverInterrupted(): Promise<number>;
  health(): { ok: boolean; detail?: string };
  close(): Promise<void>;
}
