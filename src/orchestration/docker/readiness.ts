// "Is the service up?" over HTTP: any HTTP reply (even a 404) proves the server accepts requests; a refused
// connection, a reset or a timeout does not. Used for start-up readiness and for the periodic health probe.
import { sleep } from "../../lib/time.ts";

export interface ProbeResult {
  ok: boolean;
  /** `HTTP <status>` or the network error. */
  detail: string;
}

export async function probeHttp(
  url: string,
  headers: Record<string, string>,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<ProbeResult> {
  const timeout = AbortSignal.timeout(timeoutMs);
  try {
    const res = await fetch(url, {
      headers,
      signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
      redirect: "manual",
    });
    await res.body?.cancel();
    return { ok: true, detail: `HTTP ${res.status}` };
  } catch (error) {
    if (timeout.aborted) return { ok: false, detail: `no reply within ${timeoutMs} ms` };
    const code = (error as { code?: unknown }).code;
    const message = error instanceof Error ? error.message : String(error);
    return { ok: false, detail: typeof code === "string" ? `${code}: ${message}` : message };
  }
}

/**
 * Polls `url` until it answers or `deadline` (epoch ms) passes; resolves with the last probe result. Polls
 * often at first (a compiled service answers within ~100 ms) and backs off to 1 s for slow model loaders.
 */
export async function waitForHttp(
  url: string,
  headers: Record<string, string>,
  deadline: number,
  signal?: AbortSignal,
  isGone?: () => string | undefined,
): Promise<ProbeResult> {
  let delay = 50;
  let last: ProbeResult = { ok: false, detail: "not probed" };
  while (!signal?.aborted) {
    const gone = isGone?.();
    if (gone) return { ok: false, detail: gone };
    const left = deadline - Date.now();
    last = await probeHttp(url, headers, Math.max(100, Math.min(2000, left)), signal);
    if (last.ok || Date.now() >= deadline) return last;
    await sleep(Math.min(delay, Math.max(0, deadline - Date.now())), signal);
    delay = Math.min(1000, delay * 2);
  }
  return last;
}
