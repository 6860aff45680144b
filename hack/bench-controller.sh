#!/usr/bin/env bash
# Benchmark of `ovnkube-rs controller` (not a test): builds both release binaries and runs
# crates/ctlbench against a real NB (and SB + ovn-northd) under a temp dir, with the API test
# server in-process loaded with a generated cluster. Prints cold converge vs. the raw write floor,
# EndpointSlice churn latency (NB and through ovn-northd), restart, the refill of an NB recreated
# empty under the running controller, peak RSS and CPU, and whether each goal is met.
#
# Usage: hack/bench-controller.sh [ctlbench flags]
#   default scenario S: --nodes 100 --pods 10000 --services 5000 --endpoints-per-service 5
#   --rates 100,1000 --churn-seconds 60; smaller e.g. --pods 2000 --services 1000 --churn-seconds 10
#   --no-northd skips ovn-northd and the SB latency.
#   --baseline BIN also measures an earlier controller binary's cold converge and restart in the
#   same run (side by side).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p ovnkube-rs -p ctlbench
target=${CARGO_TARGET_DIR:-target}
exec "$target/release/ctlbench" --controller "$target/release/ovnkube-rs" "$@"
