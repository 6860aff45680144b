//! Node annotations the node side publishes, encoded with the desired-state crate's codecs
//! (byte-compatible with upstream).

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use ovnkube_desired::annotations::{
    encode_host_addresses, encode_ifaddr, encode_l3_gateway_config, IfAddr, L3GatewayConfig,
};
pub use ovnkube_desired::annotations::{
    HOST_ADDRESSES, L3_GATEWAY_CONFIG, NODE_CHASSIS_ID, NODE_MGMT_PORT_MAC, NODE_PRIMARY_IFADDR,
};

use crate::facts::NodeFacts;
use crate::net::MacAddr;

/// `k8s.ovn.org/zone-name`
pub const ZONE_NAME: &str = "k8s.ovn.org/zone-name";

/// The node annotations (key -> value) for this node, its chassis id and management port MAC.
pub fn node_annotations(
    n: &NodeFacts,
    chassis_id: &str,
    mgmt_mac: MacAddr,
) -> BTreeMap<String, String> {
    let l3 = L3GatewayConfig {
        mode: "local".into(),
        interface_id: n.gateway_interface_id(),
        mac_address: n.bridge_mac.to_string(),
        ip_addresses: vec![n.gateway_ip.to_string()],
        next_hops: n.next_hops.iter().map(Ipv4Addr::to_string).collect(),
        node_port_enable: "true".into(),
        vlan_id: "0".into(),
        ..L3GatewayConfig::default()
    }
    .with_legacy_fields();
    let host_addresses: Vec<String> = std::iter::once(n.gateway_ip.addr)
        .chain(n.other_host_ips.iter().copied())
        .map(|ip| ip.to_string())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let primary = IfAddr {
        ipv4: n.gateway_ip.to_string(),
        ..IfAddr::default()
    };
    BTreeMap::from([
        (L3_GATEWAY_CONFIG.to_string(), encode_l3_gateway_config(&l3)),
        (NODE_CHASSIS_ID.to_string(), chassis_id.to_string()),
        (NODE_PRIMARY_IFADDR.to_string(), encode_ifaddr(&primary)),
        (
            HOST_ADDRESSES.to_string(),
            encode_host_addresses(&host_addresses),
        ),
        (NODE_MGMT_PORT_MAC.to_string(), mgmt_mac.to_string()),
        (ZONE_NAME.to_string(), "global".to_string()),
    ])
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
