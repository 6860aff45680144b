//! Per-pod rows: the pod's logical switch port (and its SNAT with `--disable-snat-multiple-gws`).

use std::net::Ipv4Addr;

use k8s_openapi::api::core::v1::Pod;

use crate::annotations as ann;
use crate::config::Config;
use crate::error::ObjectError;
use crate::model::{row, smap, sset, Desired, NamedRef, OwnerKey, RowId};
use crate::names::{gateway_router, pod_port, LOGICAL_SWITCH, LOGICAL_SWITCH_PORT};
use crate::net::{is_mac, looks_ipv6, Ipv4Cidr};
use crate::node::NodeInfo;
use crate::topology::snat;

/// A pod that gets a switch port: scheduled, not host-network, not completed, annotated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodInfo {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// UID (written as `options:iface-id-ver`).
    pub uid: String,
    /// The node the pod runs on.
    pub node: String,
    /// The pod's IPv4 address.
    pub ip: Ipv4Addr,
    /// The pod's MAC.
    pub mac: String,
}

/// The fields of a pod that its rows and its address depend on, borrowed from a `Pod` or from
/// a store's compact record of one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PodParts<'a> {
    /// Namespace (`default` when the object has none).
    pub namespace: &'a str,
    /// Name.
    pub name: &'a str,
    /// UID (empty when the object has none).
    pub uid: &'a str,
    /// `spec.nodeName`.
    pub node_name: Option<&'a str>,
    /// `spec.hostNetwork`.
    pub host_network: bool,
    /// `status.phase` is `Succeeded` or `Failed` (see [`is_completed_phase`]).
    pub completed: bool,
    /// The `k8s.ovn.org/pod-networks` annotation.
    pub pod_networks: Option<&'a str>,
}

/// True for the phases of a pod whose containers are done: its address is free again.
pub fn is_completed_phase(phase: Option<&str>) -> bool {
    matches!(phase, Some("Succeeded") | Some("Failed"))
}

impl<'a> PodParts<'a> {
    /// The parts of a full `Pod`.
    pub fn of_pod(pod: &'a Pod) -> Self {
        let spec = pod.spec.as_ref();
        PodParts {
            namespace: pod.metadata.namespace.as_deref().unwrap_or("default"),
            name: pod.metadata.name.as_deref().unwrap_or_default(),
            uid: pod.metadata.uid.as_deref().unwrap_or_default(),
            node_name: spec.and_then(|s| s.node_name.as_deref()),
            host_network: spec.and_then(|s| s.host_network).unwrap_or(false),
            completed: is_completed_phase(pod.status.as_ref().and_then(|s| s.phase.as_deref())),
            pod_networks: pod
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(ann::POD_NETWORKS))
                .map(String::as_str),
        }
    }

    /// The node the pod is scheduled on, if it is.
    pub fn node(&self) -> Option<&'a str> {
        self.node_name.filter(|n| !n.is_empty())
    }

    /// True for pods that get an address from their node's subnet (and a switch port):
    /// scheduled, not host-network, not completed.
    pub fn gets_address(&self) -> bool {
        self.node().is_some() && !self.host_network && !self.completed
    }
}

impl PodInfo {
    /// `Ok(None)` for pods without a switch port (host-network, unscheduled, completed);
    /// an error naming the pod when its `k8s.ovn.org/pod-networks` annotation is missing or bad.
    pub fn from_pod(pod: &Pod) -> Result<Option<PodInfo>, ObjectError> {
        PodInfo::from_parts(&PodParts::of_pod(pod))
    }

    /// [`PodInfo::from_pod`] of the pod `parts` were taken from.
    pub fn from_parts(parts: &PodParts<'_>) -> Result<Option<PodInfo>, ObjectError> {
        let fail = |reason: String| {
            ObjectError::new("Pod", format!("{}/{}", parts.namespace, parts.name), reason)
        };
        let (true, Some(node)) = (parts.gets_address(), parts.node()) else {
            return Ok(None); // host-network, not scheduled yet, or completed
        };
        let annotation = parts.pod_networks.ok_or_else(|| {
            fail(format!(
                "annotation {} is missing (no address allocated yet)",
                ann::POD_NETWORKS
            ))
        })?;
        let net = ann::decode_pod_networks(annotation).map_err(|e| fail(e.to_string()))?;
        let addrs = if net.ip_addresses.is_empty() {
            vec![net.ip_address.clone()]
        } else {
            net.ip_addresses.clone()
        };
        let mut ip = None;
        for a in &addrs {
            if looks_ipv6(a) {
                return Err(fail(format!(
                    "annotation {}: {a:?} is IPv6 in an IPv4 cluster",
                    ann::POD_NETWORKS
                )));
            }
            let c: Ipv4Cidr = a.parse().map_err(|_| {
                fail(format!(
                    "annotation {}: {a:?} is not an IPv4 address/prefix",
                    ann::POD_NETWORKS
                ))
            })?;
            ip.get_or_insert(c.addr);
        }
        if !is_mac(&net.mac_address) {
            return Err(fail(format!(
                "annotation {}: mac_address {:?} is not a MAC address",
                ann::POD_NETWORKS,
                net.mac_address
            )));
        }
        Ok(Some(PodInfo {
            ip: ip.ok_or_else(|| fail("no address".into()))?,
            mac: net.mac_address,
            uid: parts.uid.to_owned(),
            namespace: parts.namespace.to_owned(),
            name: parts.name.to_owned(),
            node: node.to_owned(),
        }))
    }
}

/// The rows of one pod on its node: the LSP `<namespace>_<pod>` on the node switch, and with
/// `--disable-snat-multiple-gws` its SNAT to the node IP on `GR_<node>`.
pub fn pod_rows(config: &Config, pod: &PodInfo, node: &NodeInfo) -> Result<Desired, ObjectError> {
    let key = format!("{}/{}", pod.namespace, pod.name);
    if pod.node != node.name {
        return Err(ObjectError::new(
            "Pod",
            key,
            format!("runs on {}, not on {}", pod.node, node.name),
        ));
    }
    if !node.subnet.contains(pod.ip) {
        return Err(ObjectError::new(
            "Pod",
            key,
            format!(
                "address {} is outside the subnet {} of node {}",
                pod.ip, node.subnet, node.name
            ),
        ));
    }
    let owner = OwnerKey::pod(&pod.namespace, &pod.name);
    let mut d = Desired::default();
    let port = pod_port(&pod.namespace, &pod.name);
    let addresses = format!("{} {}", pod.mac, pod.ip);
    let mut options = vec![("requested-chassis", node.name.clone())];
    if !pod.uid.is_empty() {
        options.push(("iface-id-ver", pod.uid.clone()));
    }
    d.named(
        &owner,
        LOGICAL_SWITCH_PORT,
        &port,
        row([
            ("addresses", sset([addresses.clone()])),
            ("port_security", sset([addresses])),
            (
                "external_ids",
                smap([("namespace", pod.namespace.as_str()), ("pod", "true")]),
            ),
            ("options", smap(options)),
        ]),
    );
    d.link(
        &owner,
        NamedRef::new(LOGICAL_SWITCH, node.name.clone()),
        "ports",
        RowId::Named(NamedRef::new(LOGICAL_SWITCH_PORT, port)),
    );
    if config.disable_snat_multiple_gws {
        if let Some(node_ip) = node.gateway_ips().first() {
            snat(
                &mut d,
                &owner,
                &gateway_router(&node.name),
                &node_ip.to_string(),
                &pod.ip.to_string(),
            );
        }
    }
    Ok(d)
}
