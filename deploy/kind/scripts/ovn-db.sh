#!/usr/bin/env bash
# ovn-db.sh nb|sb: one OVN database server in the ovnkube-master pod, in the foreground. Unix
# socket in /run/ovn for the controller and northd; SB also on TCP 6642 (hostNetwork: the control
# plane node's address) for the nodes' ovn-controller.
set -euo pipefail
db=${1:?nb or sb}
case $db in
  nb) tcp=() ;;
  sb) tcp=(--remote=ptcp:6642:0.0.0.0) ;;
  *) echo "ovn-db.sh: nb or sb, not $db" >&2; exit 2 ;;
esac
file=/var/lib/ovn/ovn${db}_db.db
mkdir -p /var/lib/ovn /run/ovn
[[ -f $file ]] || ovsdb-tool create "$file" "/usr/share/ovn/ovn-${db}.ovsschema"
exec ovsdb-server --no-chdir --pidfile="/run/ovn/ovn${db}_db.pid" --unixctl="/run/ovn/ovn${db}_db.ctl" \
  --remote="punix:/run/ovn/ovn${db}_db.sock" "${tcp[@]}" "$file"
