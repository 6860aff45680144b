#!/usr/bin/env bash
# Init container: a kubeconfig for the pod's ServiceAccount that reaches the API server at the
# control plane's own address (this cluster has no Service routing until ovnkube-rs runs, so
# the in-cluster 10.43.0.1 is no way in). The token file is re-read as the kubelet rotates it.
# env: CONTROL_PLANE_IP. Writes /var/lib/ovnkube-rs/kubeconfig.
set -euo pipefail
: "${CONTROL_PLANE_IP:?}"
sa=/var/run/secrets/kubernetes.io/serviceaccount
mkdir -p /var/lib/ovnkube-rs
cat >/var/lib/ovnkube-rs/kubeconfig <<KUBECONFIG
apiVersion: v1
kind: Config
clusters:
  - name: kind
    cluster:
      server: https://${CONTROL_PLANE_IP}:6443
      certificate-authority: $sa/ca.crt
users:
  - name: ovnkube-rs
    user:
      tokenFile: $sa/token
contexts:
  - name: ovnkube-rs
    context: {cluster: kind, user: ovnkube-rs}
current-context: ovnkube-rs
KUBECONFIG
echo "kubeconfig.sh: API at https://${CONTROL_PLANE_IP}:6443"
