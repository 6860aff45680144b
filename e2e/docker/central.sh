#!/usr/bin/env bash
# Entry point of the bed's central container: NB and SB ovsdb-server (unix sockets and TCP
# 6641/6642), ovn-northd, the Kubernetes API test server (127.0.0.1:6444, published on :6443 by
# socat) and `ovnkube-rs controller`, restarted whenever it exits as the kubelet would restart its
# container. `central.sh restart-nb` stops and restarts the NB ovsdb-server (same database file).
# The host-built binaries are mounted read-only at /opt/ovnkube-rs; /e2e-state is the bed's state.
set -euo pipefail
BIN=/opt/ovnkube-rs
RUN=/run/e2e

start_db() { # start_db nb|sb PORT
  local db=$1 port=$2
  local base=/run/ovn/ovn${db}_db
  ovsdb-server --detach --no-chdir --pidfile="$base.pid" --unixctl="$base.ctl" \
    --log-file="/var/log/ovn/ovsdb-server-$db.log" --remote="punix:$base.sock" \
    --remote="ptcp:$port:0.0.0.0" "/var/lib/ovn/ovn${db}_db.db"
}

restart_nb() {
  kill "$(cat /run/ovn/ovnnb_db.pid)"
  while [[ -e /run/ovn/ovnnb_db.pid ]] && kill -0 "$(cat /run/ovn/ovnnb_db.pid)" 2>/dev/null; do sleep 0.05; done
  start_db nb 6641
}

# Runs a command again whenever it exits; its current PID is in $RUN/<name>.pid.
supervise() { # supervise NAME CMD...
  local name=$1
  shift
  while true; do
    "$@" >>"/var/log/$name.log" 2>&1 &
    echo $! >"$RUN/$name.pid"
    wait $! || true
    echo "$(date +%T.%N) $name exited; restarting" >>"/var/log/$name.log"
    sleep 0.5
  done
}

if [[ ${1:-} == restart-nb ]]; then
  restart_nb
  exit 0
fi

mkdir -p /run/ovn /var/log/ovn /var/lib/ovn "$RUN"
for db in nb sb; do
  [[ -f /var/lib/ovn/ovn${db}_db.db ]] ||
    ovsdb-tool create /var/lib/ovn/ovn${db}_db.db /usr/share/ovn/ovn-${db}.ovsschema
done
start_db nb 6641
start_db sb 6642
ovn-nbctl --no-wait init
ovn-northd --detach --no-chdir --pidfile=/run/ovn/ovn-northd.pid --log-file=/var/log/ovn/ovn-northd.log \
  --ovnnb-db=unix:/run/ovn/ovnnb_db.sock --ovnsb-db=unix:/run/ovn/ovnsb_db.sock

"$BIN/kube-test-apiserver" --port 6444 --kubeconfig-out "$RUN/kubeconfig" >/var/log/kube-test-apiserver.log 2>&1 &
socat TCP-LISTEN:6443,fork,reuseaddr TCP:127.0.0.1:6444 &
while [[ ! -s $RUN/kubeconfig ]]; do sleep 0.05; done

supervise controller "$BIN/ovnkube-rs" controller --init-master central --gateway-mode local \
  --gateway-interface br-ex --disable-snat-multiple-gws --leader-election=false \
  --k8s-kubeconfig="$RUN/kubeconfig" --nb-address=unix:/run/ovn/ovnnb_db.sock \
  --sb-address=unix:/run/ovn/ovnsb_db.sock --metrics-bind-address=0.0.0.0:9409 &
touch "$RUN/ready"
trap 'exit 0' TERM INT
sleep infinity &
wait $!
