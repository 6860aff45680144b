//! The inputs every host renderer reads: one node's addresses, ports and cluster ranges.

use std::net::Ipv4Addr;

use crate::net::{Ipv4Cidr, MacAddr};

/// Name of the management port (OVS internal port on br-int, a netdev on the host).
pub const MGMT_PORT: &str = "ovn-k8s-mp0";
/// OVN masquerade IP: SNAT source of hairpinned OVN->host traffic.
pub const MASQ_OVN_IP: Ipv4Addr = Ipv4Addr::new(169, 254, 169, 1);
/// Host masquerade IP: on br-ex, SNAT source of host->service traffic.
pub const MASQ_HOST_IP: Ipv4Addr = Ipv4Addr::new(169, 254, 169, 2);
/// ETP=Local masquerade IP, routed to the management port.
pub const MASQ_ETP_IP: Ipv4Addr = Ipv4Addr::new(169, 254, 169, 3);
/// Dummy next hop of the service route (and of the GR default route without an uplink).
pub const MASQ_NEXT_HOP_IP: Ipv4Addr = Ipv4Addr::new(169, 254, 169, 4);
/// The masquerade subnet's prefix length (`169.254.169.0/29`).
pub const MASQ_PREFIX: u8 = 29;
/// Conntrack zone of the host masquerade (`64001`).
pub const ZONE_HOST_MASQ: u16 = 64001;
/// Conntrack zone of the OVN masquerade (`64002`).
pub const ZONE_OVN_MASQ: u16 = 64002;
/// Conntrack zone for traffic between the uplink and OVN/host (`64000`).
pub const ZONE_DEFAULT: u16 = 64000;
/// Cookie of every default br-ex flow.
pub const DEFAULT_COOKIE: &str = "0xdeff105";
/// Packet mark steering ITP=Local cluster-IP traffic into the management port.
pub const ITP_FWMARK: &str = "0x1745ec";
/// Routing table used by the ITP=Local fwmark rule.
pub const ITP_ROUTE_TABLE: u32 = 7;
/// Priority of the `ip rule` selecting [`ITP_ROUTE_TABLE`].
pub const ITP_RULE_PRIORITY: u32 = 30;
/// Geneve UDP port (MicroShift's `encap-port`).
pub const GENEVE_PORT: u16 = 6081;
/// The physical network name mapped to br-ex in `ovn-bridge-mappings`.
pub const PHYSNET: &str = "physnet";

/// Which gateway layout br-ex has: the uplink NIC's OpenFlow port, or none (MicroShift 4.14).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Uplink {
    /// 4.13: the NIC is a port of br-ex with this ofport.
    Port(u32),
    /// 4.14: br-ex has no uplink (`--allow-no-uplink`); only `10.44.0.0/32` on it.
    None,
}

/// Everything about one node that the host renderers need. IPv4 single stack (MicroShift).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeFacts {
    /// Kubernetes node name (lower case), e.g. `microshift-dev`.
    pub node_name: String,
    /// The gateway bridge, `br-ex`.
    pub bridge: String,
    /// MAC of the bridge's internal interface (`mac_in_use`).
    pub bridge_mac: MacAddr,
    /// First IPv4 address of br-ex with its prefix: the gateway ("physical") IP.
    pub gateway_ip: Ipv4Cidr,
    /// The node's InternalIP (source of the `169.254.169.1` route).
    pub node_ip: Ipv4Addr,
    /// Other valid host IPv4 addresses (hairpin targets), excluding `gateway_ip`.
    pub other_host_ips: Vec<Ipv4Addr>,
    /// OpenFlow port number of `patch-<bridge>_<node>-to-br-int` on br-ex (0 until it exists).
    pub patch_ofport: u32,
    /// The uplink NIC's port, if br-ex has one.
    pub uplink: Uplink,
    /// Service CIDRs (`10.43.0.0/16`).
    pub service_cidrs: Vec<Ipv4Cidr>,
    /// Cluster subnets (`10.42.0.0/16`).
    pub cluster_subnets: Vec<Ipv4Cidr>,
    /// This node's pod subnet from `k8s.ovn.org/node-subnets` (`10.42.0.0/24`).
    pub node_subnet: Ipv4Cidr,
    /// Gateway next hops (`169.254.169.4` without an uplink, else the default gateway).
    pub next_hops: Vec<Ipv4Addr>,
    /// Pod/interface MTU used for routes and the management port.
    pub mtu: u32,
}

impl NodeFacts {
    /// The management port address: second address of the node subnet (`10.42.0.2/24`).
    pub fn mgmt_port_ip(&self) -> Ipv4Cidr {
        Ipv4Cidr::new(self.node_subnet.nth(2), self.node_subnet.len)
    }

    /// The node subnet gateway (`rtos-<node>`, `.1`).
    pub fn node_gateway_ip(&self) -> Ipv4Addr {
        self.node_subnet.nth(1)
    }

    /// `patch-<bridge>_<node>-to-br-int`, created by ovn-controller.
    pub fn patch_port_name(&self) -> String {
        format!("patch-{}_{}-to-br-int", self.bridge, self.node_name)
    }

    /// The l3 gateway interface id, `<bridge>_<node>`.
    pub fn gateway_interface_id(&self) -> String {
        format!("{}_{}", self.bridge, self.node_name)
    }

    /// The seed's node (`microshift-dev`, 4.13 layout: NIC in br-ex, node IP on br-ex).
    pub fn seed() -> NodeFacts {
        NodeFacts {
            node_name: "microshift-dev".into(),
            bridge: "br-ex".into(),
            bridge_mac: MacAddr([0x0a, 0x59, 0, 0, 0, 1]),
            gateway_ip: Ipv4Cidr::new(Ipv4Addr::new(192, 168, 122, 14), 24),
            node_ip: Ipv4Addr::new(192, 168, 122, 14),
            other_host_ips: vec![Ipv4Addr::new(10, 44, 0, 0)],
            patch_ofport: 2,
            uplink: Uplink::Port(1),
            service_cidrs: vec![Ipv4Cidr::new(Ipv4Addr::new(10, 43, 0, 0), 16)],
            cluster_subnets: vec![Ipv4Cidr::new(Ipv4Addr::new(10, 42, 0, 0), 16)],
            node_subnet: Ipv4Cidr::new(Ipv4Addr::new(10, 42, 0, 0), 24),
            next_hops: vec![Ipv4Addr::new(192, 168, 122, 1)],
            mtu: 1500,
        }
    }
}
