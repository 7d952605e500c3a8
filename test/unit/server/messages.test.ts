import { describe, expect, test } from "bun:test";
import { parseJson } from "../../../src/lib/json.ts";
import { parseJobMessage, parseStatusUpdate } from "../../../src/shared/messages.ts";

describe("parseJobMessage", () => {
  test("default", () => {
    const parsed = parseJobMessage(
      { containers: ["a"], data: { x: 1 }, id: "evil", ip: "1.1.1.1" },
      "uuid",
      "127.0.0.1",
    );
    expect(parsed).toEqual({
      ok: true,
      message: {
        kind: "offchain",
        id: "uuid",
        ip: "127.0.0.1",
        containers: ["a"],
        data: { x: 1 },
        requires_proof: false,
      },
    });
  });

  test("behavior: requires_proof null/absent is false; type 0 and 1 (also as bigint) pick the kind", () => {
    for (const requires_proof of [null, undefined, false]) {
      const parsed = parseJobMessage({ containers: ["a"], data: {}, requires_proof }, "u", "ip");
      expect(parsed.ok && parsed.message.requires_proof).toBe(false);
    }
    expect(parseJobMessage({ type: 0n, containers: ["a"], data: {} }, "u", "ip").ok).toBe(true);
    const delegated = parseJobMessage({ type: 1, containers: ["a"], data: {} }, "u", "ip");
    expect(delegated).toMatchObject({ ok: false, problem: { field: "subscription" } });
  });

  test("behavior: a body with containers and subscription is an off-chain job (reference first match)", () => {
    const parsed = parseJobMessage(
      { containers: ["a"], data: {}, subscription: {}, signature: {} },
      "u",
      "ip",
    );
    expect(parsed.ok && parsed.message.kind).toBe("offchain");
  });

  test("behavior: big integers in a delegated body stay exact", () => {
    const body = parseJson(
      `{"subscription":{"owner":"0x${"a".repeat(40)}","active_at":1,"period":2,"frequency":3,"redundancy":4,"containers":"0x${"AB".repeat(32)}","lazy":true,"verifier":"0x${"0".repeat(40)}","payment_amount":115792089237316195423570985008687907853269984665640564039457584007913129639935,"payment_token":"0x${"0".repeat(40)}","wallet":"0x${"0".repeat(40)}"},"signature":{"nonce":1,"expiry":2,"v":27,"r":99999999999999999999999,"s":1},"data":{}}`,
    );
    const parsed = parseJobMessage(body, "u", "ip");
    if (!parsed.ok || parsed.message.kind !== "delegated") throw new Error("not parsed");
    expect(parsed.message.subscription.payment_amount).toBe(2n ** 256n - 1n);
    expect(parsed.message.signature.r).toBe(99999999999999999999999n);
    expect(parsed.message.subscription.containers).toBe(`0x${"ab".repeat(32)}`);
  });

  test("error: names the field and the reason", () => {
    expect(parseJobMessage({ containers: ["a"], data: "x" }, "u", "ip")).toEqual({
      ok: false,
      problem: { field: "data", reason: "expected a JSON object" },
    });
    expect(parseJobMessage({ containers: [1], data: {} }, "u", "ip")).toEqual({
      ok: false,
      problem: { field: "containers.0", reason: "expected a container id string" },
    });
    expect(parseJobMessage(null, "u", "ip")).toEqual({
      ok: false,
      problem: { field: "", reason: "expected a JSON object" },
    });
  });
});

describe("parseStatusUpdate", () => {
  test("default", () => {
    expect(
      parseStatusUpdate({ id: "j", status: "success", containers: ["a"], data: { ignored: true } }),
    ).toEqual({
      ok: true,
      update: { id: "j", status: "success", containers: ["a"] },
    });
  });

  test("error: the status problem is reported first", () => {
    expect(parseStatusUpdate({ status: "nope" })).toMatchObject({ ok: false, problem: { field: "status" } });
    expect(parseStatusUpdate({ id: "j", status: "running" })).toMatchObject({
      ok: false,
      problem: { field: "containers" },
    });
  });
});
