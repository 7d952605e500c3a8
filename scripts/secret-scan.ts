// The last step of scripts/test.sh: greps everything the node binaries printed and logged during the test run
// (the directory test/fixtures/node-output.ts fills) for every test secret (test/fixtures/secrets.ts). Prints
// what it scanned and, for a hit, the file and the secret's name (never its value); exits 1 on any hit.
//   bun scripts/secret-scan.ts <dir>
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { secretNeedles, secretsIn } from "../test/fixtures/secrets.ts";

const dir = process.argv[2];
if (!dir) {
  console.error("usage: bun scripts/secret-scan.ts <node output dir>");
  process.exit(2);
}

const needles = secretNeedles();
let files = 0;
let bytes = 0;
const hits: string[] = [];
for (const name of existsSync(dir) ? readdirSync(dir).sort() : []) {
  const path = join(dir, name);
  let text: string;
  try {
    if (!statSync(path).isFile()) continue; // follows a symlinked log; a dangling one is skipped
    text = readFileSync(path, "latin1");
  } catch {
    continue;
  }
  files++;
  bytes += text.length;
  for (const secret of secretsIn(text, needles)) hits.push(`${name}: ${secret}`);
}

console.log(`secret scan: ${files} files, ${bytes} bytes of node output, ${needles.length} secrets`);
if (hits.length > 0) {
  console.log(`secret scan FAILED: ${hits.length} leak(s) in ${dir}`);
  for (const hit of hits) console.log(`  ${hit}`);
  process.exit(1);
}
console.log("secret scan ok");
