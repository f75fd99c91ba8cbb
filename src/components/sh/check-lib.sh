#!/bin/sh
# /usr/lib/kjx/check-data/lib.sh: the library every container smoke check sources
# (docs/containers.md): the marker and status each check container prints and exits
# with, `kjx_expect CMD...` (run a container, pass if both came back), `kjx_step`,
# and `kjx_bundle DIR` (an OCI bundle over the read-only check root, OCI runtime spec
# 1.0.2). Written into images by kjx build from src/components/sh/check-lib.sh.
#
# @value KJX_MARKER     what every check container prints
# @value KJX_STATUS     the status every check container exits with
# @value KJX_IMAGE      the check image archive (OCI layout and docker-save), for the checks
# @value KJX_IMAGE_REF  its name once imported (docker and podman add docker.io/), for the checks
# @value KJX_ROOTFS     the check root: Debian's busybox-static and a few applet links
# what each check container runs: the marker, then the chosen status
KJX_CMD="echo $KJX_MARKER; exit $KJX_STATUS"
kjx_say() { echo "kjx-check: $*"; }
# kjx_expect CMD...: run CMD, show its output, pass if the marker and the status came back
kjx_expect() {
  read -r kjx_t0 _ </proc/uptime
  kjx_out=$("$@" 2>&1)
  kjx_rc=$?
  read -r kjx_t1 _ </proc/uptime
  [ -n "$kjx_out" ] && printf '%s\n' "$kjx_out"
  case "$kjx_out" in
  *"$KJX_MARKER"*) ;;
  *) kjx_say "FAIL: the marker $KJX_MARKER did not come back (status $kjx_rc)"; return 1 ;;
  esac
  if [ "$kjx_rc" != "$KJX_STATUS" ]; then
    kjx_say "FAIL: status $kjx_rc, the container exited $KJX_STATUS"
    return 1
  fi
  kjx_say "ok: marker and status $kjx_rc came back (container run t0=$kjx_t0 t1=$kjx_t1)"
}
# kjx_step CMD...: a preparation step; its failure fails the check with its output
kjx_step() {
  kjx_out=$("$@" 2>&1) && return 0
  kjx_rc=$?
  printf '%s\n' "$kjx_out"
  kjx_say "FAIL: $* (status $kjx_rc)"
  exit 1
}
# kjx_bundle DIR: an OCI bundle in DIR over the read-only check root
kjx_bundle() {
  mkdir -p "$1"
  cat >"$1/config.json" <<EOF
{
  "ociVersion": "1.0.2",
  "process": {
    "terminal": false,
    "user": {
      "uid": 0,
      "gid": 0
    },
    "args": [
      "/bin/sh",
      "-c",
      "$KJX_CMD"
    ],
    "env": [
      "PATH=/bin"
    ],
    "cwd": "/",
    "noNewPrivileges": true
  },
  "root": {
    "path": "$KJX_ROOTFS",
    "readonly": true
  },
  "hostname": "kjx-check",
  "mounts": [
    {
      "destination": "/proc",
      "type": "proc",
      "source": "proc"
    },
    {
      "destination": "/dev",
      "type": "tmpfs",
      "source": "tmpfs",
      "options": [
        "nosuid",
        "strictatime",
        "mode=755",
        "size=65536k"
      ]
    },
    {
      "destination": "/tmp",
      "type": "tmpfs",
      "source": "tmpfs",
      "options": [
        "nosuid",
        "nodev"
      ]
    }
  ],
  "linux": {
    "namespaces": [
      {
        "type": "pid"
      },
      {
        "type": "ipc"
      },
      {
        "type": "uts"
      },
      {
        "type": "mount"
      },
      {
        "type": "network"
      }
    ]
  }
}
EOF
}
