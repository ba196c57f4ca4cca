#!/usr/bin/env bash
# rdr's test command: installs what the tests need, starts a private Samba on 127.0.0.1, runs
# formatting and lint checks and every test of the workspace, then stops Samba by its PID.
# Needs root (Samba users, FUSE mounts, test users). Run from anywhere: scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

[ "$(id -u)" = 0 ] || { echo "test.sh: needs root (it starts smbd, makes FUSE mounts and test users)" >&2; exit 1; }

# Everything the tests use is installed here, so no test may skip: tests that would skip for a
# missing dependency outside CI fail when CI is set.
export CI=${CI:-1}

need_pkgs=()
command -v smbd >/dev/null || need_pkgs+=(samba)
command -v smbclient >/dev/null || need_pkgs+=(smbclient)
command -v fusermount3 >/dev/null || need_pkgs+=(fuse3)
command -v ip >/dev/null || need_pkgs+=(iproute2)
if [ ${#need_pkgs[@]} -gt 0 ]; then
  echo "test.sh: installing ${need_pkgs[*]}"
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq "${need_pkgs[@]}" >/dev/null
fi
for c in rustfmt clippy; do
  rustup component list --installed 2>/dev/null | grep -q "^$c" || rustup component add "$c"
done

# Start the private Samba unless one is already running (then leave it running for its owner).
if ! scripts/samba-fixture.sh status >/dev/null 2>&1; then
  scripts/samba-fixture.sh start
  trap 'scripts/samba-fixture.sh stop >/dev/null 2>&1' EXIT   # quiet: the summary stays last
fi
set -a
# shellcheck disable=SC1091
. "${RDR_SAMBA_DIR:-/tmp/rdr-samba}/env"
set +a

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings
# Benchmarks are not run here (speed lives in `cargo bench` and bench/*.sh); clippy
# --all-targets above already compiles every bench target.
echo "== cargo test"
log=$(mktemp /tmp/rdr-test.XXXXXX)
status=0
cargo test --workspace --no-fail-fast 2>&1 | tee "$log" || status=$?
# One closing line for the whole run (cargo's own last line is the last crate's doc-tests).
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
rm -f "$log"
exit "$status"
