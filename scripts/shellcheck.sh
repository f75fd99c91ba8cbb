#!/usr/bin/env bash
# Lint of the guest's shell files (src/**/sh/*.sh): shellcheck as POSIX sh, which busybox
# ash is plus a few extensions; a file that relies on one says so in a disable directive
# with its reason. -x follows `# shellcheck source=` to the library a script sources.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v shellcheck >/dev/null; then
  echo "lint: shellcheck is missing (Debian package shellcheck: kjx doctor --install --for test)" >&2
  exit 1
fi
mapfile -t files < <(find src -name '*.sh' -path '*/sh/*' | sort)
shellcheck --shell=sh --severity=style -x "${files[@]}"
echo "lint: shellcheck passed on ${#files[@]} shell files" >&2
