//! The multi-node e2e bed in Docker (e2e/docker/README.md) with real packets: Geneve between
//! node containers, services whose only backend is on another node, a deployment spread over
//! the nodes, and the faults a cluster sees (a node lost and back, the controller and the NB
//! restarted during pod churn). Each test brings its own bed up (`hack/e2e-docker.sh up`) and
//! removes it on drop; one bed at a time.

mod e2e_common;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use e2e_common::docker::{BedPod, DockerBed};
use e2e_common::probe::{ask_until, PeerEcho, Proto};
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_ovnkube-rs");

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
    for (client, server) in [(&client1, &b), (&client2, &a)] {
        let to = format!("{}:8080", server.ip);
        assert_reaches(
            &bed.pod_netns(client),
            addr(&server.ip, 8080),
            &to,
            &client.ip,
            within,
        );
    }

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
}
