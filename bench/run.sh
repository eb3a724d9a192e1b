#!/usr/bin/env bash
# make bench: every benchmark, each printed side by side with its anchor.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo bench --locked --bench store
echo
cargo bench --locked --bench provision
if make -n sizes >/dev/null 2>&1; then
  echo
  echo "== static musl binaries"
  make --no-print-directory sizes
fi
