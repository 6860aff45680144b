//! Lifecycle through the API with real packets: a Service created through kubectl is reachable,
//! follows its EndpointSlice when the endpoints move, rejects (TCP reset) when it has none and
//! disappears when deleted; a deleted pod loses its LSP and address (CNI CHECK passes before its
//! DEL, fails after), a new pod is wired and reachable.

mod e2e_common;

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use e2e_common::probe::{ask, ask_until, PeerEcho, Proto};
use e2e_common::{eventually, E2eLab};

const BIN: &str = env!("CARGO_BIN_EXE_ovnkube-rs");

const VIP: &str = "10.43.50.50:80";

/// The `web` Service (selector-less, so the test owns its EndpointSlice).
const SERVICE: &str = r#"{"apiVersion":"v1","kind":"Service",
 "metadata":{"namespace":"default","name":"web"},
 "spec":{"type":"ClusterIP","clusterIP":"10.43.50.50","clusterIPs":["10.43.50.50"],
         "ports":[{"name":"http","port":80,"protocol":"TCP","targetPort":8080}]}}"#;

/// web's EndpointSlice with the given ready endpoints.
fn endpoint_slice(ips: &[&str]) -> String {
    let endpoints: Vec<serde_json::Value> = ips
        .iter()
        .map(|ip| serde_json::json!({"addresses": [ip], "conditions": {"ready": true}}))
        .collect();
    serde_json::json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"namespace": "default", "name": "web-1",
                     "labels": {"kubernetes.io/service-name": "web"}},
        "addressType": "IPv4",
        "endpoints": endpoints,
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]
    })
    .to_string()
}

/// The backend that answers on the VIP from `client`, waiting until it is `expected`.
fn wait_for_backend(client: &str, expected: &str) -> Duration {
    let vip: SocketAddr = VIP.parse().unwrap();
    let start = Instant::now();
    eventually(
        &format!("{VIP} to be served by {expected}"),
        Duration::from_secs(20),
        || {
            ask(client, Proto::Tcp, vip, Duration::from_millis(500)).is_ok_and(|a| {
                a.server.to_string() == expected && a.peer.ip().to_string() == "10.42.0.12"
            })
        },
    );
    start.elapsed()
}

#[test]
fn service_and_pod_lifecycle_through_the_api() {
    let mut lab = E2eLab::start(std::path::Path::new(BIN));
    let client = lab.add_running_pod("default", "pod-1");
    let pod2 = lab.add_running_pod("default", "pod-2");
    let dns = lab.add_running_pod("openshift-dns", "dns-default-pt2vr");
    // CHECK on a wired pod succeeds (the runtime's periodic check).
    lab.cni("CHECK", &pod2).unwrap_or_else(|e| panic!("{e}"));
    let any = SocketAddr::from(([0, 0, 0, 0], 8080));
    let servers = [
        PeerEcho::start(&pod2.netns, Proto::Tcp, any),
        PeerEcho::start(&dns.netns, Proto::Tcp, any),
    ];

    // Created: reachable on its cluster IP, served by pod-2, the client's address preserved.
    lab.kubectl(&["apply", "-f", "-"], Some(SERVICE));
    lab.kubectl(
        &["apply", "-f", "-"],
        Some(&endpoint_slice(&["10.42.0.13"])),
    );
    let took = wait_for_backend(&client.netns, "10.42.0.13:8080");
    assert!(
        lab.nbctl(&["--columns=name", "list", "Load_Balancer"])
            .contains("Service_default/web_TCP_cluster"),
        "web's cluster load balancer is in NB"
    );
    eprintln!(
        "service created -> first connection: {:.0} ms",
        took.as_secs_f64() * 1e3
    );

    // Endpoints move to the DNS pod: new connections follow.
    lab.kubectl(&["apply", "-f", "-"], Some(&endpoint_slice(&["10.42.0.7"])));
    let took = wait_for_backend(&client.netns, "10.42.0.7:8080");
    eprintln!(
        "endpoints moved -> served by the new backend: {:.0} ms",
        took.as_secs_f64() * 1e3
    );

    // No endpoints: the load balancer rejects (reject=true), so the client gets a TCP reset.
    lab.kubectl(&["apply", "-f", "-"], Some(&endpoint_slice(&[])));
    let vip: SocketAddr = VIP.parse().unwrap();
    eventually(
        "a TCP reset from the VIP without endpoints",
        Duration::from_secs(20),
        || {
            ask(&client.netns, Proto::Tcp, vip, Duration::from_millis(500))
                .is_err_and(|e| e.kind() == ErrorKind::ConnectionRefused)
        },
    );

    // Deleted: its load balancer leaves NB and nothing answers on the VIP.
    lab.kubectl(
        &["apply", "-f", "-"],
        Some(&endpoint_slice(&["10.42.0.13"])),
    );
    wait_for_backend(&client.netns, "10.42.0.13:8080");
    lab.kubectl(&["-n", "default", "delete", "service", "web"], None);
    lab.kubectl(&["-n", "default", "delete", "endpointslice", "web-1"], None);
    eventually(
        "web's load balancer to leave NB",
        Duration::from_secs(20),
        || {
            !lab.nbctl(&["--columns=name", "list", "Load_Balancer"])
                .contains("default/web")
        },
    );
    assert!(
        ask_until(&client.netns, Proto::Tcp, vip, Duration::from_secs(1)).is_err(),
        "{VIP} still answers after the Service was deleted"
    );

    // A pod deleted: its LSP and address leave NB; CNI DEL unplugs it.
    lab.kubectl(&["-n", "default", "delete", "pod", "pod-2"], None);
    eventually(
        "default_pod-2's LSP to leave NB",
        Duration::from_secs(20),
        || {
            let lsps = lab.nbctl(&["--columns=name,addresses", "list", "Logical_Switch_Port"]);
            !lsps.contains("default_pod-2") && !lsps.contains("10.42.0.13")
        },
    );
    lab.cni("DEL", &pod2).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        lab.cni("CHECK", &pod2).is_err(),
        "CHECK passes for a pod that was deleted"
    );
    assert!(ask(
        &client.netns,
        Proto::Tcp,
        "10.42.0.13:8080".parse().unwrap(),
        Duration::from_millis(500)
    )
    .is_err());

    // A pod created through the API: the controller allocates, the plugin wires, pod-1 reaches it.
    let created = Instant::now();
    lab.kubectl(
        &["apply", "-f", "-"],
        Some(r#"{"apiVersion":"v1","kind":"Pod","metadata":{"namespace":"default","name":"pod-3"},
                 "spec":{"nodeName":"microshift-dev","containers":[{"name":"main","image":"none"}]}}"#),
    );
    let pod3 = lab.add_running_pod("default", "pod-3");
    let ip = lab.kubectl(
        &[
            "-n",
            "default",
            "get",
            "pod",
            "pod-3",
            "-o",
            "jsonpath={.metadata.annotations.k8s\\.ovn\\.org/pod-networks}",
        ],
        None,
    );
    let net: serde_json::Value = serde_json::from_str(&ip).expect("pod-networks annotation");
    let addr = net["default"]["ip_address"].as_str().expect("ip_address");
    let ip = addr.split('/').next().unwrap().to_string();
    let _server = PeerEcho::start(&pod3.netns, Proto::Tcp, any);
    let dst: SocketAddr = format!("{ip}:8080").parse().unwrap();
    let (answer, _) = ask_until(&client.netns, Proto::Tcp, dst, Duration::from_secs(15))
        .unwrap_or_else(|e| panic!("pod-1 -> new pod-3 at {dst}: {e}"));
    assert_eq!(answer.peer.ip().to_string(), "10.42.0.12");
    eprintln!(
        "pod created -> first connection from pod-1: {:.0} ms",
        created.elapsed().as_secs_f64() * 1e3
    );
    drop(servers);
    assert!(
        lab.daemons_alive(),
        "an ovnkube-rs daemon exited; see {}",
        lab.node.dir().display()
    );
}
