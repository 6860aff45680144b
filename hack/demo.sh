#!/usr/bin/env bash
# The seed's MicroShift cluster, programmed by ovnkube-rs into a real OVN.
#
#   hack/demo.sh          install what is missing, build, start real OVN NB/SB + ovn-northd, the
#                         Kubernetes API test server loaded with the seed's cluster and
#                         `ovnkube-rs controller`; then show the NB listings next to the seed's and
#                         trace three of the seed's flows with ovn-trace; then bring up the e2e
#                         lab (e2e/lab.sh: a node namespace with OVS, pods wired by the CNI plugin)
#                         and send real packets for the seed's flows. Leaves everything running.
#   hack/demo.sh down     stop it all (by PID) and remove the demo directory
#
# Everything lives under $OVNKUBE_DEMO_DIR (default /tmp/ovnkube-rs-demo); nothing touches the
# network of this machine: the databases listen on unix sockets, the API server on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DEMO=${OVNKUBE_DEMO_DIR:-/tmp/ovnkube-rs-demo}
RUN=$DEMO/run LOG=$DEMO/log DB=$DEMO/db
API_PORT=${OVNKUBE_DEMO_API_PORT:-16443}
METRICS=${OVNKUBE_DEMO_METRICS:-127.0.0.1:19409}
SEED=$ROOT/fixtures/seed
PROFILE=${OVNKUBE_DEMO_PROFILE:-release} # "dev" builds faster

T0=$(date +%s%N)
elapsed() { printf '%6.2fs' "$(( ($(date +%s%N) - T0) / 10000000 ))e-2"; }
step() { printf '[%s] %s\n' "$(elapsed)" "$*"; }
die() {
  printf '[%s] FAILED: %s\n' "$(elapsed)" "$*" >&2
  printf '         logs are in %s\n' "$LOG" >&2
  exit 1
}

# ours PIDFILE: the process is alive and was started for this demo (its command line names $DEMO).
ours() {
  local pid
  pid=$(cat "$1" 2>/dev/null) || return 1
  [[ -r /proc/$pid/cmdline ]] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$DEMO"
}

down() {
  local pf pid
  E2E_LAB_PROFILE=$PROFILE e2e/lab.sh down
  for pf in "$RUN"/controller.pid "$RUN"/apiserver.pid "$RUN"/ovn-northd.pid "$RUN"/ovnsb_db.pid "$RUN"/ovnnb_db.pid; do
    if ours "$pf"; then
      pid=$(cat "$pf")
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
      echo "stopped $(basename "$pf" .pid) (pid $pid)"
    fi
  done
  rm -rf "$DEMO"
  echo "removed $DEMO"
}

# spawn NAME CMD...: start a process in the background, its output in $LOG/NAME.log.
spawn() {
  local name=$1
  shift
  "$@" >"$LOG/$name.log" 2>&1 &
  echo $! >"$RUN/$name.pid"
}

http_get() { # http_get HOST:PORT PATH -> status line
  local host=${1%:*} port=${1##*:}
  exec 3<>"/dev/tcp/$host/$port" || return 1
  printf 'GET %s HTTP/1.1\r\nHost: x\r\n\r\n' "$2" >&3
  head -1 <&3
  exec 3<&-
}

start_ovn() {
  export OVS_RUNDIR=$RUN OVS_LOGDIR=$LOG OVN_RUNDIR=$RUN OVN_LOGDIR=$LOG
  local db
  for db in nb sb; do
    local name=ovn${db}_db schema=/usr/share/ovn/ovn-${db}.ovsschema
    [[ -f $DB/$name.db ]] || ovsdb-tool create "$DB/$name.db" "$schema"
    ours "$RUN/$name.pid" && continue
    ovsdb-server --detach --no-chdir --pidfile="$RUN/$name.pid" --log-file="$LOG/$name.log" \
      --unixctl="$RUN/$name.ctl" --remote="punix:$RUN/$name.sock" "$DB/$name.db" 2>>"$LOG/daemons.log" ||
      die "ovsdb-server for $name did not start"
  done
  ovn-nbctl --db="unix:$RUN/ovnnb_db.sock" --no-wait init
  ovn-sbctl --db="unix:$RUN/ovnsb_db.sock" init
  if ! ours "$RUN/ovn-northd.pid"; then
    ovn-northd --detach --no-chdir --pidfile="$RUN/ovn-northd.pid" --log-file="$LOG/ovn-northd.log" \
      --ovnnb-db="unix:$RUN/ovnnb_db.sock" --ovnsb-db="unix:$RUN/ovnsb_db.sock" 2>>"$LOG/daemons.log" ||
      die "ovn-northd did not start"
  fi
}

NBCTL() { ovn-nbctl --db="unix:$RUN/ovnnb_db.sock" "$@"; }

# The seed's listings next to ours; sections of fixtures/seed/nbctl-seed.txt (see its header).
compare_with_seed() {
  local args="" mode="" expected="" same=0 total=0
  flush() {
    [[ -n $args ]] || return 0
    local ours_out verdict=MATCH norm_ours norm_seed
    # shellcheck disable=SC2086 # the section's arguments are words
    ours_out=$(NBCTL $args 2>&1 || true)
    norm() { sed -E 's/[0-9a-f]{8}-[0-9a-f-]{27}//g; s/[[:space:]]+/ /g; s/^ //; s/ $//' | grep -v '^$' || true; }
    norm_ours=$(norm <<<"$ours_out")
    norm_seed=$(norm <<<"$expected")
    case $mode in
      exact) [[ $norm_ours == "$norm_seed" ]] || verdict=DIFFERS ;;
      *) while IFS= read -r l; do grep -qxF -- "$l" <<<"$norm_ours" || verdict=DIFFERS; done <<<"$norm_seed" ;;
    esac
    total=$((total + 1))
    [[ $verdict == MATCH ]] && same=$((same + 1))
    printf '\n\033[1m$ ovn-nbctl %s\033[0m   [%s, %s]\n' "$args" "$verdict" "$mode"
    pr -m -t -w 200 <(printf '%s\n' "--- seed" "$expected") <(printf '%s\n' "--- ovnkube-rs" "$ours_out")
  }
  while IFS= read -r line; do
    case $line in
      '#'*) ;;
      '$ ovn-nbctl '*) flush; args=${line#\$ ovn-nbctl }; mode=""; expected="" ;;
      '== '*) mode=${line#== } ;;
      '') ;;
      *) expected+="$line"$'\n' ;;
    esac
  done <"$SEED/nbctl-seed.txt"
  flush
  printf '\n%d of %d seed listings match (uuids and column padding aside)\n' "$same" "$total"
}

trace() { # trace TITLE SWITCH FLOW
  local out
  out=$(ovn-trace --db "unix:$RUN/ovnsb_db.sock" --minimal --ct=new "$2" "$3" 2>&1 || true)
  printf '  %-34s %s\n' "$1" "$(grep -o 'output("[^"]*")' <<<"$out" | tail -1 || echo dropped)"
}

up() {
  mkdir -p "$RUN" "$LOG" "$DB"
  step "installing packages (hack/install-deps.sh)"
  hack/install-deps.sh >"$LOG/install.log" 2>&1 || die "package installation (see $LOG/install.log)"
  step "building ovnkube-rs and the API test server ($PROFILE)"
  cargo build --profile "$PROFILE" -q -p ovnkube-rs -p kube-test-apiserver --bins >"$LOG/build.log" 2>&1 ||
    die "build (see $LOG/build.log)"
  local target dir=$PROFILE
  [[ $PROFILE == dev ]] && dir=debug
  target=$(cargo metadata --format-version 1 --no-deps | sed -E 's/.*"target_directory":"([^"]*)".*/\1/')/$dir
  step "starting OVN NB/SB ovsdb-server and ovn-northd"
  start_ovn
  step "starting the Kubernetes API test server with the seed's cluster on 127.0.0.1:$API_PORT"
  if ! ours "$RUN/apiserver.pid"; then
    spawn apiserver "$target/kube-test-apiserver" --port "$API_PORT" --load "$SEED/cluster.yaml" \
      --kubeconfig-out "$DEMO/kubeconfig"
    for _ in $(seq 1 100); do [[ -s $DEMO/kubeconfig ]] && break; sleep 0.05; done
    [[ -s $DEMO/kubeconfig ]] || die "the API test server did not start"
  fi
  step "starting ovnkube-rs controller (MicroShift's flags)"
  if ! ours "$RUN/controller.pid"; then
    spawn controller "$target/ovnkube-rs" controller --init-master microshift-dev \
      --gateway-mode local --gateway-interface br-ex --disable-snat-multiple-gws \
      --leader-election=false --k8s-kubeconfig "$DEMO/kubeconfig" \
      --nb-address "unix:$RUN/ovnnb_db.sock" --sb-address "unix:$RUN/ovnsb_db.sock" \
      --metrics-bind-address "$METRICS"
  fi
  for _ in $(seq 1 200); do
    [[ $(http_get "$METRICS" /readyz 2>/dev/null) == *200* ]] && break
    ours "$RUN/controller.pid" || die "the controller exited (see $LOG/controller.log)"
    sleep 0.05
  done
  [[ $(http_get "$METRICS" /readyz 2>/dev/null) == *200* ]] || die "the controller did not become ready"
  NBCTL --wait=sb sync
  step "controller ready; NB programmed and ovn-northd caught up"
  compare_with_seed
  echo
  step "ovn-trace of three seed flows (against the SB ovn-northd computed)"
  local pod1='inport == "default_pod-1" && eth.src == 0a:58:0a:2a:00:0c && eth.dst == 0a:58:0a:2a:00:01 && ip4.src == 10.42.0.12 && ip.ttl == 64'
  trace "pod-1 -> pod-2" microshift-dev "$pod1 && ip4.dst == 10.42.0.13 && icmp4"
  trace "pod-1 -> DNS 10.43.0.10:53/udp" microshift-dev "$pod1 && ip4.dst == 10.43.0.10 && udp && udp.dst == 53"
  trace "pod-1 -> NodePort :30700" microshift-dev "$pod1 && ip4.dst == 192.168.122.14 && tcp && tcp.dst == 30700"
  echo
  step "the e2e lab: the seed's flows with real packets (e2e/lab.sh up)"
  E2E_LAB_PROFILE=$PROFILE e2e/lab.sh up || die "the e2e lab (see /tmp/ovnkube-rs-e2e-lab/lab.log)"
  cat <<EOF

The NB demo stays up too. Explore it:
  kubectl --kubeconfig $DEMO/kubeconfig get nodes,pods,svc -A
  kubectl --kubeconfig $DEMO/kubeconfig create service clusterip web --tcp=80:8080   # watch NB follow
  ovn-nbctl --db=unix:$RUN/ovnnb_db.sock show
  ovn-nbctl --db=unix:$RUN/ovnnb_db.sock list load_balancer
  ovn-trace --db unix:$RUN/ovnsb_db.sock --ct=new microshift-dev '<flow>'
  curl -s http://$METRICS/metrics | grep ovnkube_controller_
Logs: $LOG    Stop: hack/demo.sh down
EOF
}

case ${1:-up} in
  up) up ;;
  down) down ;;
  *) echo "usage: $0 [up|down]" >&2; exit 2 ;;
esac
