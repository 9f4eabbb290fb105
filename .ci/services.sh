#!/bin/bash
# services.sh start      -> starts Ceph RGW (S3) + Redis on 127.0.0.1, prints KEY=VALUE lines
# services.sh stop DIR   -> stops them by pid (DIR = the SERVICES_DIR it printed), removes DIR
set -euo pipefail
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_for() {  # wait_for SECONDS WHAT COMMAND...: retry every 0.1 s
  local secs=$1 what=$2 end=$((SECONDS + $1)); shift 2
  until "$@" &>/dev/null; do
    ((SECONDS < end)) || { echo "$what did not answer within $secs s" >&2; return 1; }
    sleep 0.1
  done
}

start() {
  DIR=$(mktemp -d /tmp/svc.XXXXXX)      # short: admin sockets live here (108-byte limit)
  trap 'tail -n 3 "$DIR"/log/* >&2; stop "$DIR"; exit 1' ERR
  mkdir -p "$DIR"/{run,log,mon,osd,rgw,redis}
  MON2=$(free_port) MON1=$(free_port) RGW=$(free_port) REDIS=$(free_port)
  FSID=$(python3 -c 'import uuid; print(uuid.uuid4())')
  AK=test$RANDOM$RANDOM SK=$(python3 -c 'import secrets; print(secrets.token_hex(20))')
  cat > "$DIR/ceph.conf" <<CONF
[global]
fsid = $FSID
mon host = [v2:127.0.0.1:$MON2,v1:127.0.0.1:$MON1]
mon initial members = a
public addr = 127.0.0.1
cluster addr = 127.0.0.1
auth cluster required = none
auth service required = none
auth client required = none
auth allow insecure global id reclaim = false
ms mon client mode = crc
ms client mode = crc
run dir = $DIR/run
log file = $DIR/log/\$name.log
admin socket = $DIR/run/\$name.asok
pid file = $DIR/run/\$name.pid
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
mon data avail crit = 1
mon data avail warn = 2
paxos propose interval = 0.05
[mon]
mon data = $DIR/mon/\$name
[osd]
osd data = $DIR/osd/\$name
osd objectstore = memstore
memstore device bytes = 4294967296
[client.rgw]
rgw data = $DIR/rgw
rgw frontends = beast endpoint=127.0.0.1:$RGW
rgw thread pool size = 64
CONF
  C="-c $DIR/ceph.conf"
  # every daemon in the foreground (-f), in its own session, its pid kept for stop
  setsid redis-server --port "$REDIS" --bind 127.0.0.1 --save "" --appendonly no \
    --dir "$DIR/redis" --daemonize no --logfile "$DIR/log/redis.log" </dev/null &>/dev/null &
  echo $! > "$DIR/redis.pid"
  monmaptool --create --fsid "$FSID" --addv a "[v2:127.0.0.1:$MON2,v1:127.0.0.1:$MON1]" "$DIR/monmap" >/dev/null
  ceph-mon $C -i a --mkfs --monmap "$DIR/monmap"
  setsid ceph-mon $C -i a -f </dev/null &>"$DIR/log/mon.out" & echo $! > "$DIR/mon.pid"
  wait_for 30 ceph-mon ceph $C --connect-timeout 5 mon stat
  OSD_UUID=$(python3 -c 'import uuid; print(uuid.uuid4())')
  OSD_ID=$(ceph $C --connect-timeout 5 osd new "$OSD_UUID")
  mkdir -p "$DIR/osd/osd.$OSD_ID"
  ceph-osd $C -i "$OSD_ID" --mkfs --osd-uuid "$OSD_UUID" 2>/dev/null
  setsid ceph-osd $C -i "$OSD_ID" -f </dev/null &>"$DIR/log/osd.out" & echo $! > "$DIR/osd.pid"
  wait_for 30 ceph-osd sh -c "ceph $C --connect-timeout 5 osd stat -f json | grep -q '\"num_up_osds\":1'"
  # the S3 user; this also creates radosgw's zone and pools
  timeout 60 radosgw-admin $C -n client.rgw user create --uid=test --display-name=test \
    --access-key="$AK" --secret-key="$SK" >/dev/null
  setsid radosgw $C -n client.rgw -f </dev/null &>"$DIR/log/rgw.out" & echo $! > "$DIR/rgw.pid"
  wait_for 30 radosgw curl -sf -o /dev/null "http://127.0.0.1:$RGW/"
  wait_for 10 redis sh -c "redis-cli -p $REDIS ping | grep -q PONG"
  trap - ERR
  cat <<OUT
SERVICES_DIR=$DIR
S3_ENDPOINT_URL=http://127.0.0.1:$RGW
S3_REGION=us-east-1
S3_ACCESS_KEY_ID=$AK
S3_SECRET_ACCESS_KEY=$SK
REDIS_URL=redis://127.0.0.1:$REDIS/0
OUT
}

gone() {  # exited (a zombie that nobody reaped yet counts as exited)
  local s; s=$(ps -o stat= -p "$1") || return 0; [[ $s == Z* ]]
}

stop() {  # clients before servers, by pid; SIGKILL whatever lingers 3 s
  local DIR=$1 n pid
  for n in rgw osd mon redis; do
    pid=$(cat "$DIR/$n.pid" 2>/dev/null) || continue
    kill "$pid" 2>/dev/null || continue
    for _ in $(seq 30); do gone "$pid" && break; sleep 0.1; done
    gone "$pid" || kill -9 "$pid" 2>/dev/null || true
  done
  rm -rf "$DIR"
}

"$@"
