#!/usr/bin/env bash
# `npm test`: set up (npm deps, host tools), typecheck, lint, then every test with node's runner.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh build,boot,test
echo "test: typecheck" >&2
npx tsc -p tsconfig.json --noEmit
echo "test: lint" >&2
npx biome check src test scripts bench
npx tsx scripts/check-imports.ts
bash scripts/shellcheck.sh
exec bash scripts/run-tests.sh "$@"
