//! The seed cluster synced into a real NB: the `ovn-nbctl` listings match the seed's text,
//! a second sync sends nothing, and rows of others survive every sync.

mod common;
mod lab;

use common::{microshift_config, seed_snapshot};
use lab::SeedLab;
use ovnkube_desired::{desired_cluster, Desired, Snapshot};

fn is_uuid(w: &str) -> bool {
    ovsdb::Uuid::parse_str(w).is_ok() && w.len() == 36
}

/// Whitespace runs collapsed, uuids dropped, empty lines removed.
fn normalize(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| {
            l.split_whitespace()
                .filter(|w| !is_uuid(w))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .filter(|l| !l.is_empty())
        .collect()
}

struct Section {
    args: Vec<String>,
    mode: String,
    lines: Vec<String>,
}

fn sections(golden: &str) -> Vec<Section> {
    let mut out: Vec<Section> = Vec::new();
    for line in golden.lines() {
        if line.starts_with('#') {
            continue;
        }
        if let Some(cmd) = line.strip_prefix("$ ovn-nbctl ") {
            out.push(Section {
                args: cmd.split_whitespace().map(String::from).collect(),
                mode: String::new(),
                lines: Vec::new(),
            });
        } else if let Some(mode) = line.strip_prefix("== ") {
            out.last_mut().expect("mode after command").mode = mode.to_owned();
        } else if let Some(s) = out.last_mut() {
            s.lines.push(line.to_owned());
        }
    }
    out
}

/// Checks every section of a golden file against the live NB; returns the mismatches.
fn check(lab: &SeedLab, golden: &str) -> Vec<String> {
    let mut failures = Vec::new();
    for s in sections(golden) {
        let args: Vec<&str> = s.args.iter().map(String::as_str).collect();
        let got = normalize(&lab.nbctl(&args));
        let want = normalize(&s.lines.join("\n"));
        let ok = match s.mode.as_str() {
            "exact" => got == want,
            "lines" => want.iter().all(|w| got.contains(w)),
            "block" => got.windows(want.len()).any(|w| w == want.as_slice()),
            other => panic!("unknown mode {other:?}"),
        };
        if !ok {
            failures.push(format!(
                "ovn-nbctl {} ({}):\nwant {want:#?}\ngot {got:#?}",
                s.args.join(" "),
                s.mode
            ));
        }
    }
    failures
}

fn golden(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/../../fixtures/seed/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn desired(snapshot: &Snapshot) -> Desired {
    let (d, errors) = desired_cluster(&microshift_config(), snapshot);
    assert!(errors.is_empty(), "{errors:?}");
    d
}

#[test]
fn seed_listings_match_the_seed_text() {
    let lab = SeedLab::start();
    assert!(lab.sync(&desired(&seed_snapshot())) > 0);
    let failures = check(&lab, &golden("nbctl-seed.txt"));
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // Both routers use the upstream COPP; its nine meters exist.
    let copp = lab.nbctl(&[
        "--bare",
        "--columns=_uuid",
        "find",
        "Copp",
        "name=ovnkube-default",
    ]);
    for router in ["ovn_cluster_router", "GR_microshift-dev"] {
        assert_eq!(
            lab.nbctl(&["get", "logical_router", router, "copp"]).trim(),
            copp.trim()
        );
    }
    let meters = lab.nbctl(&["--bare", "--columns=name", "list", "Meter"]);
    assert_eq!(meters.split_whitespace().count(), 9, "{meters}");
}

#[test]
fn node_ip_apiserver_endpoint_matches_the_other_seed_snapshot() {
    let lab = SeedLab::start();
    let mut snap = seed_snapshot();
    for s in snap
        .endpoint_slices
        .iter_mut()
        .filter(|s| s.metadata.name.as_deref() == Some("kubernetes"))
    {
        s.endpoints[0].addresses = vec!["192.168.122.14".into()];
    }
    lab.sync(&desired(&snap));
    let failures = check(&lab, &golden("nbctl-seed-node-ip-endpoint.txt"));
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Rows of others: a switch, a load balancer on our node switch, a port on our node switch,
/// a route and a 1004 policy on ovn_cluster_router that do not follow our patterns.
const FOREIGN: &[&[&str]] = &[
    &["ls-add", "foreign-switch"],
    &["lb-add", "foreign-lb", "192.0.2.1:80", "192.0.2.2:8080"],
    &["ls-lb-add", "microshift-dev", "foreign-lb"],
    &["lsp-add", "microshift-dev", "vm-port"],
    &[
        "lr-route-add",
        "ovn_cluster_router",
        "192.0.2.0/24",
        "10.42.0.99",
    ],
    &[
        "lr-policy-add",
        "ovn_cluster_router",
        "1004",
        "ip4.src == 192.0.2.7",
        "allow",
    ],
];

fn foreign_rows_present(lab: &SeedLab) -> Vec<String> {
    let mut missing = Vec::new();
    let checks = [
        (vec!["ls-list"], "(foreign-switch)"),
        (vec!["ls-lb-list", "microshift-dev"], "foreign-lb"),
        (vec!["lsp-list", "microshift-dev"], "(vm-port)"),
        (vec!["lr-route-list", "ovn_cluster_router"], "192.0.2.0/24"),
        (
            vec!["lr-policy-list", "ovn_cluster_router"],
            "ip4.src == 192.0.2.7",
        ),
    ];
    for (args, want) in checks {
        if !lab.nbctl(&args).contains(want) {
            missing.push(format!("{want} gone from {args:?}"));
        }
    }
    missing
}

#[test]
fn a_same_named_load_balancer_of_others_neither_blocks_nor_changes() {
    let lab = SeedLab::start();
    let name = "Service_default/svc-nodeport_TCP_cluster";
    lab.nbctl(&["lb-add", name, "192.0.2.1:80", "192.0.2.2:8080"]);
    let d = desired(&seed_snapshot());
    assert!(lab.sync(&d) > 0);
    assert_eq!(lab.sync(&d), 0);
    let rows = lab.nbctl(&[
        "--bare",
        "--columns=vips",
        "find",
        "Load_Balancer",
        &format!("name=\"{name}\""),
    ]);
    let mut vips: Vec<&str> = rows.lines().filter(|l| !l.is_empty()).collect();
    vips.sort();
    assert_eq!(
        vips,
        [
            "10.43.19.182:7000=10.42.0.13:8080",
            "192.0.2.1:80=192.0.2.2:8080"
        ]
    );
}

#[test]
fn second_sync_sends_nothing_and_foreign_rows_survive() {
    let lab = SeedLab::start();
    let d = desired(&seed_snapshot());
    assert!(lab.sync(&d) > 0);
    assert_eq!(lab.sync(&d), 0, "a converged NB needs no operation");
    for cmd in FOREIGN {
        lab.nbctl(cmd);
    }
    assert_eq!(lab.sync(&d), 0, "foreign rows are not ours to change");
    assert_eq!(foreign_rows_present(&lab), Vec::<String>::new());

    // Objects deleted: pod-1 and svc-nodeport go, the foreign rows stay.
    let mut snap = seed_snapshot();
    snap.pods
        .retain(|p| p.metadata.name.as_deref() != Some("pod-1"));
    snap.services
        .retain(|s| s.metadata.name.as_deref() != Some("svc-nodeport"));
    let smaller = desired(&snap);
    let sent = lab.sync(&smaller);
    assert!(sent > 0);
    assert!(!lab
        .nbctl(&["lsp-list", "microshift-dev"])
        .contains("default_pod-1"));
    assert!(!lab
        .nbctl(&["list", "load_balancer"])
        .contains("svc-nodeport"));
    assert_eq!(foreign_rows_present(&lab), Vec::<String>::new());
    assert_eq!(lab.sync(&smaller), 0);

    // The whole node goes: its switches and GR go, the foreign rows stay.
    let empty = desired(&Snapshot::default());
    assert!(lab.sync(&empty) > 0);
    assert_eq!(
        normalize(&lab.nbctl(&["lr-list"])),
        ["(ovn_cluster_router)"]
    );
    let switches = normalize(&lab.nbctl(&["ls-list"]));
    assert_eq!(switches, ["(foreign-switch)", "(join)"]);
    assert!(lab
        .nbctl(&["lr-route-list", "ovn_cluster_router"])
        .contains("192.0.2.0/24"));
    assert!(lab
        .nbctl(&["lr-policy-list", "ovn_cluster_router"])
        .contains("ip4.src == 192.0.2.7"));
    assert!(lab.nbctl(&["list", "load_balancer"]).contains("foreign-lb"));
    assert_eq!(lab.sync(&empty), 0);
}
