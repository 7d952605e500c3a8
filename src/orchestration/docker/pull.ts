// Image pulls at boot: every configured image, concurrently, with registry credentials applied, progress shown,
// and the pull awaited to its real end (dockerode's pull() resolves when the stream opens, so the stream is
// followed with modem.followProgress). An unreachable registry falls back to a local copy of the image.
import type { AuthConfigObject } from "dockerode";
import type { Config } from "../../config/schema.ts";
import { StartupError } from "../../lib/errors.ts";
import type { Logger } from "../../lib/log.ts";
import { type DockerClient, dockerMessage, dockerStatus } from "./client.ts";

/** Where the per-image progress lines go: a terminal gets a redrawn line per image, anything else log lines. */
export interface ProgressOutput {
  isTTY: boolean;
  write(text: string): void;
}

export interface PullOptions {
  log: Logger;
  /** config.docker: registry credentials, or null. */
  credentials: Config["docker"];
  progress?: ProgressOutput;
  /** Seconds between progress log lines when not on a terminal. */
  logEveryMs?: number;
  signal?: AbortSignal;
}

export interface PulledImage {
  image: string;
  /** Image id (sha256:…) of what will run. */
  id: string;
  source: "registry" | "local";
  /** The registry error when the local copy was used. */
  pullError?: string;
}

interface ProgressEvent {
  status?: string;
  id?: string;
  progressDetail?: { current?: number; total?: number };
  error?: string;
  errorDetail?: { message?: string };
}

const DOCKER_HUB = "docker.io";

/** Registry host of an image reference: the first path part when it looks like a host, else Docker Hub. */
export function registryOf(image: string): string {
  const first = image.split("/")[0] ?? "";
  const isHost = image.includes("/") && (first.includes(".") || first.includes(":") || first === "localhost");
  return isHost ? normalizeRegistry(first) : DOCKER_HUB;
}

function normalizeRegistry(address: string): string {
  const host = address
    .replace(/^[a-z]+:\/\//i, "")
    .split("/")[0]
    ?.toLowerCase();
  if (!host || ["index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"].includes(host))
    return DOCKER_HUB;
  return host;
}

/**
 * Credentials for one image: the configured ones apply to images on `server_address` (Docker Hub when it is
 * empty) and to no other registry, so Docker Hub credentials are never sent to a third-party registry.
 */
export function authFor(image: string, credentials: Config["docker"]): AuthConfigObject | undefined {
  if (!credentials) return undefined;
  const registry = normalizeRegistry(credentials.server_address || DOCKER_HUB);
  if (registryOf(image) !== registry) return undefined;
  return {
    username: credentials.username,
    password: credentials.password,
    serveraddress: registry === DOCKER_HUB ? "https://index.docker.io/v1/" : registry,
  };
}

/** `name` → `name:latest`: a pull without a tag would fetch every tag of the repository. */
export function withTag(image: string): string {
  const last = image.split("/").pop() ?? image;
  return last.includes(":") || last.includes("@") ? image : `${image}:latest`;
}

/**
 * Pulls (or finds locally) every image. Throws one StartupError naming each image that is neither pullable
 * nor present, with the registry's error.
 */
export async function pullImages(
  docker: DockerClient,
  images: readonly string[],
  options: PullOptions,
): Promise<Map<string, PulledImage>> {
  const unique = [...new Set(images)];
  const board = new ProgressBoard(unique, options);
  try {
    const results = await Promise.allSettled(unique.map((image) => pullOne(docker, image, options, board)));
    const out = new Map<string, PulledImage>();
    const failures: string[] = [];
    results.forEach((result, i) => {
      const image = unique[i] as string;
      if (result.status === "fulfilled") out.set(image, result.value);
      else failures.push(result.reason instanceof Error ? result.reason.message : String(result.reason));
    });
    if (failures.length > 0) {
      throw new StartupError(`Could not pull all images: ${failures.join("; ")}`, {
        meta: { images: unique.filter((image) => !out.has(image)) },
      });
    }
    return out;
  } finally {
    board.finish();
  }
}

async function pullOne(
  docker: DockerClient,
  image: string,
  options: PullOptions,
  board: ProgressBoard,
): Promise<PulledImage> {
  const { log } = options;
  const ref = withTag(image);
  let pullError: string;
  try {
    const auth = authFor(image, options.credentials);
    // dockerode lacks types for abortSignal on pull options.
    const pullOptions = { ...(auth ? { authconfig: auth } : {}), abortSignal: options.signal } as object;
    const stream = await docker.pull(ref, pullOptions);
    await new Promise<void>((resolve, reject) => {
      docker.modem.followProgress(
        stream,
        (error: Error | null, output: ProgressEvent[]) => {
          // The engine reports a failed pull as a JSON event with `error`, not as a stream error.
          const failed = output?.find((event) => event.error || event.errorDetail?.message);
          if (error) reject(error);
          else if (failed) reject(new Error(failed.errorDetail?.message ?? failed.error));
          else resolve();
        },
        (event: ProgressEvent) => board.update(image, event),
      );
    });
    const info = await docker.getImage(ref).inspect();
    board.done(image, "pulled");
    log.info(`Pulled image ${image}`, { image, id: info.Id });
    return { image, id: info.Id, source: "registry" };
  } catch (error) {
    pullError = dockerMessage(error);
  }
  try {
    const info = await docker.getImage(ref).inspect();
    board.done(image, "using the local copy");
    // The reference's message, plus why the registry was not used.
    log.warn(`Image ${image} already exists locally`, { image, id: info.Id, pull_error: pullError });
    return { image, id: info.Id, source: "local", pullError };
  } catch (error) {
    board.done(image, "FAILED");
    const local =
      dockerStatus(error) === 404 ? "no local copy" : `local lookup failed: ${dockerMessage(error)}`;
    log.error(`Error pulling image ${image}`, { image, pull_error: pullError, local });
    throw new Error(`image "${image}": pull failed (${pullError}) and ${local}`);
  }
}

interface LayerState {
  current: number;
  total: number;
  done: boolean;
}

/**
 * Pull progress for all images: on a terminal one line per image, redrawn in place at most every 100 ms;
 * elsewhere one log line per image every `logEveryMs` while it is still pulling.
 */
class ProgressBoard {
  private readonly layers = new Map<string, Map<string, LayerState>>();
  private readonly lines = new Map<string, string>();
  private readonly lastLog = new Map<string, number>();
  private drawn = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private readonly output: ProgressOutput | undefined;

  constructor(
    private readonly images: string[],
    private readonly options: PullOptions,
  ) {
    this.output = options.progress?.isTTY ? options.progress : undefined;
    for (const image of images) {
      this.layers.set(image, new Map());
      this.lines.set(image, `${image}: waiting`);
      this.lastLog.set(image, Date.now());
    }
  }

  update(image: string, event: ProgressEvent): void {
    const layers = this.layers.get(image);
    if (!layers) return;
    // "Pulling from <repo>" carries the tag as its id; every other event with an id is about one layer.
    if (event.id && event.status && !event.status.startsWith("Pulling from")) {
      const layer = layers.get(event.id) ?? { current: 0, total: 0, done: false };
      layer.current = event.progressDetail?.current ?? layer.current;
      layer.total = event.progressDetail?.total ?? layer.total;
      if (/complete|already exists/i.test(event.status)) layer.done = true;
      layers.set(event.id, layer);
    }
    const done = [...layers.values()].filter((layer) => layer.done).length;
    const bytes = [...layers.values()].reduce(
      (sum, layer) => sum + (layer.done ? layer.total : layer.current),
      0,
    );
    const total = [...layers.values()].reduce((sum, layer) => sum + layer.total, 0);
    const mb = (n: number) => (n / 1e6).toFixed(1);
    this.lines.set(
      image,
      `${image}: ${event.status ?? "pulling"} — layers ${done}/${layers.size}, ${mb(bytes)}/${mb(total)} MB`,
    );
    if (this.output) {
      this.timer ??= setTimeout(() => this.draw(), 100);
      return;
    }
    const now = Date.now();
    if (now - (this.lastLog.get(image) ?? 0) >= (this.options.logEveryMs ?? 5000)) {
      this.lastLog.set(image, now);
      this.options.log.info("Pulling image", {
        image,
        layers_done: done,
        layers: layers.size,
        mb: mb(bytes),
      });
    }
  }

  done(image: string, outcome: string): void {
    this.lines.set(image, `${image}: ${outcome}`);
    if (this.output) this.timer ??= setTimeout(() => this.draw(), 100);
  }

  finish(): void {
    if (this.timer) clearTimeout(this.timer);
    if (this.output) this.draw();
  }

  private draw(): void {
    this.timer = undefined;
    if (!this.output) return;
    // Move back over what was drawn before and rewrite every line in place.
    const up = this.drawn > 0 ? `\x1b[${this.drawn}A` : "";
    const body = this.images.map((image) => `\x1b[2K${this.lines.get(image) ?? ""}\n`).join("");
    this.output.write(up + body);
    this.drawn = this.images.length;
  }
}
