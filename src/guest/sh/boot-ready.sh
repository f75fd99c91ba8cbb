#!/bin/sh
# /usr/lib/kjx/boot-ready: stage 2 starts it detached. It waits for every service to be
# ready (at most KJX_TIMEOUT seconds, then it names the stragglers), prints the ready
# marker, and execs the `kjx run` hook when there is one (docs/guest-protocol.md).
# Written into images by kjx build from src/guest/sh/boot-ready.sh.
# shellcheck source-path=SCRIPTDIR
#
# @value KJX_SV_LIB    the service library (sv.sh)
# @value KJX_SERVICES  every service, in start order (names: plain words)
# @value KJX_TIMEOUT   seconds to wait for them: the slowest chain of ready timeouts
# @value KJX_BUILD_ID  the image's build id, for the ready marker
# @value KJX_RUN_HOOK  the `kjx run` hook, put in place before stage 1 ended
# @input KJX_SV        from the service library

# shellcheck source=sv.sh
. "$KJX_SV_LIB"
kjx_now
kjx_deadline=$((${kjx_t%.*} + KJX_TIMEOUT))
while :; do
  kjx_notready=
  for s in $KJX_SERVICES; do
    # a service stage 1 left out (an ephemeral run VM) is not waited for
    [ -e "$KJX_SV/$s" ] || continue
    kjx_is_ready "$s" || kjx_notready="$kjx_notready${kjx_notready:+,}$s"
  done
  [ -z "$kjx_notready" ] && break
  kjx_now
  [ "${kjx_t%.*}" -ge "$kjx_deadline" ] && break
  # builtins only, so a short period costs little; the host waits for what this prints
  kjx_sleep 0.05
done
[ -z "$kjx_notready" ] || echo "kjx: warning: not ready after $KJX_TIMEOUT s: $kjx_notready"
kjx_now
kjx_say "ready build=$KJX_BUILD_ID kernel=$(uname -r) uptime=$kjx_t${kjx_notready:+ notready=$kjx_notready}"
[ -x "$KJX_RUN_HOOK" ] && exec "$KJX_RUN_HOOK"
exit 0
