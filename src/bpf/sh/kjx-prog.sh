#!/bin/sh
# kjx-prog NAME [ARGS...]: run the eBPF program NAME of tracing.programs with its own
# loader, or with kjx-bpf-run when it has none. The loader replaces this shell (same
# pid), so a stop signal (kjx trace's SIGINT, a service's sv down) reaches it directly.
# Written into images by kjx build from src/bpf/sh/kjx-prog.sh (docs/tracing.md).
#
# @value KJX_BPF_DIR         a directory per program: NAME/STEM.bpf.o, and NAME/NAME when it has a loader
# @value KJX_GENERIC_LOADER  kjx-bpf-run, which loads and attaches an object by itself
# @value KJX_BPF_READY       kjx-bpf-ready, which tells a waiting service once a loader is attached
# @value KJX_PROGRAMS        the image's program names, space-separated
# @input KJX_NOTIFY_PID      the `ready: signal` wrapper waiting for the service (environment)
# @input KJX_READY_FILE      a file the service creates once ready (environment)
[ $# -gt 0 ] || { echo "usage: kjx-prog NAME [ARGS...] (programs: $KJX_PROGRAMS)" >&2; exit 2; }
kjx_name=$1
shift
# only a name of the image: NAME becomes a path below KJX_BPF_DIR
case " $KJX_PROGRAMS " in
*" $kjx_name "*) ;;
*)
  echo "kjx-prog: no program \"$kjx_name\" in this image (programs: $KJX_PROGRAMS)" >&2
  exit 2
  ;;
esac
kjx_dir=$KJX_BPF_DIR/$kjx_name
if [ ! -x "$kjx_dir/$kjx_name" ]; then
  # the generic loader reports readiness itself (a `ready:` service's signal or file)
  for kjx_object in "$kjx_dir"/*.bpf.o; do
    [ -f "$kjx_object" ] && exec "$KJX_GENERIC_LOADER" "$kjx_object"
  done
  echo "kjx-prog: $kjx_name has no object in $kjx_dir" >&2
  exit 1
fi
# a C or Go loader says nothing when it is attached: kjx-bpf-ready watches it for a service that waits
if [ -n "$KJX_NOTIFY_PID$KJX_READY_FILE" ]; then exec "$KJX_BPF_READY" "$kjx_dir/$kjx_name" "$@"; fi
exec "$kjx_dir/$kjx_name" "$@"
