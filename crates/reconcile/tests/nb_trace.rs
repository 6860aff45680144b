//! ovn-trace, against the SB that ovn-northd computes from the synced seed NB, for every flow
//! of the seed that passes through OVN: each asserts the final output port and the NAT.

mod common;
mod lab;

use common::{microshift_config, seed_snapshot};
use lab::SeedLab;
use ovnkube_desired::desired_cluster;

const POD1: &str =
    r#"inport == "default_pod-1" && eth.src == 0a:58:0a:2a:00:0c && ip4.src == 10.42.0.12"#;
const RTOS_MAC: &str = "0a:58:0a:2a:00:01";
/// What br-ex sends into OVN for host traffic: the node's source SNATed to 169.254.169.2.
const FROM_BREX: &str = r#"inport == "br-ex_microshift-dev" && eth.src == 52:54:00:00:00:99 && eth.dst == 52:54:00:e2:ed:d0 && ip4.src == 169.254.169.2"#;

struct Flow {
    name: &'static str,
    datapath: &'static str,
    packet: String,
    /// The port the packet finally leaves through.
    output: &'static str,
    /// Trace text that shows the NAT (or its absence) the seed describes.
    nat: &'static [&'static str],
    /// Trace text that must not appear.
    absent: &'static [&'static str],
}

fn pod1_to(eth_dst: &str, dst: &str, l4: &str) -> String {
    format!("{POD1} && eth.dst == {eth_dst} && ip4.dst == {dst} && ip.ttl == 64 && {l4}")
}

fn flows() -> Vec<Flow> {
    vec![
        Flow {
            name: "pod to pod",
            datapath: "microshift-dev",
            packet: pod1_to("0a:58:0a:2a:00:0d", "10.42.0.13", "tcp && tcp.dst == 8080"),
            output: "default_pod-2",
            nat: &[],
            absent: &["ct_lb_mark(backends", "ovn_cluster_router"],
        },
        Flow {
            name: "pod to host (1004 reroute to 10.42.0.2)",
            datapath: "microshift-dev",
            packet: pod1_to(RTOS_MAC, "192.168.122.14", "tcp && tcp.dst == 22"),
            output: "k8s-microshift-dev",
            nat: &[
                "ip4.dst == 192.168.122.14, priority 1004",
                "reg0 = 10.42.0.2",
            ],
            absent: &["ct_lb_mark(backends"],
        },
        Flow {
            name: "pod to external (src-ip route to the management port)",
            datapath: "microshift-dev",
            packet: pod1_to(RTOS_MAC, "8.8.8.8", "tcp && tcp.dst == 443"),
            output: "k8s-microshift-dev",
            nat: &["ip4.src == 10.42.0.0/24", "reg0 = 10.42.0.2"],
            absent: &["ct_lb_mark(backends", "ct_snat", "GR_microshift-dev"],
        },
        Flow {
            // The reply of host->clusterService and external->NodePort: the GR force-SNATed the
            // request to its join IP. The join-IP route must outrank the node subnet's src-ip
            // route, which would send it out the management port.
            name: "pod reply to the GR's join IP goes back to the GR",
            datapath: "microshift-dev",
            packet: format!(
                r#"inport == "default_pod-2" && eth.src == 0a:58:0a:2a:00:0d && eth.dst == {RTOS_MAC} && ip4.src == 10.42.0.13 && ip4.dst == 100.64.0.2 && ip.ttl == 64 && tcp && tcp.src == 8080"#
            ),
            output: "jtor-GR_microshift-dev",
            nat: &["ip4.dst == 100.64.0.2/32"],
            absent: &["reg0 = 10.42.0.2", "k8s-microshift-dev"],
        },
        Flow {
            name: "host to pod (from the management port)",
            datapath: "microshift-dev",
            packet: format!(
                r#"inport == "k8s-microshift-dev" && eth.src == 76:3a:81:5a:05:d7 && eth.dst == {RTOS_MAC} && ip4.src == 10.42.0.2 && ip4.dst == 10.42.0.12 && ip.ttl == 64 && tcp && tcp.dst == 8080"#
            ),
            output: "default_pod-1",
            nat: &["ovn_cluster_router"],
            absent: &["ct_lb_mark(backends", "ct_snat"],
        },
        Flow {
            name: "pod to clusterService tcp (DNAT 10.43.0.10:53 on the node switch)",
            datapath: "microshift-dev",
            packet: pod1_to(RTOS_MAC, "10.43.0.10", "tcp && tcp.dst == 53"),
            output: "openshift-dns_dns-default-pt2vr",
            nat: &["ls_in_lb", "ct_lb_mark(backends=10.42.0.7:5353)"],
            absent: &[],
        },
        Flow {
            name: "pod to clusterService udp (DNAT 10.43.0.10:53 on the node switch)",
            datapath: "microshift-dev",
            packet: pod1_to(RTOS_MAC, "10.43.0.10", "udp && udp.dst == 53"),
            output: "openshift-dns_dns-default-pt2vr",
            nat: &["ls_in_lb", "ct_lb_mark(backends=10.42.0.7:5353)"],
            absent: &[],
        },
        Flow {
            name: "pod to hostService (DNAT to 10.44.0.0:6443, out the management port)",
            datapath: "microshift-dev",
            packet: pod1_to(RTOS_MAC, "10.43.0.1", "tcp && tcp.dst == 443"),
            output: "k8s-microshift-dev",
            nat: &[
                "ls_in_lb",
                "ct_lb_mark(backends=10.44.0.0:6443)",
                "reg0 = 10.42.0.2",
            ],
            absent: &[],
        },
        Flow {
            name: "pod to nodePortService (192.168.122.14:30700 to 10.42.0.13:8080)",
            datapath: "microshift-dev",
            packet: pod1_to(RTOS_MAC, "192.168.122.14", "tcp && tcp.dst == 30700"),
            output: "default_pod-2",
            nat: &["ls_in_lb", "ct_lb_mark(backends=10.42.0.13:8080)"],
            absent: &["priority 1004", "reg0 = 10.42.0.2"],
        },
        Flow {
            name: "pod to a service without endpoints (reject=true: TCP reset)",
            datapath: "microshift-dev",
            packet: pod1_to(RTOS_MAC, "10.43.0.99", "tcp && tcp.dst == 80"),
            output: "default_pod-1",
            nat: &["ls_in_lb", "reject {", "tcp_reset"],
            absent: &["ct_lb_mark(backends"],
        },
        Flow {
            name: "host to clusterService (GR DNAT, SNAT to 100.64.0.2)",
            datapath: "ext_microshift-dev",
            packet: format!(
                "{FROM_BREX} && ip4.dst == 10.43.0.10 && ip.ttl == 64 && udp && udp.dst == 53"
            ),
            output: "openshift-dns_dns-default-pt2vr",
            nat: &[
                "lr_in_dnat",
                "flags.force_snat_for_lb = 1",
                "ct_lb_mark(backends=10.42.0.7:5353; force_snat)",
                r#"outport = "rtoj-GR_microshift-dev""#,
            ],
            absent: &[],
        },
        Flow {
            name: "host to hostService (GR DNAT, SNAT to the node IP, out rtoe)",
            datapath: "ext_microshift-dev",
            packet: format!(
                "{FROM_BREX} && ip4.dst == 10.43.0.1 && ip.ttl == 64 && tcp && tcp.dst == 443"
            ),
            output: "br-ex_microshift-dev",
            nat: &[
                "lr_in_dnat",
                "flags.force_snat_for_lb = 1",
                "ct_lb_mark(backends=10.44.0.0:6443; force_snat)",
                r#"outport = "rtoe-GR_microshift-dev""#,
            ],
            absent: &[],
        },
    ]
}

/// The last port the trace outputs to.
fn final_output(trace: &str) -> Option<&str> {
    trace
        .rmatch_indices("/* output to \"")
        .next()
        .and_then(|(i, m)| trace[i + m.len()..].split('"').next())
}

/// Neighbours the GR would learn in a live system (ovn-trace starts with none, and the GR
/// has dynamic_neigh_routers=true): the cluster router's join port and the node's gateway.
fn add_gr_neighbours(lab: &SeedLab) {
    let dp = lab.sbctl(&[
        "--bare",
        "--columns=_uuid",
        "find",
        "Datapath_Binding",
        "external_ids:name=GR_microshift-dev",
    ]);
    let dp = dp.trim();
    assert!(
        !dp.is_empty(),
        "northd made no datapath for GR_microshift-dev"
    );
    for (port, ip, mac) in [
        ("rtoj-GR_microshift-dev", "100.64.0.1", "0a:58:64:40:00:01"),
        (
            "rtoe-GR_microshift-dev",
            "192.168.122.1",
            "52:54:00:00:00:01",
        ),
        (
            "rtoe-GR_microshift-dev",
            "169.254.169.4",
            "0a:58:a9:fe:a9:04",
        ),
    ] {
        lab.sbctl(&[
            "create",
            "MAC_Binding",
            &format!("logical_port={port}"),
            &format!("ip={ip}"),
            &format!("mac=\"{mac}\""),
            &format!("datapath={dp}"),
        ]);
    }
}

#[test]
fn seed_flows_trace_as_the_seed_describes() {
    let lab = SeedLab::start();
    let mut snapshot = seed_snapshot();
    snapshot.services.push(
        serde_json::from_value(serde_json::json!({"kind": "Service",
            "metadata": {"name": "svc-noeps", "namespace": "default"},
            "spec": {"clusterIP": "10.43.0.99", "ports": [{"port": 80}]}}))
        .unwrap(),
    );
    let (d, errors) = desired_cluster(&microshift_config(), &snapshot);
    assert!(errors.is_empty());
    lab.sync(&d);
    lab.wait_sb();
    add_gr_neighbours(&lab);

    let mut failures = Vec::new();
    for f in flows() {
        let trace = lab
            .lab
            .trace(
                &lab.sb,
                &["--ct=new", "--ct=new", "--ct=new", f.datapath, &f.packet],
            )
            .unwrap_or_else(|e| panic!("{}: {e}", f.name));
        let mut why = Vec::new();
        if final_output(&trace) != Some(f.output) {
            why.push(format!(
                "final output {:?}, want {:?}",
                final_output(&trace),
                f.output
            ));
        }
        why.extend(
            f.nat
                .iter()
                .filter(|n| !trace.contains(*n))
                .map(|n| format!("missing {n:?}")),
        );
        why.extend(
            f.absent
                .iter()
                .filter(|n| trace.contains(*n))
                .map(|n| format!("unexpected {n:?}")),
        );
        if !why.is_empty() {
            failures.push(format!("{}: {}\n{trace}", f.name, why.join("; ")));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));

    // ovn-trace cannot show the GR's SNAT for load-balanced traffic (it clears the flag at each
    // output): the SB must hold it, to the join address towards pods and to the node IP out rtoe.
    let snat = lab.sbctl(&["lflow-list", "GR_microshift-dev"]);
    for want in [
        r#"flags.force_snat_for_lb == 1 && ip4 && outport == "rtoj-GR_microshift-dev"), action=(ct_snat(100.64.0.2);)"#,
        r#"flags.force_snat_for_lb == 1 && ip4 && outport == "rtoe-GR_microshift-dev"), action=(ct_snat(192.168.122.14);)"#,
    ] {
        assert!(snat.contains(want), "SB lacks the GR SNAT {want}");
    }
}
