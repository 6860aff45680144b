#!/usr/bin/env bash
# For a Dockerfile RUN: runs one command with apt sources that live only as long as that command.
# DEBIAN_MIRROR / DEBIAN_SECURITY_MIRROR (build arguments, archive URIs) become a temporary sources
# entry when set (images from hack/images.sh carry no sources; official images have their own);
# apt lists are fetched, the command runs, then the entry and the lists are deleted, so no layer
# keeps the mirror. Usage: apt-build.sh <command> [args...]
set -euo pipefail
sources=/etc/apt/sources.list.d/build.list
trap 'rm -rf "$sources" /var/lib/apt/lists/*' EXIT
if [[ -n "${DEBIAN_MIRROR:-}" ]]; then echo "deb $DEBIAN_MIRROR bookworm main" >>"$sources"; fi
if [[ -n "${DEBIAN_SECURITY_MIRROR:-}" ]]; then
  echo "deb $DEBIAN_SECURITY_MIRROR bookworm-security main" >>"$sources"
fi
apt-get update -qq
export DEBIAN_FRONTEND=noninteractive
"$@"
