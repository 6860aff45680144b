#!/usr/bin/env bash
# Installs Debian 13's ovs-vswitchd (Open vSwitch 3.5) under /opt/ovnkube-rs/debian13-ovs for the
# real-packet labs, and prints the wrapper to run it with (the labs read it from $OVS_VSWITCHD).
#
# Why: the labs run OVS's userspace datapath (no kernel module here). Flows from br-ex through
# the gateway router to a pod take seven recirculations in one datapath pass; Debian 12's
# OVS 3.1 userspace datapath stops at six (coverage datapath_drop_recirc_error), Debian 13's at
# eight. MicroShift's kernel datapath has no such limit. Only ovs-vswitchd is swapped: OVN
# (23.03) and the ovsdb-server, ovs-vsctl and ovs-ofctl the labs drive stay Debian 12's.
#
# The package lives in its own debootstrapped root (Debian 13's libc is newer than the host's)
# and runs through that root's dynamic loader; nothing of the host is changed.
# Idempotent. env: DEBIAN_MIRROR (default: the Debian archive the host's apt uses).
set -euo pipefail
die() { echo "ovs-datapath.sh: $*" >&2; exit 1; }
# shellcheck source=hack/apt-mirror.sh
source "$(dirname "$0")/apt-mirror.sh"
dir=/opt/ovnkube-rs/debian13-ovs
wrapper=$dir/ovs-vswitchd
if [[ ! -x $dir/root/usr/lib/openvswitch-switch/ovs-vswitchd ]]; then
  mirror=${DEBIAN_MIRROR:-$(host_uri main)}
  rm -rf "$dir"
  mkdir -p "$dir"
  echo "ovs-datapath: debootstrap trixie (openvswitch-switch) into $dir" >&2
  debootstrap --variant=minbase --include=openvswitch-switch trixie "$dir/root.tmp" "$mirror" \
    >"$dir/debootstrap.log" 2>&1 || {
    tail -20 "$dir/debootstrap.log" >&2
    die "debootstrap of Debian 13 failed (log above)"
  }
  mv "$dir/root.tmp" "$dir/root"
fi
# Written every time (cheap), by rename so that a lab starting meanwhile never runs a half-written
# file. It finds the root next to itself, so the directory can be bind-mounted elsewhere (the
# Docker bed's nodes see it at /opt/debian13-ovs). It runs the package's own binary:
# /usr/sbin/ovs-vswitchd is an alternatives link made by its postinst.
cat >"$wrapper.$$" <<'EOF'
#!/bin/sh
# Debian 13's ovs-vswitchd, run from the root next to this script (see hack/ovs-datapath.sh).
root=$(dirname "$(readlink -f "$0")")/root
exec "$root/lib64/ld-linux-x86-64.so.2" \
  --library-path "$root/lib/x86_64-linux-gnu:$root/usr/lib/x86_64-linux-gnu" \
  "$root/usr/lib/openvswitch-switch/ovs-vswitchd" "$@"
EOF
chmod +x "$wrapper.$$"
mv -f "$wrapper.$$" "$wrapper"
"$wrapper" --version | head -1 >&2
echo "$wrapper"
