#!/usr/bin/env bash
# Runs test files with node's built-in runner (TypeScript through tsx).
# Usage: scripts/run-tests.sh [FILES...]   (default: every test/**/*.test.ts)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$#" -eq 0 ]; then
  mapfile -t files < <(find test -name '*.test.ts' | sort)
else
  files=("$@")
fi
exec node --import tsx --test --test-concurrency=1 --test-reporter=spec "${files[@]}"
