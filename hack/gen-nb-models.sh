#!/usr/bin/env bash
# Regenerates crates/ovsdb/src/nb/ (typed OVN NB rows) from the installed OVN schema.
# usage: hack/gen-nb-models.sh [SCHEMA]   (default /usr/share/ovn/ovn-nb.ovsschema, from Debian's ovn-common)
set -euo pipefail
cd "$(dirname "$0")/.."
schema=${1:-/usr/share/ovn/ovn-nb.ovsschema}
out=crates/ovsdb/src/nb
# The generator links the ovsdb crate, which includes nb/: start from a stub so a broken
# generation can always be redone.
rm -rf "$out" && mkdir -p "$out" && echo "//! stub" >"$out/mod.rs"
cargo run -q -p ovsdb-codegen -- "$schema" "$out"
rustfmt --edition 2021 "$out"/*.rs
echo "generated $out/mod.rs ($(wc -l <"$out/mod.rs") lines) from $schema"
