#!/usr/bin/env bash
# Runs one tier of the compiled test suite: unit | integration | chaos (run `tsc -p .` first).
# The files come from the sources (test/<tier>/**/*.test.ts → dist/test/<tier>/**/*.test.js), so a
# stale compiled file of a test that moved or was deleted never runs. One file at a time: the
# integration and chaos tests start servers and daemons, and several unit tests measure failure
# detection on real time, which a loaded CPU would skew.
set -euo pipefail
cd "$(dirname "$0")/.."
tier="${1:?usage: scripts/run-tests.sh unit|integration|chaos [node --test options]}"
shift
case "$tier" in unit | integration | chaos) ;; *) echo "unknown test tier: $tier" >&2; exit 2 ;; esac
mapfile -t files < <(find "test/$tier" -name '*.test.ts' | sort | sed -e 's#^#dist/#' -e 's#\.ts$#.js#')
[ ${#files[@]} -gt 0 ] || { echo "no $tier tests under test/$tier" >&2; exit 1; }
for f in "${files[@]}"; do
  [ -f "$f" ] || { echo "$f is missing: run npm run build first" >&2; exit 1; }
done
exec node --test --test-concurrency=1 "$@" "${files[@]}"
