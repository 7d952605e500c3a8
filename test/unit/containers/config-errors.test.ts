// Container settings that Docker would reject are configuration errors, reported before anything starts.
import { describe, expect, test } from "bun:test";
import { loadConfig } from "../../../src/config/load.ts";
import { ConfigError } from "../../../src/lib/errors.ts";

function issues(container: Record<string, unknown>): string[] {
  try {
    loadConfig({ containers: [{ id: "svc", image: "img", ...container }] }, {});
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).issues;
  }
  throw new Error("expected a ConfigError");
}

describe("container config errors", () => {
  test("error: malformed volume strings", () => {
    expect(issues({ volumes: ["/only-one-part"] })).toEqual([
      'containers[0].volumes[0]: "/only-one-part" must look like host_path:container_path[:mode]',
    ]);
    expect(issues({ volumes: ["/h:relative"] })).toEqual([
      'containers[0].volumes[0]: "/h:relative": the container path must be absolute',
    ]);
    expect(issues({ volumes: ["/h:/c:bogus"] })).toEqual([
      'containers[0].volumes[0]: "/h:/c:bogus": unknown mode "bogus"',
    ]);
  });

  test("error: invalid env values and names", () => {
    expect(issues({ env: { NESTED: { a: 1 } } })).toEqual([
      "containers[0].env.NESTED: must be a string, number or boolean, not an object",
    ]);
    expect(issues({ env: { "BAD NAME": "x" } })).toEqual([
      'containers[0].env.BAD NAME: invalid variable name (no "=" or spaces)',
    ]);
  });

  test("error: a managed container without an image", () => {
    expect(issues({ image: "" })).toEqual([
      "containers[0].image: required when manage_containers is true (image must be defined when manage_containers is set to true)",
    ]);
  });
});
