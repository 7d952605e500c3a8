// Bad settings fail start-up with one clear error each, naming the image, port or container and the cause.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import Docker from "dockerode";
import { StartupError } from "../../../src/lib/errors.ts";
import { createLog } from "../../../src/lib/log.ts";
import { createContainers } from "../../../src/orchestration/docker/containers.ts";
import {
  cleanupRun,
  createRun,
  ECHO_IMAGE,
  ensureEchoImage,
  testConfig,
  testDocker,
} from "../../fixtures/docker.ts";
import { freePort } from "../../fixtures/net.ts";

const run = createRun("err");

beforeAll(async () => {
  await ensureEchoImage();
});

afterAll(async () => {
  await cleanupRun(run.id);
});

async function setupError(raw: Record<string, unknown>, docker?: () => Docker): Promise<StartupError> {
  const manager = createContainers({
    config: testConfig(raw),
    log: createLog(run.id),
    host: "127.0.0.1",
    labels: run.labels,
    ...(docker ? { docker } : {}),
  });
  const error = await manager.setup?.(new AbortController().signal).then(
    () => undefined,
    (e: unknown) => e,
  );
  await manager.close?.();
  expect(error).toBeInstanceOf(StartupError);
  return error as StartupError;
}

describe("start-up errors", () => {
  test("error: an image that is neither pullable nor local", async () => {
    const image = `${run.id}-no-such-image:1.0`;
    const error = await setupError({ containers: [{ id: run.name("noimg"), image, port: freePort() }] });
    expect(error.message).toStartWith("Could not pull all images: ");
    expect(error.message).toContain(`image "${image}": pull failed (`);
    // The registry's own error is kept (here: no registry reachable at all).
    expect(error.message).toMatch(/pull failed \(.+\) and no local copy/);
    expect(error.meta.images).toEqual([image]);
  });

  test("error: the host port is already taken", async () => {
    const port = freePort();
    const holder = Bun.listen({ hostname: "127.0.0.1", port, socket: { data() {} } });
    try {
      const id = run.name("porttaken");
      const error = await setupError({ containers: [{ id, image: ECHO_IMAGE, port }] });
      expect(error.message).toBe(
        `container '${id}': cannot publish port ${port}: port ${port} on 127.0.0.1 is already in use on this host`,
      );
      // Nothing was left behind for that container.
      const left = await testDocker().listContainers({ all: true, filters: { name: [id] } });
      expect(left).toHaveLength(0);
    } finally {
      holder.stop(true);
    }
  });

  test("error: a command with an unclosed quote", async () => {
    const id = run.name("badcmd");
    const error = await setupError({
      containers: [{ id, image: ECHO_IMAGE, port: freePort(), command: `--x "unterminated` }],
    });
    expect(error.message).toBe(`container '${id}': cannot parse command: unclosed double quote`);
  });

  test("error: a container with the configured name that infernet-node did not create is left alone", async () => {
    const id = run.name("foreign");
    // The operator's own container (or one left by Ritual's Python node): no infernet-node labels.
    const foreign = await testDocker().createContainer({ name: id, Image: ECHO_IMAGE, Labels: run.labels });
    const error = await setupError({ containers: [{ id, image: ECHO_IMAGE, port: freePort() }] });
    expect(error.message).toBe(
      `container '${id}': a container with this name exists that infernet-node did not create ` +
        `(no infernet-node.managed label); remove or rename it (docker rm -f ${id}) and start again`,
    );
    // Still there, untouched.
    const info = await testDocker().getContainer(id).inspect();
    expect(info.Id).toBe(foreign.id);
  });

  test("error: the Docker engine cannot be reached", async () => {
    const error = await setupError(
      { containers: [{ id: run.name("nodocker"), image: ECHO_IMAGE, port: freePort() }] },
      () => new Docker({ socketPath: "/nonexistent/docker.sock" }),
    );
    expect(error.message).toStartWith("cannot reach the Docker engine: ");
    expect(error.message).toContain("/nonexistent/docker.sock");
  });
});
