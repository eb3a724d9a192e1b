#!/usr/bin/env bash
# kpbxd-digest-prep.sh DATA_DIR N USER PASS OUT_DIR [HTTPS_LISTEN]: for bench/https.sh's digest
# test, make a
# kpbxd data dir with N Snom D785 phones (MACs 00:04:13:00:00:01..) whose files need HTTP
# digest USER/PASS, and copy their generated files into OUT_DIR (so that nginx serves the same
# bytes), names in OUT_DIR/.digest-files.lst. kpbxd then serves a copy of DATA_DIR
# (BENCH_PREP_DATA in kpbxd-serve.sh). The files name the provisioning URL, so HTTPS_LISTEN must
# be the address kpbxd will serve on in the benchmark (https.sh passes its second server's).
set -euo pipefail
data=${1:?data dir}; n=${2:?N}; user=${3:?user}; pass=${4:?password}; out=${5:?out dir}
listen=${6:-off}
top=$(cd "$(dirname "$0")/.." && pwd)
kpbxd=${KPBXD:-$top/target/release/kpbxd}
kpbx=${KPBX:-$top/target/release/kpbx}
dir=$(mktemp -d "${TMPDIR:-/tmp}/kpbxd-digest-prep.XXXXXX")
mkdir -p "$data" "$out"
cat >"$dir/kpbxd.conf" <<CONF
data_dir = $data
control_socket = $dir/kpbxd.sock
log_level = warn
http_listen = off
https_listen = $listen
tftp_listen = off
mgmt_listen = off
sip_pnp = off
CONF
"$kpbxd" --config "$dir/kpbxd.conf" 2>"$dir/stderr.log" &
pid=$!
trap 'kill -TERM $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 100); do [ -S "$dir/kpbxd.sock" ] && break; sleep 0.1; done
[ -S "$dir/kpbxd.sock" ] || { cat "$dir/stderr.log" >&2; echo "kpbxd did not start" >&2; exit 1; }
k() { "$kpbx" --socket "$dir/kpbxd.sock" "$@"; }
{ echo "extension,sip_password"; for i in $(seq "$n"); do echo "$((2000 + i)),sip-$i"; done; } >"$dir/accounts.csv"
{ echo "mac,model,template,account,http_user,http_password"
  for i in $(seq "$n"); do printf '00:04:13:00:%02x:%02x,Snom-D785,snom-d785,%d,%s,%s\n' $((i / 256)) $((i % 256)) $((2000 + i)) "$user" "$pass"; done
} >"$dir/devices.csv"
k prov account import "$dir/accounts.csv" >/dev/null
k prov device import "$dir/devices.csv" >/dev/null
: >"$out/.digest-files.lst"
for i in $(seq "$n"); do
  name=$(printf '00041300%02X%02X.xml' $((i / 256)) $((i % 256)))
  k prov show "$name" >"$out/$name"
  echo "$name" >>"$out/.digest-files.lst"
done
