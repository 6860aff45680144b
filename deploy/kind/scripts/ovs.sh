#!/usr/bin/env bash
# The ovs container of the ovnkube-node DaemonSet: ovsdb-server and ovs-vswitchd on the kind node
# (kernel datapath: the host needs the openvswitch module), the chassis identity, and br-ex
# carrying the node's address with eth0 as its uplink, as on an OVN-Kubernetes node.
# Then waits on ovs-vswitchd; the container ends (and restarts) when it dies.
# env: K8S_NODE (the node name).
set -euo pipefail
: "${K8S_NODE:?}"
mkdir -p /var/run/openvswitch /var/log/openvswitch /etc/openvswitch
[[ -f /etc/openvswitch/conf.db ]] ||
  ovsdb-tool create /etc/openvswitch/conf.db /usr/share/openvswitch/vswitch.ovsschema
ovsdb-server /etc/openvswitch/conf.db --remote=punix:/var/run/openvswitch/db.sock \
  --pidfile --detach --no-chdir --log-file=/var/log/openvswitch/ovsdb-server.log
ovs-vsctl --no-wait init
ovs-vsctl --no-wait set Open_vSwitch . external_ids:system-id="$K8S_NODE" \
  external_ids:hostname="$K8S_NODE"
ovs-vswitchd unix:/var/run/openvswitch/db.sock --pidfile --detach --no-chdir \
  --log-file=/var/log/openvswitch/ovs-vswitchd.log

# eth0's address and default route move to br-ex once; on a restart br-ex already has them.
if ip -4 -o addr show dev eth0 | grep -q inet; then
  addr=$(ip -4 -o addr show dev eth0 | awk '{print $4; exit}')
  gateway=$(ip -4 route show default | awk '{print $3; exit}')
  mac=$(cat /sys/class/net/eth0/address)
  ovs-vsctl --may-exist add-br br-ex -- set Bridge br-ex other_config:hwaddr="\"$mac\"" \
    -- br-set-external-id br-ex bridge-id br-ex -- --may-exist add-port br-ex eth0
  ip addr flush dev eth0
  ip addr add "$addr" dev br-ex
  ip link set br-ex up
  ip route replace default via "$gateway" dev br-ex
fi
addr=$(ip -4 -o addr show dev br-ex | awk '{print $4; exit}')
ovs-vsctl set Open_vSwitch . external_ids:ovn-encap-type=geneve \
  external_ids:ovn-encap-ip="${addr%/*}"
echo "ovs.sh: $K8S_NODE up, br-ex $addr"
while kill -0 "$(cat /var/run/openvswitch/ovs-vswitchd.pid)" 2>/dev/null; do sleep 5; done
echo "ovs.sh: ovs-vswitchd exited" >&2
exit 1
