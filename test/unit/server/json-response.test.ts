import { describe, expect, test } from "bun:test";
import { toFlaskJson } from "../../../src/server/json-response.ts";

describe("toFlaskJson", () => {
  test("default", () => {
    expect(toFlaskJson({ b: 1, a: [true, null, { d: "x", c: 2.5 }] })).toBe(
      '{"a":[true,null,{"c":2.5,"d":"x"}],"b":1}\n',
    );
  });

  test("behavior: non-ASCII escaped, bigints exact, undefined keys dropped", () => {
    expect(toFlaskJson({ s: "é😀", n: 2n ** 70n, u: undefined })).toBe(
      '{"n":1180591620717411303424,"s":"\\u00e9\\ud83d\\ude00"}\n',
    );
    expect(toFlaskJson(null)).toBe("null\n");
  });
});
