//! `ovnkube-rs controller` as a process against a real NB (ovn-testlab) and the Kubernetes API
//! test server loaded with the seed's cluster: it converges to the rows `sync` would write,
//! follows API changes, writes nothing after a restart on a converged NB, and survives watch
//! expiry and bad input.

mod common;

use std::time::Duration;

use common::{wait_until, Cluster};
use k8s_openapi::api::core::v1::{Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, DeleteParams, PostParams};
use ovn_testlab::Lab;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controller_converges_follows_changes_and_restarts_without_writes() {
    let mut lab = Lab::new().unwrap();
    let nb_id = lab.start_nb().unwrap();
    let sb_id = lab.start_sb().unwrap();
    lab.start_northd(nb_id, sb_id).unwrap();
    let nb = lab.server(nb_id).unix_remote();
    let sb = lab.server(sb_id).unix_remote();
    let cluster = Cluster::with_seed(lab).await;
    let client = cluster.client.clone();
    let nbctl = |args: &[&str]| cluster.nbctl(&nb, args);

    // 1. Cold start on an empty NB: the rows `sync` would write for the same objects.
    let sb_flag = format!("--sb-address={sb}");
    let first = cluster.spawn_controller(&nb, "1", &["--leader-election=false", &sb_flag]);
    first.wait_ready(Duration::from_secs(60)).await;
    assert!(first.nb_operations() > 0.0);
    assert_eq!(
        cluster.sync_against_api(&nb).await,
        "0 operations",
        "controller and sync disagree; see {}",
        first.log.display()
    );
    // ... and, once ovn-northd made the GR's datapath, the SB binding of its dummy next hop.
    wait_until(
        "the GR next-hop MAC_Binding",
        Duration::from_secs(15),
        || {
            cluster
                .lab
                .sbctl(
                    &sb,
                    &[
                        "--bare",
                        "--columns=mac,ip",
                        "find",
                        "MAC_Binding",
                        "logical_port=rtoe-GR_microshift-dev",
                    ],
                )
                .unwrap_or_default()
                .contains("0a:58:a9:fe:a9:04")
        },
    )
    .await;

    // 2. A Service with an EndpointSlice appears, then goes away.
    let services: Api<Service> = Api::namespaced(client.clone(), "default");
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), "default");
    let svc: Service = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"type": "ClusterIP", "selector": {"app": "web"},
                 "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}]}
    }))
    .unwrap();
    let svc = services.create(&PostParams::default(), &svc).await.unwrap();
    let cluster_ip = svc.spec.unwrap().cluster_ip.unwrap();
    let slice: EndpointSlice = serde_json::from_value(json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "web-1", "namespace": "default",
                     "labels": {"kubernetes.io/service-name": "web"}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": ["10.42.0.13"], "conditions": {"ready": true}}],
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]
    }))
    .unwrap();
    slices.create(&PostParams::default(), &slice).await.unwrap();
    let vip = format!("{cluster_ip}:80");
    wait_until("the web LB", Duration::from_secs(10), || {
        nbctl(&[
            "--bare",
            "--columns=vips",
            "find",
            "Load_Balancer",
            "external_ids:k8s.ovn.org/owner=default/web",
        ])
        .contains(&format!("{vip}=10.42.0.13:8080"))
    })
    .await;
    let ls_lbs = nbctl(&["ls-lb-list", "microshift-dev"]);
    assert!(ls_lbs.contains(&vip), "{ls_lbs}");
    services
        .delete("web", &DeleteParams::default())
        .await
        .unwrap();
    wait_until("the web LB to go", Duration::from_secs(10), || {
        nbctl(&[
            "--bare",
            "--columns=name",
            "find",
            "Load_Balancer",
            "external_ids:k8s.ovn.org/owner=default/web",
        ])
        .trim()
        .is_empty()
    })
    .await;

    // 3. A pod without an address gets one (annotation first), then its LSP.
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let pod: Pod = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "pod-3", "namespace": "default"},
        "spec": {"nodeName": "microshift-dev", "containers": [{"name": "c", "image": "x"}]},
        "status": {"phase": "Pending"}
    }))
    .unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();
    let mut annotated = String::new();
    for _ in 0..200 {
        let p = pods.get("pod-3").await.unwrap();
        if let Some(a) = p
            .metadata
            .annotations
            .and_then(|a| a.get("k8s.ovn.org/pod-networks").cloned())
        {
            annotated = a;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let network: serde_json::Value =
        serde_json::from_str(&annotated).expect("pod-networks annotation");
    let ip = network["default"]["ip_address"]
        .as_str()
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    let taken = [
        "10.42.0.4",
        "10.42.0.5",
        "10.42.0.7",
        "10.42.0.12",
        "10.42.0.13",
    ];
    assert!(!taken.contains(&ip.as_str()), "{ip} was already in use");
    let mac = network["default"]["mac_address"]
        .as_str()
        .unwrap()
        .to_owned();
    wait_until("the pod-3 LSP", Duration::from_secs(10), || {
        nbctl(&[
            "--if-exists",
            "get",
            "Logical_Switch_Port",
            "default_pod-3",
            "addresses",
        ])
        .contains(&format!("{mac} {ip}"))
    })
    .await;
    pods.delete("pod-3", &DeleteParams::default())
        .await
        .unwrap();
    wait_until("the pod-3 LSP to go", Duration::from_secs(10), || {
        nbctl(&[
            "--bare",
            "--columns=name",
            "find",
            "Logical_Switch_Port",
            "name=default_pod-3",
        ])
        .trim()
        .is_empty()
    })
    .await;

    // (Bad input is covered by controller_faults.rs, where it must produce Events.)
    // 4. Watch expiry: the controller relists and writes nothing new for unchanged objects.
    // (NB shows a transaction before the controller has counted its operations: wait first.)
    first.wait_quiet(Duration::from_secs(30)).await;
    let before = first.nb_operations();
    cluster.api.expire_watches();
    cluster.api.close_watches();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(first.nb_operations(), before);
    drop(first);

    // 5. Restart on the converged NB: zero write operations.
    let second = cluster.start_controller(&nb, "2").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        second.nb_operations(),
        0.0,
        "restart rewrote rows; see {}",
        second.log.display()
    );

    // 6. The node goes away: every row of it leaves NB.
    let nodes: Api<Node> = Api::all(client.clone());
    nodes
        .delete("microshift-dev", &DeleteParams::default())
        .await
        .unwrap();
    wait_until("the node's rows to go", Duration::from_secs(10), || {
        let switches = nbctl(&["ls-list"]);
        let routers = nbctl(&["lr-list"]);
        !switches.contains("microshift-dev") && !routers.contains("GR_microshift-dev")
    })
    .await;
    let routes = nbctl(&["lr-route-list", "ovn_cluster_router"]);
    assert!(!routes.contains("10.42.0.0/24"), "{routes}");
    let policies = nbctl(&["lr-policy-list", "ovn_cluster_router"]);
    assert!(!policies.contains("rtos-microshift-dev"), "{policies}");
    let log = second.log_text();
    assert!(!log.contains("panicked"), "{log}");
}
