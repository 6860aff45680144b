//! The multi-node e2e bed in Docker (e2e/docker/README.md) with real packets: Geneve between
//! node containers, services whose only backend is on another node, a deployment spread over
//! the nodes, and the faults a cluster sees (a node lost and back, the controller and the NB
//! restarted during pod churn). Each test brings its own bed up (`hack/e2e-docker.sh up`) and
//! removes it on drop; one bed at a time.

mod e2e_common;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use e2e_common::docker::{BedPod, DockerBed, EXTERNAL_IP, NODES};
use e2e_common::eventually;
use e2e_common::probe::{ask, ask_until, PeerEcho, Proto};
use e2e_common::prometheus::{Prometheus, CONTROLLER_JOB, NODE_JOB};
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_ovnkube-rs");
/// The host's address after br-ex's masquerade (MicroShift's masquerade subnet): the source of
/// host -> service traffic at the gateway router.
const HOST_MASQ: &str = "169.254.169.2";

fn addr(ip: &str, port: u16) -> SocketAddr {
    SocketAddr::new(ip.parse().expect("an IPv4 address"), port)
}

/// Who-am-I servers on port 8080 of each pod, stopped on drop.
fn serve(bed: &DockerBed, pods: &[&BedPod]) -> Vec<PeerEcho> {
    pods.iter()
        .map(|p| PeerEcho::start(&bed.pod_netns(p), Proto::Tcp, addr("0.0.0.0", 8080)))
        .collect()
}

/// Connects from namespace `from` to `dst` (retrying up to `within`) and asserts which server
/// answered and which client address it saw.
fn assert_reaches(from: &str, dst: SocketAddr, server: &str, peer_ip: &str, within: Duration) {
    let (answer, _) =
        ask_until(from, Proto::Tcp, dst, within).unwrap_or_else(|e| panic!("{from} -> {dst}: {e}"));
    assert_eq!(answer.server.to_string(), server, "{from} -> {dst}: server");
    assert_eq!(
        answer.peer.ip().to_string(),
        peer_ip,
        "{from} -> {dst}: client address"
    );
}

/// [`assert_reaches`] from pod `from` to pod `to`'s server on 8080, directly.
fn assert_pod_reaches(bed: &DockerBed, from: &BedPod, to: &BedPod) {
    let server = format!("{}:8080", to.ip);
    let dst = addr(&to.ip, 8080);
    assert_reaches(
        &bed.pod_netns(from),
        dst,
        &server,
        &from.ip,
        Duration::from_secs(20),
    );
}

#[test]
fn pods_and_services_across_nodes() {
    let mut bed = DockerBed::up(Path::new(BIN));
    let a = bed.add_pod("default", "server-a", "node1", "a");
    let b = bed.add_pod("default", "server-b", "node2", "b");
    let client1 = bed.add_pod("default", "client-1", "node1", "client");
    let client2 = bed.add_pod("default", "client-2", "node2", "client");
    let _servers = serve(&bed, &[&a, &b]);
    let within = Duration::from_secs(20);

    // pod -> pod across nodes (Geneve), both directions, the client address preserved.
    assert_pod_reaches(&bed, &client1, &b);
    assert_pod_reaches(&bed, &client2, &a);

    // pod -> ClusterIP whose only backend is on the other node.
    for (service, client, backend) in [("only-b", &client1, &b), ("only-a", &client2, &a)] {
        bed.apply(&DockerBed::service(service, json!({"type": "ClusterIP"})));
        bed.apply(&DockerBed::endpoint_slice(service, &[(backend, true)]));
        let vip = bed.service_field(service, "{.spec.clusterIP}");
        let to = format!("{}:8080", backend.ip);
        assert_reaches(
            &bed.pod_netns(client),
            addr(&vip, 80),
            &to,
            &client.ip,
            within,
        );
    }

    // A deployment of 50 pods spread over the nodes: every pod answers from both nodes.
    let web = bed.add_deployment("web", "web", 50);
    for node in NODES {
        assert_eq!(
            web.iter().filter(|p| p.node == node).count(),
            25,
            "pods on {node}"
        );
    }
    let ips: Vec<&str> = web.iter().map(|p| p.ip.as_str()).collect();
    for client in [&client1, &client2] {
        let missing = bed.unreachable_from(client, &ips, 10);
        assert!(
            missing.is_empty(),
            "from {}: no answer from {missing:?}",
            client.name
        );
    }
}

/// Services reached through a node's br-ex and gateway router: `np` (NodePort, its only
/// backend on node2), `local` (NodePort with externalTrafficPolicy=Local, the same backend) and
/// `cip` (ClusterIP, the same backend, for host -> service).
struct GatewayBed {
    bed: DockerBed,
    backend: BedPod,
    np_port: u16,
    local_port: u16,
    cip: String,
}

fn gateway_bed() -> GatewayBed {
    let mut bed = DockerBed::up(Path::new(BIN));
    let backend = bed.add_pod("default", "server-b", "node2", "b");
    for (name, spec) in [
        ("np", json!({"type": "NodePort"})),
        (
            "local",
            json!({"type": "NodePort", "externalTrafficPolicy": "Local"}),
        ),
        ("cip", json!({"type": "ClusterIP"})),
    ] {
        bed.apply(&DockerBed::service(name, spec));
        bed.apply(&DockerBed::endpoint_slice(name, &[(&backend, true)]));
    }
    let port = |name| {
        bed.service_field(name, "{.spec.ports[0].nodePort}")
            .parse()
            .expect("a nodePort")
    };
    let (np_port, local_port) = (port("np"), port("local"));
    let cip = bed.service_field("cip", "{.spec.clusterIP}");
    GatewayBed {
        bed,
        backend,
        np_port,
        local_port,
        cip,
    }
}

/// The external port of node `node`'s gateway router: its MAC (br-ex's) and address.
fn gateway_port(bed: &DockerBed, node: &str) -> (String, String) {
    let get = |column| {
        bed.nbctl(&[
            "get",
            "Logical_Router_Port",
            &format!("rtoe-GR_{node}"),
            column,
        ])
        .trim()
        .trim_matches(|c| c == '"' || c == '[' || c == ']')
        .to_string()
    };
    let networks = get("networks");
    let ip = networks
        .trim_matches('"')
        .split('/')
        .next()
        .unwrap_or_default();
    (get("mac"), ip.to_string())
}

/// The backends `lr-lb-list` shows for `vip` (None when no load balancer has it).
fn lb_backends(listing: &str, vip: &str) -> Option<String> {
    listing.lines().find_map(|line| {
        let mut words = line.split_whitespace();
        words.find(|w| *w == vip)?;
        Some(words.collect::<Vec<_>>().join(" "))
    })
}

/// The MAC_Binding GR_<node> learns for the cluster router's join address once traffic flows
/// (dynamic_neigh_routers); ovn-trace starts without neighbours and would stop at an ARP.
fn learn_join_neighbour(bed: &DockerBed, node: &str) {
    let mac = bed.nbctl(&[
        "get",
        "Logical_Router_Port",
        "rtoj-ovn_cluster_router",
        "mac",
    ]);
    let sbctl = |args: &[&str]| {
        let mut all = vec!["ovn-sbctl"];
        all.extend_from_slice(args);
        bed.exec("central", &all)
    };
    let datapath = sbctl(&[
        "--bare",
        "--columns=_uuid",
        "find",
        "Datapath_Binding",
        &format!("external_ids:name=GR_{node}"),
    ]);
    sbctl(&[
        "create",
        "MAC_Binding",
        &format!("logical_port=rtoj-GR_{node}"),
        "ip=100.64.0.1",
        &format!("mac={}", mac.trim()),
        &format!("datapath={}", datapath.trim()),
    ]);
}

/// The flows that cross br-ex and the gateway router, checked in NB and with ovn-trace (their
/// real packets: `gateway_paths_with_real_packets` below).
/// ovn-trace 23.03 stops a NodePort trace at the GR's bare `ct_snat;` (a simulation limit, see
/// ovn-trace-notes), so NodePort and externalTrafficPolicy=Local are checked as rows and the
/// GR's load-balancing path to the backend as a trace of host -> ClusterIP.
#[test]
fn gateway_paths_are_programmed_for_every_node() {
    let g = gateway_bed();
    let bed = &g.bed;
    let backend_lsp = format!("default_{}", g.backend.name);
    let to_backend = format!("{}:8080", g.backend.ip);
    for node in NODES {
        let (mac, node_ip) = gateway_port(bed, node);
        let gr = format!("GR_{node}");
        // NodePort: the GR's load balancer has nodeIP:nodePort -> the backend on node2.
        let np_vip = format!("{node_ip}:{}", g.np_port);
        eventually(
            &format!("{np_vip} on {gr}"),
            Duration::from_secs(20),
            || {
                lb_backends(&bed.nbctl(&["lr-lb-list", &gr]), &np_vip).as_deref()
                    == Some(to_backend.as_str())
            },
        );
        // externalTrafficPolicy=Local: only the node with the endpoint has it as a backend.
        let local_vip = format!("{node_ip}:{}", g.local_port);
        let local = lb_backends(&bed.nbctl(&["lr-lb-list", &gr]), &local_vip);
        let want = if node == g.backend.node {
            to_backend.as_str()
        } else {
            ""
        };
        assert_eq!(
            local.as_deref(),
            Some(want),
            "ETP=Local {local_vip} on {gr}"
        );
        // host -> ClusterIP: br-ex masquerades the host to 169.254.169.2; the GR load-balances
        // to the backend on node2 through the join switch and the cluster router.
        learn_join_neighbour(bed, node);
        let flow = format!(
            r#"inport == "br-ex_{node}" && eth.src == 02:00:00:00:00:99 && eth.dst == {mac} && ip4.src == {HOST_MASQ} && ip.ttl == 64 && tcp && tcp.src == 40000 && ip4.dst == {} && tcp.dst == 80"#,
            g.cip
        );
        assert_eq!(
            bed.trace_output(&format!("ext_{node}"), &flow).as_deref(),
            Ok(backend_lsp.as_str()),
            "ovn-trace of host -> ClusterIP on {node}"
        );
    }
}

/// The same gateway flows with real packets. br-ex's ct zone 64001, the GR's ct_dnat, the LB's
/// dp_hash, ct_lb, GR undnat, force-SNAT and the pod's ct zone take seven recirculations in one
/// userspace-datapath pass: the nodes run Debian 13's ovs-vswitchd (hack/ovs-datapath.sh,
/// mounted by hack/e2e-docker.sh), Debian 12's stops at six (coverage counter
/// `datapath_drop_recirc_error`, printed on failure). The replies return to the GR that
/// force-SNATed them through the GR join-IP routes on ovn_cluster_router.
#[test]
fn gateway_paths_with_real_packets() {
    let g = gateway_bed();
    let bed = &g.bed;
    let _server = serve(bed, &[&g.backend]);
    let to_backend = format!("{}:8080", g.backend.ip);
    let within = Duration::from_secs(10);
    for node in NODES {
        let (_, node_ip) = gateway_port(bed, node);
        let drops =
            || NODES.map(|n| format!("{n}: {}", bed.coverage(n, "datapath_drop_recirc_error")));
        let dropped_before = drops();
        let external = bed.netns("external");
        let node_ns = bed.netns(node);
        let attempts = [
            ("external -> NodePort", &external, addr(&node_ip, g.np_port)),
            ("host -> ClusterIP", &node_ns, addr(&g.cip, 80)),
        ];
        for (what, from, dst) in attempts {
            let answer = ask_until(from, Proto::Tcp, dst, within);
            assert!(
                answer
                    .as_ref()
                    .is_ok_and(|(a, _)| a.server.to_string() == to_backend),
                "{what} on {node}: {answer:?}; datapath_drop_recirc_error {dropped_before:?} -> {:?}",
                drops()
            );
        }
    }
    // externalTrafficPolicy=Local: the node with the endpoint forwards, keeping the client IP.
    let (_, node_ip) = gateway_port(bed, &g.backend.node);
    let external = bed.netns("external");
    assert_reaches(
        &external,
        addr(&node_ip, g.local_port),
        &to_backend,
        EXTERNAL_IP,
        within,
    );
}

/// TCP connections from `from` to `dst` every 100 ms on a thread until dropped: how many
/// failed, and the first failure.
struct ContinuousProbe {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<(u32, u32, Option<String>)>>,
}

impl ContinuousProbe {
    fn start(from: String, dst: SocketAddr) -> ContinuousProbe {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let (mut ok, mut failed, mut first) = (0, 0, None);
            while !flag.load(Ordering::Relaxed) {
                match ask(&from, Proto::Tcp, dst, Duration::from_secs(1)) {
                    Ok(_) => ok += 1,
                    Err(e) => {
                        failed += 1;
                        first.get_or_insert_with(|| format!("{e} after {ok} answers"));
                    }
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            (ok, failed, first)
        });
        ContinuousProbe {
            stop,
            thread: Some(thread),
        }
    }

    /// Stops it: (answered, failed, first failure).
    fn finish(mut self) -> (u32, u32, Option<String>) {
        self.stop.store(true, Ordering::Relaxed);
        self.thread
            .take()
            .expect("running")
            .join()
            .expect("probe thread")
    }
}

impl Drop for ContinuousProbe {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// A node lost: `docker kill`, then (as Kubernetes' controllers would) its endpoints marked not
/// ready and the Node and its pods deleted through the API. Its NB rows go, the service stops
/// using its endpoint, and traffic among the surviving nodes never stops. The node comes back:
/// registered again, a new pod on it is reachable.
#[test]
fn node_lost_and_back() {
    let mut bed = DockerBed::up_with_nodes(Path::new(BIN), 3);
    let client = bed.add_pod("default", "client", "node1", "client");
    let b = bed.add_pod("default", "server-b", "node2", "web");
    let c = bed.add_pod("default", "server-c", "node3", "web");
    let _servers = serve(&bed, &[&b, &c]);
    bed.apply(&DockerBed::service("web", json!({"type": "ClusterIP"})));
    bed.apply(&DockerBed::endpoint_slice("web", &[(&b, true), (&c, true)]));
    let vip = addr(&bed.service_field("web", "{.spec.clusterIP}"), 80);
    let within = Duration::from_secs(20);
    let to_c = format!("{}:8080", c.ip);
    assert_pod_reaches(&bed, &client, &c);
    assert_pod_reaches(&bed, &client, &b);
    let node3_mgmt = bed.mgmt_ip("node3");
    assert!(
        !bed.node_rows("node3", &node3_mgmt).is_empty(),
        "node3 has rows in NB"
    );
    let lb_has = |bed: &DockerBed, backend: &str| {
        bed.nbctl(&["--bare", "--columns=vips", "list", "Load_Balancer"])
            .contains(backend)
    };
    assert!(lb_has(&bed, &to_c), "the service uses node3's endpoint");

    let pod_to_pod = ContinuousProbe::start(bed.pod_netns(&client), addr(&b.ip, 8080));
    bed.docker(&["kill", &e2e_common::docker::container("node3")]);
    bed.apply(&DockerBed::endpoint_slice(
        "web",
        &[(&b, true), (&c, false)],
    ));
    eventually("the service to drop node3's endpoint", within, || {
        !lb_has(&bed, &to_c)
    });
    // NB has it; node1's flows follow within moments: eight answers in a row (a dead backend
    // would fail every connection hashed to it) before the continuous probe starts.
    eventually("node1 to stop using node3's endpoint", within, || {
        (0..8).all(|_| {
            ask(
                &bed.pod_netns(&client),
                Proto::Tcp,
                vip,
                Duration::from_millis(500),
            )
            .is_ok()
        })
    });
    let through_service = ContinuousProbe::start(bed.pod_netns(&client), vip);
    bed.kubectl(&["delete", "pod", &c.name], None);
    bed.kubectl(&["delete", "node", "node3"], None);
    eventually("node3's rows to leave NB", within, || {
        bed.node_rows("node3", &node3_mgmt).is_empty()
    });
    assert!(
        bed.nbctl(&["--bare", "--columns=name", "list", "Logical_Switch_Port"])
            .lines()
            .all(|lsp| lsp != format!("default_{}", c.name)),
        "the deleted pod's port left NB"
    );
    // The surviving nodes' rows stay.
    for node in ["node1", "node2"] {
        let mgmt = bed.mgmt_ip(node);
        assert!(
            bed.node_rows(node, &mgmt).len() > 5,
            "{node}'s rows are still in NB"
        );
    }

    // The node comes back: same container, registered again, a new pod on it reachable.
    bed.docker(&["start", &e2e_common::docker::container("node3")]);
    bed.register_node("node3");
    bed.wait_node_ready("node3", Duration::from_secs(90));
    let c2 = bed.add_pod("default", "server-c2", "node3", "web");
    let _server_c2 = serve(&bed, &[&c2]);
    let to_c2 = format!("{}:8080", c2.ip);
    assert_pod_reaches(&bed, &client, &c2);
    assert_pod_reaches(&bed, &b, &c2);
    bed.apply(&DockerBed::endpoint_slice(
        "web",
        &[(&b, true), (&c2, true)],
    ));
    eventually("the service to use node3's new endpoint", within, || {
        lb_has(&bed, &to_c2)
    });

    for (what, probe) in [
        ("pod -> pod", pod_to_pod),
        ("pod -> service", through_service),
    ] {
        let (ok, failed, first) = probe.finish();
        assert!(ok > 10, "{what}: only {ok} answers");
        assert_eq!(
            failed, 0,
            "{what} among the surviving nodes failed: {first:?}"
        );
    }
}

/// Every pod address the controller has handed out, from the Pods' `k8s.ovn.org/pod-networks`.
fn allocated_pod_ips(bed: &DockerBed) -> Vec<String> {
    let pods: serde_json::Value =
        serde_json::from_str(&bed.kubectl(&["get", "pods", "-A", "-o", "json"], None))
            .expect("pod list JSON");
    pods["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|p| p["metadata"]["annotations"]["k8s.ovn.org/pod-networks"].as_str())
        .map(|a| {
            let networks: serde_json::Value = serde_json::from_str(a).expect("pod-networks JSON");
            networks["default"]["ip_address"]
                .as_str()
                .expect("an address")
                .to_string()
        })
        .collect()
}

/// The pods' logical switch ports in NB (`<namespace>_<name>`).
fn pod_ports(bed: &DockerBed) -> std::collections::BTreeSet<String> {
    bed.nbctl(&[
        "--bare",
        "--columns=name",
        "find",
        "Logical_Switch_Port",
        "external_ids:pod=true",
    ])
    .lines()
    .filter(|l| !l.is_empty())
    .map(String::from)
    .collect()
}

/// The controller killed (SIGKILL) while pods are being created and deleted: restarted (as the
/// kubelet restarts its container), it converges and hands no address out twice. Then the
/// central NB ovsdb-server restarted during churn: the controller reconnects and converges,
/// nothing lost.
#[test]
fn controller_and_nb_restarts_during_pod_churn() {
    let mut bed = DockerBed::up(Path::new(BIN));
    let client = bed.add_pod("default", "client", "node1", "client");
    let mut running = bed.add_deployment("first", "web", 10);
    let backend = running[1].clone();
    bed.apply(&DockerBed::service("web", json!({"type": "ClusterIP"})));
    bed.apply(&DockerBed::endpoint_slice("web", &[(&backend, true)]));
    let vip = addr(&bed.service_field("web", "{.spec.clusterIP}"), 80);
    let _server = serve(&bed, &[&backend]);
    let to_backend = format!("{}:8080", backend.ip);
    let node_rows_before: Vec<usize> = NODES
        .iter()
        .map(|n| bed.node_rows(n, &bed.mgmt_ip(n)).len())
        .collect();

    for round in ["controller", "nb"] {
        let created = bed.create_pods(round, "web", 20);
        match round {
            "controller" => {
                let controller_pid =
                    |bed: &DockerBed| bed.exec("central", &["cat", "/run/e2e/controller.pid"]);
                let before = controller_pid(&bed);
                bed.exec(
                    "central",
                    &["sh", "-c", "kill -9 $(cat /run/e2e/controller.pid)"],
                );
                eventually("the controller restarted", Duration::from_secs(10), || {
                    controller_pid(&bed) != before
                });
            }
            _ => {
                bed.exec("central", &["/e2e/central.sh", "restart-nb"]);
            }
        }
        // Churn on: the new pods start (CNI ADD waits for their addresses), old ones go.
        for (name, node, uid) in &created {
            let pod = bed
                .start_pod("default", name, node, uid)
                .unwrap_or_else(|e| panic!("{round} round: {e}"));
            running.push(pod);
        }
        for gone in running.drain(2..7).collect::<Vec<_>>() {
            bed.cni("DEL", &gone).unwrap_or_else(|e| panic!("{e}"));
            bed.kubectl(&["delete", "pod", &gone.name], None);
        }

        // Converged: exactly the running pods have ports, no address handed out twice, and
        // every pod answers.
        let mut want: std::collections::BTreeSet<String> = running
            .iter()
            .map(|p| format!("default_{}", p.name))
            .collect();
        want.insert(format!("default_{}", client.name));
        eventually(
            &format!("{round} round: NB pod ports"),
            Duration::from_secs(30),
            || pod_ports(&bed) == want,
        );
        let mut ips = allocated_pod_ips(&bed);
        let count = ips.len();
        ips.sort();
        ips.dedup();
        assert_eq!(
            ips.len(),
            count,
            "{round} round: an address handed out twice"
        );
        let addresses: Vec<&str> = running.iter().map(|p| p.ip.as_str()).collect();
        let missing = bed.unreachable_from(&client, &addresses, 10);
        assert!(
            missing.is_empty(),
            "{round} round: no answer from {missing:?}"
        );
        assert_reaches(
            &bed.pod_netns(&client),
            vip,
            &to_backend,
            &client.ip,
            Duration::from_secs(20),
        );
        let node_rows: Vec<usize> = NODES
            .iter()
            .map(|n| bed.node_rows(n, &bed.mgmt_ip(n)).len())
            .collect();
        assert_eq!(node_rows, node_rows_before, "{round} round: node rows");
    }
}

/// deploy/monitoring/ against the bed: Debian's Prometheus, on this host's loopback, scrapes the
/// controller and every node agent over the bed's network (ports as in e2e/docker/*.sh) while
/// they work, and every query of the Grafana dashboard returns data.
#[test]
fn prometheus_scrapes_the_controller_and_every_node_agent() {
    let mut bed = DockerBed::up(Path::new(BIN));
    let dir = std::env::temp_dir().join(format!("ovnkrs-e2e-prometheus-{}", std::process::id()));
    let node_targets = bed
        .nodes
        .iter()
        .map(|n| format!("{}:9410", bed.address(n)))
        .collect();
    let prometheus = Prometheus::start(
        &dir,
        None,
        "127.0.0.1:29091",
        &[
            (
                CONTROLLER_JOB,
                vec![format!("{}:9409", bed.address("central"))],
            ),
            (NODE_JOB, node_targets),
        ],
    );
    let every_node_up = format!(
        "count(up{{job=\"{NODE_JOB}\"}} == 1) == {}",
        bed.nodes.len()
    );
    for expr in [
        format!("up{{job=\"{CONTROLLER_JOB}\"}} == 1"),
        every_node_up,
    ] {
        prometheus.wait_for_data(&expr, Duration::from_secs(30));
    }
    // Work while Prometheus watches: pods on each node, a service, and one object the
    // controller must refuse (an externalIP that is no address), for the error panels.
    let a = bed.add_pod("default", "metrics-a", "node1", "a");
    let b = bed.add_pod("default", "metrics-b", "node2", "b");
    bed.apply(&DockerBed::service("metrics", json!({"type": "NodePort"})));
    bed.apply(&DockerBed::endpoint_slice(
        "metrics",
        &[(&a, true), (&b, true)],
    ));
    bed.apply(&DockerBed::service(
        "metrics-bad-ip",
        json!({"type": "ClusterIP", "externalIPs": ["300.1.2.3"]}),
    ));
    prometheus.wait_for_data(
        "increase(ovnkube_controller_nb_transactions_total[30s]) > 0",
        Duration::from_secs(30),
    );
    let without_data = prometheus.dashboard_queries_without_data(Duration::from_secs(30));
    assert!(
        without_data.is_empty(),
        "dashboard queries without data:\n{}",
        without_data.join("\n")
    );
    drop(prometheus);
    let _ = std::fs::remove_dir_all(&dir);
}
