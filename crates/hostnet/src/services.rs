//! What the host rules need to know about Services, extracted from Kubernetes objects.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;

/// L4 protocol of a service port, printed lower case as iptables-save does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Protocol {
    /// TCP
    Tcp,
    /// UDP
    Udp,
    /// SCTP
    Sctp,
}

impl Protocol {
    /// Parses the Kubernetes spelling (`TCP`, default when absent).
    pub fn from_k8s(p: Option<&str>) -> Option<Protocol> {
        match p.unwrap_or("TCP") {
            "TCP" => Some(Protocol::Tcp),
            "UDP" => Some(Protocol::Udp),
            "SCTP" => Some(Protocol::Sctp),
            _ => None,
        }
    }

    /// `tcp`, `udp` or `sctp`.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
        }
    }
}

/// One service port as the host rules see it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct HostServicePort {
    /// Protocol.
    pub protocol: Protocol,
    /// The service port.
    pub port: u16,
    /// The allocated NodePort, if any.
    pub node_port: Option<u16>,
    /// Target port on host-network endpoints (for ITP=Local REDIRECT), when numeric or resolved.
    pub target_port: Option<u16>,
}

/// A Service reduced to what the node's iptables rules depend on (IPv4 only).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct HostService {
    /// `<namespace>/<name>`, for logs and ordering.
    pub key: String,
    /// IPv4 cluster IPs.
    pub cluster_ips: Vec<Ipv4Addr>,
    /// Ports with a valid port number.
    pub ports: Vec<HostServicePort>,
    /// `spec.externalIPs` and `status.loadBalancer.ingress[].ip` (IPv4).
    pub external_ips: Vec<Ipv4Addr>,
    /// `externalTrafficPolicy: Local` on a NodePort/LoadBalancer service.
    pub etp_local: bool,
    /// `internalTrafficPolicy: Local`.
    pub itp_local: bool,
    /// Some ready endpoint is one of this host's addresses (host-network pod on this node).
    pub has_local_host_endpoint: bool,
}

impl HostService {
    /// The seed's `default/svc-nodeport` (7000:30700/TCP, target 8080), for examples and tests.
    pub fn seed_nodeport() -> HostService {
        HostService {
            key: "default/svc-nodeport".into(),
            cluster_ips: vec!["10.43.19.182".parse().expect("constant")],
            ports: vec![HostServicePort {
                protocol: Protocol::Tcp,
                port: 7000,
                node_port: Some(30700),
                target_port: Some(8080),
            }],
            external_ips: vec![],
            etp_local: false,
            itp_local: false,
            has_local_host_endpoint: false,
        }
    }
}

/// Reduces a Service and its EndpointSlices; `None` for headless/ExternalName services.
pub fn host_service(
    svc: &Service,
    slices: &[EndpointSlice],
    host_ips: &BTreeSet<Ipv4Addr>,
) -> Option<HostService> {
    let spec = svc.spec.as_ref()?;
    let cluster_ips: Vec<Ipv4Addr> = spec
        .cluster_ips
        .clone()
        .or_else(|| spec.cluster_ip.clone().map(|ip| vec![ip]))
        .unwrap_or_default()
        .iter()
        .filter_map(|ip| ip.parse().ok())
        .collect();
    if cluster_ips.is_empty() || spec.type_.as_deref() == Some("ExternalName") {
        return None;
    }
    let namespace = svc.metadata.namespace.clone().unwrap_or_default();
    let name = svc.metadata.name.clone().unwrap_or_default();
    let local_eps: Vec<_> = slices
        .iter()
        .filter(|s| s.address_type == "IPv4")
        .flat_map(|s| s.endpoints.iter())
        .filter(|ep| ep.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true))
        .flat_map(|ep| ep.addresses.iter())
        .filter_map(|a| a.parse::<Ipv4Addr>().ok())
        .filter(|ip| host_ips.contains(ip))
        .collect();
    let ports = spec
        .ports
        .iter()
        .flatten()
        .filter_map(|p| {
            let protocol = Protocol::from_k8s(p.protocol.as_deref())?;
            let port = u16::try_from(p.port).ok().filter(|p| *p > 0)?;
            let node_port = p
                .node_port
                .and_then(|n| u16::try_from(n).ok())
                .filter(|n| *n > 0);
            let target_port = endpoint_port(slices, p.name.as_deref()).or(match &p.target_port {
                Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(i)) => {
                    u16::try_from(*i).ok()
                }
                Some(_) => None,
                None => Some(port),
            });
            Some(HostServicePort {
                protocol,
                port,
                node_port,
                target_port,
            })
        })
        .collect();
    let mut external_ips: Vec<Ipv4Addr> = spec
        .external_ips
        .iter()
        .flatten()
        .chain(
            svc.status
                .iter()
                .filter_map(|s| s.load_balancer.as_ref())
                .flat_map(|lb| lb.ingress.iter().flatten())
                .filter_map(|i| i.ip.as_ref()),
        )
        .filter_map(|ip| ip.parse().ok())
        .collect();
    external_ips.sort();
    external_ips.dedup();
    let node_port_type = matches!(
        spec.type_.as_deref(),
        Some("NodePort") | Some("LoadBalancer")
    );
    Some(HostService {
        key: format!("{namespace}/{name}"),
        cluster_ips,
        ports,
        etp_local: node_port_type && spec.external_traffic_policy.as_deref() == Some("Local"),
        itp_local: spec.internal_traffic_policy.as_deref() == Some("Local"),
        has_local_host_endpoint: !local_eps.is_empty(),
        external_ips,
    })
}

/// The endpoint port number for a named service port (EndpointSlice ports carry the service port name).
fn endpoint_port(slices: &[EndpointSlice], name: Option<&str>) -> Option<u16> {
    slices
        .iter()
        .flat_map(|s| s.ports.iter().flatten())
        .find(|p| p.name.as_deref().unwrap_or("") == name.unwrap_or(""))
        .and_then(|p| p.port)
        .and_then(|p| u16::try_from(p).ok())
}

/// Reduces every Service, pairing each with its EndpointSlices (label `kubernetes.io/service-name`).
pub fn host_services(
    services: &[Service],
    slices: &[EndpointSlice],
    host_ips: &BTreeSet<Ipv4Addr>,
) -> Vec<HostService> {
    let mut out: Vec<HostService> = services
        .iter()
        .filter_map(|svc| {
            let ns = svc.metadata.namespace.as_deref();
            let name = svc.metadata.name.as_deref();
            let own: Vec<EndpointSlice> = slices
                .iter()
                .filter(|s| {
                    s.metadata.namespace.as_deref() == ns
                        && s.metadata
                            .labels
                            .as_ref()
                            .and_then(|l| l.get("kubernetes.io/service-name"))
                            .map(String::as_str)
                            == name
                })
                .cloned()
                .collect();
            host_service(svc, &own, host_ips)
        })
        .collect();
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_nodeport_service_and_a_host_network_endpoint() {
        let svc: Service = serde_json::from_value(serde_json::json!({
            "metadata": {"namespace": "default", "name": "svc-nodeport"},
            "spec": {"type": "NodePort", "clusterIP": "10.43.19.182", "clusterIPs": ["10.43.19.182"],
                     "externalTrafficPolicy": "Local",
                     "ports": [{"port": 7000, "nodePort": 30700, "protocol": "TCP", "targetPort": 8080}]}
        }))
        .unwrap();
        let headless: Service = serde_json::from_value(serde_json::json!({
            "metadata": {"namespace": "default", "name": "headless"},
            "spec": {"clusterIP": "None", "ports": [{"port": 80}]}
        }))
        .unwrap();
        let slice: EndpointSlice = serde_json::from_value(serde_json::json!({
            "metadata": {"namespace": "default", "name": "svc-nodeport-abc",
                         "labels": {"kubernetes.io/service-name": "svc-nodeport"}},
            "addressType": "IPv4",
            "endpoints": [{"addresses": ["192.168.122.14"], "conditions": {"ready": true}}],
            "ports": [{"port": 8080, "protocol": "TCP", "name": ""}]
        }))
        .unwrap();
        let host_ips = BTreeSet::from(["192.168.122.14".parse().unwrap()]);
        let got = host_services(
            &[svc.clone(), headless],
            std::slice::from_ref(&slice),
            &host_ips,
        );
        assert_eq!(got.len(), 1);
        let s = &got[0];
        assert_eq!(s.key, "default/svc-nodeport");
        assert_eq!(s.cluster_ips, ["10.43.19.182".parse::<Ipv4Addr>().unwrap()]);
        assert_eq!(
            s.ports,
            [HostServicePort {
                protocol: Protocol::Tcp,
                port: 7000,
                node_port: Some(30700),
                target_port: Some(8080)
            }]
        );
        assert!(s.etp_local && s.has_local_host_endpoint && !s.itp_local);
        // Without the host-network endpoint the service has no local host endpoint.
        let remote = host_services(&[svc], &[], &host_ips);
        assert!(!remote[0].has_local_host_endpoint);
    }
}
