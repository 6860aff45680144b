#!/usr/bin/env bash
# The flow checks of the one-machine e2e lab on a kind cluster made by deploy/kind/create.sh:
# pod->pod across nodes, pod->Service (ClusterIP and DNS name), NodePort from a pod, from every
# node's host and from outside the cluster (this machine), host->Service and host->pod on every
# node. Each check retries for up to RETRY_SECONDS (20) while flows settle; exits non-zero if
# any check failed. env: CLUSTER_NAME (ovnkube-rs), KEEP=1 leaves the workloads in place.
set -euo pipefail
cd "$(dirname "$0")"
CLUSTER_NAME=${CLUSTER_NAME:-ovnkube-rs}
RETRY_SECONDS=${RETRY_SECONDS:-20}
NS=ovnkube-rs-e2e
NODE_PORT=30780
kc() { kubectl --context "kind-$CLUSTER_NAME" "$@"; }

passed=0
failed=0
# check NAME WANT CMD...: runs CMD until its output matches the extended regex WANT.
check() {
  local name=$1 want=$2 out="" deadline=$((SECONDS + RETRY_SECONDS))
  shift 2
  while ((SECONDS < deadline)); do
    if out=$("$@" 2>&1) && [[ $out =~ $want ]]; then
      printf 'PASS %-48s %s\n' "$name" "${out//$'\n'/ }"
      passed=$((passed + 1))
      return
    fi
    sleep 1
  done
  printf 'FAIL %-48s wanted /%s/, last output: %s\n' "$name" "$want" "${out//$'\n'/ }"
  failed=$((failed + 1))
}
# fetch POD URL: the body of an HTTP GET from pod POD of the test namespace.
fetch() { kc -n "$NS" exec "$1" -- wget -qO- -T 3 "$2"; }

kc apply -f workloads.yaml
kc -n "$NS" rollout status deployment/server --timeout=180s
kc -n "$NS" rollout status daemonset/host-client --timeout=180s
kc -n "$NS" wait --for=condition=Ready pod/client --timeout=180s

mapfile -t servers < <(kc -n "$NS" get pods -l app=server \
  -o jsonpath='{range .items[*]}{.metadata.name} {.status.podIP} {.spec.nodeName}{"\n"}{end}')
mapfile -t hosts < <(kc -n "$NS" get pods -l app=host-client \
  -o jsonpath='{range .items[*]}{.metadata.name} {.spec.nodeName}{"\n"}{end}')
mapfile -t node_ips < <(kc get nodes \
  -o jsonpath='{range .items[*]}{.status.addresses[?(@.type=="InternalIP")].address}{"\n"}{end}')
cluster_ip=$(kc -n "$NS" get service server -o jsonpath='{.spec.clusterIP}')
server_names=$(kc -n "$NS" get pods -l app=server -o jsonpath='{.items[*].metadata.name}')
any_server="^(${server_names// /|})$"
client_node=$(kc -n "$NS" get pod client -o jsonpath='{.spec.nodeName}')
echo "client on $client_node; servers: ${servers[*]}; service $cluster_ip; nodes ${node_ips[*]}"

for s in "${servers[@]}"; do
  read -r name ip node <<<"$s"
  check "pod->pod $name ($node)" "^$name$" fetch client "http://$ip:8080/hostname"
done
check "pod->service $cluster_ip" "$any_server" fetch client "http://$cluster_ip/hostname"
check "pod->service by name" "$any_server" \
  fetch client "http://server.$NS.svc.cluster.local/hostname"
for ip in "${node_ips[@]}"; do
  check "pod->NodePort $ip:$NODE_PORT" "$any_server" fetch client "http://$ip:$NODE_PORT/hostname"
done
for h in "${hosts[@]}"; do
  read -r pod node <<<"$h"
  check "host->service on $node" "$any_server" fetch "$pod" "http://$cluster_ip/hostname"
  for s in "${servers[@]}"; do
    read -r name ip _ <<<"$s"
    check "host->pod on $node -> $name" "^$name$" fetch "$pod" "http://$ip:8080/hostname"
  done
  for ip in "${node_ips[@]}"; do
    check "host->NodePort on $node -> $ip" "$any_server" fetch "$pod" "http://$ip:$NODE_PORT/hostname"
  done
done
# This machine is outside the cluster, on the kind Docker network.
if command -v curl >/dev/null; then
  for ip in "${node_ips[@]}"; do
    check "external->NodePort $ip:$NODE_PORT" "$any_server" \
      curl -sf --max-time 3 "http://$ip:$NODE_PORT/hostname"
  done
fi

[[ ${KEEP:-0} == 1 ]] || kc delete namespace "$NS" --wait=false >/dev/null
echo "$passed passed, $failed failed"
((failed == 0))
