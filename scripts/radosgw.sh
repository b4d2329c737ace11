#!/bin/sh
# Starts (or stops) a throwaway Ceph cluster with an S3 gateway for the tests
# and the bench: one mon, one OSD on in-memory storage (memstore), one
# radosgw (beast) and an S3 user with known keys. Everything lives in DIR:
# no /etc/ceph, no system-wide state; ports are free ones found at run time.
#
#   scripts/radosgw.sh start DIR   prints "S3_ENDPOINT=... S3_ACCESS_KEY_ID=... S3_SECRET_ACCESS_KEY=..."
#   scripts/radosgw.sh stop DIR    kills the daemons started in DIR and removes DIR
#
# Logs: DIR/log/*.log. Auth between the daemons is off (auth none): the
# cluster listens on 127.0.0.1 only and dies with the test run.
set -eu

cmd=${1:-}
dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || { echo "usage: $0 start|stop DIR" >&2; exit 2; }

stop() {
  for pidfile in "$dir"/run/*.pid; do
    [ -f "$pidfile" ] || continue
    pid=$(cat "$pidfile" 2>/dev/null || true)
    [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
  done
  # wait up to 10 s for them to go, then force
  i=0
  while [ $i -lt 100 ]; do
    alive=''
    for pidfile in "$dir"/run/*.pid; do
      [ -f "$pidfile" ] || continue
      pid=$(cat "$pidfile" 2>/dev/null || true)
      [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && alive=1
    done
    [ -z "$alive" ] && break
    sleep 0.1
    i=$((i + 1))
  done
  for pidfile in "$dir"/run/*.pid; do
    [ -f "$pidfile" ] || continue
    pid=$(cat "$pidfile" 2>/dev/null || true)
    [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null || true
  done
  rm -rf "$dir"
}

if [ "$cmd" = stop ]; then
  [ -d "$dir" ] && stop
  exit 0
fi
[ "$cmd" = start ] || { echo "usage: $0 start|stop DIR" >&2; exit 2; }

for tool in ceph-mon ceph-osd radosgw radosgw-admin ceph monmaptool ceph-authtool uuidgen; do
  command -v "$tool" >/dev/null 2>&1 || { echo "radosgw.sh: $tool is missing (scripts/test-deps.sh installs it)" >&2; exit 1; }
done

mkdir -p "$dir/run" "$dir/log" "$dir/mon" "$dir/osd/ceph-0"
dir=$(cd "$dir" && pwd)
conf="$dir/ceph.conf"

# Free ports: bind port 0 and read back what the kernel gave (python3 is a test dep).
ports=$(python3 -c '
import socket
ss = [socket.socket() for _ in range(2)]
for s in ss: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in ss))')
mon_port=${ports% *}
rgw_port=${ports#* }

fsid=$(uuidgen)
cat >"$conf" <<EOF
[global]
fsid = $fsid
mon host = v1:127.0.0.1:$mon_port
ms bind msgr2 = false
public addr = 127.0.0.1
auth cluster required = none
auth service required = none
auth client required = none
run dir = $dir/run
admin socket = $dir/run/\$name.asok
pid file = $dir/run/\$name.pid
log file = $dir/log/\$name.log
log to stderr = false
err to stderr = true
mon data = $dir/mon/\$cluster-\$id
osd data = $dir/osd/\$cluster-\$id
keyring = $dir/keyring
osd objectstore = memstore
memstore device bytes = 3221225472
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
mon max pg per osd = 1000
osd memory target = 939524096
osd crush update on start = false
osd class update on start = false
osd op num shards = 1
osd op num threads per shard = 2
rgw frontends = beast endpoint=127.0.0.1:$rgw_port
rgw dns name = 127.0.0.1
rgw thread pool size = 64
rgw enable usage log = false
rgw lc debug interval = 10
rgw gc obj min wait = 0
debug rgw = 1
debug ms = 0
EOF

ceph-authtool --create-keyring "$dir/keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
monmaptool --create --fsid "$fsid" --addv a "[v1:127.0.0.1:$mon_port]" "$dir/monmap" >/dev/null
ceph-mon -c "$conf" --mkfs -i a --monmap "$dir/monmap" --keyring "$dir/keyring" 2>"$dir/log/mkfs-mon.err" ||
  { cat "$dir/log/mkfs-mon.err" >&2; exit 1; }
ceph-mon -c "$conf" -i a 2>"$dir/log/mon.err" ||
  { echo "radosgw.sh: ceph-mon did not start" >&2; cat "$dir/log/mon.err" >&2; exit 1; }

osd_uuid=$(uuidgen)
osd_id=$(ceph -c "$conf" --connect-timeout 15 osd new "$osd_uuid" 2>"$dir/log/osd-new.err") ||
  { echo "radosgw.sh: ceph osd new failed" >&2; cat "$dir/log/osd-new.err" >&2; exit 1; }
ceph-osd -c "$conf" -i "$osd_id" --mkfs --osd-uuid "$osd_uuid" 2>"$dir/log/mkfs-osd.err" ||
  { cat "$dir/log/mkfs-osd.err" >&2; exit 1; }
# The mon sometimes turns a command away while it settles (seen: "fsid 0 !=
# ..."), so placing the OSD is tried again for a few seconds.
i=0
until ceph -c "$conf" --connect-timeout 15 osd crush add "osd.$osd_id" 1.0 root=default host=localhost >>"$dir/log/crush.err" 2>&1; do
  i=$((i + 1))
  [ $i -lt 25 ] || { echo "radosgw.sh: could not place osd.$osd_id in the crush map" >&2; cat "$dir/log/crush.err" >&2; exit 1; }
  sleep 0.2
done
ceph-osd -c "$conf" -i "$osd_id" 2>"$dir/log/osd.err" ||
  { echo "radosgw.sh: ceph-osd did not start" >&2; cat "$dir/log/osd.err" >&2; exit 1; }

# Wait for the OSD to be up and in before the gateway creates its pools.
i=0
until ceph -c "$conf" osd stat 2>/dev/null | grep -q '1 up.*1 in'; do
  i=$((i + 1))
  [ $i -lt 300 ] || { echo "radosgw.sh: the OSD did not come up; see $dir/log" >&2; exit 1; }
  sleep 0.1
done

radosgw -c "$conf" -n client.rgw 2>"$dir/log/rgw.err" ||
  { echo "radosgw.sh: radosgw did not start" >&2; cat "$dir/log/rgw.err" >&2; exit 1; }

i=0
until python3 -c "
import socket,sys
s=socket.socket(); s.settimeout(0.5)
try: s.connect(('127.0.0.1',$rgw_port))
except Exception: sys.exit(1)" 2>/dev/null; do
  i=$((i + 1))
  [ $i -lt 600 ] || { echo "radosgw.sh: radosgw did not listen on $rgw_port; see $dir/log" >&2; exit 1; }
  sleep 0.1
done

access=DISKCLIENTTESTKEY0001
secret=disk-client-test-secret-0001
radosgw-admin -c "$conf" -n client.admin user create --uid=test --display-name=test \
  --access-key="$access" --secret="$secret" >"$dir/log/user.json" 2>"$dir/log/user.err" ||
  { cat "$dir/log/user.err" >&2; exit 1; }

echo "S3_ENDPOINT=http://127.0.0.1:$rgw_port S3_ACCESS_KEY_ID=$access S3_SECRET_ACCESS_KEY=$secret"
