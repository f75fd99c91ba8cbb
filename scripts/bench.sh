#!/usr/bin/env bash
# `npm run bench [GROUP...]`: set up, then run the benchmarks; results in bench/results.json.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh build,boot,test
exec node --import tsx bench/run.ts "$@"
