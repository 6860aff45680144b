//! The seed's traffic flows (shared/seed: "OVNKubernetes Traffic Flows in MicroShift") as real
//! connections in an [`E2eLab`] with the seed's serving pods, and the table they print.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use super::probe::{ask_until, PeerEcho, Proto};
use super::{E2eLab, Pod};

/// One seed flow: who sends ("pod-1", "host" or "external"), to where, and the source address
/// the receiver must see.
#[derive(Debug, Clone, Copy)]
pub struct Flow {
    /// The seed's name for it.
    pub name: &'static str,
    /// The sender.
    pub from: &'static str,
    /// Transport.
    pub proto: Proto,
    /// Destination address:port.
    pub dst: &'static str,
    /// The source address the receiver must see.
    pub seen_src: &'static str,
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

/// The flows that pass on this lab: inside OVN, through ovn-k8s-mp0 and the host's iptables.
pub const OVN_AND_MGMT_PORT_FLOWS: &[Flow] = &[
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
];

/// The flows through br-ex and GR_microshift-dev (see `seed_flows_through_the_gateway_router`
/// in tests/e2e_flows.rs for what they need of the datapath and of NB).
pub const GATEWAY_ROUTER_FLOWS: &[Flow] = &[
    flow(
        "host->clusterService",
        "host",
        Proto::Tcp,
        "10.43.19.182:7000",
        "100.64.0.2",
    ),
    // The seed's last step shows the packet entering br-ex from the GR (192.168.122.14); br-ex's
    // table 4 then masquerades it to 169.254.169.1 (zone 64002), so that the host's reply,
    // otherwise addressed to one of its own addresses, goes back through br-ex.
    flow(
        "host->hostService",
        "host",
        Proto::Tcp,
        "10.43.0.1:443",
        "169.254.169.1",
    ),
    flow(
        "external->nodePortService",
        "external",
        Proto::Tcp,
        "192.168.122.14:30700",
        "100.64.0.2",
    ),
];

/// What one flow did.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The flow.
    pub flow: Flow,
    /// `Ok` with the table row, or `Err` with the failure.
    pub result: Result<String, String>,
}

/// The lab with the seed's three serving pods wired by the CNI plugin and who-am-I servers:
/// pod-2 and pod-1 on 8080, the DNS pod on 5353 udp+tcp, the API server stand-in on the node's
/// 6443 (10.44.0.0 and 192.168.122.14), and a server on the external namespace's 8080.
pub struct SeedLab {
    _servers: Vec<PeerEcho>,
    /// The lab.
    pub lab: E2eLab,
    pod1: Pod,
}

impl SeedLab {
    /// Starts the lab with the `ovnkube-rs` binary `bin`, wires the pods, starts the servers.
    pub fn start(bin: &Path) -> SeedLab {
        let t0 = Instant::now();
        let mut lab = E2eLab::start(bin);
        eprintln!("lab up in {:.2}s", t0.elapsed().as_secs_f64());
        let pod1 = lab.add_running_pod("default", "pod-1");
        let pod2 = lab.add_running_pod("default", "pod-2");
        let dns = lab.add_running_pod("openshift-dns", "dns-default-pt2vr");
        eprintln!(
            "3 pods wired by the CNI plugin in {:.2}s",
            t0.elapsed().as_secs_f64()
        );
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

    /// The namespace of a flow's sender.
    pub fn netns(&self, from: &str) -> String {
        match from {
            "pod-1" => self.pod1.netns.clone(),
            "host" => self.lab.node.netns.clone(),
            "external" => self.lab.node.external_netns.clone().expect("uplink"),
            other => panic!("unknown sender {other}"),
        }
    }

    /// Runs each flow, retrying for up to `within` while flows settle.
    pub fn run(&self, flows: &[Flow], within: Duration) -> Vec<Outcome> {
        flows
            .iter()
            .map(|f| Outcome {
                flow: *f,
                result: self.run_one(f, within),
            })
            .collect()
    }

    fn run_one(&self, f: &Flow, within: Duration) -> Result<String, String> {
        let dst: SocketAddr = f.dst.parse().expect("flow destination");
        match ask_until(&self.netns(f.from), f.proto, dst, within) {
            Ok((a, latency)) if a.peer.ip().to_string() == f.seen_src => Ok(format!(
                "{:<30} {:<4} {:<21} -> {:<19} seen {:<21} {:>6.2} ms",
                f.name,
                format!("{:?}", f.proto).to_lowercase(),
                f.dst,
                a.server,
                a.peer,
                latency.as_secs_f64() * 1e3
            )),
            Ok((a, _)) => Err(format!(
                "{}: reached {} but the receiver saw source {}, expected {}",
                f.name, a.server, a.peer, f.seen_src
            )),
            Err(e) => Err(format!("{}: {:?} to {}: {e}", f.name, f.proto, f.dst)),
        }
    }

    /// Runs the flows and panics listing those that failed (or if a daemon died).
    pub fn check(&mut self, flows: &[Flow]) {
        let failures: Vec<String> = self
            .run(flows, Duration::from_secs(15))
            .into_iter()
            .filter_map(|o| match o.result {
                Ok(row) => {
                    eprintln!("PASS {row}");
                    None
                }
                Err(e) => {
                    eprintln!("FAIL {e}");
                    Some(e)
                }
            })
            .collect();
        assert!(
            self.lab.daemons_alive(),
            "an ovnkube-rs daemon exited; see the logs in {}",
            self.lab.node.dir().display()
        );
        assert!(failures.is_empty(), "failed flows: {failures:#?}");
    }
}
