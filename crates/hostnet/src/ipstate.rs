//! Host addresses, routes, neighbours, policy rules and sysctls the node keeps, as data.
//!
//! Each item prints the way `ip` shows it (so the applier can compare with `ip ... show`) and
//! knows the idempotent `ip` command that installs it.

use std::fmt;
use std::net::Ipv4Addr;

use crate::facts::{
    NodeFacts, ITP_FWMARK, ITP_ROUTE_TABLE, ITP_RULE_PRIORITY, MASQ_ETP_IP, MASQ_HOST_IP,
    MASQ_NEXT_HOP_IP, MASQ_OVN_IP, MASQ_PREFIX, MGMT_PORT,
};
use crate::net::{Ipv4Cidr, MacAddr};

/// An address on an interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    /// Interface.
    pub dev: String,
    /// Address with prefix.
    pub cidr: Ipv4Cidr,
}

/// A route in the main table or a numbered one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Destination; a /32 prints without the suffix, as `ip route` does.
    pub dst: Ipv4Cidr,
    /// Gateway, if any.
    pub via: Option<Ipv4Addr>,
    /// Interface.
    pub dev: String,
    /// Preferred source address.
    pub src: Option<Ipv4Addr>,
    /// Route MTU.
    pub mtu: Option<u32>,
    /// Routing table; `None` is main.
    pub table: Option<u32>,
}

/// A permanent neighbour entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Neighbour {
    /// Interface.
    pub dev: String,
    /// IP address.
    pub ip: Ipv4Addr,
    /// Link-layer address.
    pub mac: MacAddr,
}

/// A policy routing rule `fwmark <mark> lookup <table>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FwmarkRule {
    /// Rule priority.
    pub priority: u32,
    /// The fwmark, hex.
    pub fwmark: &'static str,
    /// Table looked up.
    pub table: u32,
}

/// A sysctl key and value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sysctl {
    /// Dotted key, e.g. `net.ipv4.conf.ovn-k8s-mp0.forwarding`.
    pub key: String,
    /// Value as written.
    pub value: String,
}

/// Everything at the `ip`/sysctl level the node keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostNetState {
    /// Addresses.
    pub addresses: Vec<Address>,
    /// Routes.
    pub routes: Vec<Route>,
    /// Permanent neighbours.
    pub neighbours: Vec<Neighbour>,
    /// Policy rules.
    pub rules: Vec<FwmarkRule>,
    /// Sysctls.
    pub sysctls: Vec<Sysctl>,
}

fn dst_text(c: &Ipv4Cidr) -> String {
    if c.len == 32 {
        c.addr.to_string()
    } else {
        c.trunc().to_string()
    }
}

impl fmt::Display for Route {
    /// As `ip route show [table N]` prints it (without the `table` word).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", dst_text(&self.dst))?;
        if let Some(via) = self.via {
            write!(f, " via {via}")?;
        }
        write!(f, " dev {}", self.dev)?;
        if self.via.is_none() {
            write!(f, " scope link")?;
        }
        if let Some(src) = self.src {
            write!(f, " src {src}")?;
        }
        if let Some(mtu) = self.mtu {
            write!(f, " mtu {mtu}")?;
        }
        Ok(())
    }
}

impl Route {
    /// Arguments of `ip route replace` for this route.
    pub fn replace_args(&self) -> Vec<String> {
        let mut a = vec!["route".into(), "replace".into(), dst_text(&self.dst)];
        if let Some(via) = self.via {
            a.extend(["via".into(), via.to_string()]);
        }
        a.extend(["dev".into(), self.dev.clone()]);
        if let Some(src) = self.src {
            a.extend(["src".into(), src.to_string()]);
        }
        if let Some(mtu) = self.mtu {
            a.extend(["mtu".into(), mtu.to_string()]);
        }
        if let Some(t) = self.table {
            a.extend(["table".into(), t.to_string()]);
        }
        a
    }
}

impl fmt::Display for Neighbour {
    /// As `ip neigh show` prints it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} dev {} lladdr {} PERMANENT",
            self.ip, self.dev, self.mac
        )
    }
}

impl fmt::Display for FwmarkRule {
    /// As `ip rule show` prints it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:\tfrom all fwmark {} lookup {}",
            self.priority, self.fwmark, self.table
        )
    }
}

/// The node's `ip`-level state in local gateway mode (IPv4).
pub fn host_net_state(n: &NodeFacts) -> HostNetState {
    let mgmt = n.mgmt_port_ip();
    let gw = n.node_gateway_ip();
    let br = n.bridge.clone();
    let host32 = |ip: Ipv4Addr| Ipv4Cidr::new(ip, 32);
    let mut routes: Vec<Route> = n
        .cluster_subnets
        .iter()
        .map(|c| c.trunc())
        .chain([host32(MASQ_ETP_IP)])
        .map(|dst| Route {
            dst,
            via: Some(gw),
            dev: MGMT_PORT.into(),
            src: None,
            mtu: None,
            table: None,
        })
        .collect();
    routes.push(Route {
        dst: host32(MASQ_OVN_IP),
        via: None,
        dev: br.clone(),
        src: Some(n.node_ip),
        mtu: None,
        table: None,
    });
    for svc in &n.service_cidrs {
        routes.push(Route {
            dst: svc.trunc(),
            via: Some(MASQ_NEXT_HOP_IP),
            dev: br.clone(),
            src: None,
            mtu: Some(n.mtu),
            table: None,
        });
        routes.push(Route {
            dst: svc.trunc(),
            via: Some(gw),
            dev: MGMT_PORT.into(),
            src: None,
            mtu: None,
            table: Some(ITP_ROUTE_TABLE),
        });
    }
    let sysctl = |dev: &str, key: &str, value: &str| Sysctl {
        key: format!("net.ipv4.conf.{dev}.{key}"),
        value: value.into(),
    };
    HostNetState {
        addresses: vec![
            Address {
                dev: MGMT_PORT.into(),
                cidr: mgmt,
            },
            Address {
                dev: br.clone(),
                cidr: Ipv4Cidr::new(MASQ_HOST_IP, MASQ_PREFIX),
            },
        ],
        routes,
        neighbours: vec![
            Neighbour {
                dev: MGMT_PORT.into(),
                ip: gw,
                mac: MacAddr::ovn_for_ipv4(gw),
            },
            Neighbour {
                dev: br.clone(),
                ip: MASQ_OVN_IP,
                mac: MacAddr::ovn_for_ipv4(MASQ_OVN_IP),
            },
            Neighbour {
                dev: br.clone(),
                ip: MASQ_NEXT_HOP_IP,
                mac: MacAddr::ovn_for_ipv4(MASQ_NEXT_HOP_IP),
            },
        ],
        rules: vec![FwmarkRule {
            priority: ITP_RULE_PRIORITY,
            fwmark: ITP_FWMARK,
            table: ITP_ROUTE_TABLE,
        }],
        sysctls: vec![
            sysctl(MGMT_PORT, "forwarding", "1"),
            sysctl(MGMT_PORT, "rp_filter", "2"),
            sysctl(&br, "forwarding", "1"),
        ],
    }
}

impl HostNetState {
    /// Review text: addresses, routes (`ip route` syntax), neighbours, rules and sysctls.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for a in &self.addresses {
            out.push_str(&format!("addr {} dev {}\n", a.cidr, a.dev));
        }
        for r in &self.routes {
            match r.table {
                Some(t) => out.push_str(&format!("route table {t} {r}\n")),
                None => out.push_str(&format!("route {r}\n")),
            }
        }
        for nb in &self.neighbours {
            out.push_str(&format!("neigh {nb}\n"));
        }
        for r in &self.rules {
            out.push_str(&format!("rule {}\n", r.to_string().replace('\t', " ")));
        }
        for s in &self.sysctls {
            out.push_str(&format!("sysctl {}={}\n", s.key, s.value));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_node_routes_neighbours_and_addresses() {
        let text = host_net_state(&NodeFacts::seed()).text();
        assert_eq!(
            text,
            "\
addr 10.42.0.2/24 dev ovn-k8s-mp0
addr 169.254.169.2/29 dev br-ex
route 10.42.0.0/16 via 10.42.0.1 dev ovn-k8s-mp0
route 169.254.169.3 via 10.42.0.1 dev ovn-k8s-mp0
route 169.254.169.1 dev br-ex scope link src 192.168.122.14
route 10.43.0.0/16 via 169.254.169.4 dev br-ex mtu 1500
route table 7 10.43.0.0/16 via 10.42.0.1 dev ovn-k8s-mp0
neigh 10.42.0.1 dev ovn-k8s-mp0 lladdr 0a:58:0a:2a:00:01 PERMANENT
neigh 169.254.169.1 dev br-ex lladdr 0a:58:a9:fe:a9:01 PERMANENT
neigh 169.254.169.4 dev br-ex lladdr 0a:58:a9:fe:a9:04 PERMANENT
rule 30: from all fwmark 0x1745ec lookup 7
sysctl net.ipv4.conf.ovn-k8s-mp0.forwarding=1
sysctl net.ipv4.conf.ovn-k8s-mp0.rp_filter=2
sysctl net.ipv4.conf.br-ex.forwarding=1
"
        );
    }

    #[test]
    fn route_replace_args_round_trip_the_attributes() {
        let st = host_net_state(&NodeFacts::seed());
        let svc = st.routes.iter().find(|r| r.mtu.is_some()).unwrap();
        assert_eq!(
            svc.replace_args().join(" "),
            "route replace 10.43.0.0/16 via 169.254.169.4 dev br-ex mtu 1500"
        );
        let t7 = st.routes.iter().find(|r| r.table.is_some()).unwrap();
        assert!(t7
            .replace_args()
            .join(" ")
            .ends_with("dev ovn-k8s-mp0 table 7"));
    }
}
