//! The generated cluster: nodes with every annotation the node agent and the controller write,
//! pods with `pod-networks` annotations, ClusterIP Services and their EndpointSlices, as the
//! JSON objects the API test server loads at start.

use std::net::Ipv4Addr;

use ovnkube_desired::annotations::{encode_pod_networks, PodNetwork};
use ovnkube_desired::net::Ipv4Cidr;
use ovnkube_desired::Config;
use serde_json::{json, Value};

/// How big the cluster is.
#[derive(Debug, Clone, Copy)]
pub struct Size {
    pub nodes: usize,
    pub pods: usize,
    pub services: usize,
    pub endpoints_per_service: usize,
}

/// Namespaces the pods and services are spread over.
const NAMESPACES: usize = 50;

/// One EndpointSlice the churn patches: where it is and what it holds.
#[derive(Debug, Clone)]
pub struct SliceRef {
    pub namespace: String,
    pub name: String,
    /// `namespace/service`, the `k8s.ovn.org/owner` of the service's load balancer.
    pub owner: String,
    /// The endpoint addresses it holds now.
    pub addresses: Vec<String>,
}

/// The objects, and the slices the churn works on.
pub struct Generated {
    pub objects: Vec<Value>,
    pub slices: Vec<SliceRef>,
}

fn node_name(i: usize) -> String {
    format!("node-{i:03}")
}

/// The node's host address (data only: nothing is ever sent to it).
fn host_ip(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(172, 20, (i / 250) as u8, (i % 250 + 2) as u8)
}

fn pod_ip(node: usize, j: usize) -> Ipv4Addr {
    Ipv4Addr::new(10, 42, node as u8, (j + 3) as u8)
}

fn node(i: usize) -> Value {
    let name = node_name(i);
    let ip = host_ip(i);
    let o = ip.octets();
    let gateway = json!({"default": {
        "mode": "local", "interface-id": format!("br-ex_{name}"),
        "mac-address": format!("52:54:00:14:{:02x}:{:02x}", o[2], o[3]),
        "ip-addresses": [format!("{ip}/16")], "ip-address": format!("{ip}/16"),
        "next-hops": ["172.20.255.254"], "next-hop": "172.20.255.254",
        "node-port-enable": "true", "vlan-id": "0"}});
    json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name},
            "annotations": {
                "k8s.ovn.org/host-addresses": json!([ip.to_string()]).to_string(),
                "k8s.ovn.org/l3-gateway-config": gateway.to_string(),
                "k8s.ovn.org/node-chassis-id": format!("00000000-0000-4000-8000-{i:012}"),
                "k8s.ovn.org/node-gateway-router-lrp-ifaddr":
                    json!({"ipv4": format!("100.64.{}.{}/16", (i + 2) / 256, (i + 2) % 256)}).to_string(),
                "k8s.ovn.org/node-id": (i + 2).to_string(),
                "k8s.ovn.org/node-mgmt-port-mac-address": format!("76:3a:81:5a:{:02x}:{:02x}", i / 256, i % 256),
                "k8s.ovn.org/node-primary-ifaddr": json!({"ipv4": format!("{ip}/16")}).to_string(),
                "k8s.ovn.org/node-subnets": json!({"default": [format!("10.42.{i}.0/24")]}).to_string(),
                "k8s.ovn.org/zone-name": "global"
            }},
        "spec": {},
        "status": {"addresses": [{"address": ip.to_string(), "type": "InternalIP"},
                                 {"address": name, "type": "Hostname"}]}
    })
}

/// `pod-networks` as the controller writes it (MicroShift's default configuration).
fn pod_networks(ip: Ipv4Addr) -> String {
    let o = ip.octets();
    let subnet = Ipv4Cidr::new(Ipv4Addr::new(o[0], o[1], o[2], 0), 24);
    encode_pod_networks(&PodNetwork::for_address(&Config::default(), subnet, ip))
}

fn pod(k: usize, node: usize, j: usize) -> Value {
    let ip = pod_ip(node, j);
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": format!("pod-{k}"), "namespace": format!("ns{}", k % NAMESPACES),
            "labels": {"app": format!("app-{}", k % 1000)},
            "annotations": {"k8s.ovn.org/pod-networks": pod_networks(ip)}},
        "spec": {"nodeName": node_name(node), "containers": [{"name": "c", "image": "x"}]},
        "status": {"phase": "Running", "podIP": ip.to_string(), "podIPs": [{"ip": ip.to_string()}]}
    })
}

/// Generates the cluster; endpoints point at the pods' addresses.
pub fn generate(size: Size) -> anyhow::Result<Generated> {
    anyhow::ensure!(
        (1..=250).contains(&size.nodes),
        "--nodes must be 1..=250 (one /24 each)"
    );
    let per_node = size.pods.div_ceil(size.nodes);
    anyhow::ensure!(per_node <= 250, "at most 250 pods per node");
    anyhow::ensure!(size.services < 60_000, "at most 60,000 services");
    let mut objects: Vec<Value> = (0..NAMESPACES)
        .map(|n| json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": format!("ns{n}")}}))
        .collect();
    objects.extend((0..size.nodes).map(node));
    let mut pod_ips = Vec::with_capacity(size.pods);
    for k in 0..size.pods {
        let (n, j) = (k % size.nodes, k / size.nodes);
        objects.push(pod(k, n, j));
        pod_ips.push(pod_ip(n, j).to_string());
    }
    let mut slices = Vec::with_capacity(size.services);
    for s in 0..size.services {
        let namespace = format!("ns{}", s % NAMESPACES);
        let name = format!("svc-{s}");
        // 10.43.0.1 is the API server's own service.
        let cluster_ip = Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 43, 1, 0)) + s as u32);
        objects.push(json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"type": "ClusterIP", "clusterIP": cluster_ip.to_string(),
                     "selector": {"app": format!("app-{}", s % 1000)},
                     "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}]}
        }));
        let addresses: Vec<String> = (0..size.endpoints_per_service)
            .filter(|_| !pod_ips.is_empty())
            .map(|e| pod_ips[(s * size.endpoints_per_service + e) % pod_ips.len()].clone())
            .collect();
        let slice = SliceRef {
            namespace: namespace.clone(),
            name: format!("{name}-ep"),
            owner: format!("{namespace}/{name}"),
            addresses,
        };
        objects.push(slice_object(&slice, &name));
        slices.push(slice);
    }
    Ok(Generated { objects, slices })
}

/// The `endpoints` list of a slice holding `addresses`.
pub fn endpoints(addresses: &[String]) -> Value {
    Value::Array(
        addresses
            .iter()
            .map(|a| json!({"addresses": [a], "conditions": {"ready": true}}))
            .collect(),
    )
}

fn slice_object(slice: &SliceRef, service: &str) -> Value {
    json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": slice.name, "namespace": slice.namespace,
                     "labels": {"kubernetes.io/service-name": service}},
        "addressType": "IPv4",
        "endpoints": endpoints(&slice.addresses),
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]
    })
}
