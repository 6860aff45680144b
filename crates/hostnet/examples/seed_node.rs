//! Brings up the seed's node (`microshift-dev`, 4.13 layout: NIC in br-ex, node IP
//! 192.168.122.14 on br-ex, 10.44.0.0 on lo) in a throwaway namespace with real OVS and OVN,
//! runs the node agent with the seed's NodePort service, and prints the host state the way the
//! seed shows it, plus how long setup, the first sync and a converged sync took.
//!
//! Run as root: `cargo run -p ovnkube-hostnet --example seed_node`.

use std::time::Instant;

use ovnkube_hostnet::agent::NodeAgent;
use ovnkube_hostnet::nodelab::{Layout, NodeLab};
use ovnkube_hostnet::services::HostService;

fn main() {
    let lab = NodeLab::start(Layout::Uplink);
    lab.add_gateway_topology("microshift-dev");
    let cfg = lab.agent_config("microshift-dev", "192.168.122.14");
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
