#!/usr/bin/env bash
# The multi-node e2e bed in Docker (e2e/docker/README.md).
#   hack/e2e-docker.sh up     images if missing, network, central + node + external containers,
#                             Nodes registered in the API; returns once every node agent is ready
#   hack/e2e-docker.sh down   removes this bed's containers and network (nothing else)
#   hack/e2e-docker.sh test   cargo test --test e2e_docker (the tests bring their own bed up)
# Env: OVNKRS_E2E_NODES (2), OVNKRS_E2E_STATE (/tmp/ovnkrs-e2e-docker: kubeconfig, logs),
#      OVNKRS_E2E_BIN_DIR (directory holding the host-built ovnkube-rs and kube-test-apiserver;
#      default: build them with cargo's dev profile).
# Needs root and Docker; nothing is configured in the root network namespace (Docker makes the
# network's bridge).
set -euo pipefail
cd "$(dirname "$0")/.."

PREFIX=ovnkrs-e2e
NET=$PREFIX-net
SUBNET=172.31.240.0/24
CENTRAL_IP=172.31.240.10
EXTERNAL_IP=172.31.240.100
NODES=${OVNKRS_E2E_NODES:-2}
STATE=${OVNKRS_E2E_STATE:-/tmp/ovnkrs-e2e-docker}
LABEL=ovnkrs-e2e.bed=1

started=$(date +%s.%N)
elapsed() { echo "$(date +%s.%N) - $started" | bc; }
log() { printf '[%6.2fs] %s\n' "$(elapsed)" "$*"; }
die() { echo "e2e-docker.sh: $*" >&2; exit 1; }

node_ip() { echo "172.31.240.$((10 + $1))"; }

# The OVN image is tagged with a hash of its Dockerfile, so an edit rebuilds it.
ovn_image() { echo "$PREFIX-ovn:$(sha256sum e2e/docker/Dockerfile | cut -c1-12)"; }

# The host's Debian archive URI: deb822 sources first, then sources.list.
host_mirror() {
  local uri=""
  if [[ -r /etc/apt/sources.list.d/debian.sources ]]; then
    uri=$(awk '/^URIs:/ && $2 !~ /security/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources)
  fi
  if [[ -z $uri && -r /etc/apt/sources.list ]]; then
    uri=$(awk '$1 == "deb" && $0 !~ /security/ {for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) {print $i; exit}}' \
      /etc/apt/sources.list)
  fi
  [[ -n $uri ]] || die "no Debian mirror in the host's apt sources"
  echo "$uri"
}

ensure_images() {
  local image
  image=$(ovn_image)
  docker image inspect "$image" >/dev/null 2>&1 && return
  docker image inspect debian:bookworm >/dev/null 2>&1 || hack/images.sh base
  log "docker build $image"
  docker build -q --build-arg DEBIAN_MIRROR="$(host_mirror)" -t "$image" e2e/docker >/dev/null
  # The first stage's history holds the mirror: drop it (only our labelled, untagged stage).
  docker image prune -f --filter label=ovnkrs-e2e.stage=rootfs >/dev/null
}

bin_dir() {
  if [[ -n ${OVNKRS_E2E_BIN_DIR:-} ]]; then
    echo "$OVNKRS_E2E_BIN_DIR"
    return
  fi
  cargo build -q --bin ovnkube-rs --bin kube-test-apiserver -p ovnkube-rs -p kube-test-apiserver >&2
  echo "$(cargo metadata --format-version 1 --no-deps | sed -E 's/.*"target_directory":"([^"]*)".*/\1/')/debug"
}

# Another Docker network on our subnet would make `network create` fail or, worse, shadow it.
check_subnet() {
  local net subnet
  for net in $(docker network ls --format '{{.Name}}'); do
    [[ $net == "$NET" ]] && continue
    subnet=$(docker network inspect -f '{{range .IPAM.Config}}{{.Subnet}} {{end}}' "$net")
    [[ " $subnet " == *" $SUBNET "* ]] && die "Docker network $net already uses $SUBNET"
  done
  return 0
}

kubectl_bed() { kubectl --kubeconfig "$STATE/kubeconfig" "$@"; }

# Registers node $1 as the kubelet would: InternalIP = the container's address on the network.
register_node() {
  local name=$1 ip
  ip=$(docker inspect -f "{{(index .NetworkSettings.Networks \"$NET\").IPAddress}}" "$PREFIX-$name")
  kubectl_bed apply -f - >/dev/null <<YAML
apiVersion: v1
kind: Node
metadata:
  name: $name
  labels: {kubernetes.io/hostname: $name, kubernetes.io/os: linux}
status:
  addresses: [{type: InternalIP, address: "$ip"}, {type: Hostname, address: $name}]
  conditions: [{type: Ready, status: "True", reason: KubeletReady}]
YAML
}

# Runs a container of the bed. run_container NAME IP ARGS... (ARGS: docker run options, then the command)
run_container() {
  local name=$1 ip=$2
  shift 2
  # --privileged fails here (dockerd lacks CAP_SYS_RESOURCE); these give the same powers.
  docker run -d --name "$PREFIX-$name" --hostname "$name" --label "$LABEL" \
    --network "$NET" --ip "$ip" --tmpfs /run \
    --cap-add ALL --cap-drop SYS_RESOURCE --device /dev/net/tun \
    --security-opt apparmor=unconfined --security-opt seccomp=unconfined \
    --security-opt systempaths=unconfined \
    -v "$PWD/e2e/docker:/e2e:ro" -v "$BIN:/opt/ovnkube-rs:ro" -v "$STATE:/e2e-state:ro" \
    "$@" >/dev/null
}

up() {
  BIN=$(bin_dir)
  [[ -x $BIN/ovnkube-rs && -x $BIN/kube-test-apiserver ]] ||
    die "$BIN lacks ovnkube-rs or kube-test-apiserver (cargo build -p ovnkube-rs -p kube-test-apiserver --bins)"
  ensure_images
  # The nodes' datapath: Debian 13's ovs-vswitchd (hack/ovs-datapath.sh says why); resolved (and
  # installed if missing) before any container starts, like the images.
  local wrapper datapath
  wrapper=$(hack/ovs-datapath.sh)
  datapath=$(dirname "$wrapper")
  down >/dev/null
  check_subnet
  mkdir -p "$STATE"
  cat >"$STATE/kubeconfig" <<YAML
apiVersion: v1
kind: Config
clusters: [{name: bed, cluster: {server: "http://$CENTRAL_IP:6443"}}]
contexts: [{name: bed, context: {cluster: bed, user: test, namespace: default}}]
current-context: bed
users: [{name: test, user: {}}]
YAML
  started=$(date +%s.%N)
  # --internal: no route out of the bed; the external container is the nodes' default gateway.
  docker network create --internal --subnet "$SUBNET" --label "$LABEL" "$NET" >/dev/null
  local image i
  image=$(ovn_image)
  run_container central "$CENTRAL_IP" "$image" /e2e/central.sh
  # tx checksum offload off: OVS 3.1's userspace tunnels drop offloaded TCP from this veth.
  run_container external "$EXTERNAL_IP" "$image" sh -c 'ethtool -K eth0 tx off >/dev/null; exec sleep infinity'
  for i in $(seq 1 "$NODES"); do
    run_container "node$i" "$(node_ip "$i")" -e "NODE_NAME=node$i" -e "CENTRAL_IP=$CENTRAL_IP" \
      -e "GATEWAY_IP=$EXTERNAL_IP" -v "$datapath:/opt/debian13-ovs:ro" \
      -e OVS_VSWITCHD=/opt/debian13-ovs/ovs-vswitchd "$image" /e2e/node.sh
  done
  log "containers started"
  until kubectl_bed get --raw /readyz >/dev/null 2>&1 || kubectl_bed get ns default >/dev/null 2>&1; do
    docker inspect -f '{{.State.Running}}' "$PREFIX-central" | grep -q true ||
      die "the central container exited: $(docker logs "$PREFIX-central" 2>&1 | tail -5)"
    (($(echo "$(elapsed) > 60" | bc))) && die "the API server did not answer"
    sleep 0.1
  done
  for i in $(seq 1 "$NODES"); do register_node "node$i"; done
  log "API up, Nodes registered"
  for i in $(seq 1 "$NODES"); do
    until docker exec "$PREFIX-node$i" test -e /run/cni/net.d/10-ovn-kubernetes.conf 2>/dev/null; do
      (($(echo "$(elapsed) > 180" | bc))) &&
        die "node$i's agent is not ready: $(docker exec "$PREFIX-node$i" tail -5 /var/log/ovnkube-node.log)"
      sleep 0.1
    done
  done
  log "bed ready: $NODES nodes; kubeconfig $STATE/kubeconfig"
  echo "BRINGUP_SECONDS $(elapsed)"
}

down() {
  local ids
  mapfile -t ids < <(docker ps -aq --filter "label=$LABEL")
  ((${#ids[@]} == 0)) || docker rm -f "${ids[@]}" >/dev/null
  if docker network inspect "$NET" >/dev/null 2>&1; then docker network rm "$NET" >/dev/null; fi
  echo "bed removed"
}

case ${1:-} in
  up) up ;;
  down) down ;;
  test) cargo test --test e2e_docker -- --test-threads=1 ;;
  *) die "usage: $0 up|down|test" ;;
esac
