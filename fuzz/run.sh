#!/usr/bin/env bash
# Runs every fuzz target for N seconds each (default 30) with cargo-fuzz on
# the nightly toolchain: `make fuzz FUZZ_SECONDS=300`.
set -euo pipefail
cd "$(dirname "$0")"
seconds=${1:-30}
command -v cargo-fuzz >/dev/null || { echo "fuzz: cargo-fuzz missing: cargo install cargo-fuzz" >&2; exit 1; }
rustup run nightly rustc --version >/dev/null 2>&1 || { echo "fuzz: the nightly toolchain is missing: rustup toolchain install nightly" >&2; exit 1; }
for target in $(cargo +nightly fuzz list); do
  echo "== $target (${seconds}s)"
  cargo +nightly fuzz run "$target" -- -max_total_time="$seconds" -rss_limit_mb=1024 2>&1 | tail -3
done
