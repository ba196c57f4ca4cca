#!/bin/bash
# Fuzz rdr-smb's protocol decoders with cargo-fuzz (libFuzzer) for a million inputs.
# Needs a nightly toolchain; not run in CI (CI runs the deterministic 200k-input test
# `cargo test -p rdr-smb --test proto_robustness` instead).
# Usage: scripts/fuzz-smb.sh [RUNS]   (default 1000000)
set -euo pipefail
RUNS=${1:-1000000}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
FUZZ_DIR="$ROOT/crates/rdr-smb/fuzz"

if ! rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  echo "fuzz-smb: no nightly toolchain; trying 'rustup toolchain install nightly'" >&2
  if ! rustup toolchain install nightly --profile minimal; then
    echo "fuzz-smb: cannot install a nightly toolchain here; cargo fuzz needs one." >&2
    echo "fuzz-smb: the same decode routine runs in CI as 'cargo test -p rdr-smb --test proto_robustness'." >&2
    exit 2
  fi
fi
if ! cargo fuzz --help >/dev/null 2>&1; then
  echo "fuzz-smb: installing cargo-fuzz" >&2
  cargo install cargo-fuzz --locked
fi
command -v c++ >/dev/null || { echo "fuzz-smb: libFuzzer needs a C++ compiler (apt-get install -y g++)" >&2; exit 2; }

cd "$FUZZ_DIR"
mkdir -p corpus/decode_response
# Seed the corpus with a few valid messages so the fuzzer starts from real structure.
printf '\xfeSMB\x40\x00\x00\x00\x00\x00\x00\x00\x0d\x00\x01\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x04\x00\x00\x00' \
  > corpus/decode_response/echo_response
exec cargo +nightly fuzz run decode_response corpus/decode_response -- -runs="$RUNS" -max_len=65536
