//! The configuration the desired state depends on, with MicroShift's values as defaults.

use std::net::Ipv4Addr;

use crate::net::Ipv4Cidr;

/// `--gateway-mode`: how pod egress leaves the node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GatewayMode {
    /// Pods egress through the management port into the host stack (MicroShift's mode).
    Local,
    /// Pods egress through the gateway router and br-ex.
    Shared,
}

impl GatewayMode {
    /// Parses the flag / `[gateway] mode` value.
    pub fn parse(s: &str) -> Option<GatewayMode> {
        match s {
            "local" => Some(GatewayMode::Local),
            "shared" => Some(GatewayMode::Shared),
            _ => None,
        }
    }
}

/// One `--cluster-subnets` entry: the cluster CIDR and the prefix length of each node subnet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClusterSubnet {
    /// The cluster CIDR, e.g. `10.42.0.0/16`.
    pub cidr: Ipv4Cidr,
    /// The per-node subnet length, e.g. 24.
    pub host_prefix: u8,
}

impl ClusterSubnet {
    /// Parses `10.42.0.0/16` or `10.42.0.0/16/24` (ovnkube's syntax; the default host length is 24).
    pub fn parse(s: &str) -> Option<ClusterSubnet> {
        let (cidr, host_prefix) = match s.matches('/').count() {
            1 => (s, 24),
            2 => {
                let (c, h) = s.rsplit_once('/')?;
                (c, h.parse().ok()?)
            }
            _ => return None,
        };
        let cidr: Ipv4Cidr = cidr.parse().ok()?;
        (host_prefix >= cidr.len && host_prefix <= 30).then_some(ClusterSubnet {
            cidr: cidr.trunc(),
            host_prefix,
        })
    }
}

/// Everything of ovnkube's configuration that changes the NB rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// `--cluster-subnets` (MicroShift: `10.42.0.0/16`, /24 per node).
    pub cluster_subnets: Vec<ClusterSubnet>,
    /// `--k8s-service-cidr` / `[kubernetes] service-cidrs` (MicroShift: `10.43.0.0/16`).
    pub service_cidrs: Vec<Ipv4Cidr>,
    /// The join subnet between the cluster router and the gateway routers (`100.64.0.0/16`).
    pub join_subnet: Ipv4Cidr,
    /// The masquerade subnet (`169.254.169.0/29`): .1 OVN, .2 host, .3 ETP=local, .4 next hop, .5 hairpin.
    pub masquerade_subnet: Ipv4Cidr,
    /// `--gateway-mode`.
    pub gateway_mode: GatewayMode,
    /// `--gateway-interface` (the bridge, `br-ex`).
    pub gateway_interface: String,
    /// `--disable-snat-multiple-gws`: per-pod SNAT rows on the GR instead of one per cluster CIDR.
    pub disable_snat_multiple_gws: bool,
    /// `--enable-multicast`: multicast relay on the cluster router and snooping on node switches.
    pub enable_multicast: bool,
    /// `--mtu` / `[default] mtu`: written as `gateway_mtu` on the GR join port.
    pub mtu: u32,
    /// `--acl-logging-rate-limit`: packets per second of the `acl-logging` meter.
    pub acl_logging_rate_limit: u32,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            cluster_subnets: vec![ClusterSubnet::parse("10.42.0.0/16").expect("constant")],
            service_cidrs: vec!["10.43.0.0/16".parse().expect("constant")],
            join_subnet: "100.64.0.0/16".parse().expect("constant"),
            masquerade_subnet: "169.254.169.0/29".parse().expect("constant"),
            gateway_mode: GatewayMode::Local,
            gateway_interface: "br-ex".into(),
            disable_snat_multiple_gws: false,
            enable_multicast: false,
            mtu: 1400,
            acl_logging_rate_limit: 20,
        }
    }
}

impl Config {
    /// MicroShift's configuration: the defaults plus the flags its manifests pass
    /// (`--gateway-mode local --disable-snat-multiple-gws --enable-multicast`).
    pub fn microshift() -> Config {
        Config {
            gateway_mode: GatewayMode::Local,
            disable_snat_multiple_gws: true,
            enable_multicast: true,
            ..Config::default()
        }
    }

    /// The cluster router's join address (join subnet base + 1).
    pub fn cluster_router_join_ip(&self) -> Ipv4Addr {
        self.join_subnet.nth(1)
    }
    /// 169.254.169.2: the GR-side alias of the node for host-network endpoints.
    pub fn host_masquerade_ip(&self) -> Ipv4Addr {
        self.masquerade_subnet.nth(2)
    }
    /// 169.254.169.3: the ETP=local NodePort masquerade VIP.
    pub fn etp_local_masquerade_ip(&self) -> Ipv4Addr {
        self.masquerade_subnet.nth(3)
    }
    /// 169.254.169.4: the dummy next hop towards the host.
    pub fn dummy_next_hop_ip(&self) -> Ipv4Addr {
        self.masquerade_subnet.nth(4)
    }
    /// 169.254.169.5: the service hairpin SNAT address.
    pub fn hairpin_masquerade_ip(&self) -> Ipv4Addr {
        self.masquerade_subnet.nth(5)
    }
    /// True when `ip` is inside a cluster CIDR (a pod address, as opposed to a host address).
    pub fn in_cluster_subnets(&self, ip: Ipv4Addr) -> bool {
        self.cluster_subnets.iter().any(|c| c.cidr.contains(ip))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_microshift() {
        let c = Config::default();
        assert_eq!(c.cluster_subnets[0].cidr.to_string(), "10.42.0.0/16");
        assert_eq!(c.cluster_subnets[0].host_prefix, 24);
        assert_eq!(c.cluster_router_join_ip().to_string(), "100.64.0.1");
        assert_eq!(c.host_masquerade_ip().to_string(), "169.254.169.2");
        assert_eq!(c.hairpin_masquerade_ip().to_string(), "169.254.169.5");
        assert_eq!(c.gateway_mode, GatewayMode::Local);
    }

    #[test]
    fn cluster_subnet_syntax() {
        let s = ClusterSubnet::parse("10.128.0.0/14/23").unwrap();
        assert_eq!(
            (s.cidr.to_string().as_str(), s.host_prefix),
            ("10.128.0.0/14", 23)
        );
        assert!(ClusterSubnet::parse("10.42.0.0/16/8").is_none());
        assert!(ClusterSubnet::parse("10.42.0.0").is_none());
        assert!(ClusterSubnet::parse("fd00::/48").is_none());
    }
}
