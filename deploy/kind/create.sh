#!/usr/bin/env bash
# Creates a kind cluster running ovnkube-rs with OVN (see e2e/kind/README.md for the steps).
#   deploy/kind/create.sh           cluster, images, RBAC, ovnkube-rs; waits until every node is Ready
# env: CLUSTER_NAME (ovnkube-rs), IMAGE (ovnkube-rs:dev, from hack/images.sh),
#      OVN_IMAGE (ovnkube-rs-ovn:dev, built here from e2e/docker/Dockerfile when missing),
#      DEBIAN_MIRROR (the OVN image's package archive, http://deb.debian.org/debian).
# Needs docker, kind (>= 0.20, for kubeProxyMode: none), kubectl, and the openvswitch kernel
# module on the host (OVS in the kind nodes uses the kernel datapath).
set -euo pipefail
cd "$(dirname "$0")/../.."
CLUSTER_NAME=${CLUSTER_NAME:-ovnkube-rs}
IMAGE=${IMAGE:-ovnkube-rs:dev}
OVN_IMAGE=${OVN_IMAGE:-ovnkube-rs-ovn:dev}
DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
NS=openshift-ovn-kubernetes
KIND=deploy/kind

step() { printf '\n==> %s\n' "$*"; }
die() { echo "create.sh: $*" >&2; exit 1; }

for tool in docker kind kubectl; do
  command -v "$tool" >/dev/null || die "$tool not found"
done
lsmod 2>/dev/null | grep -q '^openvswitch' || modprobe openvswitch 2>/dev/null ||
  die "the openvswitch kernel module is not loaded (modprobe openvswitch, as root)"
docker image inspect "$IMAGE" >/dev/null 2>&1 || die "no image $IMAGE: run hack/images.sh first"
if ! docker image inspect "$OVN_IMAGE" >/dev/null 2>&1; then
  step "docker build $OVN_IMAGE (e2e/docker/Dockerfile)"
  docker build --build-arg DEBIAN_MIRROR="$DEBIAN_MIRROR" -t "$OVN_IMAGE" e2e/docker
fi

step "kind create cluster --name $CLUSTER_NAME"
kind create cluster --name "$CLUSTER_NAME" --config "$KIND/kind-config.yaml"
kubectl config use-context "kind-$CLUSTER_NAME" >/dev/null

step "kind load docker-image $IMAGE $OVN_IMAGE"
kind load docker-image --name "$CLUSTER_NAME" "$IMAGE" "$OVN_IMAGE"

# The nodes reach the API server and the SB database at the control plane's own address.
control_plane_ip=$(docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' \
  "$CLUSTER_NAME-control-plane")
[[ -n "$control_plane_ip" ]] || die "no address for $CLUSTER_NAME-control-plane"

step "namespace, RBAC (deploy/microshift/rbac.yaml), scripts, ovnkube-rs"
kubectl create namespace "$NS" --dry-run=client -o yaml | kubectl apply -f -
kubectl apply -f deploy/microshift/rbac.yaml
kubectl -n "$NS" create configmap ovnkube-rs-kind \
  --from-literal=control-plane-ip="$control_plane_ip" --dry-run=client -o yaml | kubectl apply -f -
kubectl -n "$NS" create configmap ovnkube-rs-kind-scripts --from-file="$KIND/scripts" \
  --dry-run=client -o yaml | kubectl apply -f -
kubectl apply -f "$KIND/ovnkube-rs.yaml"

step "waiting for ovnkube-master, ovnkube-node and Ready nodes"
kubectl -n "$NS" rollout status deployment/ovnkube-master --timeout=300s
kubectl -n "$NS" rollout status daemonset/ovnkube-node --timeout=300s
kubectl wait --for=condition=Ready nodes --all --timeout=300s
kubectl -n kube-system rollout status deployment/coredns --timeout=300s
step "ready: kubectl --context kind-$CLUSTER_NAME get pods -A; e2e/kind/run.sh runs the flow checks"
