//! Node annotations the node side publishes, in upstream's exact JSON shapes.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use serde::Serialize;

use crate::facts::NodeFacts;
use crate::net::MacAddr;

/// `k8s.ovn.org/l3-gateway-config`
pub const L3_GATEWAY_CONFIG: &str = "k8s.ovn.org/l3-gateway-config";
/// `k8s.ovn.org/node-chassis-id`
pub const NODE_CHASSIS_ID: &str = "k8s.ovn.org/node-chassis-id";
/// `k8s.ovn.org/node-primary-ifaddr`
pub const NODE_PRIMARY_IFADDR: &str = "k8s.ovn.org/node-primary-ifaddr";
/// `k8s.ovn.org/host-addresses`
pub const HOST_ADDRESSES: &str = "k8s.ovn.org/host-addresses";
/// `k8s.ovn.org/node-mgmt-port-mac-address`
pub const NODE_MGMT_PORT_MAC: &str = "k8s.ovn.org/node-mgmt-port-mac-address";
/// `k8s.ovn.org/zone-name`
pub const ZONE_NAME: &str = "k8s.ovn.org/zone-name";

/// `l3-gateway-config["default"]`, field order as upstream's `L3GatewayConfig` marshals it.
#[derive(Serialize)]
struct L3GatewayConfig<'a> {
    mode: &'a str,
    #[serde(rename = "interface-id")]
    interface_id: String,
    #[serde(rename = "mac-address")]
    mac_address: String,
    #[serde(rename = "ip-addresses")]
    ip_addresses: Vec<String>,
    #[serde(rename = "ip-address", skip_serializing_if = "Option::is_none")]
    ip_address: Option<String>,
    #[serde(rename = "next-hops")]
    next_hops: Vec<String>,
    #[serde(rename = "next-hop", skip_serializing_if = "Option::is_none")]
    next_hop: Option<String>,
    #[serde(rename = "node-port-enable")]
    node_port_enable: &'a str,
    #[serde(rename = "vlan-id")]
    vlan_id: &'a str,
}

#[derive(Serialize)]
struct PrimaryIfAddr {
    ipv4: String,
}

fn single<T: Clone>(v: &[T]) -> Option<T> {
    (v.len() == 1).then(|| v[0].clone())
}

/// The node annotations (key -> value) for this node, its chassis id and management port MAC.
pub fn node_annotations(
    n: &NodeFacts,
    chassis_id: &str,
    mgmt_mac: MacAddr,
) -> BTreeMap<String, String> {
    let ip_addresses = vec![n.gateway_ip.to_string()];
    let next_hops: Vec<String> = n.next_hops.iter().map(Ipv4Addr::to_string).collect();
    let l3 = L3GatewayConfig {
        mode: "local",
        interface_id: n.gateway_interface_id(),
        mac_address: n.bridge_mac.to_string(),
        ip_address: single(&ip_addresses),
        ip_addresses,
        next_hop: single(&next_hops),
        next_hops,
        node_port_enable: "true",
        vlan_id: "0",
    };
    let mut host_addresses: Vec<String> = std::iter::once(n.gateway_ip.addr)
        .chain(n.other_host_ips.iter().copied())
        .map(|ip| ip.to_string())
        .collect();
    host_addresses.sort();
    host_addresses.dedup();
    BTreeMap::from([
        (
            L3_GATEWAY_CONFIG.to_string(),
            json(&BTreeMap::from([("default", l3)])),
        ),
        (NODE_CHASSIS_ID.to_string(), chassis_id.to_string()),
        (
            NODE_PRIMARY_IFADDR.to_string(),
            json(&PrimaryIfAddr {
                ipv4: n.gateway_ip.to_string(),
            }),
        ),
        (HOST_ADDRESSES.to_string(), json(&host_addresses)),
        (NODE_MGMT_PORT_MAC.to_string(), mgmt_mac.to_string()),
        (ZONE_NAME.to_string(), "global".to_string()),
    ])
}

/// JSON text of plain data (maps, vectors and strings always serialise).
fn json<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("plain data always serialises")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::Uplink;
    use crate::net::Ipv4Cidr;

    #[test]
    fn microshift_4_14_annotations_match_upstream_bytes() {
        let n = NodeFacts {
            gateway_ip: Ipv4Cidr::new(Ipv4Addr::new(10, 44, 0, 0), 32),
            other_host_ips: vec![Ipv4Addr::new(192, 168, 122, 14)],
            uplink: Uplink::None,
            next_hops: vec![Ipv4Addr::new(169, 254, 169, 4)],
            ..NodeFacts::seed()
        };
        let a = node_annotations(
            &n,
            "275588ee-e349-4824-9d80-106bd275228f",
            "76:3a:81:5a:05:d7".parse().unwrap(),
        );
        assert_eq!(
            a[L3_GATEWAY_CONFIG],
            r#"{"default":{"mode":"local","interface-id":"br-ex_microshift-dev","mac-address":"0a:59:00:00:00:01","ip-addresses":["10.44.0.0/32"],"ip-address":"10.44.0.0/32","next-hops":["169.254.169.4"],"next-hop":"169.254.169.4","node-port-enable":"true","vlan-id":"0"}}"#
        );
        assert_eq!(a[NODE_PRIMARY_IFADDR], r#"{"ipv4":"10.44.0.0/32"}"#);
        assert_eq!(a[HOST_ADDRESSES], r#"["10.44.0.0","192.168.122.14"]"#);
        assert_eq!(a[NODE_MGMT_PORT_MAC], "76:3a:81:5a:05:d7");
        assert_eq!(a[NODE_CHASSIS_ID], "275588ee-e349-4824-9d80-106bd275228f");
    }
}
