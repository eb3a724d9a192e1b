# ha-kpbxd.sh: the "kpbxd" implementation for the failover rig (failover.sh,
# /work/shared/bench by default), sourced through HA_PLUGIN by bench/ha-failover.sh.
#
# The rig calls impl_kpbxd_start A|B with its HA_* variables exported (see the
# rig's header). Each (advert, node) gets one data dir under the rig's work dir,
# kept across runs: the first start configures HA with `kpbx ha configure`, later
# starts reuse the stored configuration. Both nodes get the same cluster key
# right after their first configuration, as a completed pairing would leave
# them (the rig starts A alone and waits for it to hold the VIP, which an
# unpaired node never does). Saving the role forgets any key, so the key file is
# written after it and a second change (of hook_dir only) restarts the HA
# runtime, which then reads it.
#
# Times: at HA_ADVERT_S=1 kpbxd runs its defaults (heartbeat 0.2 s, warning 1 s,
# out of service 3 s, ping every 1 s, dampening 5 s); at any other advert the
# rig's derived values (heartbeat = advert, warning = HA_WARN_MS, out of service
# = HA_DEAD_MS = 3.6 adverts, ping every 0.2 s, dampening 0.4 s). The init
# timeout is always HA_INIT_MS (4 adverts), as for keepalived.

KPBXD_BIN=${KPBXD_BIN:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/target/release/kpbxd}
KPBX_BIN=${KPBX_BIN:-$(dirname "$KPBXD_BIN")/kpbx}

impl_kpbxd_check() {
  [ -x "$KPBXD_BIN" ] && [ -x "$KPBX_BIN" ] || { echo "no $KPBXD_BIN / $KPBX_BIN (cargo build --release)"; return 1; }
}

kpbxd_secs() { awk -v m="$1" 'BEGIN{printf "%.3f", m/1000}'; }

impl_kpbxd_start() {
  local n=$1 d="$HA_WORKDIR/kpbxd-$HA_ADVERT_MS-$1" fresh=0 peer
  [ "$n" = A ] && peer=B || peer=A
  if [ ! -d "$d" ]; then
    fresh=1
    mkdir -p "$d/data/ha"
    echo "KP-BENCH-$n" > "$d/serial"
    [ -f "$HA_WORKDIR/kpbxd.key" ] ||
      od -An -tx1 -N32 /dev/urandom | tr -d ' \n' > "$HA_WORKDIR/kpbxd.key"
    cat > "$d/kpbxd.conf" <<CONF
data_dir = $d/data
control_socket = $d/kpbxd.sock
log_target = $d/kpbxd.log
log_level = info
static_dir = $d/static
http_listen = off
https_listen = off
tftp_listen = off
mgmt_listen = off
sip_pnp = off
CONF
  fi
  ip netns exec "$HA_NS" "$KPBXD_BIN" --config "$d/kpbxd.conf" >> "$d/stderr.log" 2>&1 &
  echo $! > "$HA_PIDFILE"
  local i
  for i in $(seq 100); do
    "$KPBX_BIN" --socket "$d/kpbxd.sock" status > /dev/null 2>&1 && break
    sleep 0.05
  done
  [ $fresh = 1 ] || return 0
  local role=enabled default=remote times
  if [ "$HA_DEFAULT_ACTIVE" = 1 ]; then role=coordinator default=local; fi
  times="init_timeout=$(kpbxd_secs "$HA_INIT_MS")"
  if [ "$HA_ADVERT_MS" != 1000 ]; then
    times="$times heartbeat_interval=$HA_ADVERT_S keepalive_warning=$(kpbxd_secs "$HA_WARN_MS")"
    times="$times keepalive_out_of_service=$(kpbxd_secs "$HA_DEAD_MS") ping_interval=0.2 ping_dampen=0.4"
  fi
  # shellcheck disable=SC2086
  "$KPBX_BIN" --socket "$d/kpbxd.sock" ha configure role=$role remote_serial=KP-BENCH-$peer \
    interface=lan0 local_ip="$HA_LAN_IP" remote_ip="$HA_PEER_LAN_IP" prefix="$HA_PREFIX" \
    sync_interface=sync0 sync_local_ip="$HA_SYNC_IP" sync_remote_ip="$HA_PEER_SYNC_IP" sync_prefix=30 \
    resources="$HA_VIP/$HA_PREFIX@lan0" "ping_group=$HA_PING_GROUP" default_active=$default \
    serial_source="file:$d/serial" hook_dir="$d/hooks.init" $times >> "$d/stderr.log" 2>&1 ||
    { echo "kpbx ha configure failed on $n (see $d/stderr.log)" >&2; return 1; }
  install -m 600 "$HA_WORKDIR/kpbxd.key" "$d/data/ha/cluster.key"
  "$KPBX_BIN" --socket "$d/kpbxd.sock" ha configure hook_dir="$d/hooks" >> "$d/stderr.log" 2>&1 ||
    { echo "kpbx ha configure failed on $n (see $d/stderr.log)" >&2; return 1; }
}
