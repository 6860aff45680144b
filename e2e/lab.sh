#!/usr/bin/env bash
# The e2e lab (the seed's cluster with real packets) as a background process.
#
#   e2e/lab.sh up     build, start examples/e2e_lab.rs in the background, wait until it is READY
#                     (it prints the seed's flows as a table and how to explore), leave it running
#   e2e/lab.sh down   stop it by PID (SIGTERM: it stops its daemons by PID, deletes its namespaces)
#
# State lives in $E2E_LAB_STATE (default /tmp/ovnkube-rs-e2e-lab): pid and output log.
# Needs root (network namespaces); nothing is configured in the root namespace.
set -euo pipefail
cd "$(dirname "$0")/.."
STATE=${E2E_LAB_STATE:-/tmp/ovnkube-rs-e2e-lab}
PROFILE=${E2E_LAB_PROFILE:-dev}

running() { # the recorded pid is alive and is our example binary
  local pid
  pid=$(cat "$STATE/pid" 2>/dev/null) || return 1
  [[ -r /proc/$pid/cmdline ]] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q 'examples/e2e_lab'
}

up() {
  mkdir -p "$STATE"
  if running; then
    echo "already running (pid $(cat "$STATE/pid")); output: $STATE/lab.log"
    return 0
  fi
  echo "building ovnkube-rs and the lab ($PROFILE profile)..."
  cargo build --profile "$PROFILE" -q --bins --example e2e_lab >"$STATE/build.log" 2>&1 ||
    { echo "build failed: see $STATE/build.log" >&2; exit 1; }
  local target dir=$PROFILE
  [[ $PROFILE == dev ]] && dir=debug
  target=$(cargo metadata --format-version 1 --no-deps | sed -E 's/.*"target_directory":"([^"]*)".*/\1/')/$dir
  # Before the background start: `running` must find the lab binary at once, not a subshell.
  [[ -n ${OVS_VSWITCHD:-} ]] || OVS_VSWITCHD=$(hack/ovs-datapath.sh)
  export OVS_VSWITCHD
  OVNKUBE_RS_BIN=$target/ovnkube-rs "$target/examples/e2e_lab" >"$STATE/lab.log" 2>&1 &
  echo $! >"$STATE/pid"
  for _ in $(seq 1 600); do
    grep -q '^READY' "$STATE/lab.log" && break
    running || { cat "$STATE/lab.log" >&2; echo "the lab exited; output above" >&2; exit 1; }
    sleep 0.1
  done
  grep -q '^READY' "$STATE/lab.log" || { echo "the lab did not get ready: $STATE/lab.log" >&2; exit 1; }
  cat "$STATE/lab.log"
}

down() {
  if running; then
    local pid
    pid=$(cat "$STATE/pid")
    kill -TERM "$pid"
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    echo "stopped the lab (pid $pid)"
  else
    echo "no lab running"
  fi
  rm -f "$STATE/pid"
}

case ${1:-up} in
  up) up ;;
  down) down ;;
  *) echo "usage: $0 [up|down]" >&2; exit 2 ;;
esac
