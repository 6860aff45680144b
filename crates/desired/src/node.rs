//! A Node's annotations, validated into the addresses the topology is built from.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use k8s_openapi::api::core::v1::Node;

use crate::annotations::{self as ann, AnnotationError};
use crate::config::{Config, GatewayMode};
use crate::error::ObjectError;
use crate::net::{is_mac, looks_ipv6, parse_ipv4, Ipv4Cidr};

/// The gateway side of a node, from `k8s.ovn.org/l3-gateway-config`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayInfo {
    /// The node's gateway mode as it reported it.
    pub mode: GatewayMode,
    /// The localnet port name (`br-ex_<node>`).
    pub interface_id: String,
    /// The bridge MAC (the `rtoe-GR_<node>` MAC).
    pub mac: String,
    /// Gateway addresses with prefix lengths (the first is the node IP).
    pub ips: Vec<Ipv4Cidr>,
    /// Default route next hops.
    pub next_hops: Vec<Ipv4Addr>,
    /// True when NodePorts are served on the gateway addresses.
    pub node_port_enable: bool,
    /// The localnet VLAN tag, when the annotation has one.
    pub vlan: Option<u16>,
}

/// Everything the desired layer needs from one Node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeInfo {
    /// The node name (also the switch name).
    pub name: String,
    /// The node's pod subnet (`k8s.ovn.org/node-subnets`, IPv4).
    pub subnet: Ipv4Cidr,
    /// The OVS system-id of the node (`k8s.ovn.org/node-chassis-id`).
    pub chassis_id: String,
    /// The management port MAC (`k8s.ovn.org/node-mgmt-port-mac-address`).
    pub mgmt_mac: String,
    /// The GR's join address with its length (`k8s.ovn.org/node-gateway-router-lrp-ifaddr`).
    pub join_ip: Ipv4Cidr,
    /// The gateway, or `None` when the node's gateway is disabled.
    pub gateway: Option<GatewayInfo>,
    /// Every host address (`k8s.ovn.org/host-addresses`, IPv4 ones).
    pub host_addresses: Vec<Ipv4Addr>,
}

impl NodeInfo {
    /// The node's `.1` gateway address on its subnet.
    pub fn gateway_ip(&self) -> Ipv4Addr {
        self.subnet.nth(1)
    }
    /// The management port's `.2` address.
    pub fn mgmt_ip(&self) -> Ipv4Addr {
        self.subnet.nth(2)
    }
    /// The l3-gateway addresses without prefix lengths.
    pub fn gateway_ips(&self) -> Vec<Ipv4Addr> {
        self.gateway
            .as_ref()
            .map(|g| g.ips.iter().map(|c| c.addr).collect())
            .unwrap_or_default()
    }
    /// The gateway router's name, when the node has one.
    pub fn gateway_router(&self) -> Option<String> {
        self.gateway.as_ref().map(|_| format!("GR_{}", self.name))
    }
    /// True for an address of this node: in its pod subnet, a gateway address or a host address.
    pub fn is_local(&self, ip: Ipv4Addr) -> bool {
        self.subnet.contains(ip)
            || self.gateway_ips().contains(&ip)
            || self.host_addresses.contains(&ip)
    }

    /// Validates the annotations of `node`. Missing or malformed ones are errors naming the node.
    pub fn from_node(node: &Node, config: &Config) -> Result<NodeInfo, ObjectError> {
        let name = node.metadata.name.clone().unwrap_or_default();
        let fail = |reason: String| ObjectError::new("Node", name.clone(), reason);
        if name.is_empty() {
            return Err(fail("has no name".into()));
        }
        let empty = BTreeMap::new();
        let annotations = node.metadata.annotations.as_ref().unwrap_or(&empty);
        let get = |key: &'static str| {
            annotations
                .get(key)
                .map(String::as_str)
                .ok_or_else(|| fail(format!("annotation {key} is missing (not ready yet)")))
        };
        let bad = |e: AnnotationError| fail(e.to_string());
        let bad_value =
            |key: &'static str, v: &str, why: &str| fail(format!("annotation {key}: {v:?} {why}"));

        let subnets = ann::decode_node_subnets(get(ann::NODE_SUBNETS)?).map_err(bad)?;
        let mut subnet = None;
        for s in &subnets {
            if looks_ipv6(s) {
                return Err(bad_value(
                    ann::NODE_SUBNETS,
                    s,
                    "is IPv6 in an IPv4 cluster",
                ));
            }
            let c: Ipv4Cidr = s
                .parse()
                .map_err(|_| bad_value(ann::NODE_SUBNETS, s, "is not an IPv4 prefix"))?;
            if !config
                .cluster_subnets
                .iter()
                .any(|cs| cs.cidr.contains(c.addr) && c.len >= cs.cidr.len)
            {
                return Err(bad_value(
                    ann::NODE_SUBNETS,
                    s,
                    "is outside every cluster subnet",
                ));
            }
            if c.len > 30 {
                return Err(bad_value(
                    ann::NODE_SUBNETS,
                    s,
                    "is too small for gateway and management addresses",
                ));
            }
            subnet.get_or_insert(c.trunc());
        }
        let subnet = subnet
            .ok_or_else(|| fail(format!("annotation {} has no subnet", ann::NODE_SUBNETS)))?;

        let chassis_id = get(ann::NODE_CHASSIS_ID)?.to_owned();
        if chassis_id.is_empty() {
            return Err(bad_value(ann::NODE_CHASSIS_ID, &chassis_id, "is empty"));
        }
        let mgmt_mac = get(ann::NODE_MGMT_PORT_MAC)?.to_owned();
        if !is_mac(&mgmt_mac) {
            return Err(bad_value(
                ann::NODE_MGMT_PORT_MAC,
                &mgmt_mac,
                "is not a MAC address",
            ));
        }
        let lrp = ann::decode_ifaddr(
            ann::NODE_GATEWAY_ROUTER_LRP_IFADDR,
            get(ann::NODE_GATEWAY_ROUTER_LRP_IFADDR)?,
        )
        .map_err(bad)?;
        let join_ip: Ipv4Cidr = lrp.ipv4.parse().map_err(|_| {
            bad_value(
                ann::NODE_GATEWAY_ROUTER_LRP_IFADDR,
                &lrp.ipv4,
                "is not an IPv4 address/prefix",
            )
        })?;
        if !config.join_subnet.contains(join_ip.addr) {
            return Err(bad_value(
                ann::NODE_GATEWAY_ROUTER_LRP_IFADDR,
                &lrp.ipv4,
                "is outside the join subnet",
            ));
        }

        let l3 = ann::decode_l3_gateway_config(get(ann::L3_GATEWAY_CONFIG)?).map_err(bad)?;
        let gateway = if l3.mode.is_empty() || l3.mode == "disabled" {
            None
        } else {
            Some(
                gateway_info(&l3)
                    .map_err(|why| fail(format!("annotation {}: {why}", ann::L3_GATEWAY_CONFIG)))?,
            )
        };

        let host_addresses =
            match annotations.get(ann::HOST_ADDRESSES) {
                None => Vec::new(),
                Some(s) => {
                    let mut v = Vec::new();
                    for a in ann::decode_host_addresses(s).map_err(bad)? {
                        if looks_ipv6(&a) {
                            continue; // dual-stack hosts report IPv6 addresses too; they are not ours to route
                        }
                        v.push(parse_ipv4(&a).map_err(|e| {
                            fail(format!("annotation {}: {e}", ann::HOST_ADDRESSES))
                        })?);
                    }
                    v
                }
            };

        Ok(NodeInfo {
            name,
            subnet,
            chassis_id,
            mgmt_mac,
            join_ip,
            gateway,
            host_addresses,
        })
    }
}

fn gateway_info(l3: &ann::L3GatewayConfig) -> Result<GatewayInfo, String> {
    let mode = GatewayMode::parse(&l3.mode).ok_or_else(|| format!("unknown mode {:?}", l3.mode))?;
    if l3.interface_id.is_empty() {
        return Err("interface-id is empty".into());
    }
    if !is_mac(&l3.mac_address) {
        return Err(format!(
            "mac-address {:?} is not a MAC address",
            l3.mac_address
        ));
    }
    let mut ips = Vec::new();
    for a in l3.addresses() {
        if looks_ipv6(&a) {
            return Err(format!("ip-address {a:?} is IPv6 in an IPv4 cluster"));
        }
        ips.push(
            a.parse::<Ipv4Cidr>()
                .map_err(|_| format!("ip-address {a:?} is not an IPv4 address/prefix"))?,
        );
    }
    if ips.is_empty() {
        return Err("no ip-addresses".into());
    }
    let mut next_hops = Vec::new();
    for h in l3.hops() {
        if looks_ipv6(&h) {
            return Err(format!("next-hop {h:?} is IPv6 in an IPv4 cluster"));
        }
        next_hops.push(parse_ipv4(&h).map_err(|e| format!("next-hop: {e}"))?);
    }
    let vlan = if l3.vlan_id.is_empty() {
        None
    } else {
        Some(
            l3.vlan_id
                .parse()
                .map_err(|_| format!("vlan-id {:?} is not a number", l3.vlan_id))?,
        )
    };
    Ok(GatewayInfo {
        mode,
        interface_id: l3.interface_id.clone(),
        mac: l3.mac_address.clone(),
        ips,
        next_hops,
        node_port_enable: l3.node_port_enable == "true",
        vlan,
    })
}
