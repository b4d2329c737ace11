#!/bin/sh
# Installs the Debian tools the tests drive, when missing (run by npm's
# pretest). Idempotent and quiet when everything is present.
# To add a tool: one line "COMMAND PACKAGE" in NEEDED below.
set -eu

NEEDED='
aria2c aria2
transmission-daemon transmission-daemon
transmission-remote transmission-cli
python3 python3
redis-server redis-server
redis-cli redis-tools
chromium chromium
unzip unzip
ceph-mon ceph-mon
ceph-osd ceph-osd
ceph ceph-common
radosgw radosgw
uuidgen uuid-runtime
s3cmd s3cmd
/usr/sbin/apache2 apache2
htpasswd apache2-utils
litmus litmus
rclone rclone
cc gcc libc6-dev
'

missing=''
for_each_needed() {
  echo "$NEEDED" | while read -r command package; do
    [ -n "$command" ] || continue
    command -v "$command" >/dev/null 2>&1 || echo "$package"
  done
}
missing=$(for_each_needed | sort -u | tr '\n' ' ')
[ -z "$(echo "$missing" | tr -d ' ')" ] && exit 0

if [ "$(id -u)" -ne 0 ] && ! command -v sudo >/dev/null 2>&1; then
  echo "test-deps: missing Debian packages: $missing(run as root, or install them: apt-get install $missing)" >&2
  exit 1
fi
SUDO=''
[ "$(id -u)" -eq 0 ] || SUDO='sudo'
echo "test-deps: installing $missing" >&2
if ! $SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq >&2 || ! DEBIAN_FRONTEND=noninteractive $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends $missing >&2; then
  echo "test-deps: could not install $missing(apt-get failed; see above)" >&2
  exit 1
fi
still=$(for_each_needed | tr '\n' ' ')
if [ -n "$(echo "$still" | tr -d ' ')" ]; then
  echo "test-deps: still missing after apt-get: $still" >&2
  exit 1
fi
