// Runs before any test file: isolates environment and state so tests never touch a real node's files,
// keys or services, and keeps logs quiet unless LOG_LEVEL is set.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

for (const key of ["INFERNET_PRIVATE_KEY", "INFERNET_CONFIG_PATH", "RUNTIME", "DOCKER_HOST"])
  delete process.env[key];
process.env.LOG_LEVEL ??= "silent";
process.env.LOG_FORMAT ??= "json";
const home = mkdtempSync(join(tmpdir(), "infernet-test-"));
process.env.INFERNET_TEST_TMP = home;
