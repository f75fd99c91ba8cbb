#!/usr/bin/env bash
# `npm run demo`: set up, build the default distro, boot it under QEMU and show it working.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh build,boot
exec node --import tsx scripts/demo.ts "$@"
