#!/usr/bin/env bash
# Builds the container images without a registry.
#   hack/images.sh base [--force]   debian:bookworm and debian:bookworm-slim from debootstrap + docker import
#   hack/images.sh [project]        the base images if missing, then ovnkube-rs:dev from the Dockerfile
# The package mirror is read at run time from the host's apt configuration; it is passed to
# debootstrap and to `docker build` as DEBIAN_MIRROR and never written into a file or an image.
# Work files live under a temporary directory removed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

started=$(date +%s.%N)
step() { printf '\n==> [%6.1fs] %s\n' "$(echo "$(date +%s.%N) - $started" | bc)" "$*"; }
die() { echo "images.sh: $*" >&2; exit 1; }

# The host's Debian archive URI (not the security archive): deb822 sources first, then sources.list.
host_mirror() {
  local uri=""
  if [[ -r /etc/apt/sources.list.d/debian.sources ]]; then
    uri=$(awk '/^URIs:/ && $2 !~ /security/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources)
  fi
  if [[ -z "$uri" && -r /etc/apt/sources.list ]]; then
    uri=$(awk '$1 == "deb" && $0 !~ /security/ {for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) {print $i; exit}}' \
      /etc/apt/sources.list)
  fi
  [[ -n "$uri" ]] || die "no Debian mirror in /etc/apt/sources.list.d/debian.sources or /etc/apt/sources.list"
  echo "$uri"
}

image_exists() { docker image inspect "$1" >/dev/null 2>&1; }

# debian:bookworm is a minbase debootstrap (as the official image); debian:bookworm-slim is the same
# tree without docs, man pages and locales, and with dpkg told to keep them out, as the official slim.
build_base() {
  local force=$1 mirror work root
  if [[ "$force" != 1 ]] && image_exists debian:bookworm && image_exists debian:bookworm-slim; then
    step "base images present (debian:bookworm, debian:bookworm-slim); --force rebuilds them"
    return
  fi
  mirror=$(host_mirror)
  if ! command -v debootstrap >/dev/null; then
    step "apt-get install debootstrap"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null ||
      { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null; }
  fi
  work=$(mktemp -d /tmp/ovnkube-rs-images.XXXXXX)
  # shellcheck disable=SC2064 # expand $work now: the trap must remove this directory
  trap "rm -rf '$work'" EXIT
  root=$work/rootfs
  step "debootstrap --variant=minbase bookworm"
  debootstrap --variant=minbase bookworm "$root" "$mirror" >"$work/debootstrap.log" 2>&1 ||
    { tail -20 "$work/debootstrap.log" >&2; die "debootstrap failed"; }
  # No trace of the mirror or of this host: apt sources and lists, logs, resolv.conf, hostname.
  rm -rf "$root"/etc/apt/sources.list "$root"/etc/apt/sources.list.d/* "$root"/var/lib/apt/lists/* \
    "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb "$root"/var/log/bootstrap.log
  : >"$root/etc/resolv.conf"
  : >"$root/etc/hostname"
  # As the official images: apt deletes downloaded packages after installing them.
  cat >"$root/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache ""; Dir::Cache::srcpkgcache "";
EOF
  step "docker import debian:bookworm"
  tar -C "$root" -c . | docker import --change 'CMD ["bash"]' - debian:bookworm >/dev/null
  step "trim docs, man pages and locales -> docker import debian:bookworm-slim"
  cat >"$root/etc/dpkg/dpkg.cfg.d/docker" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
EOF
  find "$root/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
  find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete
  rm -rf "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/usr/share/lintian/* "$root"/usr/share/linda/*
  find "$root/usr/share/locale" -mindepth 1 -maxdepth 1 -not -name locale.alias -exec rm -rf {} +
  tar -C "$root" -c . | docker import --change 'CMD ["bash"]' - debian:bookworm-slim >/dev/null
  rm -rf "$work"
  trap - EXIT
  docker images --format '{{.Repository}}:{{.Tag}} {{.Size}}' debian
}

case "${1:-project}" in
  base)
    force=0
    [[ "${2:-}" == --force ]] && force=1
    build_base "$force"
    ;;
  *) die "usage: hack/images.sh [base [--force] | project]" ;;
esac
step "done"
