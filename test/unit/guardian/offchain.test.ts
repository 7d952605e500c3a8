import { describe, expect, test } from "bun:test";
import * as v from "valibot";
import { ContainerSchema } from "../../../src/config/schema.ts";
import { checkOffchainJob } from "../../../src/guardian/offchain.ts";
import { buildRuleTable } from "../../../src/guardian/rules.ts";

const rules = buildRuleTable(
  [
    { id: "a" },
    { id: "internal", external: false },
    { id: "prover", generates_proofs: true },
    { id: "lan", allowed_ips: ["10.0.0.1/8", "2001:db8::/32"] },
    { id: "single", allowed_ips: ["192.0.2.7"] },
  ].map((c) => v.parse(ContainerSchema, c)),
);

const job = (containers: string[], ip = "127.0.0.1", requires_proof = false) => ({
  containers,
  ip,
  requires_proof,
});

describe("checkOffchainJob", () => {
  test("default", () => {
    expect(checkOffchainJob(job(["a"]), rules)).toBeUndefined();
    expect(checkOffchainJob(job(["a", "internal", "a", "a"]), rules)).toBeUndefined();
    expect(checkOffchainJob(job(["a", "prover"], "127.0.0.1", true), rules)).toBeUndefined();
  });

  test("error: no containers", () => {
    expect(checkOffchainJob(job([]), rules)).toEqual({ error: "No containers specified", params: {} });
  });

  test("error: first unsupported container is named", () => {
    expect(checkOffchainJob(job(["a", "x", "y"]), rules)).toEqual({
      error: "Container not supported",
      params: { container: "x" },
    });
  });

  test("error: first container must be external (checked after support)", () => {
    expect(checkOffchainJob(job(["internal", "a"]), rules)).toEqual({
      error: "First container must be external",
      params: { first_container: "internal" },
    });
    expect(checkOffchainJob(job(["internal", "x"]), rules)?.error).toBe("Container not supported");
  });

  test("error: proof is checked on the last container, before the IP", () => {
    expect(checkOffchainJob(job(["prover", "lan"], "1.2.3.4", true), rules)).toEqual({
      error: "Container does not generate proof",
      params: { container: "lan" },
    });
  });

  test("error: every container's allowed_ips is checked, CIDR and exact", () => {
    expect(checkOffchainJob(job(["a", "lan"], "10.255.0.1"), rules)).toBeUndefined();
    expect(checkOffchainJob(job(["a", "lan"], "2001:db8::5"), rules)).toBeUndefined();
    expect(checkOffchainJob(job(["a", "lan"], "11.0.0.1"), rules)).toEqual({
      error: "Container not allowed for address",
      params: { container: "lan", address: "11.0.0.1" },
    });
    expect(checkOffchainJob(job(["single"], "192.0.2.7"), rules)).toBeUndefined();
    expect(checkOffchainJob(job(["single"], "192.0.2.8"), rules)?.params).toEqual({
      container: "single",
      address: "192.0.2.8",
    });
  });
});
