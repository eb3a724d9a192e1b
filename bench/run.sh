#!/usr/bin/env bash
# make bench: every benchmark, each printed side by side with its anchor.
#   store      durable audited commits/s (SQLite anchor), idle RSS
#   provision  regeneration for 10,000 devices
#   cdr        Master.csv ingestion rows/s; 1,000,000-call exports: time, peak RSS
#   audit      1,000,000-entry audit log: first page of a month, month export (time, peak RSS), verify
#   ha_sync    HA data sync: commit latency with/without a connected peer, fresh secondary
#              in sync with 100,000 objects (time, records/s, peak RSS); root, netns
#   ha_heartbeat  largest heartbeat gap per heavy operation (40,000-account import, 10,000
#              devices' files, CDR backlog, 50 API password changes, snapshot install on the
#              passive) at default, fast and fastest settings, vs the warning time; root, netns
#   http.sh    kpbxd vs nginx serving provisioning files      (shared/bench rig)
#   tftp.sh    kpbxd vs tftpd-hpa, firmware and a phone storm (shared/bench rig)
#   https.sh   kpbxd vs nginx+OpenSSL over HTTPS: boot storm, resumption, keep-alive,
#              firmware, digest (bench/https.sh on the shared rig's lib.sh; tls_load client)
#   sizes      the static musl binaries
# SHARED_BENCH points at the rigs (default ../shared/bench); RIGS=0 skips them.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD
cargo bench --locked --bench store
echo
cargo bench --locked --bench provision
echo
cargo bench --locked --bench cdr
cargo bench --locked --bench audit
echo
cargo bench --locked --bench ha_sync
echo
cargo bench --locked --bench ha_heartbeat
echo
if [ "${RIGS:-1}" != 0 ]; then
  rigs=${SHARED_BENCH:-$top/../shared/bench}
  [ -x "$rigs/http.sh" ] || { echo "bench: no rigs at $rigs (set SHARED_BENCH, or RIGS=0)" >&2; exit 1; }
  serve="$top/bench/kpbxd-serve.sh"
  echo "== HTTP provisioning: kpbxd vs nginx (shared/bench/http.sh)"
  (cd "$rigs" && ./http.sh nginx "kpbxd=exec $serve http \"\$BENCH_ADDR\" \"\$BENCH_PORT\" \"\$BENCH_ROOT\"")
  echo
  echo "== TFTP provisioning: kpbxd vs tftpd-hpa (shared/bench/tftp.sh)"
  (cd "$rigs" && ./tftp.sh tftpd-hpa "kpbxd=exec $serve tftp \"\$BENCH_ADDR\" \"\$BENCH_PORT\" \"\$BENCH_ROOT\"")
  echo
  echo "== HTTPS provisioning: kpbxd vs nginx with OpenSSL (bench/https.sh)"
  cargo build --release --locked --bin kpbxd --bin kpbx --example tls_load
  # As root, the rig and both servers at nice -20 (PRIO in bench/https.sh): on a shared box
  # the neighbours' builds otherwise take most of the pinned server's CPU.
  prio=${PRIO-$(if [ "$(id -u)" = 0 ]; then echo -20; fi)}
  PRIO=$prio SHARED_BENCH=$rigs DIGEST_PREP="$top/bench/kpbxd-digest-prep.sh" \
    bench/https.sh nginx "kpbxd=exec $serve https \"\$BENCH_ADDR\" \"\$BENCH_PORT\" \"\$BENCH_ROOT\""
  echo
fi
echo "== static musl binaries"
make --no-print-directory sizes
