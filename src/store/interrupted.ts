// The result recorded for a job that was still running when its node stopped (the reference silently lost
// these by flushing the pending db at boot).
import type { JobResult } from "../shared/jobs.ts";

export const INTERRUPTED_ERROR = "node stopped while the job was running";

export function interruptedResult(job: JobResult, containers: readonly string[]): JobResult {
  return {
    id: job.id,
    status: "failed",
    intermediate_results: job.intermediate_results,
    result: { container: containers[0] ?? "", error: INTERRUPTED_ERROR },
  };
}
