import { describe, expect, test } from "bun:test";
import {
  containerSetId,
  coveredLength,
  createContainerLookup,
  lookupContainers,
} from "../../../src/chain/container-lookup.ts";

describe("containerSetId", () => {
  test("default: spec vectors (keccak256 of abi.encode(string))", () => {
    expect(containerSetId(["hello-world"])).toBe(
      "0x5768661526084c7b4d30f7224ed6c74ade98db3c6c395c55400a17f34a547e22",
    );
    expect(containerSetId(["a"])).toBe("0x61121a9e6ec8e98f21038631472bc3010b0f7858699630bbbd5294dca02ef29e");
    expect(containerSetId(["a", "b"])).toBe(
      "0x0deeac3a841600829c99f8116bb997da266d4c47a720b00e6ace9594de82dd54",
    );
    expect(containerSetId(["b", "a"])).toBe(
      "0x73ede0fe4b30aa8027db6b64635734b367776b05dc0bcf986c744c6bcbf6892e",
    );
    expect(containerSetId(["A", "B"])).toBe(
      "0xed76aa63268e9d816365e0b3c94f7ea57c80b3b404d41ca7a65a492ff9d0526e",
    );
  });
});

describe("createContainerLookup", () => {
  test("default: resolves ordered pipelines, any hex case", () => {
    const lookup = createContainerLookup(["a", "b", "hello-world"]);
    expect(
      lookup.lookupContainers("0x0deeac3a841600829c99f8116bb997da266d4c47a720b00e6ace9594de82dd54"),
    ).toEqual(["a", "b"]);
    expect(
      lookup.lookupContainers("0x73EDE0FE4B30AA8027DB6B64635734B367776B05DC0BCF986C744C6BCBF6892E"),
    ).toEqual(["b", "a"]);
    expect(lookup.lookupContainers(containerSetId(["hello-world", "a", "b"]))).toEqual([
      "hello-world",
      "a",
      "b",
    ]);
  });

  test("behavior: unknown hashes and repeated containers are not recognised", () => {
    const lookup = createContainerLookup(["a", "b"]);
    expect(lookup.lookupContainers(containerSetId(["c"]))).toBeUndefined();
    expect(lookup.lookupContainers(containerSetId(["a", "a"]))).toBeUndefined();
  });

  test("behavior: every ordered permutation of every size up to 7 containers (reference table sizes)", () => {
    const expected = [0, 1, 4, 15, 64, 325, 1956, 13699];
    for (let n = 1; n <= 7; n++) {
      const ids = Array.from({ length: n }, (_, i) => `c${i}`);
      const lookup = createContainerLookup(ids);
      expect(lookup.maxPipelineLength).toBe(n);
      expect(lookup.size()).toBe(expected[n] ?? -1);
    }
    const seven = createContainerLookup(["g", "f", "e", "d", "c", "b", "a"]);
    expect(seven.lookupContainers(containerSetId(["a", "b", "c", "d", "e", "f", "g"]))).toEqual([
      "a",
      "b",
      "c",
      "d",
      "e",
      "f",
      "g",
    ]);
  });

  test("behavior: bounded beyond the cap (longest pipelines dropped, never factorial growth)", () => {
    expect(coveredLength(8, 20_000)).toBe(5);
    expect(coveredLength(20, 20_000)).toBe(3);
    expect(coveredLength(1000, 20_000)).toBe(1);
    const ids = Array.from({ length: 10 }, (_, i) => `c${i}`);
    const lookup = createContainerLookup(ids);
    expect(lookup.size()).toBeLessThanOrEqual(20_000);
    expect(lookup.lookupContainers(containerSetId(["c9", "c0", "c5", "c3"]))).toEqual([
      "c9",
      "c0",
      "c5",
      "c3",
    ]);
    expect(lookup.lookupContainers(containerSetId(ids))).toBeUndefined();
  });

  test("behavior: duplicate configured ids collapse", () => {
    expect(createContainerLookup(["a", "a", "b"]).size()).toBe(4);
  });
});

describe("lookupContainers", () => {
  test("default: free-function form over the configured ids", () => {
    expect(lookupContainers(containerSetId(["b", "a"]), ["a", "b"])).toEqual(["b", "a"]);
    expect(lookupContainers(containerSetId(["c"]), ["a", "b"])).toBeUndefined();
    expect(lookupContainers(containerSetId(["c"]), ["c"])).toEqual(["c"]);
  });
});
