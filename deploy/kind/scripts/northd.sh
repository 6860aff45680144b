#!/usr/bin/env bash
# ovn-northd in the ovnkube-master pod, in the foreground, once both databases answer.
set -euo pipefail
until [[ -S /run/ovn/ovnnb_db.sock && -S /run/ovn/ovnsb_db.sock ]]; do sleep 0.2; done
ovn-nbctl --db=unix:/run/ovn/ovnnb_db.sock --no-wait init
exec ovn-northd --no-chdir --pidfile=/run/ovn/ovn-northd.pid \
  --ovnnb-db=unix:/run/ovn/ovnnb_db.sock --ovnsb-db=unix:/run/ovn/ovnsb_db.sock
