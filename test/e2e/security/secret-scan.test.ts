// scripts/secret-scan.ts, the last step of scripts/test.sh, on directories made for it: it must pass clean node
// output, and find a planted secret in any form the node could print it (with or without 0x, upper case, inside
// a JSON line) while naming the secret without ever printing its value.
import { describe, expect, test } from "bun:test";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { repoRoot, runCommand } from "../../fixtures/binary.ts";
import { TEST_SECRETS } from "../../fixtures/secrets.ts";

function scan(files: Record<string, string>) {
  const dir = mkdtempSync(join(tmpdir(), "secret-scan-"));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return runCommand(["bun", join(repoRoot, "scripts/secret-scan.ts"), dir]);
}

const line = (msg: string) => `${JSON.stringify({ ts: "2026-01-01T00:00:00.000Z", level: "info", msg })}\n`;

describe("secret scan", () => {
  test("default: clean output passes and says how much it read", async () => {
    const result = await scan({ "node-1.stderr": line("Node ready"), "node-1.log": line("Node ready") });
    expect(result.code).toBe(0);
    expect(result.stdout).toContain("secret scan: 2 files,");
    expect(result.stdout).toContain("secret scan ok");
  });

  test("error: a key with or without 0x, in any case, and a password are found, named, not printed", async () => {
    const key = TEST_SECRETS.privateKey;
    const result = await scan({
      "a.log": line(`signing with ${key}`),
      "b.stderr": line(`key ${key.slice(2).toUpperCase()}`),
      "c.stdout": `redis://:${TEST_SECRETS.redisPassword}@127.0.0.1`,
    });
    expect(result.code).toBe(1);
    expect(result.stdout).toContain("3 leak(s)");
    expect(result.stdout).toContain("a.log: TEST_SECRETS.privateKey");
    expect(result.stdout).toContain("b.stderr: TEST_SECRETS.privateKey");
    expect(result.stdout).toContain("c.stdout: redisPassword");
    for (const value of [key.slice(2), TEST_SECRETS.redisPassword])
      expect(result.stdout).not.toContain(value);
  });
});
