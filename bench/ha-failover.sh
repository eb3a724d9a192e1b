#!/usr/bin/env bash
# ha-failover.sh: the HA fault matrix, kpbxd side by side with keepalived, on the
# topology of the failover rig (failover.sh from /work/shared/bench, or $SHARED_BENCH):
# both daemons, at the default settings (advert / heartbeat 1 s for keepalived,
# kpbxd's defaults) and at a fast setting (0.1 s), scenarios kill9 landown synccut
# poweroff, HA_REPS runs each (default 5). The rig prints one line per run and a
# summary per (impl, advert, scenario): outage and takeover median/min/max and the
# split-brain count. Needs root, keepalived (apt-get install keepalived), iputils-ping
# and a release build of kpbxd (make bench builds it). Takes about 15 minutes.
# Any HA_* knob of the rig may be overridden from the environment; KPBXD_BIN picks
# another kpbxd binary (kpbx is taken from the same directory). RIGS=0 skips it,
# as it does the other shared rigs in bench/run.sh.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
if [ "${RIGS:-1}" = 0 ]; then echo "ha-failover: not run (RIGS=0: no shared rigs)"; exit 0; fi
rigs=${SHARED_BENCH:-$here/../../shared/bench}
[ -x "$rigs/failover.sh" ] || { echo "ha-failover: no rig at $rigs/failover.sh (set SHARED_BENCH)" >&2; exit 1; }
command -v keepalived > /dev/null || { echo "ha-failover: keepalived missing (apt-get install keepalived)" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "ha-failover: needs root (network namespaces)" >&2; exit 1; }
export HA_PLUGIN=$here/ha-kpbxd.sh
export HA_IMPLS=${HA_IMPLS:-"keepalived kpbxd"}
export HA_ADVERTS=${HA_ADVERTS:-"1 0.1"}
export HA_SCENARIOS=${HA_SCENARIOS:-"kill9 landown synccut poweroff"}
export HA_REPS=${HA_REPS:-5}
export HA_JITTER=${HA_JITTER:-1}
exec "$rigs/failover.sh"
