#!/usr/bin/env bash
# A private Samba for rdr's tests and demo, on 127.0.0.1 only.
#
#   scripts/samba-fixture.sh start   install Samba if missing, create users and shares, start smbd,
#                                    wait until it answers; writes $RDR_SAMBA_DIR/env
#   scripts/samba-fixture.sh stop    stop smbd (and the on-demand RPC helper) by recorded PID,
#                                    remove the Linux users it created
#   scripts/samba-fixture.sh status  print whether it runs
#
# Shares: data (writable), secure (smb encrypt = required), ro (read only).
# Users:  rdrtest1 / rdrtest2 (Samba passwords in $RDR_SAMBA_DIR/env, readable by root only).
# Everything lives under $RDR_SAMBA_DIR (default /tmp/rdr-samba); the port is $RDR_SAMBA_PORT
# (default 4455). Needs root.
set -euo pipefail

B=${RDR_SAMBA_DIR:-/tmp/rdr-samba}
PORT=${RDR_SAMBA_PORT:-4455}
USER1=rdrtest1 PASS1=rdr-pass-1
USER2=rdrtest2 PASS2=rdr-pass-2

log() { echo "samba-fixture: $*" >&2; }

install_if_missing() {
  if ! command -v smbd >/dev/null || ! command -v smbclient >/dev/null; then
    log "installing samba and smbclient"
    apt-get -o DPkg::Lock::Timeout=600 update -qq
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq samba smbclient >/dev/null
  fi
}

running() {
  [ -f "$B/smbd.pid" ] || return 1
  local pid; pid=$(cat "$B/smbd.pid")
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && [ "$(ps -o stat= -p "$pid" | cut -c1)" != Z ]
}

start() {
  [ "$(id -u)" = 0 ] || { log "needs root (it creates users and starts smbd)"; exit 1; }
  if running; then log "already running (pid $(cat "$B/smbd.pid"))"; return 0; fi
  install_if_missing
  # Fresh server state every start: a passdb left from an earlier run maps users by uids that
  # may since belong to someone else (the test users are re-created), and smbd then refuses them.
  rm -rf "${B:?}"/{private,lock,state,cache,pid,log,ncalrpc}
  mkdir -p "$B"/{private,lock,state,cache,pid,log,ncalrpc,data,secure,ro}
  chmod 700 "$B/private"
  chmod 0777 "$B/data" "$B/secure"     # writable by both test users
  echo "read me" > "$B/ro/readme.txt"; chmod 0755 "$B/ro"; chmod 0644 "$B/ro/readme.txt"
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
    server min protocol = SMB2_02

[data]
    path = $B/data
    read only = no

[secure]
    path = $B/secure
    read only = no
    smb encrypt = required

[ro]
    path = $B/ro
    read only = yes
CONF
  touch "$B/users.created"   # kept until stop: users made by an earlier, unstopped start too
  for u in "$USER1:$PASS1" "$USER2:$PASS2"; do
    name=${u%%:*} pass=${u#*:}
    if ! id -u "$name" >/dev/null 2>&1; then
      useradd -M -s /usr/sbin/nologin "$name"
      echo "$name" >> "$B/users.created"
    fi
    printf '%s\n%s\n' "$pass" "$pass" | smbpasswd -c "$B/smb.conf" -s -a "$name" >/dev/null
  done
  # Its own session: smbd signals its process group when it exits, which would hit our caller.
  setsid smbd --foreground --no-process-group -s "$B/smb.conf" -l "$B/log" </dev/null >"$B/log/smbd.out" 2>&1 &
  echo $! > "$B/smbd.pid"
  for _ in $(seq 1 100); do
    if smbclient -p "$PORT" //127.0.0.1/data -U "$USER1%$PASS1" -c ls >/dev/null 2>&1; then
      umask 077
      cat > "$B/env" <<ENV
RDR_SMB_HOST=127.0.0.1
RDR_SMB_PORT=$PORT
RDR_SMB_USER1=$USER1
RDR_SMB_PASS1=$PASS1
RDR_SMB_USER2=$USER2
RDR_SMB_PASS2=$PASS2
RDR_SMB_SHARE=data
RDR_SMB_SHARE_ENCRYPTED=secure
RDR_SMB_SHARE_RO=ro
RDR_SAMBA_DIR=$B
RDR_SAMBA_CONF=$B/smb.conf
ENV
      log "smbd pid $(cat "$B/smbd.pid") listening on 127.0.0.1:$PORT (env in $B/env)"
      return 0
    fi
    running || { log "smbd exited; see $B/log"; tail -5 "$B/log/smbd.out" >&2 || true; exit 1; }
    sleep 0.2
  done
  log "smbd did not answer within 20 s"; stop; exit 1
}

stop() {
  if [ -f "$B/smbd.pid" ]; then
    pid=$(cat "$B/smbd.pid")
    if kill -0 "$pid" 2>/dev/null; then
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$B/smbd.pid"
  fi
  # samba-dcerpcd is started on demand and re-parents to PID 1; stop it by its own pid file.
  for f in "$B"/pid/samba-dcerpcd.pid "$B"/pid/rpcd_*.pid; do
    [ -f "$f" ] && { kill "$(cat "$f")" 2>/dev/null || true; rm -f "$f"; }
  done
  if [ -f "$B/users.created" ]; then
    while read -r u; do [ -n "$u" ] && userdel "$u" 2>/dev/null || true; done < "$B/users.created"
    rm -f "$B/users.created"
  fi
  log "stopped"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) if running; then echo "running (pid $(cat "$B/smbd.pid"))"; else echo "stopped"; exit 1; fi ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
