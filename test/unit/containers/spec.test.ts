import { describe, expect, test } from "bun:test";
import type { ContainerConfig } from "../../../src/config/schema.ts";
import { endpointFor, resolveContainerHost } from "../../../src/orchestration/docker/endpoint.ts";
import {
  desiredContainer,
  formatEnv,
  LABEL_HASH,
  LABEL_MANAGED,
  mismatchReason,
  resolveVolumes,
  splitCommand,
} from "../../../src/orchestration/docker/spec.ts";
import { testConfig } from "../../fixtures/docker.ts";

function container(more: Record<string, unknown> = {}): ContainerConfig {
  const config = testConfig({
    containers: [{ id: "svc", image: "ritualnetwork/echo:1.0", port: 3005, ...more }],
  });
  return config.containers[0] as ContainerConfig;
}

describe("splitCommand", () => {
  test("default", () => {
    expect(splitCommand('--port 3000  --model  \'my model\' "a \\"b\\"" c\\ d')).toEqual([
      "--port",
      "3000",
      "--model",
      "my model",
      'a "b"',
      "c d",
    ]);
  });
  test("behavior: empty and blank commands give no words", () => {
    expect(splitCommand("")).toEqual([]);
    expect(splitCommand("   ")).toEqual([]);
  });
  test("behavior: quotes join with adjacent text, empty quotes make an empty word", () => {
    expect(splitCommand(`--x="1 2" '' a'b'"c"`)).toEqual(["--x=1 2", "", "abc"]);
  });
  test("error: unclosed quotes", () => {
    expect(splitCommand(`a "b`)).toBe("unclosed double quote");
    expect(splitCommand(`a 'b`)).toBe("unclosed single quote");
  });
});

describe("formatEnv", () => {
  test("default", () => {
    expect(formatEnv({ A: "x=y", B: 3, C: 1.5, D: true, E: false, F: null })).toEqual([
      "A=x=y",
      "B=3",
      "C=1.5",
      "D=True",
      "E=False",
      "F",
    ]);
  });
});

describe("resolveVolumes", () => {
  test("default", () => {
    expect(resolveVolumes(["/abs:/data", "./rel:/data:ro", "sub/dir:/x", "named:/y"], "/base")).toEqual([
      "/abs:/data",
      "/base/rel:/data:ro",
      "/base/sub/dir:/x",
      "named:/y",
    ]);
  });
});

describe("desiredContainer", () => {
  test("default", () => {
    const desired = desiredContainer(
      container({ command: "--a 'b c'", env: { K: "v" }, volumes: ["/h:/c"] }),
      {
        bindAddress: "127.0.0.1",
        labels: { extra: "1" },
      },
    );
    expect(desired.name).toBe("svc");
    expect(desired.create).toMatchObject({
      name: "svc",
      Image: "ritualnetwork/echo:1.0",
      Cmd: ["--a", "b c"],
      Env: ["K=v"],
      ExposedPorts: { "3000/tcp": {} },
      Labels: { extra: "1", [LABEL_MANAGED]: "true", [LABEL_HASH]: desired.hash },
      HostConfig: {
        PortBindings: { "3000/tcp": [{ HostIp: "127.0.0.1", HostPort: "3005" }] },
        Binds: ["/h:/c"],
        RestartPolicy: { Name: "on-failure", MaximumRetryCount: 5 },
        Init: true,
      },
    });
    expect(desired.create.HostConfig?.DeviceRequests).toBeUndefined();
  });

  test("behavior: an empty command keeps the image's default", () => {
    expect(desiredContainer(container(), { bindAddress: "127.0.0.1" }).create.Cmd).toBeUndefined();
  });

  test("behavior: gpu adds an all-GPU device request", () => {
    const desired = desiredContainer(container({ gpu: true }), { bindAddress: "127.0.0.1" });
    expect(desired.create.HostConfig?.DeviceRequests).toEqual([
      { Driver: "", Count: -1, DeviceIDs: [], Capabilities: [["gpu"]], Options: {} },
    ]);
  });

  test("behavior: every setting that shapes the container changes the hash; other fields do not", () => {
    const base = desiredContainer(container(), { bindAddress: "127.0.0.1" }).hash;
    const variants: Record<string, unknown>[] = [
      { image: "ritualnetwork/echo:1.1" },
      { command: "--x" },
      { env: { A: "1" } },
      { port: 3006 },
      { volumes: ["/a:/b"] },
      { gpu: true },
    ];
    for (const more of variants) {
      expect(desiredContainer(container(more), { bindAddress: "127.0.0.1" }).hash).not.toBe(base);
    }
    expect(desiredContainer(container(), { bindAddress: "0.0.0.0" }).hash).not.toBe(base);
    // Guardian and description settings do not touch Docker: no replacement for them.
    expect(
      desiredContainer(container({ description: "x", allowed_ips: ["10.0.0.0/8"] }), {
        bindAddress: "127.0.0.1",
      }).hash,
    ).toBe(base);
    expect(desiredContainer(container(), { bindAddress: "127.0.0.1", labels: { run: "x" } }).hash).toBe(base);
  });
});

describe("mismatchReason", () => {
  const desired = desiredContainer(container(), { bindAddress: "127.0.0.1" });
  const info = (labels: Record<string, string>, image = "sha256:aaa") => ({
    Image: image,
    Config: { Labels: labels } as never,
  });
  test("default", () => {
    expect(mismatchReason(info({ [LABEL_HASH]: desired.hash }), desired, "sha256:aaa")).toBeUndefined();
  });
  test("behavior: foreign, changed and outdated containers are not reused", () => {
    expect(mismatchReason(info({}), desired, undefined)).toContain("not created by this node");
    expect(mismatchReason(info({ [LABEL_HASH]: "other" }), desired, undefined)).toBe(
      "its configuration changed",
    );
    expect(mismatchReason(info({ [LABEL_HASH]: desired.hash }), desired, "sha256:bbb")).toBe(
      "its image was updated",
    );
  });
});

describe("endpoints", () => {
  test("default", () => {
    expect(endpointFor(container(), "127.0.0.1")).toEqual({ baseUrl: "http://127.0.0.1:3005", headers: {} });
  });
  test("behavior: a url (also in managed mode) is used with its bearer token", () => {
    expect(
      endpointFor(container({ url: "https://svc.example.com/api/", bearer: "tok-123456" }), "127.0.0.1"),
    ).toEqual({
      baseUrl: "https://svc.example.com/api",
      headers: { Authorization: "Bearer tok-123456" },
    });
    expect(endpointFor(container({ url: "http://svc:8000" }), "127.0.0.1").headers).toEqual({});
  });
  test("behavior: the container host follows config, then RUNTIME", () => {
    expect(resolveContainerHost(null, undefined)).toBe("127.0.0.1");
    expect(resolveContainerHost(null, "docker")).toBe("host.docker.internal");
    expect(resolveContainerHost("10.0.0.5", "docker")).toBe("10.0.0.5");
    expect(endpointFor(container(), "::1").baseUrl).toBe("http://[::1]:3005");
  });
});
