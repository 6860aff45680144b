//! The node agent against a real OVS userspace datapath, real ovn-controller and real iptables,
//! all inside network namespaces the test creates.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use ovnkube_hostnet::agent::NodeAgent;
use ovnkube_hostnet::annotations::{L3_GATEWAY_CONFIG, NODE_MGMT_PORT_MAC};
use ovnkube_hostnet::facts::Uplink;
use ovnkube_hostnet::flows::bridge_flows;
use ovnkube_hostnet::nodelab::{Layout, NodeLab};
use ovnkube_hostnet::services::HostService;

const NODE: &str = "node1";

fn seed_nodeport() -> HostService {
    HostService::seed_nodeport()
}

fn dumped_flows(lab: &NodeLab) -> BTreeSet<String> {
    lab.exec(
        "ovs-ofctl",
        &["dump-flows", "--no-stats", "--no-names", "br-ex"],
    )
    .lines()
    .map(str::trim)
    .filter(|l| l.starts_with("cookie="))
    .map(String::from)
    .collect()
}

fn rendered_flows(agent: &NodeAgent) -> BTreeSet<String> {
    bridge_flows(agent.facts())
        .iter()
        .map(ToString::to_string)
        .collect()
}

fn unquoted(s: &str) -> String {
    s.trim().trim_matches('"').to_string()
}

fn lines(text: &str) -> Vec<&str> {
    text.lines().map(str::trim).collect()
}

#[test]
fn agent_programs_the_no_uplink_node_converges_and_repairs() {
    let lab = NodeLab::start(Layout::NoUplink);
    // As upstream: the agent publishes its gateway annotations before the controller builds
    // ext_<node>, and only then does ovn-controller create the patch port.
    let mut agent =
        NodeAgent::start(lab.host(), lab.agent_config(NODE, "10.44.0.0")).expect("agent start");
    assert!(agent.annotations()[L3_GATEWAY_CONFIG].contains(r#""ip-addresses":["10.44.0.0/32"]"#));
    assert!(
        agent.sync(&[]).is_err(),
        "no sync before the patch port exists"
    );
    lab.add_gateway_topology(NODE);
    agent.wait_for_gateway().expect("patch port");
    assert_eq!(agent.facts().uplink, Uplink::None);
    assert_eq!(agent.facts().gateway_ip.to_string(), "10.44.0.0/32");
    assert_eq!(agent.facts().next_hops, [Ipv4Addr::new(169, 254, 169, 4)]);

    // A foreign rule the agent must leave alone.
    lab.exec(
        "iptables",
        &[
            "-t",
            "nat",
            "-A",
            "POSTROUTING",
            "-o",
            "eth9",
            "-j",
            "MASQUERADE",
        ],
    );
    let services = [seed_nodeport()];
    let first = agent.sync(&services).expect("first sync");
    assert!(first.flows && first.iptables && first.ip, "{first:?}");
    assert!(agent.write_cni_config().unwrap());

    // br-ex flows: exactly the rendered set, including the seed's service flow.
    let dumped = dumped_flows(&lab);
    assert_eq!(dumped, rendered_flows(&agent));
    assert!(dumped.contains(
        "cookie=0xdeff105, priority=500,ip,in_port=LOCAL,nw_dst=10.43.0.0/16 actions=ct(commit,table=2,zone=64001,nat(src=169.254.169.2))"
    ));

    let nat = lab.exec("iptables-save", &["-t", "nat"]);
    for want in [
        ":OVN-KUBE-NODEPORT - [0:0]",
        "-A PREROUTING -j OVN-KUBE-NODEPORT",
        "-A OUTPUT -j OVN-KUBE-NODEPORT",
        "-A OVN-KUBE-NODEPORT -p tcp -m addrtype --dst-type LOCAL -m tcp --dport 30700 -j DNAT --to-destination 10.43.19.182:7000",
        "-A POSTROUTING -o ovn-k8s-mp0 -j OVN-KUBE-SNAT-MGMTPORT",
        "-A OVN-KUBE-SNAT-MGMTPORT -o ovn-k8s-mp0 -m comment --comment \"OVN SNAT to Management Port\" -j SNAT --to-source 10.42.0.2",
        "-A POSTROUTING -s 10.42.0.0/24 -j MASQUERADE",
        "-A POSTROUTING -o eth9 -j MASQUERADE",
    ] {
        assert!(lines(&nat).contains(&want), "missing {want} in\n{nat}");
    }
    let filter = lab.exec("iptables-save", &["-t", "filter"]);
    assert!(
        lines(&filter).contains(&"-A FORWARD -i ovn-k8s-mp0 -j ACCEPT"),
        "{filter}"
    );

    let routes = lab.exec("ip", &["route"]);
    for want in [
        "10.43.0.0/16 via 169.254.169.4 dev br-ex mtu 1500",
        "10.42.0.0/16 via 10.42.0.1 dev ovn-k8s-mp0",
        "169.254.169.3 via 10.42.0.1 dev ovn-k8s-mp0",
        "169.254.169.1 dev br-ex scope link src 10.44.0.0",
    ] {
        assert!(
            lines(&routes).contains(&want),
            "missing {want} in\n{routes}"
        );
    }
    let neigh = lab.exec("ip", &["neigh"]);
    for want in [
        "169.254.169.1 dev br-ex lladdr 0a:58:a9:fe:a9:01 PERMANENT",
        "169.254.169.4 dev br-ex lladdr 0a:58:a9:fe:a9:04 PERMANENT",
        "10.42.0.1 dev ovn-k8s-mp0 lladdr 0a:58:0a:2a:00:01 PERMANENT",
    ] {
        assert!(lines(&neigh).contains(&want), "missing {want} in\n{neigh}");
    }
    let mp0 = lab.exec("ip", &["addr", "show", "ovn-k8s-mp0"]);
    assert!(mp0.contains("inet 10.42.0.2/24"), "{mp0}");
    let mac = &agent.annotations()[NODE_MGMT_PORT_MAC];
    assert!(
        mp0.contains(&format!("link/ether {mac}")),
        "{mac} not in {mp0}"
    );
    assert_eq!(
        unquoted(&lab.vsctl(&["get", "Interface", "ovn-k8s-mp0", "mac"])),
        *mac
    );
    assert_eq!(
        unquoted(&lab.vsctl(&["get", "Interface", "ovn-k8s-mp0", "external_ids:iface-id"])),
        "k8s-node1"
    );
    assert_eq!(
        lab.exec("sysctl", &["-n", "net.ipv4.conf.ovn-k8s-mp0.rp_filter"])
            .trim(),
        "2"
    );
    assert_eq!(
        unquoted(&lab.vsctl(&[
            "get",
            "Open_vSwitch",
            ".",
            "external_ids:ovn-bridge-mappings"
        ])),
        "physnet:br-ex"
    );

    // A second run changes nothing.
    let second = agent.sync(&services).unwrap();
    assert!(!second.changed(), "{second:?}");
    assert!(!agent.write_cni_config().unwrap());

    // Hand damage (a deleted flow, a deleted rule, a deleted route) and a firewall-style flush
    // of the filter table are repaired by the next sync; the foreign nat rule survives.
    lab.exec("ovs-ofctl", &["del-flows", "br-ex", "table=4"]);
    lab.exec("iptables", &["-t", "nat", "-D", "OVN-KUBE-NODEPORT", "1"]);
    lab.exec("iptables", &["-t", "filter", "-F"]);
    lab.exec("ip", &["route", "del", "10.43.0.0/16"]);
    let repair = agent.sync(&services).unwrap();
    assert!(repair.flows && repair.iptables && repair.ip, "{repair:?}");
    assert_eq!(dumped_flows(&lab), rendered_flows(&agent));
    let nat = lab.exec("iptables-save", &["-t", "nat"]);
    assert!(nat.contains("--dport 30700 -j DNAT --to-destination 10.43.19.182:7000"));
    assert!(nat.contains("-A POSTROUTING -o eth9 -j MASQUERADE"));
    assert!(lab
        .exec("iptables-save", &["-t", "filter"])
        .contains("-A FORWARD -i ovn-k8s-mp0 -j ACCEPT"));
    assert!(lab
        .exec("ip", &["route"])
        .contains("10.43.0.0/16 via 169.254.169.4 dev br-ex mtu 1500"));
    assert!(!agent.sync(&services).unwrap().changed());

    // A removed service loses its rule; the chain is rewritten whole.
    assert!(agent.sync(&[]).unwrap().iptables);
    assert!(!lab.exec("iptables-save", &["-t", "nat"]).contains("30700"));
}

#[test]
fn agent_programs_the_uplink_layout_flows_exactly() {
    let lab = NodeLab::start(Layout::Uplink);
    lab.add_gateway_topology(NODE);
    let mut agent = NodeAgent::start(lab.host(), lab.agent_config(NODE, "192.168.122.14"))
        .expect("agent start");
    agent.wait_for_gateway().expect("patch port");
    assert!(matches!(agent.facts().uplink, Uplink::Port(_)));
    assert_eq!(agent.facts().gateway_ip.to_string(), "192.168.122.14/24");
    assert_eq!(agent.facts().other_host_ips, [Ipv4Addr::new(10, 44, 0, 0)]);
    assert_eq!(agent.facts().next_hops, [Ipv4Addr::new(192, 168, 122, 1)]);
    agent.sync(&[seed_nodeport()]).expect("sync");
    let dumped = dumped_flows(&lab);
    assert_eq!(dumped, rendered_flows(&agent));
    let patch = agent.facts().patch_ofport;
    assert!(dumped.contains(&format!(
        "cookie=0xdeff105, priority=500,ip,in_port={patch},nw_src=192.168.122.14,nw_dst=10.44.0.0 actions=ct(commit,table=4,zone=64001)"
    )));
    assert!(!agent.sync(&[seed_nodeport()]).unwrap().changed());
}
