#!/usr/bin/env bash
# Benchmark: the rdr mount against smbclient, `rclone mount` (cache off) and smbnetfs, in one run,
# against the same private Samba (scripts/samba-fixture.sh). Prints a table and the ratios
# rdr ÷ smbclient and rdr ÷ rclone. Not a test: numbers vary with the machine's load; compare the
# ratios of one run. Next to each create figure it prints the server's CPU per created file (smbd
# is serial per connection, so its work per file bounds how fast any client can create).
#
#   bench/mount-bench.sh [--size-mib 512] [--files 2000] [--reps 3] [--tools "rdr smbclient rclone smbnetfs"]
#                        [--share tmpfs|disk] [--pairs 6]
#
# Then, with rdr and smbclient among the tools, a paired create phase: the two create the same
# files back to back, --pairs times, taking turns at going first, and it prints each pair's
# ratio and their median. This machine's speed drifts by a tenth or more within a minute, and
# in the table each tool's create runs a minute or more after the other's; a pair runs seconds
# apart, so its ratio is the steadier figure.
#
# The share lives on a tmpfs mounted over the fixture's share directory for the run (--share
# disk: on the fixture's own directory). On ext4, each run's 2,000 deletions made the next runs'
# creates slower by a varying amount (the inode allocator skips recently deleted inodes:
# ext4 `recently_deleted` was up to a fifth of smbd's CPU), so the create column measured the
# disk's history more than the clients. tmpfs also makes the server faster, which leaves the
# clients' own costs a larger share of each figure. While the bench runs, the fixture's share
# shows that (empty) tmpfs instead of its own files.
#
# Needs root. Installs samba, smbclient, rclone, smbnetfs, fuse3 if missing. Builds rdr (release).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SIZE_MIB=512 FILES=2000 REPS=3 TOOLS="rdr smbclient rclone smbnetfs" SHARE=tmpfs PAIRS=6
while [ $# -gt 0 ]; do
  case "$1" in
    --size-mib) SIZE_MIB=$2; shift 2 ;;
    --files) FILES=$2; shift 2 ;;
    --reps) REPS=$2; shift 2 ;;
    --tools) TOOLS=$2; shift 2 ;;
    --share) SHARE=$2; shift 2 ;;
    --pairs) PAIRS=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" = 0 ] || { echo "mount-bench: needs root" >&2; exit 1; }
case "$SHARE" in tmpfs|disk) ;; *) echo "mount-bench: --share is tmpfs or disk" >&2; exit 2 ;; esac

pkgs=()
for p in smbd:samba smbclient:smbclient rclone:rclone smbnetfs:smbnetfs fusermount3:fuse3; do
  command -v "${p%%:*}" >/dev/null || pkgs+=("${p#*:}")
done
if [ ${#pkgs[@]} -gt 0 ]; then
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq "${pkgs[@]}" >/dev/null
fi

W=$(mktemp -d /tmp/rdr-bench.XXXXXX)
STARTED_SAMBA=0
SHARE_TMPFS=
PIDS=()
MOUNTS=()
cleanup() {
  for m in "${MOUNTS[@]}"; do mountpoint -q "$m" && { fusermount3 -u "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; }; done
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -n "${RDR_PID:-}" ] && kill "$RDR_PID" 2>/dev/null || true
  [ "$STARTED_SAMBA" = 1 ] && scripts/samba-fixture.sh stop >/dev/null 2>&1 || true
  # After smbd (whose connection processes may still have the share as working directory).
  [ -n "$SHARE_TMPFS" ] && { umount "$SHARE_TMPFS" 2>/dev/null || umount -l "$SHARE_TMPFS" 2>/dev/null || true; }
  rm -rf "$W"
}
trap cleanup EXIT

if ! scripts/samba-fixture.sh status >/dev/null 2>&1; then scripts/samba-fixture.sh start; STARTED_SAMBA=1; fi
set -a; . "${RDR_SAMBA_DIR:-/tmp/rdr-samba}/env"; set +a
SHARE_DIR=$RDR_SAMBA_DIR/data
if [ "$SHARE" = tmpfs ]; then
  mount -t tmpfs -o "size=$((SIZE_MIB * 2 + 256))m,mode=0777" rdr-bench "$SHARE_DIR"
  SHARE_TMPFS=$SHARE_DIR
fi
H=$RDR_SMB_HOST P=$RDR_SMB_PORT U=$RDR_SMB_USER1 PW=$RDR_SMB_PASS1

echo "preparing $SIZE_MIB MiB file and $FILES x 4 KiB files in $W" >&2
head -c "$((SIZE_MIB * 1024 * 1024))" /dev/urandom > "$W/big.bin"
mkdir -p "$W/small"
for i in $(seq -f %05g 1 "$FILES"); do head -c 4096 /dev/urandom > "$W/small/f$i.dat"; done
printf '%s\n' "$PW" > "$W/pass"; chmod 600 "$W/pass"

now() { date +%s.%N; }
secs() { python3 -c "import sys; print(f'{float(sys.argv[2])-float(sys.argv[1]):.3f}')" "$1" "$2"; }
dropcaches() { sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true; }
# The source of the write test back in the page cache: every read test drops the caches, and a
# write fed from this machine's disk (≈ 400 MB/s) measured the disk, not the client, for every
# tool but the first of a run.
warm_source() { cat "$W/big.bin" > /dev/null; }
# The same for the 2,000 small files before each create: read from disk, each cost every tool
# the same ≈ 0.1 ms, which only pulled the create ratios towards 1.
warm_small() { cat "$W"/small/* > /dev/null; }
clean_share() { rm -rf "${SHARE_DIR:?}"/bench.bin "${SHARE_DIR:?}"/bench2.bin "${SHARE_DIR:?}"/m; }
# CPU time (clock ticks) of the fixture's smbd and every process it forked, live or reaped:
# sampled around each tool's create phase, the server's work for that tool's way of creating.
SMBD_PID=$(cat "$RDR_SAMBA_DIR/smbd.pid")
TCK=$(getconf CLK_TCK)
smbd_ticks() {
  local t c
  t=$(awk '{print $14+$15+$16+$17}' "/proc/$SMBD_PID/stat")
  for c in $(ps -o pid= --ppid "$SMBD_PID"); do
    t=$((t + $(awk '{print $14+$15}' "/proc/$c/stat" 2>/dev/null || echo 0)))
  done
  echo "$t"
}
# Server CPU per created file, in microseconds, from two smbd_ticks samples.
server_us() { python3 -c "import sys; print(f'{(int(sys.argv[2])-int(sys.argv[1]))/int(sys.argv[3])*1e6/int(sys.argv[4]):.0f}')" "$1" "$2" "$TCK" "$FILES"; }
median() { python3 -c "import sys,statistics; v=[float(x) for x in sys.argv[1:]]; print(f'{statistics.median(v):.3f}')" "$@"; }

# Each runner sets: T_WRITE T_READ T_COPY T_CREATE T_STAT T_LIST T_DELETE (seconds), T_SCPU (µs
# per file). T_COPY: the big file copied to a new file of the share, the way each tool can.
run_smbclient() {
  local s e c
  clean_share
  warm_source
  s=$(now); smbclient -p "$P" "//$H/data" -U "$U%$PW" -c "put $W/big.bin bench.bin" >/dev/null; e=$(now); T_WRITE=$(secs "$s" "$e")
  dropcaches
  s=$(now); smbclient -p "$P" "//$H/data" -U "$U%$PW" -c "get bench.bin /dev/null" >/dev/null; e=$(now); T_READ=$(secs "$s" "$e")
  # smbclient has no remote-to-remote copy: down and up again, in one session.
  s=$(now); smbclient -p "$P" "//$H/data" -U "$U%$PW" -c "get bench.bin $W/copy.tmp; put $W/copy.tmp bench2.bin" >/dev/null; e=$(now); T_COPY=$(secs "$s" "$e")
  rm -f "$W/copy.tmp"; smbclient -p "$P" "//$H/data" -U "$U%$PW" -c "del bench2.bin" >/dev/null
  warm_small
  c=$(smbd_ticks)
  s=$(now); smbclient -p "$P" "//$H/data" -U "$U%$PW" -c "prompt off; lcd $W/small; mkdir m; cd m; mput *" >/dev/null; e=$(now); T_CREATE=$(secs "$s" "$e")
  sleep 0.3; T_SCPU=$(server_us "$c" "$(smbd_ticks)")
  ( echo "cd m"; for f in "$W"/small/*; do echo "allinfo $(basename "$f")"; done ) > "$W/stat.cmds"
  s=$(now); smbclient -p "$P" "//$H/data" -U "$U%$PW" < "$W/stat.cmds" >/dev/null; e=$(now); T_STAT=$(secs "$s" "$e")
  s=$(now); smbclient -p "$P" "//$H/data" -U "$U%$PW" -c "cd m; ls" >/dev/null; e=$(now); T_LIST=$(secs "$s" "$e")
  s=$(now); smbclient -p "$P" "//$H/data" -U "$U%$PW" -c "deltree m" >/dev/null; e=$(now); T_DELETE=$(secs "$s" "$e")
  clean_share
}

# The same file operations through any mounted directory $1.
run_mounted() {
  local d=$1 s e c
  clean_share
  # dd ends after close(2), and close waits until the server has every byte (rdr drains its
  # write-behind there), which is what smbclient's put measures. No conv=fsync: its SMB FLUSH
  # makes Samba fsync to disk, which smbclient never asks for (a disk test, not a client test).
  warm_source
  s=$(now); dd if="$W/big.bin" of="$d/bench.bin" bs=1M status=none; e=$(now); T_WRITE=$(secs "$s" "$e")
  dropcaches
  s=$(now); dd if="$d/bench.bin" of=/dev/null bs=1M status=none; e=$(now); T_READ=$(secs "$s" "$e")
  # cp uses copy_file_range(2): a mount that forwards it lets the server copy.
  s=$(now); cp "$d/bench.bin" "$d/bench2.bin"; e=$(now); T_COPY=$(secs "$s" "$e")
  rm -f "$d/bench2.bin"
  warm_small
  c=$(smbd_ticks)
  s=$(now); cp -r "$W/small" "$d/m"; e=$(now); T_CREATE=$(secs "$s" "$e")
  sleep 0.3; T_SCPU=$(server_us "$c" "$(smbd_ticks)")
  s=$(now); python3 -c "import os,sys; [os.stat(os.path.join(sys.argv[1], n)) for n in sorted(os.listdir(sys.argv[2]))]" "$d/m" "$W/small"; e=$(now); T_STAT=$(secs "$s" "$e")
  s=$(now); ls -l "$d/m" >/dev/null; e=$(now); T_LIST=$(secs "$s" "$e")
  s=$(now); rm -r "$d/m"; e=$(now); T_DELETE=$(secs "$s" "$e")
  rm -f "$d/bench.bin"
  clean_share
}

mount_wait() { for _ in $(seq 1 100); do mountpoint -q "$1" && return 0; sleep 0.1; done; echo "mount-bench: $2 did not mount $1" >&2; return 1; }

run_rclone() {
  local m=$W/rclone; mkdir -p "$m"; MOUNTS+=("$m")
  RCLONE_CONFIG=$W/rclone.conf; export RCLONE_CONFIG; : > "$RCLONE_CONFIG"
  rclone mount ":smb,host=$H,port=$P,user=$U,pass=$(rclone obscure "$PW"):data" "$m" --vfs-cache-mode off >"$W/rclone.log" 2>&1 &
  local pid=$!; PIDS+=("$pid")
  mount_wait "$m" rclone
  run_mounted "$m"
  fusermount3 -u "$m"; wait "$pid" 2>/dev/null || true
}

run_smbnetfs() {
  local m=$W/smbnetfs; mkdir -p "$m" "$W/snhome/.smb"; MOUNTS+=("$m")
  printf 'auth "%s" "%s"\n' "$U" "$PW" > "$W/snhome/.smb/smbnetfs.conf"; chmod 600 "$W/snhome/.smb/smbnetfs.conf"
  HOME=$W/snhome smbnetfs "$m" -f -o big_writes,max_write=131072 >"$W/smbnetfs.log" 2>&1 &
  local pid=$!; PIDS+=("$pid")
  mount_wait "$m" smbnetfs
  for _ in $(seq 1 50); do [ -d "$m/$H:$P/data" ] && break; sleep 0.1; done
  run_mounted "$m/$H:$P/data"
  fusermount3 -u "$m"; wait "$pid" 2>/dev/null || true
}

rdr_up() {
  RDR_M=$W/rdr
  cargo build --release -q -p rdr
  RDR=$ROOT/target/release/rdr
  export RDR_SOCKET=$W/rdr.sock
  "$RDR" daemon --foreground >"$W/rdr.log" 2>&1 & RDR_PID=$!
  for _ in $(seq 1 50); do [ -S "$RDR_SOCKET" ] && break; sleep 0.1; done
  "$RDR" use "$RDR_M" "//$H:$P/data" --user "$U" --password-file "$W/pass" >/dev/null
  MOUNTS+=("$RDR_M")
}

rdr_down() {
  "$RDR" use "$RDR_M" --delete --close-transport >/dev/null
  kill "$RDR_PID"; wait "$RDR_PID" 2>/dev/null || true; RDR_PID=
}

run_rdr() {
  rdr_up
  run_mounted "$RDR_M"
  rdr_down
}

# Tools take turns within each repetition, so a drift in the machine's or the server's speed
# during the run (seen here: smbd's CPU per create varies by a third between minutes) hits every
# tool alike.
declare -A R
for rep in $(seq 1 "$REPS"); do
  for tool in $TOOLS; do
    echo "run: $tool ($rep/$REPS)" >&2
    "run_$tool"
    for k in WRITE READ COPY CREATE SCPU STAT LIST DELETE; do v="T_$k"; R[$tool,$k]="${R[$tool,$k]:-} ${!v}"; done
  done
done

# Paired creates: rdr (cp -r through the mount) and smbclient (mput) back to back, alternating
# who goes first; the deletions between are not timed.
PAIR_RATIOS=""
if [ "$PAIRS" -gt 0 ] && [[ " $TOOLS " == *" rdr "* && " $TOOLS " == *" smbclient "* ]]; then
  echo "run: paired creates ($PAIRS pairs)" >&2
  rdr_up
  create_rdr() { clean_share; local s e; s=$(now); cp -r "$W/small" "$RDR_M/m"; e=$(now); T_PAIR_RDR=$(secs "$s" "$e"); rm -r "$RDR_M/m"; }
  create_smbclient() { clean_share; local s e; s=$(now); smbclient -p "$P" "//$H/data" -U "$U%$PW" -c "prompt off; lcd $W/small; mkdir m; cd m; mput *" >/dev/null; e=$(now); T_PAIR_SC=$(secs "$s" "$e"); smbclient -p "$P" "//$H/data" -U "$U%$PW" -c "deltree m" >/dev/null; }
  warm_small
  for i in $(seq 1 "$PAIRS"); do
    if [ $((i % 2)) = 1 ]; then create_rdr; create_smbclient; else create_smbclient; create_rdr; fi
    PAIR_RATIOS="$PAIR_RATIOS $(python3 -c "import sys; print(f'{float(sys.argv[1])/float(sys.argv[2]):.2f}')" "$T_PAIR_SC" "$T_PAIR_RDR")"
  done
  clean_share
  rdr_down
fi

mbps() { python3 -c "import sys; print(f'{int(sys.argv[1])/float(sys.argv[2]):.0f}')" "$SIZE_MIB" "$1"; }
printf '\n%s MiB sequential, %s x 4 KiB files, median of %s runs, share on %s, kernel %s, %s\n\n' "$SIZE_MIB" "$FILES" "$REPS" "$SHARE" "$(uname -r)" "$(date -u +%F)"
printf '| tool | write MiB/s | read MiB/s | copy MiB/s | create s | server CPU per create, µs | stat s | list s | delete s |\n|---|---|---|---|---|---|---|---|---|\n'
declare -A M
for tool in $TOOLS; do
  for k in WRITE READ COPY CREATE SCPU STAT LIST DELETE; do M[$tool,$k]=$(median ${R[$tool,$k]}); done
  printf '| %s | %s | %s | %s | %s | %.0f | %s | %s | %s |\n' "$tool" "$(mbps "${M[$tool,WRITE]}")" "$(mbps "${M[$tool,READ]}")" "$(mbps "${M[$tool,COPY]}")" \
    "${M[$tool,CREATE]}" "${M[$tool,SCPU]}" "${M[$tool,STAT]}" "${M[$tool,LIST]}" "${M[$tool,DELETE]}"
done
ratio() { python3 -c "import sys; print(f'{float(sys.argv[1])/float(sys.argv[2]):.2f}')" "$1" "$2"; }
for peer in smbclient rclone smbnetfs; do
  case " $TOOLS " in *" rdr "*) ;; *) continue ;; esac
  case " $TOOLS " in *" $peer "*) ;; *) continue ;; esac
  # Throughput ratio = peer time / rdr time (higher is better for rdr); for metadata the same.
  printf '\nrdr ÷ %s (speed ratio, >1 means rdr is faster): write %s, read %s, copy %s, create %s, stat %s, list %s, delete %s\n' "$peer" \
    "$(ratio "${M[$peer,WRITE]}" "${M[rdr,WRITE]}")" "$(ratio "${M[$peer,READ]}" "${M[rdr,READ]}")" "$(ratio "${M[$peer,COPY]}" "${M[rdr,COPY]}")" \
    "$(ratio "${M[$peer,CREATE]}" "${M[rdr,CREATE]}")" "$(ratio "${M[$peer,STAT]}" "${M[rdr,STAT]}")" \
    "$(ratio "${M[$peer,LIST]}" "${M[rdr,LIST]}")" "$(ratio "${M[$peer,DELETE]}" "${M[rdr,DELETE]}")"
done
# Ratio of each repetition's neighbouring runs, for the small-file columns (the noisiest).
for peer in smbclient rclone smbnetfs; do
  case " $TOOLS " in *" rdr "*) ;; *) continue ;; esac
  case " $TOOLS " in *" $peer "*) ;; *) continue ;; esac
  for k in CREATE DELETE; do
    printf 'rdr ÷ %s, %s per run: %s\n' "$peer" "${k,,}" "$(python3 -c "import sys; p=sys.argv[1].split(); r=sys.argv[2].split(); print(' '.join(f'{float(a)/float(b):.2f}' for a,b in zip(p,r)))" "${R[$peer,$k]}" "${R[rdr,$k]}")"
  done
done
for tool in $TOOLS; do printf '%s: server CPU per create, per run, µs: %s\n' "$tool" "${R[$tool,SCPU]# }"; done
if [ -n "$PAIR_RATIOS" ]; then
  printf '\ncreate, paired runs (rdr and smbclient back to back, taking turns at going first): rdr ÷ smbclient per pair:%s; median %s\n' \
    "$PAIR_RATIOS" "$(median $PAIR_RATIOS | python3 -c 'import sys; print(f"{float(sys.stdin.read()):.2f}")')"
fi
