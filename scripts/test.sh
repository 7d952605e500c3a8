#!/usr/bin/env bash
# The test command: typecheck, lint, then every test with bun; prints bun's output and a closing line
# "N passed, N failed". Exit code is non-zero when anything failed. Extra args go to `bun test`.
# Last, the secret scan greps everything the node binaries printed and logged during the run (collected in
# $INFERNET_TEST_OUTPUT_DIR by test/fixtures/node-output.ts) for the test secrets; it counts as one test.
set -o pipefail
cd "$(dirname "$0")/.."
log=$(mktemp)
extra_fail=0
own_output_dir=0
if [ -z "${INFERNET_TEST_OUTPUT_DIR:-}" ]; then
  INFERNET_TEST_OUTPUT_DIR=$(mktemp -d -t infernet-node-output-XXXXXX); own_output_dir=1
fi
export INFERNET_TEST_OUTPUT_DIR

echo "== typecheck (tsc --noEmit)"
if bunx tsc --noEmit; then echo "typecheck ok"; else echo "typecheck FAILED"; extra_fail=$((extra_fail + 1)); fi
echo "== lint (biome)"
if bunx biome check . ; then echo "lint ok"; else echo "lint FAILED"; extra_fail=$((extra_fail + 1)); fi

echo "== bun test"
bun test --timeout=60000 "$@" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
pass=$(grep -E '^ ?[0-9]+ pass$' "$log" | tail -1 | grep -oE '[0-9]+')
fail=$(grep -E '^ ?[0-9]+ fail$' "$log" | tail -1 | grep -oE '[0-9]+')
err=$(grep -E '^ ?[0-9]+ errors?$' "$log" | tail -1 | grep -oE '[0-9]+')
rm -f "$log"

echo "== secret scan (node output of this run)"
if bun scripts/secret-scan.ts "$INFERNET_TEST_OUTPUT_DIR"; then
  if [ "$own_output_dir" -eq 1 ]; then rm -rf "$INFERNET_TEST_OUTPUT_DIR"; fi
else
  echo "(the node output is kept in $INFERNET_TEST_OUTPUT_DIR)"; extra_fail=$((extra_fail + 1))
fi
pass=${pass:-0}; fail=${fail:-0}; err=${err:-0}
if [ "$rc" -ne 0 ] && [ "$fail" -eq 0 ]; then fail=$(( err > 0 ? err : 1 )); fi
# typecheck, lint and the secret scan count as one test each
pass=$(( pass + 3 - extra_fail )); fail=$(( fail + extra_fail ))
echo "${pass} passed, ${fail} failed"
if [ "$rc" -ne 0 ] || [ "$extra_fail" -ne 0 ]; then exit 1; fi
exit 0
