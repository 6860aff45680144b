#!/usr/bin/env bash
# Issue 9's figures on the multi-node Docker bed (examples/e2e_docker_bench.rs): bring-up, pod
# created -> first ping from another node (p50/p99 over N pods), node killed -> its NB rows
# gone, node back -> its pods reachable, controller and node agent RSS.
#   hack/bench-e2e-docker.sh [N]     (N pods, default 100; E2E_BENCH_PROFILE=dev for a debug build)
# Needs root and Docker; the bed is removed when the run ends.
set -euo pipefail
cd "$(dirname "$0")/.."
PROFILE=${E2E_BENCH_PROFILE:-release}
dir=$PROFILE
[[ $PROFILE == dev ]] && dir=debug
cargo build -q --profile "$PROFILE" -p ovnkube-rs -p kube-test-apiserver --bins --example e2e_docker_bench
target=$(cargo metadata --format-version 1 --no-deps | sed -E 's/.*"target_directory":"([^"]*)".*/\1/')/$dir
"$target/examples/e2e_docker_bench" "${1:-100}"
