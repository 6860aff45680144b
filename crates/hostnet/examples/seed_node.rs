//! Brings up the seed's node (`microshift-dev`, 4.13 layout: NIC in br-ex, node IP
//! 192.168.122.14 on br-ex, 10.44.0.0 on lo) in a throwaway namespace with real OVS and OVN,
//! runs the node agent with the seed's NodePort service, and prints the host state the way the
//! seed shows it, plus how long setup, the first sync and a converged sync took.
//!
//! Run as root: `cargo run -p ovnkube-hostnet --example seed_node`.

use std::time::{Duration, Instant};

use ovnkube_hostnet::agent::{AgentConfig, NodeAgent};
use ovnkube_hostnet::nodelab::{Layout, NodeLab};
use ovnkube_hostnet::services::HostService;

fn main() {
    let lab = NodeLab::start(Layout::Uplink);
    lab.add_gateway_topology("microshift-dev");
    let cfg = AgentConfig {
        node_name: "microshift-dev".into(),
        node_ip: "192.168.122.14".parse().unwrap(),
        bridge: "br-ex".into(),
        service_cidrs: vec!["10.43.0.0/16".parse().unwrap()],
        cluster_subnets: vec!["10.42.0.0/16".parse().unwrap()],
        node_subnet: "10.42.0.0/24".parse().unwrap(),
        mtu: 1500,
        sb_remote: lab.sb_remote(),
        next_hops: vec![],
        patch_port_timeout: Duration::from_secs(20),
        cni_conf_path: lab.dir().join("net.d/10-ovn-kubernetes.conf"),
        cni_conf_extra: serde_json::Map::new(),
    };
    let services = [HostService::seed_nodeport()];
    let t = Instant::now();
    let mut agent = NodeAgent::start(lab.host(), cfg).expect("agent start");
    agent.wait_for_gateway().expect("patch port");
    let setup = t.elapsed();
    let t = Instant::now();
    agent.sync(&services).expect("first sync");
    let first = t.elapsed();
    let t = Instant::now();
    let report = agent.sync(&services).expect("second sync");
    let converged = t.elapsed();
    assert!(!report.changed());
    for (title, prog, args) in [
        (
            "ovs-ofctl dump-flows br-ex",
            "ovs-ofctl",
            &["dump-flows", "--no-stats", "br-ex"][..],
        ),
        ("iptables-save -t nat", "iptables-save", &["-t", "nat"][..]),
        ("ip route", "ip", &["route"][..]),
        ("ip neigh", "ip", &["neigh"][..]),
        (
            "ip addr show ovn-k8s-mp0",
            "ip",
            &["addr", "show", "ovn-k8s-mp0"][..],
        ),
    ] {
        println!("(node)$ {title}\n{}", lab.exec(prog, args));
    }
    println!("setup {setup:?}, first sync {first:?}, converged sync {converged:?}");
}
