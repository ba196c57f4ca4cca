#!/usr/bin/env bash
# rdr's main job, step by step: start a private Samba, map a share to a mount point, copy files
# in and out, show `rdr use` and `rdr files`, then delete the connection while a file is held
# open by another process — without force, with --dry-run, with --lazy and with --force.
#
#   scripts/demo.sh            # against the private Samba (scripts/samba-fixture.sh)
#   scripts/demo.sh --local    # against a local directory (the local mini-redirector)
#
# Needs root (FUSE mount, private smbd). Installs samba, smbclient and fuse3 if missing, builds rdr.
# Leaves nothing behind: the daemon, mounts, holders and smbd it started are stopped by PID.
set -euo pipefail
cd "$(dirname "$0")/.."
MODE=smb
[ "${1:-}" = --local ] && MODE=local
[ "$(id -u)" = 0 ] || { echo "demo.sh: needs root (FUSE mounts, a private smbd)" >&2; exit 1; }

pkgs=()
command -v fusermount3 >/dev/null || pkgs+=(fuse3)
if [ "$MODE" = smb ]; then
  command -v smbd >/dev/null || pkgs+=(samba)
  command -v smbclient >/dev/null || pkgs+=(smbclient)
fi
if [ ${#pkgs[@]} -gt 0 ]; then
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq "${pkgs[@]}" >/dev/null
fi
echo "building rdr (release)..." >&2
cargo build --release -q -p rdr
RDR=$PWD/target/release/rdr

W=$(mktemp -d /tmp/rdr-demo.XXXXXX)
M=$W/mnt
export RDR_SOCKET=$W/rdr.sock RDR_STATE_DIR=$W/state
STARTED_SAMBA=0 DAEMON= HOLDER= SERVER_SUB=
cleanup() {
  set +e
  [ -n "$HOLDER" ] && kill "$HOLDER" 2>/dev/null
  mountpoint -q "$M" && "$RDR" use "$M" --delete --force --close-transport >/dev/null 2>&1
  [ -n "$DAEMON" ] && { kill "$DAEMON" 2>/dev/null; wait "$DAEMON" 2>/dev/null; }
  mountpoint -q "$M" && umount -l "$M"
  [ -n "$SERVER_SUB" ] && rm -rf "$SERVER_SUB"
  [ "$STARTED_SAMBA" = 1 ] && scripts/samba-fixture.sh stop >/dev/null 2>&1
  rm -rf "$W"
}
trap cleanup EXIT

say() { printf '\n\033[1m# %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }
run_rc() { printf '$ %s\n' "$*"; set +e; "$@"; local rc=$?; set -e; echo "(exit code $rc)"; }

# A process that holds a file open; on SIGUSR1 it reads through its handle, on SIGTERM it closes.
hold() {
  python3 -u -c '
import os, signal, sys, time
path = sys.argv[1]
fd = os.open(path, os.O_RDONLY)
print(f"holder {os.getpid()}: opened {path}")
def rd(*_):
    try:
        print(f"holder: read through its handle: {os.pread(fd, 64, 0)!r}")
    except OSError as e:
        print(f"holder: read failed: {e.strerror} (errno {e.errno})")
def close(*_):
    os.close(fd); print("holder: close worked"); sys.exit(0)
signal.signal(signal.SIGUSR1, rd); signal.signal(signal.SIGTERM, close)
while True: time.sleep(1)
' "$1" &
  HOLDER=$!
  sleep 0.5
}
holder_read() { kill -USR1 "$HOLDER"; sleep 0.5; }
holder_close() { kill "$HOLDER"; wait "$HOLDER" 2>/dev/null || true; HOLDER=; }

"$RDR" daemon --foreground >"$W/daemon.log" 2>&1 &
DAEMON=$!
for _ in $(seq 1 50); do [ -S "$RDR_SOCKET" ] && break; sleep 0.1; done

USE_ARGS=()
if [ "$MODE" = smb ]; then
  if ! scripts/samba-fixture.sh status >/dev/null 2>&1; then scripts/samba-fixture.sh start; STARTED_SAMBA=1; fi
  set -a; . "${RDR_SAMBA_DIR:-/tmp/rdr-samba}/env"; set +a
  printf '%s\n' "$RDR_SMB_PASS1" > "$W/password"; chmod 600 "$W/password"
  REMOTE="//$RDR_SMB_HOST:$RDR_SMB_PORT/$RDR_SMB_SHARE"
  USE_ARGS=(--user "$RDR_SMB_USER1" --password-file "$W/password")
  say "Map the share $REMOTE to $M (the password comes from a file, never from argv)"
  if ! run "$RDR" use "$M" "$REMOTE" "${USE_ARGS[@]}"; then
    echo "(SMB could not be mapped; continuing the demo with the local mini-redirector)"
    MODE=local
  fi
fi
# In SMB mode the demo works in its own directory of the share, removed at the end.
D=$M
if [ "$MODE" = smb ]; then
  SUB=rdr-demo-$$ D=$M/rdr-demo-$$
  SERVER_SUB=${RDR_SAMBA_DIR:-/tmp/rdr-samba}/$RDR_SMB_SHARE/$SUB
  run mkdir "$D"
fi
if [ "$MODE" = local ]; then
  mkdir -p "$W/share"
  REMOTE="local:$W/share" USE_ARGS=()
  say "Map the local directory $W/share to $M"
  run "$RDR" use "$M" "$REMOTE"
fi

say "Copy files in and out with ordinary tools"
head -c 3000000 /dev/urandom > "$W/blob.bin"
run cp "$W/blob.bin" "$D/blob.bin"
run mkdir "$D/reports"
run sh -c "printf 'quarterly figures\n' > '$D/reports/report.txt'"
run ls -l "$D" "$D/reports"
run cp "$D/blob.bin" "$W/blob.back"
run cmp "$W/blob.bin" "$W/blob.back"
echo "(identical)"
# Within the share, cp's copy_file_range becomes a server-side copy (no data over the wire).
run cp "$D/blob.bin" "$D/blob-copy.bin"
run ln -s reports/report.txt "$D/latest"
run ls -l "$D"
run cat "$D/latest"

say "The connection list and the open-file inventory"
run "$RDR" use
hold "$D/reports/report.txt"
run "$RDR" files "$M"

say "Delete without force: refused while a file is open, the mount keeps working"
run_rc "$RDR" use "$M" --delete </dev/null
run ls "$D"

say "Dry run: what a forced delete would close"
run_rc "$RDR" use "$M" --delete --dry-run

say "Lazy delete (DetachOnClose): the mount leaves the namespace now, the holder keeps its file"
run_rc "$RDR" use "$M" --delete --lazy
mountpoint -q "$M" && echo "still mounted?!" || echo "$M is no longer a mount point"
holder_read
holder_close
sleep 0.5
run "$RDR" use

say "Map again and delete with force: the holder's handle is orphaned (EIO), nothing hangs"
run "$RDR" use "$M" "$REMOTE" "${USE_ARGS[@]}"
hold "$D/reports/report.txt"
holder_read
run_rc "$RDR" use "$M" --delete --force
holder_read
holder_close
run "$RDR" use
say "Done"
