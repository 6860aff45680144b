#!/usr/bin/env bash
# Runs every test: format and lint checks, then unit and integration tests against real OVN
# daemons (started by the tests themselves under temporary directories). Needs root (network
# namespaces, OVS) and the packages from hack/install-deps.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
hack/install-deps.sh
# The real-packet labs run this ovs-vswitchd (hack/ovs-datapath.sh says why).
OVS_VSWITCHD=$(hack/ovs-datapath.sh)
export OVS_VSWITCHD
step() { printf '\n==> %s\n' "$*"; }
step "cargo fmt --check"
cargo fmt --all -- --check
step "cargo clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings
step "shellcheck"
shellcheck hack/*.sh .ci/run deploy/kind/*.sh deploy/kind/scripts/* e2e/kind/*.sh e2e/docker/*.sh
step "cargo test"
cargo test --workspace --no-fail-fast 2>&1 | tee /tmp/ovnkube-rs-test.log
step "container image (hack/images.sh: Debian base images if missing, docker build, run and history checks)"
hack/images.sh
