//! The seed's traffic flows with real packets through the real processes (API test server →
//! `ovnkube-rs controller` → NB → northd → ovn-controller; `ovnkube-rs node` and `ovnkube-rs
//! cni` on the host side). Each flow asserts delivery and the source address the receiver saw.

mod e2e_common;

use e2e_common::seed::{SeedLab, GATEWAY_ROUTER_FLOWS, OVN_AND_MGMT_PORT_FLOWS};

const BIN: &str = env!("CARGO_BIN_EXE_ovnkube-rs");

#[test]
fn seed_flows_through_ovn_and_the_management_port() {
    let mut seed = SeedLab::start(std::path::Path::new(BIN));
    seed.check(OVN_AND_MGMT_PORT_FLOWS);
    // The agent published this machine's chassis on the Node and the controller bound the GR to it.
    let chassis = seed.lab.kubectl(
        &[
            "get",
            "node",
            "microshift-dev",
            "-o",
            "jsonpath={.metadata.annotations.k8s\\.ovn\\.org/node-chassis-id}",
        ],
        None,
    );
    assert_eq!(chassis, ovnkube_hostnet::nodelab::SYSTEM_ID);
    let gr_chassis = seed.lab.nbctl(&[
        "get",
        "Logical_Router",
        "GR_microshift-dev",
        "options:chassis",
    ]);
    assert_eq!(gr_chassis.trim().trim_matches('"'), chassis);
    // ovn-trace agrees with the packets for the flows that stay inside OVN.
    let pod1 = r#"inport == "default_pod-1" && eth.src == 0a:58:0a:2a:00:0c && eth.dst == 0a:58:0a:2a:00:01 && ip4.src == 10.42.0.12 && ip.ttl == 64 && tcp && tcp.src == 40000"#;
    for (dst, port, lsp) in [
        ("10.42.0.13", 8080, "default_pod-2"),
        ("10.43.0.10", 53, "openshift-dns_dns-default-pt2vr"),
        ("192.168.122.14", 30700, "default_pod-2"),
        ("10.43.0.1", 443, "k8s-microshift-dev"),
    ] {
        let flow = format!("{pod1} && ip4.dst == {dst} && tcp.dst == {port}");
        assert_eq!(
            seed.lab.trace_output("microshift-dev", &flow).as_deref(),
            Ok(lsp),
            "ovn-trace of pod-1 -> {dst}:{port}"
        );
    }
}

/// The flows whose packets cross br-ex and GR_microshift-dev. They need (1) a datapath that
/// allows seven recirculations in one pass (br-ex ct zone 64001, GR ct_dnat, dp_hash of the LB
/// group, ct_lb DNAT, GR undnat, GR force-SNAT to 100.64.0.2 in zone 0, the pod's ct zone):
/// Debian 13's userspace datapath, not Debian 12's; (2) the GR join-IP route on
/// ovn_cluster_router, or the pod's reply to 100.64.0.2 leaves through the management port;
/// (3) the SB static MAC binding of 169.254.169.4, or replies to the host wait for an ARP.
#[test]
fn seed_flows_through_the_gateway_router() {
    ovnkube_hostnet::nodelab::require_gateway_capable_datapath();
    let mut seed = SeedLab::start(std::path::Path::new(BIN));
    seed.check(GATEWAY_ROUTER_FLOWS);
}
