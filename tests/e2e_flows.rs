//! The seed's traffic flows with real packets through the real processes (API test server →
//! `ovnkube-rs controller` → NB → northd → ovn-controller; `ovnkube-rs node` and `ovnkube-rs
//! cni` on the host side). Each flow asserts delivery and the source address the receiver saw.

mod e2e_common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use e2e_common::probe::{ask_until, PeerEcho, Proto};
use e2e_common::{E2eLab, Pod};

/// One seed flow: who sends, to where, and the source address the receiver must see.
struct Flow {
    name: &'static str,
    from: &'static str,
    proto: Proto,
    dst: &'static str,
    seen_src: &'static str,
}

const fn flow(
    name: &'static str,
    from: &'static str,
    proto: Proto,
    dst: &'static str,
    seen_src: &'static str,
) -> Flow {
    Flow {
        name,
        from,
        proto,
        dst,
        seen_src,
    }
}

/// The lab with the seed's three serving pods wired by the CNI plugin and who-am-I servers:
/// pod-2 and pod-1 on 8080, the DNS pod on 5353 udp+tcp, the API server stand-in on the node's
/// 6443 (10.44.0.0 and 192.168.122.14), and a server on the external namespace's 8080.
struct SeedLab {
    _servers: Vec<PeerEcho>,
    lab: E2eLab,
    pod1: Pod,
}

fn add_running_pod(lab: &mut E2eLab, namespace: &str, name: &str) -> Pod {
    let (pod, result) = lab.add_pod(namespace, name);
    let result = result.unwrap_or_else(|e| panic!("{e}"));
    assert!(result["ips"][0]["address"].is_string(), "{result}");
    pod
}

impl SeedLab {
    fn start() -> SeedLab {
        let t0 = Instant::now();
        let mut lab = E2eLab::start();
        eprintln!("lab up in {:.2}s", t0.elapsed().as_secs_f64());
        let pod1 = add_running_pod(&mut lab, "default", "pod-1");
        let pod2 = add_running_pod(&mut lab, "default", "pod-2");
        let dns = add_running_pod(&mut lab, "openshift-dns", "dns-default-pt2vr");
        eprintln!("3 pods wired in {:.2}s", t0.elapsed().as_secs_f64());
        let any = |port: u16| SocketAddr::from(([0, 0, 0, 0], port));
        let external = lab.node.external_netns.clone().expect("uplink layout");
        let servers = vec![
            PeerEcho::start(&pod2.netns, Proto::Tcp, any(8080)),
            PeerEcho::start(&pod1.netns, Proto::Tcp, any(8080)),
            PeerEcho::start(&dns.netns, Proto::Udp, "10.42.0.7:5353".parse().unwrap()),
            PeerEcho::start(&dns.netns, Proto::Tcp, any(5353)),
            PeerEcho::start(&lab.node.netns, Proto::Tcp, any(6443)),
            PeerEcho::start(&external, Proto::Tcp, any(8080)),
        ];
        SeedLab {
            _servers: servers,
            lab,
            pod1,
        }
    }

    /// The namespace a flow's sender names: "pod-1", "host" or "external".
    fn netns(&self, from: &str) -> String {
        match from {
            "pod-1" => self.pod1.netns.clone(),
            "host" => self.lab.node.netns.clone(),
            "external" => self.lab.node.external_netns.clone().expect("uplink"),
            other => panic!("unknown sender {other}"),
        }
    }

    /// Runs every flow; prints a line per flow and panics listing the ones that failed.
    fn check(&mut self, flows: &[Flow]) {
        let mut failures = Vec::new();
        for f in flows {
            let dst: SocketAddr = f.dst.parse().expect("flow destination");
            match ask_until(&self.netns(f.from), f.proto, dst, Duration::from_secs(15)) {
                Ok((a, latency)) if a.peer.ip().to_string() == f.seen_src => eprintln!(
                    "PASS {:<32} {:?} {:<21} -> {:<19} seen {:<21} {:>6.2} ms",
                    f.name,
                    f.proto,
                    f.dst,
                    a.server,
                    a.peer,
                    latency.as_secs_f64() * 1e3
                ),
                Ok((a, _)) => failures.push(format!(
                    "{}: reached {} but the receiver saw source {}, expected {}",
                    f.name, a.server, a.peer, f.seen_src
                )),
                Err(e) => failures.push(format!("{}: {:?} to {}: {e}", f.name, f.proto, f.dst)),
            }
        }
        assert!(
            self.lab.daemons_alive(),
            "an ovnkube-rs daemon exited; see the logs in {}",
            self.lab.node.dir().display()
        );
        assert!(failures.is_empty(), "failed flows: {failures:#?}");
    }
}

#[test]
fn seed_flows_through_ovn_and_the_management_port() {
    let mut seed = SeedLab::start();
    seed.check(&[
        flow(
            "pod->pod",
            "pod-1",
            Proto::Tcp,
            "10.42.0.13:8080",
            "10.42.0.12",
        ),
        flow(
            "pod->host",
            "pod-1",
            Proto::Tcp,
            "192.168.122.14:6443",
            "10.42.0.12",
        ),
        flow(
            "pod->external",
            "pod-1",
            Proto::Tcp,
            "192.168.122.1:8080",
            "192.168.122.14",
        ),
        flow(
            "host->pod",
            "host",
            Proto::Tcp,
            "10.42.0.12:8080",
            "10.42.0.2",
        ),
        flow(
            "pod->clusterService udp",
            "pod-1",
            Proto::Udp,
            "10.43.0.10:53",
            "10.42.0.12",
        ),
        flow(
            "pod->clusterService tcp",
            "pod-1",
            Proto::Tcp,
            "10.43.0.10:53",
            "10.42.0.12",
        ),
        flow(
            "pod->hostService",
            "pod-1",
            Proto::Tcp,
            "10.43.0.1:443",
            "10.42.0.12",
        ),
        flow(
            "pod->nodePortService",
            "pod-1",
            Proto::Tcp,
            "192.168.122.14:30700",
            "10.42.0.12",
        ),
        // dns-default is internalTrafficPolicy: Local, so the host reaches it through the
        // OVN-KUBE-ITP mark route and ovn-k8s-mp0 (source 10.42.0.2), not through the GR.
        flow(
            "host->clusterService(ITP) udp",
            "host",
            Proto::Udp,
            "10.43.0.10:53",
            "10.42.0.2",
        ),
        flow(
            "host->clusterService(ITP) tcp",
            "host",
            Proto::Tcp,
            "10.43.0.10:53",
            "10.42.0.2",
        ),
    ]);
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

/// The flows whose packets cross br-ex and GR_microshift-dev. On this lab's userspace datapath
/// (dpif-netdev) the SYN is dropped inside OVS before it reaches pod-2 or the host: coverage
/// counter `datapath_drop_recirc_error` grows by one per SYN. The path needs seven
/// recirculations in one pass (br-ex ct zone 64001, GR ct_dnat, dp_hash of the LB group,
/// ct_lb DNAT, GR undnat, GR force-SNAT to 100.64.0.2 in zone 0, the pod's ct zone) and
/// dpif-netdev stops at MAX_RECIRC_DEPTH = 6 (OVS 3.1); the kernel datapath has no such limit.
/// ovn-trace of these flows is checked in crates/reconcile's seed-flow tests.
#[test]
#[ignore = "userspace datapath: br-ex -> GR -> pod needs 7 recirculations, dpif-netdev drops at depth 6 (datapath_drop_recirc_error); connections time out"]
fn seed_flows_through_the_gateway_router() {
    let mut seed = SeedLab::start();
    seed.check(&[
        flow(
            "host->clusterService",
            "host",
            Proto::Tcp,
            "10.43.19.182:7000",
            "100.64.0.2",
        ),
        flow(
            "host->hostService",
            "host",
            Proto::Tcp,
            "10.43.0.1:443",
            "192.168.122.14",
        ),
        flow(
            "external->nodePortService",
            "external",
            Proto::Tcp,
            "192.168.122.14:30700",
            "100.64.0.2",
        ),
    ]);
}
