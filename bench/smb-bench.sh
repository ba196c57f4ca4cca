#!/usr/bin/env bash
# rdr-smb API vs smbclient against the project's private Samba, in one run; prints speed ratios.
#   bench/smb-bench.sh [MiB=512] [files=2000] [runs=3]
# Starts the fixture if it is not running (and leaves it as it found it).
set -euo pipefail
cd "$(dirname "$0")/.."
started=0
if ! scripts/samba-fixture.sh status >/dev/null 2>&1; then
  scripts/samba-fixture.sh start
  started=1
fi
[ "$started" = 1 ] && trap 'scripts/samba-fixture.sh stop' EXIT
set -a
# shellcheck disable=SC1091
. "${RDR_SAMBA_DIR:-/tmp/rdr-samba}/env"
set +a
cargo build --release -q -p rdr-smb --example smb_bench
echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(smbd --version), $(date -u '+%Y-%m-%d %H:%M UTC')"
exec ./target/release/examples/smb_bench "$@"
