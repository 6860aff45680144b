# The ovnkube-rs image: one binary (controller, node agent, CNI plugin) and the programs it runs
# (ip, nsenter, sysctl, iptables-save/-restore, ovs-vsctl, ovs-ofctl).
#
# Build: hack/images.sh (makes the Debian base images if missing, vendors the crates into a
# temporary build context, passes the host's Debian mirror). By hand, from a checkout:
#   mkdir -p .cargo && cargo vendor --locked vendor > .cargo/config.toml && docker build -t ovnkube-rs:dev .
# The build never reaches crates.io: it compiles offline from vendor/.
#
# DEBIAN_MIRROR and DEBIAN_SECURITY_MIRROR (archive URIs, optional) are apt sources for base images
# that carry none (hack/images.sh imports such images); hack/apt-build.sh writes, uses and deletes
# them within one RUN. The final image is one layer copied from the runtime-rootfs stage, so neither
# its files nor its `docker history` name the mirror (the classic builder records build arguments in
# the history of every RUN of a stage that declares them). The stage labels let hack/images.sh
# remove the stage images of earlier builds.

FROM debian:bookworm AS builder
ARG DEBIAN_MIRROR=
ARG DEBIAN_SECURITY_MIRROR=
COPY hack/apt-build.sh /usr/local/sbin/apt-build
# rustc-web/cargo-web: Debian 12's current Rust (1.96 from bookworm-security), as /usr/bin/cargo.
RUN apt-build apt-get install -y -qq --no-install-recommends rustc-web cargo-web gcc libc6-dev >/dev/null \
 && cargo --version
WORKDIR /src
COPY . .
RUN test -d vendor -a -f .cargo/config.toml || \
      { echo "no vendor/ and .cargo/config.toml: run hack/images.sh, or cargo vendor as above" >&2; exit 1; }; \
    CARGO_PROFILE_RELEASE_STRIP=symbols cargo build --release --offline --locked -p ovnkube-rs --bin ovnkube-rs \
 && install -D target/release/ovnkube-rs /out/usr/bin/ovnkube-rs
LABEL ovnkube-rs.stage=builder

FROM debian:bookworm-slim AS runtime-rootfs
ARG DEBIAN_MIRROR=
ARG DEBIAN_SECURITY_MIRROR=
COPY hack/apt-build.sh /tmp/apt-build
# ovs-vsctl and ovs-ofctl come as files from the OVS packages, with only their shared libraries
# installed: the packages themselves would add python3 and the OVS daemons (+66 MB) that the
# image never runs (it talks to the host's ovsdb-server and ovs-vswitchd through their sockets).
RUN /tmp/apt-build sh -euc ' \
      cd /tmp; \
      apt-get download -qq openvswitch-common openvswitch-switch; \
      ovs_libs=$(for deb in openvswitch-*.deb; do dpkg-deb -f "$deb" Depends; done \
        | tr ",|" "\n\n" | sed "s/(.*//; s/ //g" | grep "^lib" | sort -u); \
      apt-get install -y -qq --no-install-recommends iproute2 iptables procps $ovs_libs >/dev/null; \
      dpkg-deb --fsys-tarfile openvswitch-common_*.deb | tar -x -C / ./usr/bin/ovs-ofctl; \
      dpkg-deb --fsys-tarfile openvswitch-switch_*.deb | tar -x -C / ./usr/bin/ovs-vsctl; \
      rm -f openvswitch-*.deb' \
 && rm -rf /tmp/apt-build /var/log/apt /var/log/dpkg.log /var/cache/debconf/*-old \
 && ovs-vsctl --version >/dev/null && ovs-ofctl --version >/dev/null && iptables-restore --version
COPY --from=builder /out/ /
LABEL ovnkube-rs.stage=runtime-rootfs

FROM scratch
COPY --from=runtime-rootfs / /
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
ENTRYPOINT ["/usr/bin/ovnkube-rs"]
