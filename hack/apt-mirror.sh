# shellcheck shell=bash
# Sourced by hack/images.sh and hack/ovs-datapath.sh, which define `die`.
# An archive URI from the host's apt configuration (deb822 sources first, then sources.list):
# `host_uri main` is the Debian archive, `host_uri security` the security archive (may be empty).
host_uri() {
  local want=$1 uri=""
  if [[ -r /etc/apt/sources.list.d/debian.sources ]]; then
    uri=$(awk -v want="$want" '/^URIs:/ && ((want == "security") == ($2 ~ /security/)) {print $2; exit}' \
      /etc/apt/sources.list.d/debian.sources)
  fi
  if [[ -z "$uri" && -r /etc/apt/sources.list ]]; then
    uri=$(awk -v want="$want" '$1 == "deb" {for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) {
      if ((want == "security") == ($i ~ /security/)) {print $i; exit}; break}}' /etc/apt/sources.list)
  fi
  [[ -n "$uri" || "$want" == security ]] ||
    die "no Debian mirror in /etc/apt/sources.list.d/debian.sources or /etc/apt/sources.list"
  echo "$uri"
}
