//! `ovnkube-rs render` and `ovnkube-rs sync` as processes: the seed fixture rendered offline,
//! and synced into a real NB (ovn-testlab) twice, the second run sending 0 operations.

use std::process::{Command, Output};

use ovn_testlab::Lab;

const BIN: &str = env!("CARGO_BIN_EXE_ovnkube-rs");
const SEED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/seed/cluster.yaml");
/// The flags MicroShift passes to ovnkube (those without effect here are accepted with a warning).
const MICROSHIFT_FLAGS: &[&str] = &[
    "--init-master",
    "microshift-dev",
    "--init-node",
    "microshift-dev",
    "--gateway-mode",
    "local",
    "--gateway-interface",
    "br-ex",
    "--enable-multicast",
    "--disable-snat-multiple-gws",
    "--single-node",
    "--acl-logging-rate-limit",
    "20",
];

fn run(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().expect("binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn render_prints_the_seed_rows() {
    let mut args = vec!["render", "-f", SEED];
    args.extend(MICROSHIFT_FLAGS);
    let o = run(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.contains("      1004 inport == \"rtos-microshift-dev\" && ip4.dst == 192.168.122.14 reroute 10.42.0.2"));
    assert!(text.contains("name                : \"Service_default/svc-nodeport_TCP_node_router+switch_microshift-dev\""));
    assert!(stderr(&o).contains("flag --init-master is accepted but has no effect here"));

    let o = run(&["render", "-f", SEED, "--format", "json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON output");
    let rows = v["rows"].as_array().unwrap();
    assert!(rows
        .iter()
        .any(|r| r["id"] == "Logical_Router GR_microshift-dev"));
}

#[test]
fn render_rejects_unknown_flags_and_reports_bad_objects() {
    let o = run(&["render", "-f", SEED, "--no-such-flag", "1"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("unknown flag --no-such-flag"),
        "{}",
        stderr(&o)
    );

    let dir = tempfile_dir();
    let bad = dir.join("bad.yaml");
    let mut text = std::fs::read_to_string(SEED).unwrap();
    text.push_str("---\napiVersion: v1\nkind: Service\nmetadata: {name: broken, namespace: default}\nspec: {clusterIP: 10.43.0.300, ports: [{port: 80}]}\n");
    std::fs::write(&bad, text).unwrap();
    let o = run(&["render", "-f", bad.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(
            "skipped Service default/broken: clusterIP \"10.43.0.300\" is not a valid IP address"
        ),
        "{}",
        stderr(&o)
    );
    assert!(stdout(&o).contains("(GR_microshift-dev)"));
    std::fs::remove_dir_all(dir).unwrap();
}

fn tempfile_dir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("ovnkube-render-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn sync_twice_sends_nothing_the_second_time() {
    let mut lab = Lab::new().unwrap();
    let nb = lab.start_nb().unwrap();
    let nb = lab.server(nb).unix_remote();
    lab.nbctl(&nb, &["init"]).unwrap();
    let mut args = vec!["sync", "-f", SEED, "--nb-address", &nb];
    args.extend(MICROSHIFT_FLAGS);
    let first = run(&args);
    assert!(first.status.success(), "{}", stderr(&first));
    let n: usize = stdout(&first)
        .trim()
        .trim_end_matches(" operations")
        .parse()
        .expect("count");
    assert!(n > 0);
    let second = run(&args);
    assert!(second.status.success(), "{}", stderr(&second));
    assert_eq!(stdout(&second).trim(), "0 operations");
    assert!(lab
        .nbctl(&nb, &["lr-list"])
        .unwrap()
        .contains("(GR_microshift-dev)"));
}

#[test]
fn sync_over_ssl_with_client_certificates() {
    use ovn_testlab::{Db, ServerOptions};
    let mut lab = Lab::new().unwrap();
    let pki = lab.make_pki().unwrap();
    let nb = lab
        .start_server(ServerOptions {
            ssl: Some(pki.server.clone()),
            ..ServerOptions::new(Db::Northbound)
        })
        .unwrap();
    let unix = lab.server(nb).unix_remote();
    lab.nbctl(&unix, &["init"]).unwrap();
    let ssl = lab.server(nb).ssl_remote().unwrap();
    let files = [
        pki.client.private_key.display().to_string(),
        pki.client.certificate.display().to_string(),
        pki.client.ca_cert.display().to_string(),
    ];
    let args = [
        "sync",
        "-f",
        SEED,
        "--nb-address",
        &ssl,
        "--nb-client-privkey",
        &files[0],
        "--nb-client-cert",
        &files[1],
        "--nb-client-cacert",
        &files[2],
    ];
    let first = run(&args);
    assert!(first.status.success(), "{}", stderr(&first));
    assert_ne!(stdout(&first).trim(), "0 operations");
    assert_eq!(stdout(&run(&args)).trim(), "0 operations");
    assert!(lab
        .nbctl(&unix, &["ls-list"])
        .unwrap()
        .contains("(microshift-dev)"));
}
