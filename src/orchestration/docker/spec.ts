// Config → Docker: the create options for one managed container, the hash that says "this container was
// built from exactly this configuration", and the comparison that decides between reuse and replacement.
import { createHash } from "node:crypto";
import { isAbsolute, resolve } from "node:path";
import type { ContainerCreateOptions, ContainerInspectInfo } from "dockerode";
import type { ContainerConfig } from "../../config/schema.ts";
import { StartupError } from "../../lib/errors.ts";

/** Every container this node creates carries this label (value "true"). */
export const LABEL_MANAGED = "infernet-node.managed";
/** Hash of the settings the container was created from; a different hash means "replace it". */
export const LABEL_HASH = "infernet-node.config-hash";
/** The config id the container serves (also its name). */
export const LABEL_ID = "infernet-node.container-id";
/** Services listen on this port inside the container (container protocol). */
export const SERVICE_PORT = "3000/tcp";
/** Bumped when the create options change shape, so containers from an older node are replaced once. */
const SPEC_VERSION = 1;

export interface SpecOptions {
  /** Host address the service port is published on (config container_bind_address). */
  bindAddress: string;
  /** Extra labels (e.g. a test-run id); not part of the hash. */
  labels?: Record<string, string>;
  /** Base for relative host paths in volume strings. */
  cwd?: string;
}

export interface DesiredContainer {
  name: string;
  hash: string;
  create: ContainerCreateOptions;
}

/**
 * Splits a command like a POSIX shell (Python's shlex.split, which the reference's Docker SDK uses): quotes
 * group words, backslash escapes, no variable expansion. Returns an error string for an unclosed quote.
 */
export function splitCommand(command: string): string[] | string {
  const words: string[] = [];
  let word = "";
  let inWord = false;
  let quote: "'" | '"' | undefined;
  for (let i = 0; i < command.length; i++) {
    const ch = command[i] as string;
    if (quote === "'") {
      if (ch === "'") quote = undefined;
      else word += ch;
      continue;
    }
    if (quote === '"') {
      if (ch === '"') quote = undefined;
      else if (ch === "\\" && i + 1 < command.length && '\\"$`\n'.includes(command[i + 1] as string)) {
        word += command[++i];
      } else word += ch;
      continue;
    }
    if (/\s/.test(ch)) {
      if (inWord) words.push(word);
      word = "";
      inWord = false;
      continue;
    }
    inWord = true;
    if (ch === "'" || ch === '"') quote = ch;
    else if (ch === "\\") {
      if (i + 1 < command.length) word += command[++i];
    } else word += ch;
  }
  if (quote) return `unclosed ${quote === "'" ? "single" : "double"} quote`;
  if (inWord) words.push(word);
  return words;
}

/**
 * `KEY=value` lines as the reference's Docker SDK writes them: null gives a bare `KEY`, booleans are written
 * the Python way (True/False) so containers that compare against those strings keep working.
 */
export function formatEnv(env: Record<string, unknown>): string[] {
  return Object.entries(env).map(([key, value]) => {
    if (value === null || value === undefined) return key;
    if (typeof value === "boolean") return `${key}=${value ? "True" : "False"}`;
    return `${key}=${String(value)}`;
  });
}

/**
 * Bind strings as Docker expects them. A relative host path (./data, data/x) is resolved against `cwd`,
 * because Docker would otherwise read it as a (badly named) volume; a bare name stays a named volume.
 */
export function resolveVolumes(volumes: readonly string[], cwd: string): string[] {
  return volumes.map((volume) => {
    const [host = "", ...rest] = volume.split(":");
    const isPath = host.startsWith(".") || host.includes("/");
    if (!isPath || isAbsolute(host)) return volume;
    return [resolve(cwd, host), ...rest].join(":");
  });
}

/** The create options for a configured container, and the hash of everything that shapes it. */
export function desiredContainer(container: ContainerConfig, options: SpecOptions): DesiredContainer {
  const cmd = container.command.trim() === "" ? undefined : splitCommand(container.command);
  if (typeof cmd === "string") {
    throw new StartupError(`container '${container.id}': cannot parse command: ${cmd}`, {
      meta: { container: container.id },
    });
  }
  const env = formatEnv(container.env);
  const binds = resolveVolumes(container.volumes, options.cwd ?? process.cwd());
  const hostPort = String(container.port);
  const shape = {
    v: SPEC_VERSION,
    image: container.image,
    cmd: cmd ?? null,
    env,
    port: hostPort,
    bind: options.bindAddress,
    binds,
    gpu: container.gpu,
  };
  const hash = createHash("sha256").update(JSON.stringify(shape)).digest("hex").slice(0, 32);
  const create: ContainerCreateOptions = {
    name: container.id,
    Image: container.image,
    Env: env,
    ExposedPorts: { [SERVICE_PORT]: {} },
    Labels: {
      ...options.labels,
      [LABEL_MANAGED]: "true",
      [LABEL_HASH]: hash,
      [LABEL_ID]: container.id,
    },
    HostConfig: {
      PortBindings: { [SERVICE_PORT]: [{ HostIp: options.bindAddress, HostPort: hostPort }] },
      Binds: binds,
      RestartPolicy: { Name: "on-failure", MaximumRetryCount: 5 },
      // An init process as PID 1 forwards SIGTERM and reaps children, so `docker stop` does not wait for the
      // whole timeout when the service itself ignores signals.
      Init: true,
      ...(container.gpu
        ? { DeviceRequests: [{ Driver: "", Count: -1, DeviceIDs: [], Capabilities: [["gpu"]], Options: {} }] }
        : {}),
    },
  };
  if (cmd) create.Cmd = cmd;
  return { name: container.id, hash, create };
}

/**
 * Whether a container was created by an infernet-node (it carries our managed label). One that was not (the
 * operator's own, or one left by Ritual's Python node) is never removed or replaced: it may hold state we know
 * nothing about, so start-up stops and asks the operator instead.
 */
export function isManaged(info: Pick<ContainerInspectInfo, "Config">): boolean {
  return info.Config?.Labels?.[LABEL_MANAGED] === "true";
}

/** The start-up error for a container that has the configured name but was not created by infernet-node. */
export function foreignContainerError(id: string): StartupError {
  return new StartupError(
    `container '${id}': a container with this name exists that infernet-node did not create ` +
      `(no ${LABEL_MANAGED} label); remove or rename it (docker rm -f ${id}) and start again`,
    { meta: { container: id } },
  );
}

/**
 * Whether an existing container can be reused for `desired`: it must carry the same config hash (so image
 * name, command, env, port, bind address, volumes and gpu are all the same) and run the image the node just
 * pulled or found. Returns the reason when it cannot.
 */
export function mismatchReason(
  info: Pick<ContainerInspectInfo, "Image" | "Config">,
  desired: DesiredContainer,
  imageId: string | undefined,
): string | undefined {
  const labels = info.Config?.Labels ?? {};
  const hash = labels[LABEL_HASH];
  if (!hash) return "it was not created by this node (no config-hash label)";
  if (hash !== desired.hash) return "its configuration changed";
  if (imageId && info.Image !== imageId) return "its image was updated";
  return undefined;
}
