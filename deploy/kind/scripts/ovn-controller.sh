#!/usr/bin/env bash
# ovn-controller on a kind node, in the foreground, once OVS answers. It finds the SB database in
# Open_vSwitch external_ids:ovn-remote, which `ovnkube-rs node --sb-address` writes.
set -euo pipefail
until ovs-vsctl --timeout=2 get Open_vSwitch . external_ids:ovn-remote >/dev/null 2>&1; do sleep 0.5; done
mkdir -p /var/run/ovn /var/log/ovn
exec ovn-controller unix:/var/run/openvswitch/db.sock --no-chdir --pidfile=/var/run/ovn/ovn-controller.pid
