//! One test per desired-state rule, and bad input: the object is skipped with an error
//! naming it, the rest is still produced.

mod common;

use common::{microshift_config, seed_snapshot};
use k8s_openapi::api::core::v1::{Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use ovnkube_desired::names::*;
use ovnkube_desired::{desired_cluster, service_rows, Desired, NodeInfo, ServiceInfo, Snapshot};
use serde_json::{json, Value};

fn service(spec: Value) -> Service {
    serde_json::from_value(
        json!({"kind": "Service", "metadata": {"name": "web", "namespace": "ns"}, "spec": spec}),
    )
    .unwrap()
}

fn slice(name: &str, endpoints: Value, ports: Value) -> EndpointSlice {
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": "ns", "labels": {"kubernetes.io/service-name": "web"}},
        "addressType": "IPv4", "endpoints": endpoints, "ports": ports}))
    .unwrap()
}

fn seed_nodes() -> Vec<NodeInfo> {
    let config = microshift_config();
    seed_snapshot()
        .nodes
        .iter()
        .map(|n| NodeInfo::from_node(n, &config).unwrap())
        .collect()
}

/// Renders one service against the seed node; returns LB name → (vips, options).
fn lbs(spec: Value, slices: &[EndpointSlice]) -> Vec<(String, String, String)> {
    let info = ServiceInfo::from_service(&service(spec)).unwrap().unwrap();
    let d = service_rows(&microshift_config(), &info, slices, &seed_nodes()).unwrap();
    lb_list(&d)
}

fn lb_list(d: &Desired) -> Vec<(String, String, String)> {
    d.rows
        .iter()
        .filter(|(id, _)| id.table() == LOAD_BALANCER)
        .map(|(_, r)| {
            let c = &r.columns;
            (
                c["name"].to_string(),
                c["vips"].to_string(),
                c["options"].to_string(),
            )
        })
        .collect()
}

fn ready_endpoint(ip: &str) -> Value {
    json!({"addresses": [ip], "conditions": {"ready": true, "serving": true, "terminating": false}})
}

#[test]
fn bad_services_are_skipped_with_an_error_naming_them() {
    let cases = [
        (
            json!({"clusterIP": "10.43.0.300", "ports": [{"port": 80}]}),
            "clusterIP \"10.43.0.300\" is not a valid IP address",
        ),
        (
            json!({"clusterIP": "10.43.0.20", "ports": [{"port": 0}]}),
            "port 0 is not in 1..=65535",
        ),
        (
            json!({"clusterIP": "10.43.0.20", "ports": [{"port": 80, "protocol": "ICMP"}]}),
            "unknown protocol \"ICMP\"",
        ),
        (
            json!({"clusterIP": "fd00::20", "ports": [{"port": 80}]}),
            "IPv6 in an IPv4 cluster",
        ),
        (
            json!({"clusterIP": "10.43.0.20", "externalIPs": ["nope"], "ports": [{"port": 80}]}),
            "externalIP \"nope\"",
        ),
    ];
    for (spec, want) in cases {
        let mut snap = seed_snapshot();
        snap.services.push(service(spec));
        let (d, errors) = desired_cluster(&microshift_config(), &snap);
        assert_eq!(errors.len(), 1, "{errors:?}");
        let msg = errors[0].to_string();
        assert!(
            msg.starts_with("Service ns/web: ") && msg.contains(want),
            "{msg}"
        );
        // The rest of the cluster is still there.
        assert!(d
            .named_row(LOAD_BALANCER, "Service_default/svc-nodeport_TCP_cluster")
            .is_some());
        assert!(d.named_row(LOGICAL_ROUTER, "GR_microshift-dev").is_some());
    }
}

#[test]
fn headless_and_external_name_services_have_no_load_balancers() {
    for spec in [
        json!({"clusterIP": "None", "ports": [{"port": 80}]}),
        json!({"type": "ExternalName", "externalName": "x.example"}),
    ] {
        assert!(ServiceInfo::from_service(&service(spec)).unwrap().is_none());
    }
}

fn annotated_node(key: &str, value: Option<&str>) -> Node {
    let mut node = seed_snapshot().nodes.remove(0);
    let ann = node.metadata.annotations.as_mut().unwrap();
    match value {
        Some(v) => ann.insert(key.into(), v.into()),
        None => ann.remove(key),
    };
    node.metadata.name = Some("bad-node".into());
    node
}

#[test]
fn malformed_node_annotations_skip_the_node_only() {
    let cases = [
        (
            "k8s.ovn.org/node-subnets",
            Some("{not json"),
            "malformed JSON",
        ),
        (
            "k8s.ovn.org/node-subnets",
            Some(r#"{"default":["fd00:42::/64"]}"#),
            "IPv6 in an IPv4 cluster",
        ),
        (
            "k8s.ovn.org/node-subnets",
            Some(r#"{"default":["192.168.0.0/24"]}"#),
            "outside every cluster subnet",
        ),
        (
            "k8s.ovn.org/node-mgmt-port-mac-address",
            Some("76:3a"),
            "is not a MAC address",
        ),
        (
            "k8s.ovn.org/node-gateway-router-lrp-ifaddr",
            Some(r#"{"ipv4":"10.0.0.2/16"}"#),
            "outside the join subnet",
        ),
        (
            "k8s.ovn.org/l3-gateway-config",
            Some(
                r#"{"default":{"mode":"local","interface-id":"br-ex_n","mac-address":"zz","ip-addresses":["1.2.3.4/24"]}}"#,
            ),
            "is not a MAC address",
        ),
        (
            "k8s.ovn.org/l3-gateway-config",
            Some(
                r#"{"default":{"mode":"local","interface-id":"br-ex_n","mac-address":"52:54:00:e2:ed:d0","ip-addresses":["fd00::4/64"]}}"#,
            ),
            "IPv6 in an IPv4 cluster",
        ),
        (
            "k8s.ovn.org/node-chassis-id",
            None,
            "missing (not ready yet)",
        ),
    ];
    for (key, value, want) in cases {
        let mut snap = seed_snapshot();
        snap.nodes.push(annotated_node(key, value));
        let (d, errors) = desired_cluster(&microshift_config(), &snap);
        assert_eq!(errors.len(), 1, "{key}: {errors:?}");
        let msg = errors[0].to_string();
        assert!(
            msg.starts_with("Node bad-node: annotation ")
                && msg.contains(key)
                && msg.contains(want),
            "{msg}"
        );
        assert!(d.named_row(LOGICAL_SWITCH, "bad-node").is_none());
        assert!(d.named_row(LOGICAL_SWITCH, "microshift-dev").is_some());
    }
}

#[test]
fn disabled_gateway_gives_a_switch_without_gr() {
    let node = annotated_node(
        "k8s.ovn.org/l3-gateway-config",
        Some(r#"{"default":{"mode":""}}"#),
    );
    let info = NodeInfo::from_node(&node, &microshift_config()).unwrap();
    let d = ovnkube_desired::node_rows(&microshift_config(), &info);
    assert!(d.named_row(LOGICAL_SWITCH, "bad-node").is_some());
    assert!(d.named_row(LOGICAL_ROUTER, "GR_bad-node").is_none());
    assert!(d.named_row(LOGICAL_SWITCH, "ext_bad-node").is_none());
}

#[test]
fn bad_pods_are_skipped_with_an_error_naming_them() {
    let pod = |ann: Option<&str>, node: &str| -> Pod {
        let mut annotations = serde_json::Map::new();
        if let Some(a) = ann {
            annotations.insert("k8s.ovn.org/pod-networks".into(), json!(a));
        }
        serde_json::from_value(
            json!({"metadata": {"name": "p", "namespace": "ns", "annotations": annotations},
            "spec": {"nodeName": node, "containers": []}, "status": {"phase": "Running"}}),
        )
        .unwrap()
    };
    let cases = [
        (pod(None, "microshift-dev"), "is missing"),
        (
            pod(
                Some(
                    r#"{"default":{"ip_addresses":["fd00::5/64"],"mac_address":"0a:58:0a:2a:00:05"}}"#,
                ),
                "microshift-dev",
            ),
            "IPv6 in an IPv4 cluster",
        ),
        (
            pod(
                Some(
                    r#"{"default":{"ip_addresses":["10.42.1.5/24"],"mac_address":"0a:58:0a:2a:01:05"}}"#,
                ),
                "microshift-dev",
            ),
            "outside the subnet 10.42.0.0/24",
        ),
        (
            pod(
                Some(r#"{"default":{"ip_addresses":["10.42.0.50/24"],"mac_address":"x"}}"#),
                "microshift-dev",
            ),
            "not a MAC address",
        ),
        (
            pod(
                Some(
                    r#"{"default":{"ip_addresses":["10.42.0.50/24"],"mac_address":"0a:58:0a:2a:00:32"}}"#,
                ),
                "ghost",
            ),
            "node ghost is unknown",
        ),
    ];
    for (p, want) in cases {
        let mut snap = seed_snapshot();
        snap.pods.push(p);
        let (d, errors) = desired_cluster(&microshift_config(), &snap);
        assert_eq!(errors.len(), 1, "{errors:?}");
        let msg = errors[0].to_string();
        assert!(msg.starts_with("Pod ns/p: ") && msg.contains(want), "{msg}");
        assert!(d.named_row(LOGICAL_SWITCH_PORT, "default_pod-1").is_some());
    }
}

#[test]
fn completed_and_unscheduled_pods_have_no_port() {
    let mut snap = seed_snapshot();
    for p in snap
        .pods
        .iter_mut()
        .filter(|p| p.metadata.name.as_deref() == Some("pod-1"))
    {
        p.status.as_mut().unwrap().phase = Some("Succeeded".into());
    }
    for p in snap
        .pods
        .iter_mut()
        .filter(|p| p.metadata.name.as_deref() == Some("pod-2"))
    {
        p.spec.as_mut().unwrap().node_name = None;
    }
    let (d, errors) = desired_cluster(&microshift_config(), &snap);
    assert!(errors.is_empty());
    assert!(d.named_row(LOGICAL_SWITCH_PORT, "default_pod-1").is_none());
    assert!(d.named_row(LOGICAL_SWITCH_PORT, "default_pod-2").is_none());
}

#[test]
fn services_without_endpoints_reject() {
    let got = lbs(
        json!({"clusterIP": "10.43.0.20", "ports": [{"port": 80}]}),
        &[],
    );
    assert_eq!(
        got,
        [(
            "Service_ns/web_TCP_cluster".into(),
            "{10.43.0.20:80=}".into(),
            "{event=false, reject=true, skip_snat=false}".into()
        )]
    );
}

#[test]
fn endpoint_selection_follows_serving_then_ready() {
    let eps = json!([
        ready_endpoint("10.42.0.20"),
        {"addresses": ["10.42.0.21"], "conditions": {"ready": false, "serving": true, "terminating": true}},
        {"addresses": ["10.42.0.22"], "conditions": {"ready": false, "serving": false, "terminating": true}},
        {"addresses": ["10.42.0.23"], "conditions": {"ready": false}},
        {"addresses": ["10.42.0.24"]}
    ]);
    let s = slice(
        "web-1",
        eps,
        json!([{"name": "", "port": 8080, "protocol": "TCP"}]),
    );
    let got = lbs(
        json!({"clusterIP": "10.43.0.20", "ports": [{"port": 80}]}),
        std::slice::from_ref(&s),
    );
    assert_eq!(
        got[0].1,
        "{10.43.0.20:80=10.42.0.20:8080,10.42.0.21:8080,10.42.0.24:8080}"
    );
    let got = lbs(
        json!({"clusterIP": "10.43.0.20", "publishNotReadyAddresses": true, "ports": [{"port": 80}]}),
        &[s],
    );
    assert_eq!(got[0].1, "{10.43.0.20:80=10.42.0.20:8080,10.42.0.21:8080,10.42.0.22:8080,10.42.0.23:8080,10.42.0.24:8080}");
}

#[test]
fn named_ports_pick_their_slice_port_and_protocol() {
    let s = slice(
        "web-1",
        json!([ready_endpoint("10.42.0.20")]),
        json!([{"name": "http", "port": 8080, "protocol": "TCP"}, {"name": "dns", "port": 5353, "protocol": "UDP"}]),
    );
    let got = lbs(
        json!({"clusterIP": "10.43.0.20", "ports": [{"name": "http", "port": 80}, {"name": "dns", "port": 53, "protocol": "UDP"}, {"name": "other", "port": 81}]}),
        &[s],
    );
    assert_eq!(got.len(), 2);
    assert_eq!(
        got[0],
        (
            "Service_ns/web_TCP_cluster".into(),
            "{10.43.0.20:80=10.42.0.20:8080, 10.43.0.20:81=}".into(),
            "{event=false, reject=true, skip_snat=false}".into()
        )
    );
    assert_eq!(got[1].0, "Service_ns/web_UDP_cluster");
    assert_eq!(got[1].1, "{10.43.0.20:53=10.42.0.20:5353}");
}

#[test]
fn external_ips_and_load_balancer_ingress_join_the_cluster_vips() {
    let s = slice(
        "web-1",
        json!([ready_endpoint("10.42.0.20")]),
        json!([{"name": "", "port": 8080}]),
    );
    let mut svc = service(
        json!({"type": "LoadBalancer", "clusterIP": "10.43.0.20", "externalIPs": ["192.0.2.10"], "ports": [{"port": 80, "nodePort": 31000}]}),
    );
    svc.status = Some(
        serde_json::from_value(json!({"loadBalancer": {"ingress": [{"ip": "198.51.100.7"}]}}))
            .unwrap(),
    );
    let info = ServiceInfo::from_service(&svc).unwrap().unwrap();
    let d = service_rows(&microshift_config(), &info, &[s], &seed_nodes()).unwrap();
    let got = lb_list(&d);
    assert_eq!(got[0].0, "Service_ns/web_TCP_cluster");
    assert_eq!(got[0].1, "{10.43.0.20:80=10.42.0.20:8080, 192.0.2.10:80=10.42.0.20:8080, 198.51.100.7:80=10.42.0.20:8080}");
    assert_eq!(
        got[1].0,
        "Service_ns/web_TCP_node_router+switch_microshift-dev"
    );
    assert_eq!(got[1].1, "{192.168.122.14:31000=10.42.0.20:8080}");
}

#[test]
fn etp_local_nodeport_gets_local_router_lb_and_masquerade_vip() {
    let s = slice(
        "web-1",
        json!([ready_endpoint("10.42.0.20"), ready_endpoint("10.42.9.9")]),
        json!([{"name": "", "port": 8080}]),
    );
    let got = lbs(
        json!({"type": "NodePort", "clusterIP": "10.43.0.20", "externalTrafficPolicy": "Local", "externalIPs": ["192.0.2.10"], "ports": [{"port": 80, "nodePort": 31000}]}),
        &[s],
    );
    let names: Vec<&str> = got.iter().map(|g| g.0.as_str()).collect();
    assert_eq!(
        names,
        [
            "Service_ns/web_TCP_cluster",
            "Service_ns/web_TCP_node_local_router_microshift-dev",
            "Service_ns/web_TCP_node_switch_microshift-dev"
        ]
    );
    assert_eq!(
        got[0].1, "{10.43.0.20:80=10.42.0.20:8080,10.42.9.9:8080}",
        "ETP does not touch the cluster IP"
    );
    assert_eq!(
        got[1].1,
        "{192.0.2.10:80=10.42.0.20:8080, 192.168.122.14:31000=10.42.0.20:8080}"
    );
    assert!(got[1].2.contains("skip_snat=true"));
    assert_eq!(
        got[2].1,
        "{169.254.169.3:31000=10.42.0.20:8080, 192.0.2.10:80=10.42.0.20:8080,10.42.9.9:8080, 192.168.122.14:31000=10.42.0.20:8080,10.42.9.9:8080}"
    );
}

#[test]
fn itp_local_keeps_local_endpoints_on_the_switch() {
    let s = slice(
        "web-1",
        json!([ready_endpoint("10.42.0.20"), ready_endpoint("10.42.9.9")]),
        json!([{"name": "", "port": 8080}]),
    );
    let got = lbs(
        json!({"clusterIP": "10.43.0.20", "internalTrafficPolicy": "Local", "ports": [{"port": 80}]}),
        &[s],
    );
    let names: Vec<&str> = got.iter().map(|g| g.0.as_str()).collect();
    assert_eq!(
        names,
        [
            "Service_ns/web_TCP_node_router_microshift-dev",
            "Service_ns/web_TCP_node_switch_microshift-dev"
        ]
    );
    assert_eq!(got[0].1, "{10.43.0.20:80=10.42.0.20:8080,10.42.9.9:8080}");
    assert_eq!(got[1].1, "{10.43.0.20:80=10.42.0.20:8080}");
}

#[test]
fn client_ip_affinity_sets_the_timeout() {
    let got = lbs(
        json!({"clusterIP": "10.43.0.20", "sessionAffinity": "ClientIP", "ports": [{"port": 80}]}),
        &[],
    );
    assert_eq!(
        got[0].2,
        "{affinity_timeout=10800, event=false, reject=true, skip_snat=false}"
    );
    let got = lbs(
        json!({"clusterIP": "10.43.0.20", "sessionAffinity": "ClientIP", "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 60}}, "ports": [{"port": 80}]}),
        &[],
    );
    assert!(got[0].2.starts_with("{affinity_timeout=60,"));
}

#[test]
fn kind_list_and_unknown_kinds() {
    let (s, other, errors) = Snapshot::from_objects([
        json!({"kind": "List", "items": [{"kind": "Namespace", "metadata": {"name": "x"}}, {"kind": "Node", "metadata": {"name": "n"}}]}),
        json!({"kind": "Service", "metadata": {"name": "bad"}, "spec": {"ports": "not a list"}}),
    ]);
    assert_eq!(s.nodes.len(), 1);
    assert_eq!(other.get("Namespace"), Some(&1));
    assert_eq!(errors.len(), 1);
    assert!(errors[0]
        .to_string()
        .starts_with("Service bad: does not decode"));
}

#[test]
fn microshift_4_14_layout_reaches_the_10_44_apiserver_through_the_masquerade_address() {
    // 4.14: br-ex has no uplink and 10.44.0.0/32 is the node's gateway address.
    let l3 = r#"{"default":{"mode":"local","interface-id":"br-ex_microshift-dev","mac-address":"0a:59:00:00:00:01","ip-addresses":["10.44.0.0/32"],"ip-address":"10.44.0.0/32","next-hops":["169.254.169.4"],"next-hop":"169.254.169.4","node-port-enable":"true","vlan-id":"0"}}"#;
    let mut snap = seed_snapshot();
    let ann = snap.nodes[0].metadata.annotations.as_mut().unwrap();
    ann.insert("k8s.ovn.org/l3-gateway-config".into(), l3.into());
    let (d, errors) = desired_cluster(&microshift_config(), &snap);
    assert!(errors.is_empty(), "{errors:?}");
    let sw = d
        .named_row(
            LOAD_BALANCER,
            "Service_default/kubernetes_TCP_node_switch_microshift-dev",
        )
        .unwrap();
    assert_eq!(sw["vips"].to_string(), "{10.43.0.1:443=10.44.0.0:6443}");
    let gr = d
        .named_row(
            LOAD_BALANCER,
            "Service_default/kubernetes_TCP_node_router_microshift-dev",
        )
        .unwrap();
    assert_eq!(gr["vips"].to_string(), "{10.43.0.1:443=169.254.169.2:6443}");
    // The GR's default route goes to the dummy next hop, NodePorts live on 10.44.0.0.
    let np = d
        .named_row(
            LOAD_BALANCER,
            "Service_default/svc-nodeport_TCP_node_router+switch_microshift-dev",
        )
        .unwrap();
    assert_eq!(np["vips"].to_string(), "{10.44.0.0:30700=10.42.0.13:8080}");
}
