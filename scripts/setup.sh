#!/usr/bin/env bash
# Set-up shared by the README's two commands: npm dependencies, the compiled CLI,
# and the Debian host tools for what comes next (installed when root, otherwise
# the exact apt-get line is printed and we stop).
# Usage: scripts/setup.sh build,boot[,test]
set -euo pipefail
cd "$(dirname "$0")/.."
uses="${1:-build,boot,test}"
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: npm ci" >&2
  npm ci --no-audit --no-fund --loglevel=error
fi
echo "setup: compiling TypeScript (and copying the guest's shell files beside it)" >&2
npm run --silent build >/dev/null
echo "setup: checking host tools ($uses)" >&2
node bin/kjx.js doctor --install --for "$uses" >/dev/null || {
  node bin/kjx.js doctor --for "$uses" >&2 || true
  echo "setup: host tools are missing; install them with the apt-get line above and run again" >&2
  exit 1
}
