#!/usr/bin/env bash
# `npm run bench [GROUP...]`: set up, then run the benchmarks; results in bench/results.json.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh build,boot,test
# time kjx as installed from npm: compiled (build/), not the sources through tsx,
# which bin/kjx.js falls back to when build/ is older than src/ (~0.4 s a start)
npm run --silent build
exec node --import tsx bench/run.ts "$@"
