//! The e2e lab as a long-running process, for the demo and for exploring by hand: brings the
//! seed's cluster up with real packets (the same fixture as tests/e2e_flows.rs), prints the
//! seed's flows as a table, writes `lab.env` (namespaces, sockets, kubeconfig) and keeps
//! everything up until SIGINT or SIGTERM, then stops it all by PID and deletes the namespaces.
//!
//!   cargo build --bins --examples && target/debug/examples/e2e_lab
//!
//! `OVNKUBE_RS_BIN` names the `ovnkube-rs` binary (default: next to this example's directory).

#[path = "../tests/e2e_common/mod.rs"]
mod e2e_common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use e2e_common::seed::{SeedLab, GATEWAY_ROUTER_FLOWS, OVN_AND_MGMT_PORT_FLOWS};

/// The OVS coverage counter of packets dropped at the datapath's recirculation depth limit.
const RECIRCULATION_DROPS: &str = "datapath_drop_recirc_error";

fn ovnkube_rs_bin() -> anyhow::Result<PathBuf> {
    if let Some(bin) = std::env::var_os("OVNKUBE_RS_BIN") {
        return Ok(bin.into());
    }
    let exe = std::env::current_exe().context("locating this executable")?;
    let bin = exe
        .parent()
        .and_then(|examples| examples.parent())
        .map(|profile| profile.join("ovnkube-rs"))
        .context("no target directory above this executable")?;
    anyhow::ensure!(
        bin.exists(),
        "{} does not exist: build it (cargo build --bins) or set OVNKUBE_RS_BIN",
        bin.display()
    );
    Ok(bin)
}

/// Writes the lab's coordinates as shell variables and returns the file.
fn write_env(seed: &SeedLab) -> anyhow::Result<PathBuf> {
    let lab = &seed.lab;
    let dir = lab.node.dir();
    let vars = [
        ("LAB_DIR", dir.display().to_string()),
        ("NODE_NETNS", lab.node.netns.clone()),
        ("EXTERNAL_NETNS", seed.netns("external")),
        ("POD1_NETNS", seed.netns("pod-1")),
        ("KUBECONFIG_IN_NODE", lab.kubeconfig().display().to_string()),
        (
            "NB",
            format!("unix:{}", dir.join("ovnnb_db.sock").display()),
        ),
        (
            "SB",
            format!("unix:{}", dir.join("ovnsb_db.sock").display()),
        ),
        ("OVS_RUNDIR", dir.display().to_string()),
    ];
    let text: String = vars.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
    let path = dir.join("lab.env");
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

fn main() -> anyhow::Result<()> {
    let bin = ovnkube_rs_bin()?;
    let t0 = Instant::now();
    let seed = SeedLab::start(&bin);
    println!("\n{:-^110}", " the seed's flows with real packets ");
    let mut passed = 0;
    let mut total = 0;
    let mut gateway_failed = 0;
    let drops_before = seed.lab.node.coverage(RECIRCULATION_DROPS);
    for (flows, through_gateway) in [
        (OVN_AND_MGMT_PORT_FLOWS, false),
        (GATEWAY_ROUTER_FLOWS, true),
    ] {
        for outcome in seed.run(flows, Duration::from_secs(3)) {
            total += 1;
            match outcome.result {
                Ok(row) => {
                    passed += 1;
                    println!("PASS {row}");
                }
                Err(e) => {
                    gateway_failed += usize::from(through_gateway);
                    println!("FAIL {e}");
                }
            }
        }
    }
    println!(
        "{passed} of {total} flows passed; lab up in {:.1}s",
        t0.elapsed().as_secs_f64()
    );
    let dropped = seed
        .lab
        .node
        .coverage(RECIRCULATION_DROPS)
        .saturating_sub(drops_before);
    if gateway_failed > 0 && dropped > 0 {
        println!(
            "  {gateway_failed} flow(s) through br-ex and the gateway router failed, and ovs-vswitchd dropped \
             {dropped} packet(s) at its recirculation limit meanwhile (coverage datapath_drop_recirc_error): \
             the path needs 7 recirculations, Debian 12's userspace datapath stops at 6; run the lab with \
             OVS_VSWITCHD set to what hack/ovs-datapath.sh prints (README, Troubleshooting)"
        );
    }
    let env = write_env(&seed)?;
    let lab = &seed.lab;
    let dir = lab.node.dir().display();
    println!(
        "\nREADY {env}\nExplore (the API server listens inside the node namespace):\n  \
         ip netns exec {node} kubectl --kubeconfig {kc} get pods,svc -A\n  \
         ip netns exec {pod1} ping -c1 10.42.0.13\n  \
         ovn-nbctl --db=unix:{dir}/ovnnb_db.sock show\n  \
         ovn-trace --db=unix:{dir}/ovnsb_db.sock --ct=new microshift-dev '<flow>'\n  \
         OVS_RUNDIR={dir} ovs-appctl -t $(ls {dir}/ovs-vswitchd.*.ctl) dpctl/dump-conntrack\n\
         Logs: {dir}/*.log    Stop: kill -TERM {pid}",
        env = env.display(),
        node = lab.node.netns,
        kc = lab.kubeconfig().display(),
        pod1 = seed.netns("pod-1"),
        pid = std::process::id(),
    );
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(async {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
            tokio::select! {
                r = tokio::signal::ctrl_c() => r,
                _ = term.recv() => Ok(()),
            }
        })
        .context("waiting for a signal")?;
    println!("stopping the lab");
    drop(seed);
    Ok(())
}
