//! Services as Load_Balancer rows: the service's validated view, its endpoints, and its LBs.

mod endpoints;
mod lb;

use std::net::Ipv4Addr;

use k8s_openapi::api::core::v1::Service;

use crate::error::ObjectError;
use crate::net::{looks_ipv6, parse_ipv4};

pub use endpoints::{port_endpoints, PortEndpoints, SERVICE_NAME_LABEL};
pub use lb::service_rows;

/// An L4 protocol of a service port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Protocol {
    /// TCP (the default).
    Tcp,
    /// UDP.
    Udp,
    /// SCTP.
    Sctp,
}

impl Protocol {
    /// Parses the Kubernetes spelling (`TCP`, `UDP`, `SCTP`; absent means TCP).
    pub fn parse(s: Option<&str>) -> Option<Protocol> {
        match s.unwrap_or("TCP") {
            "TCP" => Some(Protocol::Tcp),
            "UDP" => Some(Protocol::Udp),
            "SCTP" => Some(Protocol::Sctp),
            _ => None,
        }
    }
    /// The upper-case form used in LB names.
    pub fn upper(self) -> &'static str {
        match self {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
            Protocol::Sctp => "SCTP",
        }
    }
    /// The lower-case form of the `protocol` column.
    pub fn lower(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
        }
    }
}

/// One service port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortInfo {
    /// The port name ("" when unnamed).
    pub name: String,
    /// The protocol.
    pub protocol: Protocol,
    /// The service port.
    pub port: u16,
    /// The NodePort, when allocated.
    pub node_port: Option<u16>,
}

/// A service that gets load balancers, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceInfo {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Cluster IPs.
    pub cluster_ips: Vec<Ipv4Addr>,
    /// Ports.
    pub ports: Vec<PortInfo>,
    /// `spec.externalIPs` plus, for type LoadBalancer, `status.loadBalancer.ingress[].ip`.
    pub external_ips: Vec<Ipv4Addr>,
    /// `externalTrafficPolicy: Local`.
    pub etp_local: bool,
    /// `internalTrafficPolicy: Local`.
    pub itp_local: bool,
    /// `sessionAffinity: ClientIP` timeout in seconds.
    pub affinity_timeout: Option<i32>,
    /// `publishNotReadyAddresses`.
    pub publish_not_ready: bool,
}

impl ServiceInfo {
    /// `Ok(None)` for services without load balancers (ExternalName, headless, no cluster IP);
    /// an error naming the service for invalid addresses, ports or protocols.
    pub fn from_service(svc: &Service) -> Result<Option<ServiceInfo>, ObjectError> {
        let namespace = svc
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into());
        let name = svc.metadata.name.clone().unwrap_or_default();
        let fail =
            |reason: String| ObjectError::new("Service", format!("{namespace}/{name}"), reason);
        let Some(spec) = svc.spec.as_ref() else {
            return Ok(None);
        };
        if spec.type_.as_deref() == Some("ExternalName") {
            return Ok(None);
        }
        let mut ips: Vec<String> = spec.cluster_ips.clone().unwrap_or_default();
        if ips.is_empty() {
            ips.extend(spec.cluster_ip.clone());
        }
        if ips.is_empty() || ips.iter().any(|ip| ip == "None" || ip.is_empty()) {
            return Ok(None); // headless or not allocated: no load balancer
        }
        let parse = |what: &str, s: &str| -> Result<Ipv4Addr, ObjectError> {
            if looks_ipv6(s) {
                return Err(fail(format!("{what} {s:?} is IPv6 in an IPv4 cluster")));
            }
            parse_ipv4(s).map_err(|_| fail(format!("{what} {s:?} is not a valid IP address")))
        };
        let cluster_ips = ips
            .iter()
            .map(|s| parse("clusterIP", s))
            .collect::<Result<Vec<_>, _>>()?;

        let mut ports = Vec::new();
        for p in spec.ports.iter().flatten() {
            let pname = p.name.clone().unwrap_or_default();
            let protocol = Protocol::parse(p.protocol.as_deref()).ok_or_else(|| {
                fail(format!(
                    "port {pname:?}: unknown protocol {:?}",
                    p.protocol.as_deref().unwrap_or("")
                ))
            })?;
            let port = u16::try_from(p.port)
                .ok()
                .filter(|&v| v != 0)
                .ok_or_else(|| {
                    fail(format!(
                        "port {pname:?}: port {} is not in 1..=65535",
                        p.port
                    ))
                })?;
            let node_port = match p.node_port {
                None | Some(0) => None,
                Some(np) => Some(u16::try_from(np).map_err(|_| {
                    fail(format!("port {pname:?}: nodePort {np} is not in 1..=65535"))
                })?),
            };
            ports.push(PortInfo {
                name: pname,
                protocol,
                port,
                node_port,
            });
        }

        let mut external_ips = Vec::new();
        for s in spec.external_ips.iter().flatten() {
            external_ips.push(parse("externalIP", s)?);
        }
        if spec.type_.as_deref() == Some("LoadBalancer") {
            let ingress = svc
                .status
                .as_ref()
                .and_then(|s| s.load_balancer.as_ref())
                .and_then(|lb| lb.ingress.as_ref());
            for ing in ingress.into_iter().flatten() {
                if let Some(ip) = &ing.ip {
                    external_ips.push(parse("loadBalancer ingress IP", ip)?);
                }
            }
        }
        let affinity_timeout = (spec.session_affinity.as_deref() == Some("ClientIP")).then(|| {
            spec.session_affinity_config
                .as_ref()
                .and_then(|c| c.client_ip.as_ref())
                .and_then(|c| c.timeout_seconds)
                .unwrap_or(10800)
        });
        Ok(Some(ServiceInfo {
            cluster_ips,
            ports,
            external_ips,
            etp_local: spec.external_traffic_policy.as_deref() == Some("Local"),
            itp_local: spec.internal_traffic_policy.as_deref() == Some("Local"),
            affinity_timeout,
            publish_not_ready: spec.publish_not_ready_addresses.unwrap_or(false),
            namespace,
            name,
        }))
    }
}
