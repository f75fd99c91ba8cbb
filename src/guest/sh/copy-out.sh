#!/bin/sh
# kjx copy-out (docs/guest-protocol.md, "Copying files out of a run"): the command of
# a `kjx run` whose files are copied out afterwards. Runs the command given as
# arguments with this script's stdin, stdout and stderr, then sends each file named
# in the list (one absolute path a line) to the virtio-serial port kjx.files, in
# order: its size in bytes and a newline, then its bytes, for a regular file it can
# read; "-" and a newline for anything else. Exits with the command's status.
list=/kjx/run/copy-out.list
"$@"
status=$?
port=
for p in /sys/class/virtio-ports/*; do
  name=
  read -r name 2>/dev/null <"$p/name"
  if [ "$name" = kjx.files ]; then port=/dev/${p##*/}; fi
done
if [ -z "$port" ]; then
  echo "kjx: no virtio-serial port kjx.files; no file is copied out" >&2
  exit "$status"
fi
while IFS= read -r f; do
  if [ -f "$f" ] && [ -r "$f" ]; then
    wc -c <"$f"
    cat -- "$f"
  else
    echo -
  fi
done <"$list" >"$port"
exit "$status"
