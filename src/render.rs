//! `ovnkube-rs render`: Kubernetes objects in, the NB rows ovnkube-rs would program out, as
//! text close to the `ovn-nbctl` listings (`--format nbctl`, the default) or as JSON.

use std::collections::BTreeMap;
use std::io::Read;

use anyhow::{bail, Context};
use ovnkube_desired::names::*;
use ovnkube_desired::{desired_cluster, Desired, ObjectError, RowId, Snapshot};
use ovsdb::{Atom, Datum, Row};

use crate::flags;

/// Reads Kubernetes objects from a file (`-` for stdin): a `kind: List` or multi-document YAML.
pub fn load_objects(path: &str) -> anyhow::Result<(Snapshot, Vec<ObjectError>)> {
    let mut text = String::new();
    if path == "-" {
        std::io::stdin()
            .read_to_string(&mut text)
            .context("reading objects from stdin")?;
    } else {
        text = std::fs::read_to_string(path)
            .with_context(|| format!("reading objects from {path}"))?;
    }
    let (snapshot, other, errors) = Snapshot::from_yaml(&text).with_context(|| path.to_owned())?;
    for (kind, n) in other {
        tracing::debug!("{path}: ignoring {n} object(s) of kind {kind}");
    }
    Ok((snapshot, errors))
}

/// Reports skipped objects on stderr (each error names its object).
pub fn report(errors: &[ObjectError]) {
    for e in errors {
        eprintln!("warning: skipped {e}");
    }
}

/// Runs `render` with its raw arguments (`-f FILE [--format nbctl|json] [ovnkube flags]`).
pub fn run(args: &[String]) -> anyhow::Result<()> {
    let flags::Parsed {
        ovnkube,
        own,
        warnings,
    } = flags::parse(args, &["f", "filename", "format"])?;
    for w in warnings {
        eprintln!("warning: {w}");
    }
    let mut file = None;
    let mut format = "nbctl".to_owned();
    for (name, value) in own {
        match name.as_str() {
            "format" => format = value,
            _ => file = Some(value),
        }
    }
    let file = file.context("render needs -f <objects.yaml> (or -f - for stdin)")?;
    let (snapshot, mut errors) = load_objects(&file)?;
    let (desired, more) = desired_cluster(&ovnkube.config, &snapshot);
    errors.extend(more);
    report(&errors);
    let out = match format.as_str() {
        "nbctl" => nbctl_text(&desired),
        "json" => serde_json::to_string_pretty(&json(&desired))? + "\n",
        other => bail!("--format {other:?}: expected nbctl or json"),
    };
    print!("{out}");
    Ok(())
}

/// The JSON form: one object per row with its table, owner and columns (OVSDB wire form),
/// and the links with both ends by identity.
pub fn json(d: &Desired) -> serde_json::Value {
    let rows: Vec<serde_json::Value> = d
        .rows
        .iter()
        .map(|(id, r)| {
            serde_json::json!({
                "table": id.table(),
                "id": id.to_string(),
                "owner": r.owner.to_string(),
                "columns": ovsdb::datum::row_to_json(&r.columns),
            })
        })
        .collect();
    let links: Vec<serde_json::Value> = d
        .links
        .iter()
        .map(|l| {
            serde_json::json!({
                "owner": l.owner.to_string(),
                "parent": format!("{} {}", l.parent.table, l.parent.name),
                "column": l.column,
                "child": l.child.to_string(),
            })
        })
        .collect();
    serde_json::json!({"rows": rows, "links": links})
}

/// ovsdb's rule for bare strings in text output: letters, `_`, `-`, `.` (not `true`/`false`).
fn quoted(s: &str) -> String {
    let mut chars = s.chars();
    let bare = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphabetic() || c == '_' || c == '-' || c == '.')
        && s != "true"
        && s != "false";
    if bare {
        s.to_owned()
    } else {
        format!("{s:?}")
    }
}

fn atom(a: &Atom) -> String {
    match a {
        Atom::String(s) => quoted(s),
        other => other.to_string(),
    }
}

/// A column as `ovn-nbctl list` prints it.
fn column_text(d: Option<&Datum>, is_map: bool) -> String {
    match d {
        Some(Datum::Map(m)) => {
            let items: Vec<String> = m
                .iter()
                .map(|(k, v)| format!("{}={}", atom(k), atom(v)))
                .collect();
            format!("{{{}}}", items.join(", "))
        }
        Some(Datum::Set(s)) if s.len() == 1 => atom(s.iter().next().expect("one")),
        Some(Datum::Set(s)) if !s.is_empty() => {
            let items: Vec<String> = s.iter().map(atom).collect();
            format!("[{}]", items.join(", "))
        }
        _ if is_map => "{}".into(),
        _ => "[]".into(),
    }
}

fn named_rows<'a>(d: &'a Desired, table: &str) -> Vec<(&'a str, &'a Row)> {
    d.rows
        .iter()
        .filter_map(|(id, r)| match id {
            RowId::Named(n) if n.table == table => Some((n.name.as_str(), &r.columns)),
            _ => None,
        })
        .collect()
}

fn children<'a>(d: &'a Desired, table: &str, parent: &str) -> Vec<&'a Row> {
    d.rows
        .iter()
        .filter(|(id, _)| matches!(id, RowId::Child { table: t, parent: p, .. } if *t == table && p.name == parent))
        .map(|(_, r)| &r.columns)
        .collect()
}

/// Names of the members of `parent.column` (explicit links).
fn members<'a>(d: &'a Desired, parent: &str, column: &str) -> Vec<&'a str> {
    d.links
        .iter()
        .filter(|l| l.parent.name == parent && l.column == column)
        .filter_map(|l| match &l.child {
            RowId::Named(n) => Some(n.name.as_str()),
            RowId::Child { .. } => None,
        })
        .collect()
}

fn s(r: &Row, c: &str) -> String {
    r.get(c)
        .and_then(Datum::as_atom)
        .map(|a| a.to_string())
        .unwrap_or_default()
}

fn list(r: &Row, c: &str) -> String {
    let items: Vec<String> = r
        .get(c)
        .into_iter()
        .flat_map(Datum::atoms)
        .map(|a| format!("{:?}", a.to_string()))
        .collect();
    format!("[{}]", items.join(", "))
}

/// The rows as the `ovn-nbctl` commands of the seed would list them (uuids left out).
pub fn nbctl_text(d: &Desired) -> String {
    let mut out = String::new();
    let switches = named_rows(d, LOGICAL_SWITCH);
    let routers = named_rows(d, LOGICAL_ROUTER);
    out += "$ ovn-nbctl ls-list\n";
    for (n, _) in &switches {
        out += &format!("({n})\n");
    }
    out += "\n$ ovn-nbctl lr-list\n";
    for (n, _) in &routers {
        out += &format!("({n})\n");
    }
    out += "\n$ ovn-nbctl show\n";
    for (n, _) in &switches {
        out += &format!("switch ({n})\n");
        for p in members(d, n, "ports") {
            let Some(r) = d.named_row(LOGICAL_SWITCH_PORT, p) else {
                continue;
            };
            out += &format!("    port {p}\n");
            if !s(r, "type").is_empty() {
                out += &format!("        type: {}\n", s(r, "type"));
            }
            if let Some(rp) = r.get("options").and_then(|o| o.get("router-port")) {
                out += &format!("        router-port: {rp}\n");
            }
            if s(r, "type") != "router" {
                out += &format!("        addresses: {}\n", list(r, "addresses"));
            }
        }
    }
    for (n, _) in &routers {
        out += &format!("router ({n})\n");
        for p in members(d, n, "ports") {
            let Some(r) = d.named_row(LOGICAL_ROUTER_PORT, p) else {
                continue;
            };
            out += &format!(
                "    port {p}\n        mac: {:?}\n        networks: {}\n",
                s(r, "mac"),
                list(r, "networks")
            );
            let gcs: Vec<String> = members(d, p, "gateway_chassis")
                .iter()
                .filter_map(|g| d.named_row(GATEWAY_CHASSIS, g))
                .map(|g| s(g, "chassis_name"))
                .collect();
            if !gcs.is_empty() {
                out += &format!("        gateway chassis: [{}]\n", gcs.join(" "));
            }
        }
        for nat in children(d, NAT, n) {
            out += &format!(
                "    nat\n        external ip: {:?}\n        logical ip: {:?}\n        type: {:?}\n",
                s(nat, "external_ip"),
                s(nat, "logical_ip"),
                s(nat, "type")
            );
        }
    }
    for (n, r) in &routers {
        out += &format!(
            "\n$ ovn-nbctl get logical_router {n} options\n{}\n",
            column_text(r.get("options"), true)
        );
    }
    for (n, _) in &routers {
        out += &format!("\n$ ovn-nbctl lr-route-list {n}\n");
        let mut routes: Vec<&Row> = children(d, STATIC_ROUTE, n);
        // Longest prefix first, as ovn-nbctl sorts them.
        routes.sort_by_key(|r| {
            let p = s(r, "ip_prefix");
            let len: u8 = p
                .split_once('/')
                .and_then(|(_, l)| l.parse().ok())
                .unwrap_or(32);
            (std::cmp::Reverse(len), p)
        });
        if !routes.is_empty() {
            out += "IPv4 Routes\nRoute Table <main>:\n";
        }
        for r in routes {
            let policy = r
                .get("policy")
                .and_then(Datum::as_atom)
                .map_or("dst-ip".to_owned(), |a| a.to_string());
            let port = s(r, "output_port");
            let line = format!(
                "{:>25} {:>25} {policy} {port}",
                s(r, "ip_prefix"),
                s(r, "nexthop")
            );
            out += line.trim_end();
            out += "\n";
        }
        let policies = children(d, POLICY, n);
        if !policies.is_empty() {
            out += &format!("\n$ ovn-nbctl lr-policy-list {n}\nRouting Policies\n");
            for p in policies {
                let hops: Vec<String> = p
                    .get("nexthops")
                    .into_iter()
                    .flat_map(Datum::atoms)
                    .map(|a| a.to_string())
                    .collect();
                out += &format!(
                    "{:>10} {} {} {}\n",
                    s(p, "priority"),
                    s(p, "match"),
                    s(p, "action"),
                    hops.join(",")
                );
            }
        }
    }
    let group_lbs = members(d, CLUSTER_LB_GROUP, "load_balancer");
    for (cmd, items) in [("ls-lb-list", &switches), ("lr-lb-list", &routers)] {
        for (n, _) in items.iter() {
            let mut lbs: Vec<&str> = members(d, n, "load_balancer");
            if members(d, n, "load_balancer_group").contains(&CLUSTER_LB_GROUP) {
                lbs.extend(&group_lbs);
            }
            if lbs.is_empty() {
                continue;
            }
            out += &format!(
                "\n$ ovn-nbctl {cmd} {n}\n{:<16}    {:<11}{:<22}IPs\n",
                "LB", "PROTO", "VIP"
            );
            for lb in lbs {
                let Some(r) = d.named_row(LOAD_BALANCER, lb) else {
                    continue;
                };
                for (i, (vip, ips)) in r.get("vips").into_iter().flat_map(Datum::pairs).enumerate()
                {
                    let (name, proto) = if i == 0 {
                        (lb, s(r, "protocol"))
                    } else {
                        ("", String::new())
                    };
                    let short: String = name.chars().take(16).collect();
                    out += &format!(
                        "{short:<16}    {proto:<11}{:<22}{}\n",
                        vip.to_string(),
                        ips.to_string().replace(',', ", ")
                    );
                }
            }
        }
    }
    out += "\n$ ovn-nbctl list load_balancer\n";
    let mut first = true;
    for (name, r) in named_rows(d, LOAD_BALANCER) {
        if !first {
            out += "\n";
        }
        first = false;
        let cols: BTreeMap<&str, String> = BTreeMap::from([
            ("external_ids", column_text(r.get("external_ids"), true)),
            ("health_check", "[]".into()),
            ("ip_port_mappings", "{}".into()),
            ("name", format!("{name:?}")),
            ("options", column_text(r.get("options"), true)),
            ("protocol", column_text(r.get("protocol"), false)),
            ("selection_fields", "[]".into()),
            ("vips", column_text(r.get("vips"), true)),
        ]);
        for (c, v) in cols {
            out += &format!("{c:<20}: {v}\n");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_quoted_as_ovsdb_does() {
        assert_eq!(quoted("Service"), "Service");
        assert_eq!(quoted("snat-ct-zone"), "snat-ct-zone");
        assert_eq!(quoted("k8s.ovn.org/kind"), "\"k8s.ovn.org/kind\"");
        assert_eq!(quoted("false"), "\"false\"");
        assert_eq!(quoted("0"), "\"0\"");
        assert_eq!(quoted("169.254.169.5 fd69::5"), "\"169.254.169.5 fd69::5\"");
    }

    /// The whole nbctl rendering of the seed with MicroShift's flags, against a golden file
    /// (regenerate on purpose with `UPDATE_GOLDEN=1 cargo test --bin ovnkube-rs render`).
    #[test]
    fn seed_render_matches_the_golden_file() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/seed/cluster.yaml");
        let golden = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures/seed/render-nbctl.txt"
        );
        let (snapshot, _) = load_objects(path).unwrap();
        let flags: Vec<String> = [
            "--gateway-mode",
            "local",
            "--enable-multicast",
            "--disable-snat-multiple-gws",
        ]
        .map(String::from)
        .to_vec();
        let ovnkube = flags::parse(&flags, &[]).unwrap().ovnkube;
        let (d, _) = desired_cluster(&ovnkube.config, &snapshot);
        let text = nbctl_text(&d);
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            std::fs::write(golden, &text).unwrap();
        }
        let want = std::fs::read_to_string(golden).unwrap();
        assert!(text == want, "render differs from {golden}:\n{text}");
    }

    #[test]
    fn seed_renders_the_seed_listings() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/seed/cluster.yaml");
        let (snapshot, errors) = load_objects(path).unwrap();
        assert!(errors.is_empty());
        let ovnkube = flags::parse(&["--disable-snat-multiple-gws".into()], &[])
            .unwrap()
            .ovnkube;
        let (d, _) = desired_cluster(&ovnkube.config, &snapshot);
        let text = nbctl_text(&d);
        for want in [
            "      1004 inport == \"rtos-microshift-dev\" && ip4.dst == 192.168.122.14 reroute 10.42.0.2",
            "             10.42.0.0/24                 10.42.0.2 src-ip",
            "         169.254.169.0/29             169.254.169.4 dst-ip rtoe-GR_microshift-dev",
            "             10.42.0.0/16                100.64.0.1 dst-ip",
            "                0.0.0.0/0             192.168.122.1 dst-ip rtoe-GR_microshift-dev",
            "{always_learn_from_arp_request=\"false\", chassis=\"275588ee-e349-4824-9d80-106bd275228f\", dynamic_neigh_routers=\"true\", lb_force_snat_ip=router_ip, snat-ct-zone=\"0\"}",
            "options             : {event=\"false\", hairpin_snat_ip=\"169.254.169.5 fd69::5\", neighbor_responder=none, reject=\"true\", skip_snat=\"false\"}",
            "vips                : {\"10.43.0.10:53\"=\"10.42.0.7:5353\", \"10.43.0.10:9154\"=\"10.42.0.7:9154\"}",
            "external_ids        : {\"k8s.ovn.org/kind\"=Service, \"k8s.ovn.org/owner\"=\"openshift-dns/dns-default\"}",
            "    port rtoj-GR_microshift-dev\n        mac: \"0a:58:64:40:00:02\"\n        networks: [\"100.64.0.2/16\"]",
            "(ext_microshift-dev)\n(join)\n(microshift-dev)\n",
        ] {
            assert!(text.contains(want), "missing {want:?} in\n{text}");
        }
    }
}
