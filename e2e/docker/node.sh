#!/usr/bin/env bash
# Entry point of a node container: ovsdb-server, ovs-vswitchd (userspace datapath), br-ex carrying
# the container's address (eth0 is br-ex's uplink), ovn-controller, then `ovnkube-rs node` against
# the central API server, restarted whenever it exits (it exits while its Node is missing).
# Pods are network namespaces under /run/netns, wired by `ovnkube-rs cni` (see the e2e harness).
# env: NODE_NAME, CENTRAL_IP, GATEWAY_IP (the external container: the node's default route),
# OVS_VSWITCHD (optional: the ovs-vswitchd to run; the bed mounts Debian 13's, hack/ovs-datapath.sh).
set -euo pipefail
: "${NODE_NAME:?}" "${CENTRAL_IP:?}" "${GATEWAY_IP:?}"
BIN=/opt/ovnkube-rs
# The CNI config is the agent's readiness signal; under /run (a tmpfs) it is gone when the
# container restarts, so a returning node is ready only once its agent has synced again.
CNI_CONF=/run/cni/net.d/10-ovn-kubernetes.conf
mkdir -p /run/openvswitch /var/log/openvswitch /etc/openvswitch /run/ovn /var/log/ovn /run/e2e
# A fresh OVS database on every start (the chassis id stays the node name).
rm -f /etc/openvswitch/conf.db
ovsdb-tool create /etc/openvswitch/conf.db /usr/share/openvswitch/vswitch.ovsschema
ovsdb-server /etc/openvswitch/conf.db --remote=punix:/run/openvswitch/db.sock \
  --pidfile --detach --no-chdir --log-file=/var/log/openvswitch/ovsdb-server.log
ovs-vsctl --no-wait init
addr=$(ip -4 -o addr show dev eth0 | awk '{print $4}')
# userspace TSO is read only when ovs-vswitchd starts; without it userspace conntrack drops TCP.
ovs-vsctl --no-wait set Open_vSwitch . other_config:userspace-tso-enable=true \
  external_ids:system-id="$NODE_NAME" external_ids:hostname="$NODE_NAME" \
  external_ids:ovn-remote="tcp:$CENTRAL_IP:6642" external_ids:ovn-encap-type=geneve \
  external_ids:ovn-encap-ip="${addr%/*}" external_ids:ovn-bridge-datapath-type=netdev
"${OVS_VSWITCHD:-ovs-vswitchd}" unix:/run/openvswitch/db.sock --pidfile --detach --no-chdir \
  --log-file=/var/log/openvswitch/ovs-vswitchd.log
# Userspace tunnels route with OVS's own table, whose output must be an OVS bridge: the node
# address lives on br-ex, as on a real OVN-Kubernetes node. eth0 stops answering ARP for it.
ovs-vsctl --may-exist add-br br-ex -- set Bridge br-ex datapath_type=netdev \
  -- br-set-external-id br-ex bridge-id br-ex -- --may-exist add-port br-ex eth0
ip addr flush dev eth0
ip link set eth0 arp off
ip addr add "$addr" dev br-ex
ip link set br-ex up
ip route replace default via "$GATEWAY_IP" dev br-ex
# The pods' host-side veths stay kernel interfaces here (userspace datapath): answer ARP only on
# the interface owning the address, or pods' ARP for ovn-k8s-mp0 gets a veth's MAC.
for s in all default; do echo 1 >"/proc/sys/net/ipv4/conf/$s/arp_ignore"; done
ovn-controller unix:/run/openvswitch/db.sock --pidfile --detach --no-chdir \
  --log-file=/var/log/ovn/ovn-controller.log
until ovs-vsctl br-exists br-int; do sleep 0.05; done

while true; do
  "$BIN/ovnkube-rs" node --node-name "$NODE_NAME" --kubeconfig /e2e-state/kubeconfig \
    --sb-address "tcp:$CENTRAL_IP:6642" --cni-conf "$CNI_CONF" \
    --sync-period 1 --patch-port-timeout 120 --metrics-bind-address 0.0.0.0:9410 \
    >>/var/log/ovnkube-node.log 2>&1 &
  echo $! >/run/e2e/node-agent.pid
  wait $! || true
  echo "$(date +%T.%N) ovnkube-rs node exited; restarting" >>/var/log/ovnkube-node.log
  sleep 1
done
