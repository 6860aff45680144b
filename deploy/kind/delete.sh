#!/usr/bin/env bash
# Deletes the kind cluster deploy/kind/create.sh made (env CLUSTER_NAME, default ovnkube-rs).
set -euo pipefail
kind delete cluster --name "${CLUSTER_NAME:-ovnkube-rs}"
