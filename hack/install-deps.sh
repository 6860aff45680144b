#!/usr/bin/env bash
# Installs the system packages and toolchain components ovnkube-rs builds and tests with.
# Idempotent: skips apt when everything is already there.
set -euo pipefail
pkgs=(ovn-central ovn-host openvswitch-switch iproute2 iptables iputils-ping netcat-openbsd
      ethtool bc shellcheck openssl kmod curl prometheus debootstrap)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# The multi-node e2e (hack/e2e-docker.sh) needs a Docker engine; keep one that is already there.
command -v docker >/dev/null || missing+=(docker.io)
if ((${#missing[@]})); then
  echo "install-deps: apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# Debian may leave packages unpacked but unconfigured (ovs-vswitchd is an alternatives link made by postinst).
dpkg --configure -a >/dev/null 2>&1 || true
command -v cargo >/dev/null || { echo "install-deps: cargo not found (install Rust stable via rustup)" >&2; exit 1; }
# Debian 12 has no kubectl package; the tests drive the API test server with the real kubectl.
command -v kubectl >/dev/null || {
  echo "install-deps: kubectl not found: install it from the Kubernetes project's Debian packages" >&2
  exit 1
}
rustup component add rustfmt clippy >/dev/null 2>&1 || true
# The real-packet labs' datapath: Debian 13's ovs-vswitchd (see hack/ovs-datapath.sh).
"$(dirname "$0")/ovs-datapath.sh" >/dev/null
echo "install-deps: ok ($(ovsdb-server --version | head -1), $(cargo --version))"
