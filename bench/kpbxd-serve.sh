#!/usr/bin/env bash
# kpbxd-serve.sh PROTO ADDR PORT ROOT: run kpbxd in the foreground serving ROOT (as static_dir)
# over PROTO (http, https or tftp) on ADDR:PORT, everything else off; https uses the PEM pair
# in $BENCH_CERT / $BENCH_KEY. For the shared bench rigs and bench/https.sh:
#   http.sh nginx 'kpbxd=exec bench/kpbxd-serve.sh http "$BENCH_ADDR" "$BENCH_PORT" "$BENCH_ROOT"'
set -euo pipefail
proto=${1:?proto}; addr=${2:?addr}; port=${3:?port}; root=${4:?root}
kpbxd=${KPBXD:-$(dirname "$0")/../target/release/kpbxd}
dir=$(mktemp -d "${TMPDIR:-/tmp}/kpbxd-bench.XXXXXX")
http=off; https=off; tftp=off; tls=""
case $proto in
  http) http="$addr:$port" ;;
  https) https="$addr:$port"
         tls="tls_cert = ${BENCH_CERT:?BENCH_CERT}
tls_key = ${BENCH_KEY:?BENCH_KEY}" ;;
  tftp) tftp="$addr:$port" ;;
  *) echo "kpbxd-serve.sh: proto is http, https or tftp" >&2; exit 2 ;;
esac
# A data dir prepared by kpbxd-digest-prep.sh (devices with digest credentials): a copy.
if [ -n "${BENCH_PREP_DATA:-}" ]; then cp -a "$BENCH_PREP_DATA" "$dir/data"; fi
cat >"$dir/kpbxd.conf" <<CONF
data_dir = $dir/data
control_socket = $dir/kpbxd.sock
log_level = warn
static_dir = $root
http_listen = $http
https_listen = $https
tftp_listen = $tftp
mgmt_listen = off
$tls
CONF
exec "$kpbxd" --config "$dir/kpbxd.conf"
