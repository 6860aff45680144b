#!/usr/bin/env bash
# Soak: runs the "controller SIGKILLed at random points during pod churn" test (in
# tests/controller_faults.rs) for many more iterations than the test suite does, several rounds
# with fresh seeds. Each round ends with the test's checks (no address given twice, no leaked
# port or load balancer, `sync` sends 0 operations). A failing round prints its seed; replay it
# with CONTROLLER_KILL_SEED=<seed>.
#
# Usage: hack/soak-controller.sh [ITERATIONS_PER_ROUND] [ROUNDS]   (default 200 x 5)
set -euo pipefail
cd "$(dirname "$0")/.."
iterations=${1:-200}
rounds=${2:-5}
cargo test --release --test controller_faults --no-run
for round in $(seq 1 "$rounds"); do
    printf '\n==> round %s/%s: %s kills\n' "$round" "$rounds" "$iterations"
    CONTROLLER_KILL_ITERATIONS=$iterations cargo test --release --test controller_faults \
        controller_killed_at_random_points_during_pod_churn -- --exact --nocapture
done
printf '\n%s rounds of %s kills passed\n' "$rounds" "$iterations"
