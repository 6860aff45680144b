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

# shellcheck source=hack/apt-mirror.sh
source "$(dirname "$0")/apt-mirror.sh"

image_exists() { docker image inspect "$1" >/dev/null 2>&1; }

# debian:bookworm is a minbase debootstrap (as the official image); debian:bookworm-slim is the same
# tree without docs, man pages and locales, and with dpkg told to keep them out, as the official slim.
build_base() {
  local force=$1 mirror work root
  if [[ "$force" != 1 ]] && image_exists debian:bookworm && image_exists debian:bookworm-slim; then
    step "base images present (debian:bookworm, debian:bookworm-slim); --force rebuilds them"
    return
  fi
  mirror=$(host_uri main)
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

# ovnkube-rs:dev from the Dockerfile, in a temporary build context: the files git does not ignore, as
# they are in the working tree, plus vendor/ and .cargo/config.toml from `cargo vendor` (never in the repo).
build_project() {
  local mirror security ctx log old new size t0 mirror_host id stages
  build_base 0
  mirror=$(host_uri main)
  security=$(host_uri security)
  ctx=$(mktemp -d /tmp/ovnkube-rs-images.XXXXXX)
  # shellcheck disable=SC2064 # expand $ctx now: the trap must remove this directory
  trap "rm -rf '$ctx'" EXIT
  step "build context: the files git does not ignore + cargo vendor"
  git ls-files -z --cached --others --exclude-standard | tar --null -T - --ignore-failed-read -c 2>/dev/null | tar -x -C "$ctx"
  mkdir -p "$ctx/.cargo"
  (cd "$ctx" && cargo vendor --locked vendor >.cargo/config.toml 2>/tmp/ovnkube-rs-images-vendor.log) ||
    { tail -20 /tmp/ovnkube-rs-images-vendor.log >&2; die "cargo vendor failed"; }
  echo "context $(du -sh "$ctx" | cut -f1)"
  old=$(docker image inspect -f '{{.Id}}' ovnkube-rs:dev 2>/dev/null || true)
  # Stage images (builder, runtime-rootfs) of earlier builds: removed below unless this build reuses them.
  mapfile -t stages < <(docker images -q --filter dangling=true --filter label=ovnkube-rs.stage)
  log=/tmp/ovnkube-rs-images-build.log
  step "docker build -t ovnkube-rs:dev (log: $log)"
  t0=$(date +%s)
  # Each log line stamped with the time, to see where a build spends it.
  docker build --force-rm --build-arg DEBIAN_MIRROR="$mirror" --build-arg DEBIAN_SECURITY_MIRROR="$security" \
    -t ovnkube-rs:dev "$ctx" 2>&1 | while IFS= read -r line; do printf '%(%T)T %s\n' -1 "$line"; done >"$log" ||
    { tail -40 "$log" >&2; die "docker build failed"; }
  echo "image build time: $(($(date +%s) - t0)) s"
  rm -rf "$ctx"
  trap - EXIT
  new=$(docker image inspect -f '{{.Id}}' ovnkube-rs:dev)
  # The image this build replaced, now untagged; kept only if something else still uses it.
  if [[ -n "$old" && "$old" != "$new" ]]; then docker rmi "$old" >/dev/null 2>&1 || true; fi
  for id in "${stages[@]}"; do
    grep -qF -- "---> $id" "$log" || docker rmi "$id" >/dev/null 2>&1 || true
  done
  size=$(docker image inspect -f '{{.Size}}' ovnkube-rs:dev)
  echo "runtime image size: $((size / 1000000)) MB"
  step "check: docker run ovnkube-rs:dev --help"
  docker run --rm ovnkube-rs:dev --help >/dev/null || die "ovnkube-rs:dev --help failed"
  step "check: the mirror's host name is not in the image's history, config, /etc or /var"
  mirror_host=${mirror#*://}
  mirror_host=${mirror_host%%/*}
  # grep -c reads to the end: an early exit would fail the pipe (pipefail) and hide a match.
  mentions() { (($("$@" | grep -caF "$mirror_host" || true) > 0)); }
  # (/usr is left out: apt's own dselect script names Debian's default archive.)
  if mentions docker history --no-trunc --format '{{.CreatedBy}}' ovnkube-rs:dev ||
    mentions docker image inspect ovnkube-rs:dev ||
    mentions docker run --rm --entrypoint grep ovnkube-rs:dev -raoF "$mirror_host" /etc /var /root /tmp; then
    die "ovnkube-rs:dev mentions $mirror_host"
  fi
  echo "ok: no $mirror_host"
}

case "${1:-project}" in
  base)
    force=0
    [[ "${2:-}" == --force ]] && force=1
    build_base "$force"
    ;;
  project) build_project ;;
  *) die "usage: hack/images.sh [base [--force] | project]" ;;
esac
step "done"
