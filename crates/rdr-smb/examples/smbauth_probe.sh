#!/bin/bash
# Dev script (not a test): start a private Samba on 127.0.0.1:4459 (state in /tmp/smbauth-samba),
# run the smbauth_probe example against it in several configurations, stop Samba by its PID.
# Needs root (useradd, smbd). Usage: crates/rdr-smb/examples/smbauth_probe.sh
set -euo pipefail
B=/tmp/smbauth-samba
PORT=4459
U=${SMB_USER:-smbtest}
P=${SMB_PASS:-smbtest123}
command -v smbd >/dev/null || { apt-get update; apt-get install -y samba smbclient; }

start() { # $1: extra [global] lines
  mkdir -p "$B"/{private,lock,state,cache,pid,log,ncalrpc,share}
  chmod 700 "$B/private"; chmod 0777 "$B/share"
  cat > "$B/smb.conf" <<CONF
[global]
    server role = standalone server
    smb ports = $PORT
    interfaces = 127.0.0.1
    bind interfaces only = yes
    disable netbios = yes
    private dir = $B/private
    lock directory = $B/lock
    state directory = $B/state
    cache directory = $B/cache
    pid directory = $B/pid
    ncalrpc dir = $B/ncalrpc
    log file = $B/log/log.%m
    load printers = no
    printing = bsd
    printcap name = /dev/null
    disable spoolss = yes
$1
[data]
    path = $B/share
    read only = no
CONF
  id -u "$U" >/dev/null 2>&1 || useradd -M -s /usr/sbin/nologin "$U"
  printf '%s\n%s\n' "$P" "$P" | smbpasswd -c "$B/smb.conf" -s -a "$U" >/dev/null
  # Own session: smbd signals its process group when it exits, which would kill this script.
  setsid smbd --foreground --no-process-group -s "$B/smb.conf" -l "$B/log" </dev/null >"$B/log/smbd.out" 2>&1 &
  echo $! > "$B/smbd.launcher.pid"
  for _ in $(seq 1 50); do
    (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && return 0
    sleep 0.2
  done
  echo "smbd did not start"; return 1
}
stop() {
  [ -f "$B/smbd.launcher.pid" ] && kill "$(cat "$B/smbd.launcher.pid")" 2>/dev/null || true
  [ -f "$B/pid/samba-dcerpcd.pid" ] && kill "$(cat "$B/pid/samba-dcerpcd.pid")" 2>/dev/null || true
  rm -f "$B/smbd.launcher.pid"; sleep 0.5
}
trap stop EXIT
cargo build -q -p rdr-smb --example smbauth_probe
PROBE=target/debug/examples/smbauth_probe

start "    server signing = mandatory"
for args in "0x0311 4 2" "0x0311 2 1" "0x0302 1 1" "0x0300 1 1" "0x0210 1 1" "0x0202 1 1"; do
  echo "== signing, $args"; $PROBE $PORT "$U" "$P" data $args
done
for args in "0x0311 4 2 1" "0x0302 1 1 1"; do
  echo "== client-chosen encryption, $args"; $PROBE $PORT "$U" "$P" data $args
done
echo "== wrong password must fail"
if $PROBE $PORT "$U" "wrong$P" data; then echo "UNEXPECTED SUCCESS"; exit 1; fi
stop

# One server per 3.1.1 cipher (Samba picks its own preference otherwise), CMAC signing.
for alg in aes-256-gcm aes-256-ccm aes-128-ccm; do
  start "    server smb encrypt = required
    server smb3 encryption algorithms = $alg
    server smb3 signing algorithms = aes-128-cmac"
  echo "== server-required encryption, $alg"; $PROBE $PORT "$U" "$P" data 0x0311 4 2
  stop
done
start "    server smb encrypt = required"
echo "== server-required encryption, 3.0.2"; $PROBE $PORT "$U" "$P" data 0x0302 1 1
echo "ALL PROBES PASSED"
