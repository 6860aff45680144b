//! Codecs for the `k8s.ovn.org/*` annotations, byte-compatible with upstream ovn-kubernetes
//! (Go's `encoding/json`: struct fields in declaration order, `omitempty` fields left out).
//!
//! Decoding is tolerant where upstream's is (node-subnets as a string or a list); encoding always
//! writes the form upstream writes today. Values are kept as text here; the desired layer
//! validates them into addresses and reports the node they came from.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::net::{mac_from_ipv4, Ipv4Cidr};

/// `k8s.ovn.org/node-subnets`.
pub const NODE_SUBNETS: &str = "k8s.ovn.org/node-subnets";
/// `k8s.ovn.org/node-id`.
pub const NODE_ID: &str = "k8s.ovn.org/node-id";
/// `k8s.ovn.org/node-gateway-router-lrp-ifaddr`.
pub const NODE_GATEWAY_ROUTER_LRP_IFADDR: &str = "k8s.ovn.org/node-gateway-router-lrp-ifaddr";
/// `k8s.ovn.org/l3-gateway-config`.
pub const L3_GATEWAY_CONFIG: &str = "k8s.ovn.org/l3-gateway-config";
/// `k8s.ovn.org/node-chassis-id`.
pub const NODE_CHASSIS_ID: &str = "k8s.ovn.org/node-chassis-id";
/// `k8s.ovn.org/node-mgmt-port-mac-address`.
pub const NODE_MGMT_PORT_MAC: &str = "k8s.ovn.org/node-mgmt-port-mac-address";
/// `k8s.ovn.org/node-primary-ifaddr`.
pub const NODE_PRIMARY_IFADDR: &str = "k8s.ovn.org/node-primary-ifaddr";
/// `k8s.ovn.org/host-addresses`.
pub const HOST_ADDRESSES: &str = "k8s.ovn.org/host-addresses";
/// `k8s.ovn.org/pod-networks`.
pub const POD_NETWORKS: &str = "k8s.ovn.org/pod-networks";
/// The key of the default network in the per-network maps.
pub const DEFAULT_NETWORK: &str = "default";

/// An annotation that is present but not in the expected format.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("annotation {key}: {reason}")]
pub struct AnnotationError {
    /// The annotation key.
    pub key: &'static str,
    /// What is wrong with its value.
    pub reason: String,
}

impl AnnotationError {
    fn new(key: &'static str, reason: impl Into<String>) -> Self {
        AnnotationError {
            key,
            reason: reason.into(),
        }
    }
}

fn from_json<T: for<'de> Deserialize<'de>>(
    key: &'static str,
    s: &str,
) -> Result<T, AnnotationError> {
    serde_json::from_str(s).map_err(|e| AnnotationError::new(key, format!("malformed JSON: {e}")))
}

fn to_json<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("annotation types always serialize")
}

/// Either one string or a list of strings (upstream's node-subnets accepts both).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

/// Decodes `k8s.ovn.org/node-subnets` into the default network's subnets (as written).
pub fn decode_node_subnets(s: &str) -> Result<Vec<String>, AnnotationError> {
    let m: BTreeMap<String, OneOrMany> = from_json(NODE_SUBNETS, s)?;
    match m.get(DEFAULT_NETWORK) {
        Some(OneOrMany::One(x)) => Ok(vec![x.clone()]),
        Some(OneOrMany::Many(v)) if !v.is_empty() => Ok(v.clone()),
        _ => Err(AnnotationError::new(
            NODE_SUBNETS,
            "no subnet for network \"default\"",
        )),
    }
}

/// Encodes the default network's subnets in the list form upstream writes.
pub fn encode_node_subnets(subnets: &[String]) -> String {
    to_json(&BTreeMap::from([(DEFAULT_NETWORK, subnets)]))
}

/// Decodes `k8s.ovn.org/node-id` (a decimal string).
pub fn decode_node_id(s: &str) -> Result<u32, AnnotationError> {
    s.parse()
        .map_err(|_| AnnotationError::new(NODE_ID, format!("{s:?} is not a number")))
}

/// Encodes `k8s.ovn.org/node-id`.
pub fn encode_node_id(id: u32) -> String {
    id.to_string()
}

/// `{"ipv4": "...", "ipv6": "..."}` as used by the lrp-ifaddr and primary-ifaddr annotations.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IfAddr {
    /// The IPv4 address with its prefix length.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub ipv4: String,
    /// The IPv6 address with its prefix length.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub ipv6: String,
}

/// Decodes `k8s.ovn.org/node-gateway-router-lrp-ifaddr` or `k8s.ovn.org/node-primary-ifaddr`.
pub fn decode_ifaddr(key: &'static str, s: &str) -> Result<IfAddr, AnnotationError> {
    let a: IfAddr = from_json(key, s)?;
    if a.ipv4.is_empty() && a.ipv6.is_empty() {
        return Err(AnnotationError::new(key, "neither ipv4 nor ipv6 is set"));
    }
    Ok(a)
}

/// Encodes an [`IfAddr`] annotation.
pub fn encode_ifaddr(a: &IfAddr) -> String {
    to_json(a)
}

/// The default network's entry of `k8s.ovn.org/l3-gateway-config`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct L3GatewayConfig {
    /// `local`, `shared`, or empty when the gateway is disabled.
    pub mode: String,
    /// The localnet port name, `<bridge>_<node>`.
    #[serde(
        rename = "interface-id",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub interface_id: String,
    /// The bridge MAC.
    #[serde(
        rename = "mac-address",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub mac_address: String,
    /// The gateway addresses with prefix lengths.
    #[serde(
        rename = "ip-addresses",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub ip_addresses: Vec<String>,
    /// Legacy single address (written when there is exactly one).
    #[serde(
        rename = "ip-address",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub ip_address: String,
    /// The next hops of the default route.
    #[serde(rename = "next-hops", default, skip_serializing_if = "Vec::is_empty")]
    pub next_hops: Vec<String>,
    /// Legacy single next hop (written when there is exactly one).
    #[serde(rename = "next-hop", default, skip_serializing_if = "String::is_empty")]
    pub next_hop: String,
    /// `"true"` when NodePorts are served on the gateway addresses.
    #[serde(
        rename = "node-port-enable",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub node_port_enable: String,
    /// VLAN id as a string (`"0"` by default).
    #[serde(rename = "vlan-id", default, skip_serializing_if = "String::is_empty")]
    pub vlan_id: String,
    /// Second bridge (unused by MicroShift).
    #[serde(
        rename = "exgw-interface-id",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub exgw_interface_id: String,
    /// Second bridge MAC.
    #[serde(
        rename = "exgw-mac-address",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub exgw_mac_address: String,
    /// Second bridge addresses.
    #[serde(
        rename = "exgw-ip-addresses",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub exgw_ip_addresses: Vec<String>,
    /// Second bridge single address.
    #[serde(
        rename = "exgw-ip-address",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub exgw_ip_address: String,
}

impl L3GatewayConfig {
    /// The gateway addresses, from the list or the legacy single field.
    pub fn addresses(&self) -> Vec<String> {
        if self.ip_addresses.is_empty() && !self.ip_address.is_empty() {
            vec![self.ip_address.clone()]
        } else {
            self.ip_addresses.clone()
        }
    }
    /// The next hops, from the list or the legacy single field.
    pub fn hops(&self) -> Vec<String> {
        if self.next_hops.is_empty() && !self.next_hop.is_empty() {
            vec![self.next_hop.clone()]
        } else {
            self.next_hops.clone()
        }
    }
    /// Fills the legacy single fields the way upstream does (only when exactly one value).
    pub fn with_legacy_fields(mut self) -> Self {
        self.ip_address = match self.ip_addresses.as_slice() {
            [one] => one.clone(),
            _ => String::new(),
        };
        self.next_hop = match self.next_hops.as_slice() {
            [one] => one.clone(),
            _ => String::new(),
        };
        self
    }
}

/// Decodes the default network's `k8s.ovn.org/l3-gateway-config`.
pub fn decode_l3_gateway_config(s: &str) -> Result<L3GatewayConfig, AnnotationError> {
    let mut m: BTreeMap<String, L3GatewayConfig> = from_json(L3_GATEWAY_CONFIG, s)?;
    let c = m
        .remove(DEFAULT_NETWORK)
        .ok_or_else(|| AnnotationError::new(L3_GATEWAY_CONFIG, "no \"default\" entry"))?;
    if !c.vlan_id.is_empty() && c.vlan_id.parse::<u16>().map_or(true, |v| v > 4095) {
        return Err(AnnotationError::new(
            L3_GATEWAY_CONFIG,
            format!("vlan-id {:?} is not in 0..=4095", c.vlan_id),
        ));
    }
    Ok(c)
}

/// Encodes `k8s.ovn.org/l3-gateway-config` for the default network.
pub fn encode_l3_gateway_config(c: &L3GatewayConfig) -> String {
    to_json(&BTreeMap::from([(DEFAULT_NETWORK, c)]))
}

/// Decodes `k8s.ovn.org/host-addresses` (a JSON array of IP strings).
pub fn decode_host_addresses(s: &str) -> Result<Vec<String>, AnnotationError> {
    from_json(HOST_ADDRESSES, s)
}

/// Encodes `k8s.ovn.org/host-addresses` (sorted, as upstream writes it).
pub fn encode_host_addresses(addrs: &[String]) -> String {
    let mut v = addrs.to_vec();
    v.sort();
    to_json(&v)
}

/// One route of a pod's network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodRoute {
    /// Destination prefix.
    pub dest: String,
    /// Next hop address.
    #[serde(rename = "nextHop")]
    pub next_hop: String,
}

/// The default network's entry of `k8s.ovn.org/pod-networks`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodNetwork {
    /// Addresses with the node-subnet prefix length, e.g. `10.42.0.5/24`.
    pub ip_addresses: Vec<String>,
    /// The pod MAC.
    pub mac_address: String,
    /// Gateway addresses.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gateway_ips: Vec<String>,
    /// Routes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<PodRoute>,
    /// Legacy single address (single-stack).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub ip_address: String,
    /// Legacy single gateway.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub gateway_ip: String,
    /// Tunnel id (secondary networks; omitted when 0).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub tunnel_id: i64,
}

fn is_zero(v: &i64) -> bool {
    *v == 0
}

impl PodNetwork {
    /// The annotation upstream writes for a pod at `ip` of node subnet `subnet` (July 2023
    /// form): routes to every cluster subnet, service CIDR and the join subnet via the node's
    /// `.1` gateway.
    pub fn for_address(config: &Config, subnet: Ipv4Cidr, ip: Ipv4Addr) -> PodNetwork {
        let gw = subnet.nth(1).to_string();
        let route = |dest: String| PodRoute {
            dest,
            next_hop: gw.clone(),
        };
        let mut routes: Vec<PodRoute> = config
            .cluster_subnets
            .iter()
            .map(|c| route(c.cidr.to_string()))
            .collect();
        routes.extend(config.service_cidrs.iter().map(|c| route(c.to_string())));
        routes.push(route(config.join_subnet.to_string()));
        let addr = Ipv4Cidr::new(ip, subnet.len).to_string();
        PodNetwork {
            ip_addresses: vec![addr.clone()],
            mac_address: mac_from_ipv4(ip),
            gateway_ips: vec![gw.clone()],
            routes,
            ip_address: addr,
            gateway_ip: gw,
            tunnel_id: 0,
        }
    }
}

/// Decodes the default network's `k8s.ovn.org/pod-networks`.
pub fn decode_pod_networks(s: &str) -> Result<PodNetwork, AnnotationError> {
    let mut m: BTreeMap<String, PodNetwork> = from_json(POD_NETWORKS, s)?;
    let n = m
        .remove(DEFAULT_NETWORK)
        .ok_or_else(|| AnnotationError::new(POD_NETWORKS, "no \"default\" entry"))?;
    if n.ip_addresses.is_empty() && n.ip_address.is_empty() {
        return Err(AnnotationError::new(POD_NETWORKS, "no ip_addresses"));
    }
    Ok(n)
}

/// Encodes `k8s.ovn.org/pod-networks` for the default network.
pub fn encode_pod_networks(n: &PodNetwork) -> String {
    to_json(&BTreeMap::from([(DEFAULT_NETWORK, n)]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_subnets_accept_both_forms_and_write_the_list() {
        assert_eq!(
            decode_node_subnets(r#"{"default":"10.42.0.0/24"}"#).unwrap(),
            ["10.42.0.0/24"]
        );
        let list = r#"{"default":["10.42.0.0/24"]}"#;
        assert_eq!(decode_node_subnets(list).unwrap(), ["10.42.0.0/24"]);
        assert_eq!(encode_node_subnets(&["10.42.0.0/24".into()]), list);
        assert!(decode_node_subnets(r#"{"other":["10.42.0.0/24"]}"#).is_err());
        assert!(decode_node_subnets("{").is_err());
    }

    #[test]
    fn l3_gateway_config_round_trips_byte_for_byte() {
        let upstream = r#"{"default":{"mode":"local","interface-id":"br-ex_microshift-dev","mac-address":"52:54:00:e2:ed:d0","ip-addresses":["192.168.122.14/24"],"ip-address":"192.168.122.14/24","next-hops":["192.168.122.1"],"next-hop":"192.168.122.1","node-port-enable":"true","vlan-id":"0"}}"#;
        let c = decode_l3_gateway_config(upstream).unwrap();
        assert_eq!(c.addresses(), ["192.168.122.14/24"]);
        assert_eq!(c.hops(), ["192.168.122.1"]);
        assert_eq!(encode_l3_gateway_config(&c), upstream);
        let rebuilt = L3GatewayConfig {
            ip_address: String::new(),
            next_hop: String::new(),
            ..c
        }
        .with_legacy_fields();
        assert_eq!(encode_l3_gateway_config(&rebuilt), upstream);
        assert_eq!(
            encode_l3_gateway_config(&L3GatewayConfig::default()),
            r#"{"default":{"mode":""}}"#
        );
    }

    #[test]
    fn l3_gateway_config_rejects_bad_vlan_and_missing_default() {
        assert!(
            decode_l3_gateway_config(r#"{"default":{"mode":"local","vlan-id":"5000"}}"#).is_err()
        );
        assert!(decode_l3_gateway_config(r#"{"x":{"mode":"local"}}"#).is_err());
    }

    #[test]
    fn ifaddr_and_scalars() {
        let s = r#"{"ipv4":"100.64.0.2/16"}"#;
        let a = decode_ifaddr(NODE_GATEWAY_ROUTER_LRP_IFADDR, s).unwrap();
        assert_eq!(a.ipv4, "100.64.0.2/16");
        assert_eq!(encode_ifaddr(&a), s);
        assert!(decode_ifaddr(NODE_PRIMARY_IFADDR, "{}").is_err());
        assert_eq!(decode_node_id("2").unwrap(), 2);
        assert!(decode_node_id("two").is_err());
        assert_eq!(encode_node_id(2), "2");
        let h = encode_host_addresses(&["192.168.122.14".into(), "10.44.0.0".into()]);
        assert_eq!(h, r#"["10.44.0.0","192.168.122.14"]"#);
        assert_eq!(decode_host_addresses(&h).unwrap().len(), 2);
    }

    #[test]
    fn pod_networks_round_trip_byte_for_byte() {
        let upstream = r#"{"default":{"ip_addresses":["10.42.0.5/24"],"mac_address":"0a:58:0a:2a:00:05","gateway_ips":["10.42.0.1"],"routes":[{"dest":"10.42.0.0/16","nextHop":"10.42.0.1"},{"dest":"10.43.0.0/16","nextHop":"10.42.0.1"},{"dest":"100.64.0.0/16","nextHop":"10.42.0.1"}],"ip_address":"10.42.0.5/24","gateway_ip":"10.42.0.1"}}"#;
        let n = decode_pod_networks(upstream).unwrap();
        assert_eq!(n.routes[2].next_hop, "10.42.0.1");
        assert_eq!(encode_pod_networks(&n), upstream);
        assert!(
            decode_pod_networks(r#"{"default":{"ip_addresses":[],"mac_address":"x"}}"#).is_err()
        );
    }
}
