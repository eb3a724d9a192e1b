#!/usr/bin/env bash
# kpbxd-serve.sh PROTO ADDR PORT ROOT: run kpbxd in the foreground serving ROOT (as static_dir)
# over PROTO (http or tftp) on ADDR:PORT, everything else off; for the shared bench rigs:
#   http.sh nginx 'kpbxd=exec bench/kpbxd-serve.sh http "$BENCH_ADDR" "$BENCH_PORT" "$BENCH_ROOT"'
set -euo pipefail
proto=${1:?proto}; addr=${2:?addr}; port=${3:?port}; root=${4:?root}
kpbxd=${KPBXD:-$(dirname "$0")/../target/release/kpbxd}
dir=$(mktemp -d "${TMPDIR:-/tmp}/kpbxd-bench.XXXXXX")
http=off; tftp=off
case $proto in
  http) http="$addr:$port" ;;
  tftp) tftp="$addr:$port" ;;
  *) echo "kpbxd-serve.sh: proto is http or tftp" >&2; exit 2 ;;
esac
cat >"$dir/kpbxd.conf" <<CONF
data_dir = $dir/data
control_socket = $dir/kpbxd.sock
log_level = warn
static_dir = $root
http_listen = $http
https_listen = off
tftp_listen = $tftp
mgmt_listen = off
CONF
exec "$kpbxd" --config "$dir/kpbxd.conf"
