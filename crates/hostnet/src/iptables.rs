//! The node's iptables rules: owned chains rendered whole plus the rules it keeps in built-in
//! chains (jumps, masquerades, accepts), and the `iptables-restore --noflush` script that turns
//! the current `iptables-save` state into the desired one without touching foreign rules.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::facts::{NodeFacts, ITP_FWMARK, MASQ_ETP_IP, MASQ_OVN_IP, MGMT_PORT};
use crate::services::{HostService, HostServicePort};

/// An iptables table the node writes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Table {
    /// `filter`
    Filter,
    /// `mangle`
    Mangle,
    /// `nat`
    Nat,
}

impl Table {
    /// Every table, in the order they are rendered.
    pub const ALL: [Table; 3] = [Table::Nat, Table::Mangle, Table::Filter];

    /// The name iptables uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Table::Filter => "filter",
            Table::Mangle => "mangle",
            Table::Nat => "nat",
        }
    }
}

/// NodePort DNAT to the cluster IP.
pub const CHAIN_NODEPORT: &str = "OVN-KUBE-NODEPORT";
/// ExternalIP / load-balancer ingress DNAT.
pub const CHAIN_EXTERNALIP: &str = "OVN-KUBE-EXTERNALIP";
/// externalTrafficPolicy=Local handling.
pub const CHAIN_ETP: &str = "OVN-KUBE-ETP";
/// internalTrafficPolicy=Local handling (nat and mangle).
pub const CHAIN_ITP: &str = "OVN-KUBE-ITP";
/// Egress-service SNAT (always empty in MicroShift, created as upstream does).
pub const CHAIN_EGRESS_SVC: &str = "OVN-KUBE-EGRESS-SVC";
/// Host -> pod SNAT to the management port address (its SNAT rule stays last).
pub const CHAIN_SNAT_MGMTPORT: &str = "OVN-KUBE-SNAT-MGMTPORT";

/// A chain owned whole by the node: its content is exactly `rules`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedChain {
    /// Table of the chain.
    pub table: Table,
    /// Chain name.
    pub name: &'static str,
    /// Rule specs (what follows `-A <chain> `), in order.
    pub rules: Vec<String>,
}

/// Where a rule in a built-in chain goes when it is missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// Inserted at position 1 (jumps into owned chains).
    First,
    /// Appended (masquerade and accept rules).
    Last,
}

/// A rule the node keeps exactly once in a built-in chain, leaving the rest of the chain alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltinRule {
    /// Table of the chain.
    pub table: Table,
    /// Built-in chain, e.g. `PREROUTING`.
    pub chain: &'static str,
    /// Rule spec (what follows `-A <chain> `).
    pub spec: String,
    /// Where it goes when missing.
    pub placement: Placement,
}

/// Every rule the node owns.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HostRules {
    /// Owned chains, rendered whole.
    pub chains: Vec<OwnedChain>,
    /// Rules in built-in chains, in insertion order (a later `First` rule ends up above).
    pub builtin: Vec<BuiltinRule>,
}

fn jump(
    table: Table,
    chain: &'static str,
    spec: impl Into<String>,
    placement: Placement,
) -> BuiltinRule {
    BuiltinRule {
        table,
        chain,
        spec: spec.into(),
        placement,
    }
}

/// `-p tcp -m tcp --dport 80` (iptables-save prints the implicit match module).
fn dport(proto: &str, port: u16) -> String {
    format!("-p {proto} -m {proto} --dport {port}")
}

/// The node's rules for the given services (local gateway mode, IPv4).
pub fn host_rules(n: &NodeFacts, services: &[HostService]) -> HostRules {
    use Placement::{First, Last};
    use Table::{Filter, Mangle, Nat};
    let mut nodeport = Vec::new();
    let mut externalip = Vec::new();
    let mut etp = Vec::new();
    let mut itp_nat = Vec::new();
    let mut itp_mangle = Vec::new();
    let mut snat_returns = Vec::new();

    for svc in services {
        let etp_to_mgmt = svc.etp_local && !svc.has_local_host_endpoint;
        for HostServicePort {
            protocol,
            port,
            node_port,
            target_port,
        } in &svc.ports
        {
            let p = protocol.as_str();
            for cip in &svc.cluster_ips {
                if let Some(np) = node_port {
                    nodeport.push(format!(
                        "-p {p} -m addrtype --dst-type LOCAL -m {p} --dport {np} -j DNAT --to-destination {cip}:{port}"
                    ));
                    if etp_to_mgmt {
                        etp.push(format!(
                            "-p {p} -m addrtype --dst-type LOCAL -m {p} --dport {np} -j DNAT --to-destination {MASQ_ETP_IP}:{np}"
                        ));
                        snat_returns.push(format!("{} -j RETURN", dport(p, *np)));
                    }
                }
                for ext in &svc.external_ips {
                    externalip.push(format!(
                        "-d {ext}/32 {} -j DNAT --to-destination {cip}:{port}",
                        dport(p, *port)
                    ));
                    if let (true, Some(np)) = (etp_to_mgmt, node_port) {
                        etp.push(format!(
                            "-d {ext}/32 {} -j DNAT --to-destination {MASQ_ETP_IP}:{np}",
                            dport(p, *port)
                        ));
                    }
                }
                if svc.itp_local {
                    match (svc.has_local_host_endpoint, target_port) {
                        (true, Some(tp)) => itp_nat.push(format!(
                            "-d {cip}/32 {} -j REDIRECT --to-ports {tp}",
                            dport(p, *port)
                        )),
                        (true, None) => {}
                        (false, _) => itp_mangle.push(format!(
                            "-d {cip}/32 {} -j MARK --set-xmark {ITP_FWMARK}/0xffffffff",
                            dport(p, *port)
                        )),
                    }
                }
            }
        }
    }

    let mut snat = snat_returns;
    snat.push(format!(
        "-o {MGMT_PORT} -m comment --comment \"OVN SNAT to Management Port\" -j SNAT --to-source {}",
        n.mgmt_port_ip().addr
    ));
    let chains = vec![
        OwnedChain {
            table: Nat,
            name: CHAIN_ITP,
            rules: itp_nat,
        },
        OwnedChain {
            table: Nat,
            name: CHAIN_EGRESS_SVC,
            rules: Vec::new(),
        },
        OwnedChain {
            table: Nat,
            name: CHAIN_NODEPORT,
            rules: nodeport,
        },
        OwnedChain {
            table: Nat,
            name: CHAIN_EXTERNALIP,
            rules: externalip,
        },
        OwnedChain {
            table: Nat,
            name: CHAIN_ETP,
            rules: etp,
        },
        OwnedChain {
            table: Nat,
            name: CHAIN_SNAT_MGMTPORT,
            rules: snat,
        },
        OwnedChain {
            table: Mangle,
            name: CHAIN_ITP,
            rules: itp_mangle,
        },
    ];
    let j = |c: &str| format!("-j {c}");
    let builtin = vec![
        jump(
            Nat,
            "POSTROUTING",
            format!("-o {MGMT_PORT} -j {CHAIN_SNAT_MGMTPORT}"),
            First,
        ),
        jump(Nat, "OUTPUT", j(CHAIN_ITP), First),
        jump(Mangle, "OUTPUT", j(CHAIN_ITP), First),
        jump(Nat, "POSTROUTING", j(CHAIN_EGRESS_SVC), First),
        jump(Nat, "PREROUTING", j(CHAIN_NODEPORT), First),
        jump(Nat, "OUTPUT", j(CHAIN_NODEPORT), First),
        jump(Nat, "PREROUTING", j(CHAIN_EXTERNALIP), First),
        jump(Nat, "OUTPUT", j(CHAIN_EXTERNALIP), First),
        jump(Nat, "PREROUTING", j(CHAIN_ETP), First),
        jump(
            Filter,
            "FORWARD",
            format!("-o {MGMT_PORT} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT"),
            Last,
        ),
        jump(Filter, "FORWARD", format!("-i {MGMT_PORT} -j ACCEPT"), Last),
        jump(
            Filter,
            "INPUT",
            format!("-i {MGMT_PORT} -m comment --comment \"from OVN to localhost\" -j ACCEPT"),
            Last,
        ),
        jump(
            Nat,
            "POSTROUTING",
            format!("-s {MASQ_OVN_IP}/32 -j MASQUERADE"),
            Last,
        ),
        jump(
            Nat,
            "POSTROUTING",
            format!("-s {} -j MASQUERADE", n.node_subnet.trunc()),
            Last,
        ),
    ];
    HostRules { chains, builtin }
}

impl HostRules {
    /// `iptables-save`-style text of what the node owns: per table, the chain declarations,
    /// the built-in chain rules in the order they end up in, then the owned chains' rules.
    pub fn save_text(&self) -> String {
        let mut out = String::new();
        for table in Table::ALL {
            let _ = writeln!(out, "*{}", table.as_str());
            for c in self.chains.iter().filter(|c| c.table == table) {
                let _ = writeln!(out, ":{} - [0:0]", c.name);
            }
            let mut builtin: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
            for r in self.builtin.iter().filter(|r| r.table == table) {
                let rules = builtin.entry(r.chain).or_default();
                match r.placement {
                    Placement::First => rules.insert(0, &r.spec),
                    Placement::Last => rules.push(&r.spec),
                }
            }
            for chain in BUILTIN_CHAIN_ORDER {
                for spec in builtin.get(chain).into_iter().flatten() {
                    let _ = writeln!(out, "-A {chain} {spec}");
                }
            }
            for c in self.chains.iter().filter(|c| c.table == table) {
                for r in &c.rules {
                    let _ = writeln!(out, "-A {} {r}", c.name);
                }
            }
            out.push_str("COMMIT\n");
        }
        out
    }
}

/// The order iptables-save prints built-in chains in.
const BUILTIN_CHAIN_ORDER: [&str; 5] = ["PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"];

/// The rules of every chain of one table, as `iptables-save` printed them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TableState {
    /// Chain name -> rule specs in order (chains without rules are present with no rules).
    pub chains: BTreeMap<String, Vec<String>>,
}

impl TableState {
    /// Parses the output of `iptables-save -t <table>`.
    pub fn parse(save: &str) -> TableState {
        let mut state = TableState::default();
        for line in save.lines() {
            if let Some(decl) = line.strip_prefix(':') {
                if let Some(name) = decl.split_whitespace().next() {
                    state.chains.entry(name.to_string()).or_default();
                }
            } else if let Some(rule) = line.strip_prefix("-A ") {
                let (chain, spec) = rule.split_once(' ').unwrap_or((rule, ""));
                state
                    .chains
                    .entry(chain.to_string())
                    .or_default()
                    .push(spec.to_string());
            }
        }
        state
    }
}

/// The `iptables-restore --noflush` input that brings `current` (one table) to the desired rules,
/// or `None` when the table already matches. Owned chains that differ are redeclared (which
/// flushes them) and refilled; missing built-in rules are inserted or appended; duplicates of
/// our rules are deleted; nothing else is touched.
pub fn restore_script(desired: &HostRules, table: Table, current: &TableState) -> Option<String> {
    let mut decls = String::new();
    let mut body = String::new();
    for c in desired.chains.iter().filter(|c| c.table == table) {
        if current.chains.get(c.name) == Some(&c.rules) {
            continue;
        }
        let _ = writeln!(decls, ":{} - [0:0]", c.name);
        for r in &c.rules {
            let _ = writeln!(body, "-A {} {r}", c.name);
        }
    }
    for r in desired.builtin.iter().filter(|r| r.table == table) {
        let present = current
            .chains
            .get(r.chain)
            .map_or(0, |rules| rules.iter().filter(|s| **s == r.spec).count());
        match (present, r.placement) {
            (0, Placement::First) => {
                let _ = writeln!(body, "-I {} 1 {}", r.chain, r.spec);
            }
            (0, Placement::Last) => {
                let _ = writeln!(body, "-A {} {}", r.chain, r.spec);
            }
            (n, _) => {
                for _ in 1..n {
                    let _ = writeln!(body, "-D {} {}", r.chain, r.spec);
                }
            }
        }
    }
    if decls.is_empty() && body.is_empty() {
        return None;
    }
    Some(format!("*{}\n{decls}{body}COMMIT\n", table.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_node_rules_contain_the_seeds_iptables_save_lines() {
        let text = host_rules(&NodeFacts::seed(), &[HostService::seed_nodeport()]).save_text();
        let lines: Vec<&str> = text.lines().collect();
        for want in [
            "-A POSTROUTING -s 10.42.0.0/24 -j MASQUERADE",
            "-A POSTROUTING -o ovn-k8s-mp0 -j OVN-KUBE-SNAT-MGMTPORT",
            "-A OVN-KUBE-SNAT-MGMTPORT -o ovn-k8s-mp0 -m comment --comment \"OVN SNAT to Management Port\" -j SNAT --to-source 10.42.0.2",
            ":OVN-KUBE-NODEPORT - [0:0]",
            "-A PREROUTING -j OVN-KUBE-NODEPORT",
            "-A OUTPUT -j OVN-KUBE-NODEPORT",
            "-A OVN-KUBE-NODEPORT -p tcp -m addrtype --dst-type LOCAL -m tcp --dport 30700 -j DNAT --to-destination 10.43.19.182:7000",
        ] {
            assert!(lines.contains(&want), "missing {want}\nin:\n{text}");
        }
        // upstream's jump order in nat PREROUTING: ETP, EXTERNALIP, NODEPORT
        let pre: Vec<&&str> = lines
            .iter()
            .filter(|l| l.starts_with("-A PREROUTING"))
            .collect();
        assert_eq!(
            pre,
            [
                &"-A PREROUTING -j OVN-KUBE-ETP",
                &"-A PREROUTING -j OVN-KUBE-EXTERNALIP",
                &"-A PREROUTING -j OVN-KUBE-NODEPORT"
            ]
        );
    }

    #[test]
    fn etp_local_without_host_endpoint_routes_via_mgmt_port_and_keeps_snat_last() {
        let mut svc = HostService::seed_nodeport();
        svc.etp_local = true;
        svc.external_ips = vec!["192.0.2.10".parse().unwrap()];
        let rules = host_rules(&NodeFacts::seed(), &[svc]);
        let chain = |name: &str| {
            rules
                .chains
                .iter()
                .find(|c| c.name == name && c.table == Table::Nat)
                .unwrap()
                .rules
                .clone()
        };
        assert_eq!(
            chain(CHAIN_ETP),
            [
                "-p tcp -m addrtype --dst-type LOCAL -m tcp --dport 30700 -j DNAT --to-destination 169.254.169.3:30700",
                "-d 192.0.2.10/32 -p tcp -m tcp --dport 7000 -j DNAT --to-destination 169.254.169.3:30700",
            ]
        );
        assert_eq!(chain(CHAIN_EXTERNALIP), ["-d 192.0.2.10/32 -p tcp -m tcp --dport 7000 -j DNAT --to-destination 10.43.19.182:7000"]);
        let snat = chain(CHAIN_SNAT_MGMTPORT);
        assert_eq!(snat[0], "-p tcp -m tcp --dport 30700 -j RETURN");
        assert!(snat
            .last()
            .unwrap()
            .contains("-j SNAT --to-source 10.42.0.2"));
    }

    #[test]
    fn itp_local_marks_or_redirects() {
        let mut svc = HostService::seed_nodeport();
        svc.itp_local = true;
        let marked = host_rules(&NodeFacts::seed(), &[svc.clone()]);
        let mangle = marked
            .chains
            .iter()
            .find(|c| c.table == Table::Mangle)
            .unwrap();
        assert_eq!(mangle.rules, ["-d 10.43.19.182/32 -p tcp -m tcp --dport 7000 -j MARK --set-xmark 0x1745ec/0xffffffff"]);
        svc.has_local_host_endpoint = true;
        let redirected = host_rules(&NodeFacts::seed(), &[svc]);
        let itp = redirected
            .chains
            .iter()
            .find(|c| c.table == Table::Nat && c.name == CHAIN_ITP)
            .unwrap();
        assert_eq!(
            itp.rules,
            ["-d 10.43.19.182/32 -p tcp -m tcp --dport 7000 -j REDIRECT --to-ports 8080"]
        );
    }

    #[test]
    fn restore_script_is_empty_when_converged_and_repairs_only_what_is_ours() {
        let rules = host_rules(&NodeFacts::seed(), &[HostService::seed_nodeport()]);
        // A table that already holds exactly our rules plus a foreign one.
        let mut save = rules
            .save_text()
            .split("COMMIT\n")
            .next()
            .unwrap()
            .to_string();
        save.push_str("-A POSTROUTING -o eth9 -j MASQUERADE\n");
        let converged = TableState::parse(&save);
        assert_eq!(restore_script(&rules, Table::Nat, &converged), None);

        // Lose a NodePort rule and a jump, duplicate another jump.
        let broken = save
            .replace("-A OVN-KUBE-NODEPORT -p tcp -m addrtype --dst-type LOCAL -m tcp --dport 30700 -j DNAT --to-destination 10.43.19.182:7000\n", "")
            .replace("-A PREROUTING -j OVN-KUBE-ETP\n", "")
            + "-A OUTPUT -j OVN-KUBE-NODEPORT\n";
        let script = restore_script(&rules, Table::Nat, &TableState::parse(&broken)).unwrap();
        assert_eq!(
            script,
            "*nat\n:OVN-KUBE-NODEPORT - [0:0]\n\
             -A OVN-KUBE-NODEPORT -p tcp -m addrtype --dst-type LOCAL -m tcp --dport 30700 -j DNAT --to-destination 10.43.19.182:7000\n\
             -D OUTPUT -j OVN-KUBE-NODEPORT\n\
             -I PREROUTING 1 -j OVN-KUBE-ETP\n\
             COMMIT\n"
        );
        assert!(!script.contains("eth9"));
    }
}
