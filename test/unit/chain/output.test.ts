// Container output → deliverCompute bytes (node-behavior §8.10.6): the five-key form byte for byte, the JSON
// fallback, and malformed outputs as clear errors.
import { describe, expect, test } from "bun:test";
import { decodeAbiParameters, encodeAbiParameters } from "viem";
import {
  MalformedOutputError,
  outputReportsError,
  serializeContainerOutput,
} from "../../../src/chain/output.ts";

const BYTES_PAIR = [{ type: "bytes" }, { type: "bytes" }] as const;

describe("serializeContainerOutput", () => {
  test("default: the five-key form is abi.encode(bytes,bytes) twice and the raw proof", () => {
    const raw = encodeAbiParameters([{ type: "string" }], ["hello"]).slice(2);
    const out = serializeContainerOutput({
      raw_input: "abcd",
      processed_input: "",
      raw_output: raw,
      processed_output: null,
      proof: "0102",
    });
    expect(out.input).toBe(encodeAbiParameters(BYTES_PAIR, ["0xabcd", "0x"]));
    expect(out.output).toBe(encodeAbiParameters(BYTES_PAIR, [`0x${raw}`, "0x"]));
    expect(out.proof).toBe("0x0102");
    const [decodedRaw] = decodeAbiParameters(BYTES_PAIR, out.output);
    expect(decodeAbiParameters([{ type: "string" }], decodedRaw)[0]).toBe("hello");
  });

  test("behavior: hex with 0x, upper case and whitespace between bytes is accepted", () => {
    const out = serializeContainerOutput({
      raw_input: "0xAB CD",
      processed_input: null,
      raw_output: "0X01",
      processed_output: "",
      proof: null,
    });
    expect(out.input).toBe(encodeAbiParameters(BYTES_PAIR, ["0xabcd", "0x"]));
    expect(out.output).toBe(encodeAbiParameters(BYTES_PAIR, ["0x01", "0x"]));
    expect(out.proof).toBe("0x");
  });

  test("behavior: any other object is an ABI string of its JSON, with empty input and proof", () => {
    const out = serializeContainerOutput({ output: "hi", n: 1 });
    expect(out.input).toBe("0x");
    expect(out.proof).toBe("0x");
    expect(decodeAbiParameters([{ type: "string" }], out.output)[0]).toBe('{"output":"hi","n":1}');
  });

  test("error: non-objects and bad hex are MalformedOutputError naming the problem", () => {
    expect(() => serializeContainerOutput(null)).toThrow(MalformedOutputError);
    expect(() => serializeContainerOutput([1])).toThrow("got an array");
    expect(() => serializeContainerOutput("text")).toThrow("got string");
    const five = { raw_input: "abc", processed_input: "", raw_output: "", processed_output: "", proof: "" };
    expect(() => serializeContainerOutput(five)).toThrow("raw_input is not hex of whole bytes");
    expect(() => serializeContainerOutput({ ...five, raw_input: 5 })).toThrow(
      "raw_input must be a hex string",
    );
  });
});

describe("outputReportsError", () => {
  test('behavior: code other than null, "200" or 200 is an error', () => {
    expect(outputReportsError({ code: "500" })).toBe(true);
    expect(outputReportsError({ code: "400", description: "x" })).toBe(true);
    expect(outputReportsError({ code: "200" })).toBe(false);
    expect(outputReportsError({ code: 200 })).toBe(false);
    expect(outputReportsError({ code: null })).toBe(false);
    expect(outputReportsError({ output: 1 })).toBe(false);
    expect(outputReportsError("x")).toBe(false);
  });
});
