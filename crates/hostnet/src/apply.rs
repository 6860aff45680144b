//! Appliers: make a host match the rendered state, changing only what differs.
//!
//! Each `sync_*` reads the current state with the host's own tools, compares it with the
//! rendering and writes only on a difference; it returns whether it changed anything.

use std::collections::BTreeSet;

use crate::flows::{render_flows, Flow};
use crate::host::Host;
use crate::ipstate::HostNetState;
use crate::iptables::{restore_script, HostRules, Table, TableState};
use crate::Error;

/// Replaces the bridge's flows atomically (`--bundle replace-flows`) when they differ.
pub fn sync_bridge_flows(host: &Host, bridge: &str, flows: &[Flow]) -> Result<bool, Error> {
    let dump = host.ofctl(&["dump-flows", "--no-stats", "--no-names", bridge], None)?;
    let current: BTreeSet<&str> = dump
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("cookie="))
        .collect();
    let desired: Vec<String> = flows.iter().map(ToString::to_string).collect();
    if current == desired.iter().map(String::as_str).collect() {
        return Ok(false);
    }
    host.ofctl(
        &["-O", "OpenFlow13", "--bundle", "replace-flows", bridge, "-"],
        Some(&render_flows(flows)),
    )?;
    Ok(true)
}

/// Brings every table to the desired rules with `iptables-restore --noflush -w`.
pub fn sync_iptables(host: &Host, rules: &HostRules) -> Result<bool, Error> {
    let mut changed = false;
    for table in Table::ALL {
        let save = host.run("iptables-save", &["-t", table.as_str()])?;
        if let Some(script) = restore_script(rules, table, &TableState::parse(&save)) {
            host.run_with_input("iptables-restore", &["--noflush", "-w"], Some(&script))?;
            changed = true;
        }
    }
    Ok(changed)
}

/// Adds missing addresses, routes, neighbours and rules (one `ip -batch`), then sysctls.
pub fn sync_ip_state(host: &Host, st: &HostNetState) -> Result<bool, Error> {
    let mut batch = String::new();
    let links: BTreeSet<&str> = st.addresses.iter().map(|a| a.dev.as_str()).collect();
    for dev in links {
        let link = host.run("ip", &["-o", "link", "show", "dev", dev])?;
        let up = link
            .split_once('<')
            .and_then(|(_, rest)| rest.split_once('>'))
            .is_some_and(|(flags, _)| flags.split(',').any(|f| f == "UP"));
        if !up {
            batch.push_str(&format!("link set dev {dev} up\n"));
        }
    }
    let addrs = host.run("ip", &["-o", "-4", "addr", "show"])?;
    for a in &st.addresses {
        let present = addrs.lines().any(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.get(1).map(|d| d.trim_end_matches(':')) == Some(a.dev.as_str())
                && f.windows(2)
                    .any(|w| w[0] == "inet" && w[1] == a.cidr.to_string())
        });
        if !present {
            batch.push_str(&format!("addr add {} dev {}\n", a.cidr, a.dev));
        }
    }
    let tables: BTreeSet<Option<u32>> = st.routes.iter().map(|r| r.table).collect();
    for table in tables {
        let shown = match table {
            Some(t) => match host.run("ip", &["-4", "route", "show", "table", &t.to_string()]) {
                // A table without routes does not exist yet.
                Err(Error::Command { stderr, .. }) if stderr.contains("does not exist") => {
                    String::new()
                }
                other => other?,
            },
            None => host.run("ip", &["-4", "route", "show"])?,
        };
        let shown: BTreeSet<&str> = shown.lines().map(str::trim).collect();
        for r in st.routes.iter().filter(|r| r.table == table) {
            if !shown.contains(r.to_string().as_str()) {
                batch.push_str(&format!("{}\n", r.replace_args().join(" ")));
            }
        }
    }
    let neigh = host.run("ip", &["-4", "neigh", "show"])?;
    for n in &st.neighbours {
        if !neigh.lines().any(|l| l.trim() == n.to_string()) {
            batch.push_str(&format!(
                "neigh replace {} lladdr {} dev {} nud permanent\n",
                n.ip, n.mac, n.dev
            ));
        }
    }
    let rules = host.run("ip", &["-4", "rule", "show"])?;
    for r in &st.rules {
        if !rules.lines().any(|l| l.trim() == r.to_string()) {
            batch.push_str(&format!(
                "rule add fwmark {} lookup {} prio {}\n",
                r.fwmark, r.table, r.priority
            ));
        }
    }
    let mut changed = !batch.is_empty();
    if changed {
        host.run_with_input("ip", &["-batch", "-"], Some(&batch))?;
    }
    for s in &st.sysctls {
        if host.run("sysctl", &["-n", &s.key])?.trim() != s.value {
            host.run("sysctl", &["-q", "-w", &format!("{}={}", s.key, s.value)])?;
            changed = true;
        }
    }
    Ok(changed)
}
