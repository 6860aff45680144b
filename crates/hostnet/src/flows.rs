//! The br-ex OpenFlow set ("default gateway flows", local gateway mode) as a pure function.
//!
//! Flows are printed exactly as `ovs-ofctl dump-flows --no-stats --no-names` prints them, which
//! `ovs-ofctl replace-flows` also reads; so the applier can compare the dump with the rendering
//! line by line and the rendering doubles as the review text.

use std::fmt;

use crate::facts::{
    NodeFacts, Uplink, DEFAULT_COOKIE, GENEVE_PORT, MASQ_HOST_IP, MASQ_OVN_IP, ZONE_DEFAULT,
    ZONE_HOST_MASQ, ZONE_OVN_MASQ,
};

/// OpenFlow's default priority; `ovs-ofctl` omits it when printing.
const DEFAULT_PRIORITY: u16 = 32768;
/// BFD control packets (UDP 3784) bypass conntrack in local gateway mode.
const BFD_PORT: u16 = 3784;

/// One flow in `ovs-ofctl` canonical syntax.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Flow {
    /// OpenFlow table.
    pub table: u8,
    /// Priority (32768 is the OpenFlow default).
    pub priority: u16,
    /// Match fields, comma separated, in canonical order (empty matches everything).
    pub matches: String,
    /// Actions, comma separated.
    pub actions: String,
}

impl Flow {
    fn new(
        table: u8,
        priority: u16,
        matches: impl Into<String>,
        actions: impl Into<String>,
    ) -> Flow {
        Flow {
            table,
            priority,
            matches: matches.into(),
            actions: actions.into(),
        }
    }
}

impl fmt::Display for Flow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cookie={DEFAULT_COOKIE}, ")?;
        if self.table != 0 {
            write!(f, "table={}, ", self.table)?;
        }
        let mut head = Vec::new();
        let priority;
        if self.priority != DEFAULT_PRIORITY {
            priority = format!("priority={}", self.priority);
            head.push(priority.as_str());
        }
        if !self.matches.is_empty() {
            head.push(&self.matches);
        }
        if head.is_empty() {
            write!(f, "actions={}", self.actions)
        } else {
            write!(f, "{} actions={}", head.join(","), self.actions)
        }
    }
}

/// The whole br-ex flow set for one node, in a stable order.
pub fn bridge_flows(n: &NodeFacts) -> Vec<Flow> {
    let patch = n.patch_ofport;
    let pip = n.gateway_ip.addr;
    let mac = n.bridge_mac;
    let mut flows = Vec::new();

    if let Uplink::Port(e) = n.uplink {
        // Geneve to and from this host bypasses conntrack.
        flows.push(Flow::new(
            0,
            205,
            format!("udp,in_port={e},dl_dst={mac},tp_dst={GENEVE_PORT}"),
            "LOCAL",
        ));
        flows.push(Flow::new(
            0,
            200,
            format!("udp,in_port={e},tp_dst={GENEVE_PORT}"),
            "NORMAL",
        ));
        flows.push(Flow::new(
            0,
            200,
            format!("udp,in_port=LOCAL,tp_dst={GENEVE_PORT}"),
            format!("output:{e}"),
        ));
    }

    // Hairpin: host -> service whose backend is the host comes back from the GR; DNAT .2 -> node IP.
    flows.push(Flow::new(
        0,
        500,
        format!("ip,in_port={patch},nw_src={pip},nw_dst={MASQ_HOST_IP}"),
        format!("ct(commit,table=4,zone={ZONE_HOST_MASQ},nat(dst={pip}))"),
    ));
    // Hairpin to the node's other addresses.
    for ip in n
        .other_host_ips
        .iter()
        .filter(|ip| **ip != pip && **ip != MASQ_HOST_IP)
    {
        flows.push(Flow::new(
            0,
            500,
            format!("ip,in_port={patch},nw_src={pip},nw_dst={ip}"),
            format!("ct(commit,table=4,zone={ZONE_HOST_MASQ})"),
        ));
    }
    // The host's replies to hairpinned service traffic.
    flows.push(Flow::new(
        0,
        500,
        format!("ip,in_port=LOCAL,nw_dst={MASQ_OVN_IP}"),
        format!("ct(table=5,zone={ZONE_OVN_MASQ},nat)"),
    ));
    for svc in &n.service_cidrs {
        let svc = svc.trunc();
        // Host -> service: SNAT to .2 and hand to the gateway router.
        flows.push(Flow::new(
            0,
            500,
            format!("ip,in_port=LOCAL,nw_dst={svc}"),
            format!("ct(commit,table=2,zone={ZONE_HOST_MASQ},nat(src={MASQ_HOST_IP}))"),
        ));
        // Replies of host -> service: unSNAT and give to the host.
        flows.push(Flow::new(
            0,
            500,
            format!("ip,in_port={patch},nw_src={svc},nw_dst={MASQ_HOST_IP}"),
            format!("ct(table=3,zone={ZONE_HOST_MASQ},nat)"),
        ));
        // The GR did not DNAT (wrong port): never leak service IPs.
        flows.push(Flow::new(
            0,
            105,
            format!("ip,in_port={patch},nw_dst={svc}"),
            "drop",
        ));
    }
    // Local gateway: anything the GR SNATed to the node IP goes to the host via the .1 SNAT.
    for proto in ["tcp", "udp", "sctp"] {
        flows.push(Flow::new(
            0,
            175,
            format!("{proto},in_port={patch},nw_src={pip}"),
            format!("ct(table=4,zone={ZONE_HOST_MASQ})"),
        ));
    }

    if let Uplink::Port(e) = n.uplink {
        flows.extend(uplink_flows(n, e));
    }

    flows.push(Flow::new(0, 0, "", "NORMAL"));
    flows.push(Flow::new(
        2,
        DEFAULT_PRIORITY,
        "",
        format!("mod_dl_dst:{mac},output:{patch}"),
    ));
    flows.push(Flow::new(
        3,
        DEFAULT_PRIORITY,
        "",
        format!("move:NXM_OF_ETH_DST[]->NXM_OF_ETH_SRC[],mod_dl_dst:{mac},LOCAL"),
    ));
    flows.push(Flow::new(
        4,
        DEFAULT_PRIORITY,
        "ip",
        format!("ct(commit,table=3,zone={ZONE_OVN_MASQ},nat(src={MASQ_OVN_IP}))"),
    ));
    flows.push(Flow::new(
        5,
        DEFAULT_PRIORITY,
        "ip",
        format!("ct(commit,table=2,zone={ZONE_HOST_MASQ},nat)"),
    ));
    flows
}

/// Flows that exist only when the uplink NIC is a port of br-ex (the 4.13 layout).
fn uplink_flows(n: &NodeFacts, e: u32) -> Vec<Flow> {
    let patch = n.patch_ofport;
    let pip = n.gateway_ip.addr;
    let mac = n.bridge_mac;
    let mark = |m: u8| format!("exec(load:{m:#x}->NXM_NX_CT_MARK[])");
    let mut flows = vec![
        // Frames for the shared MAC (ARP and the like) go to both OVN and the host.
        Flow::new(
            0,
            10,
            format!("in_port={e},dl_dst={mac}"),
            format!("output:{patch},LOCAL"),
        ),
        // Egress IP / egress service: SNAT to the node IP.
        Flow::new(
            0,
            105,
            format!("pkt_mark=0x3f0,ip,in_port={patch}"),
            format!(
                "ct(commit,zone={ZONE_DEFAULT},nat(src={pip}),{}),output:{e}",
                mark(1)
            ),
        ),
        // OVN -> external and host -> external: remember who opened the connection.
        Flow::new(
            0,
            100,
            format!("ip,in_port={patch}"),
            format!("ct(commit,zone={ZONE_DEFAULT},{}),output:{e}", mark(1)),
        ),
        Flow::new(
            0,
            100,
            "ip,in_port=LOCAL",
            format!("ct(commit,zone={ZONE_DEFAULT},{}),output:{e}", mark(2)),
        ),
        // BFD from OVN straight out (local gateway mode).
        Flow::new(
            0,
            650,
            format!("udp,in_port={patch},tp_dst={BFD_PORT}"),
            format!("output:{e}"),
        ),
        // External ingress: look the connection up.
        Flow::new(
            0,
            50,
            format!("ip,in_port={e}"),
            format!("ct(table=1,zone={ZONE_DEFAULT},nat)"),
        ),
    ];
    // Replies go back to whoever opened the connection: OVN (mark 1) or the host (mark 2).
    for (ct_mark, out) in [(1u8, format!("output:{patch}")), (2u8, "LOCAL".to_string())] {
        for state in ["+est+trk", "+rel+trk"] {
            flows.push(Flow::new(
                1,
                100,
                format!("ct_state={state},ct_mark={ct_mark:#x},ip"),
                out.clone(),
            ));
        }
    }
    // Pod traffic leaves un-SNATed (disable-snat-multiple-gws): its return goes straight to OVN.
    for clu in &n.cluster_subnets {
        flows.push(Flow::new(
            1,
            15,
            format!("ip,nw_dst={}", clu.trunc()),
            format!("output:{patch}"),
        ));
    }
    flows.push(Flow::new(
        1,
        13,
        format!("udp,in_port={e},tp_dst={BFD_PORT}"),
        format!("output:{patch},LOCAL"),
    ));
    flows.push(Flow::new(1, 10, format!("dl_dst={mac}"), "LOCAL"));
    flows.push(Flow::new(1, 0, "", "NORMAL"));
    flows
}

/// The flow set as `replace-flows` input, one flow per line.
pub fn render_flows(flows: &[Flow]) -> String {
    flows.iter().map(|f| format!("{f}\n")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::Ipv4Cidr;
    use std::net::Ipv4Addr;

    fn lines(n: &NodeFacts) -> Vec<String> {
        bridge_flows(n).iter().map(ToString::to_string).collect()
    }

    #[test]
    fn seed_node_has_the_seeds_br_ex_flows() {
        // From the seed's `ovs-appctl bridge/dump-flows br-ex` (stats stripped, cookie added).
        let got = lines(&NodeFacts::seed());
        for want in [
            "cookie=0xdeff105, priority=500,ip,in_port=LOCAL,nw_dst=10.43.0.0/16 actions=ct(commit,table=2,zone=64001,nat(src=169.254.169.2))",
            "cookie=0xdeff105, priority=500,ip,in_port=2,nw_src=192.168.122.14,nw_dst=10.44.0.0 actions=ct(commit,table=4,zone=64001)",
        ] {
            assert!(got.iter().any(|l| l == want), "missing {want}\nin:\n{}", got.join("\n"));
        }
    }

    #[test]
    fn layouts_differ_exactly_by_the_uplink_flows() {
        let with_uplink = lines(&NodeFacts::seed());
        let mut no_uplink_facts = NodeFacts::seed();
        no_uplink_facts.uplink = Uplink::None;
        let no_uplink = lines(&no_uplink_facts);
        assert_eq!(with_uplink.len(), 31);
        assert_eq!(no_uplink.len(), 14);
        assert!(no_uplink.iter().all(|l| with_uplink.contains(l)));
        assert!(!no_uplink
            .iter()
            .any(|l| l.contains("table=1,") || l.contains("6081")));
    }

    #[test]
    fn microshift_4_14_uses_10_44_0_0_as_gateway_ip() {
        let n = NodeFacts {
            gateway_ip: Ipv4Cidr::new(Ipv4Addr::new(10, 44, 0, 0), 32),
            other_host_ips: vec![Ipv4Addr::new(192, 168, 122, 14)],
            patch_ofport: 1,
            uplink: Uplink::None,
            next_hops: vec![Ipv4Addr::new(169, 254, 169, 4)],
            ..NodeFacts::seed()
        };
        let want = "\
cookie=0xdeff105, priority=500,ip,in_port=1,nw_src=10.44.0.0,nw_dst=169.254.169.2 actions=ct(commit,table=4,zone=64001,nat(dst=10.44.0.0))
cookie=0xdeff105, priority=500,ip,in_port=1,nw_src=10.44.0.0,nw_dst=192.168.122.14 actions=ct(commit,table=4,zone=64001)
cookie=0xdeff105, priority=500,ip,in_port=LOCAL,nw_dst=169.254.169.1 actions=ct(table=5,zone=64002,nat)
cookie=0xdeff105, priority=500,ip,in_port=LOCAL,nw_dst=10.43.0.0/16 actions=ct(commit,table=2,zone=64001,nat(src=169.254.169.2))
cookie=0xdeff105, priority=500,ip,in_port=1,nw_src=10.43.0.0/16,nw_dst=169.254.169.2 actions=ct(table=3,zone=64001,nat)
cookie=0xdeff105, priority=105,ip,in_port=1,nw_dst=10.43.0.0/16 actions=drop
cookie=0xdeff105, priority=175,tcp,in_port=1,nw_src=10.44.0.0 actions=ct(table=4,zone=64001)
cookie=0xdeff105, priority=175,udp,in_port=1,nw_src=10.44.0.0 actions=ct(table=4,zone=64001)
cookie=0xdeff105, priority=175,sctp,in_port=1,nw_src=10.44.0.0 actions=ct(table=4,zone=64001)
cookie=0xdeff105, priority=0 actions=NORMAL
cookie=0xdeff105, table=2, actions=mod_dl_dst:0a:59:00:00:00:01,output:1
cookie=0xdeff105, table=3, actions=move:NXM_OF_ETH_DST[]->NXM_OF_ETH_SRC[],mod_dl_dst:0a:59:00:00:00:01,LOCAL
cookie=0xdeff105, table=4, ip actions=ct(commit,table=3,zone=64002,nat(src=169.254.169.1))
cookie=0xdeff105, table=5, ip actions=ct(commit,table=2,zone=64001,nat)
";
        assert_eq!(render_flows(&bridge_flows(&n)), want);
    }
}
