//! `ctlbench`: benchmarks `ovnkube-rs controller` (a release binary) against a real NB and the
//! in-process API test server loaded with a generated cluster, and prints one report:
//! cold converge against the raw write floor, EndpointSlice churn latency to NB and through
//! ovn-northd to SB, restart on a converged NB, the refill of an NB recreated empty under the
//! running controller, peak RSS and CPU time. Not a test: it reports
//! whether the goals are met and exits 0 either way (non-zero only when something broke).
//! Run it through `hack/bench-controller.sh`.

mod churn;
mod cluster;
mod process;
mod raw;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use kube_test_apiserver::{Config as ApiConfig, TestApiServer};
use ovn_testlab::Lab;
use ovsdb::ops::{Mutation, Mutator, Operation};
use ovsdb::{Client, ClientConfig, Datum, MonitorSpec, TableMonitor};

use churn::{ChurnResult, Churner};
use cluster::Size;
use process::{Controller, Usage};

/// Scenario S by default: 100 nodes, 10k pods, 5k services, 25k endpoints.
#[derive(Parser, Debug)]
#[command(name = "ctlbench")]
struct Args {
    /// The controller binary (default: `ovnkube-rs` next to this binary).
    #[arg(long)]
    controller: Option<PathBuf>,
    #[arg(long, default_value_t = 100)]
    nodes: usize,
    #[arg(long, default_value_t = 10_000)]
    pods: usize,
    #[arg(long, default_value_t = 5_000)]
    services: usize,
    #[arg(long, default_value_t = 5)]
    endpoints_per_service: usize,
    /// EndpointSlice patch rates, one churn phase each.
    #[arg(long, value_delimiter = ',', default_value = "100,1000")]
    rates: Vec<u32>,
    /// Length of each churn phase.
    #[arg(long, default_value_t = 60.0)]
    churn_seconds: f64,
    /// How long to wait for the last updates of a phase to show.
    #[arg(long, default_value_t = 30.0)]
    drain_seconds: f64,
    /// Skip ovn-northd (and the SB latency).
    #[arg(long)]
    no_northd: bool,
    /// An earlier controller binary: its cold converge (time to ready, ratio to the same raw
    /// floor, peak RSS at ready, on a fresh NB) and its restart on the converged NB are
    /// measured in this run too, side by side.
    #[arg(long)]
    baseline: Option<PathBuf>,
    /// Where the controller logs go (default: the lab's temp dir, removed at exit).
    #[arg(long)]
    log_dir: Option<PathBuf>,
}

fn nb_config(remote: String) -> ClientConfig {
    let mut c = ClientConfig::new("OVN_Northbound", vec![remote]);
    c.indexed_external_ids = vec!["k8s.ovn.org/owner".into()];
    c.request_wait = Duration::from_secs(300);
    c
}

fn sb_config(remote: String) -> ClientConfig {
    // Only load balancers: the SB's logical flows would dwarf everything else.
    let mut c = ClientConfig::new("OVN_Southbound", vec![remote]);
    c.monitor = MonitorSpec {
        tables: Some([("Load_Balancer".to_owned(), TableMonitor::default())].into()),
    };
    c.request_wait = Duration::from_secs(300);
    c
}

/// Bumps `NB_Global.nb_cfg` and waits until ovn-northd reports it in `sb_cfg`: how long
/// northd takes to process everything written before.
async fn nb_cfg_round_trip(nb: &Client, timeout: Duration) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let mut changes = nb.subscribe();
    let bump = Operation::Mutate {
        table: "NB_Global".into(),
        conditions: vec![],
        mutations: vec![Mutation {
            column: "nb_cfg".into(),
            mutator: Mutator::Add,
            value: Datum::scalar(1i64),
        }],
    };
    let column = |name: &str| {
        let replica = nb.replica();
        let row = replica.table("NB_Global")?.rows().next()?.1.clone();
        match row.get(name)?.as_atom()? {
            ovsdb::Atom::Integer(i) => Some(*i),
            _ => None,
        }
    };
    // ovn-northd creates NB_Global when it first connects.
    while nb.replica().table("NB_Global").is_none_or(|t| t.is_empty()) {
        tokio::time::timeout_at((started + timeout).into(), changes.changed())
            .await
            .context("no NB_Global row")??;
    }
    nb.transact(vec![bump]).await?;
    let wanted = column("nb_cfg").context("NB_Global has no nb_cfg")?;
    while column("sb_cfg").unwrap_or(0) < wanted {
        tokio::time::timeout_at((started + timeout).into(), changes.changed())
            .await
            .context("ovn-northd did not catch up")??;
    }
    Ok(started.elapsed())
}

/// Rows per table.
fn table_rows(r: &ovsdb::replica::Replica) -> std::collections::BTreeMap<String, usize> {
    r.schema()
        .tables
        .keys()
        .map(|t| (t.clone(), r.table(t).map_or(0, |t| t.len())))
        .filter(|(_, n)| *n > 0)
        .collect()
}

/// Prints how many warnings a controller log holds, and the first few.
fn warnings_of(log: &std::path::Path) {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let warnings: Vec<&str> = text.lines().filter(|l| l.contains(" WARN ")).collect();
    println!("controller warnings: {}", warnings.len());
    for w in warnings.iter().take(5) {
        println!("  {w}");
    }
}

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

fn verdict(met: bool) -> &'static str {
    if met {
        "MET"
    } else {
        "MISSED"
    }
}

fn report_churn(r: &ChurnResult, p99_goal_ms: f64) -> bool {
    let achieved = r.sent as f64 / r.send_seconds;
    println!(
        "churn {}/s: {} patches in {:.1} s ({achieved:.0}/s achieved), {} patch errors",
        r.rate, r.sent, r.send_seconds, r.patch_errors
    );
    println!(
        "  patch -> NB LB shows it ({} seen): {}; lost {}; superseded before shown {}",
        r.nb.len(),
        r.nb.summary(),
        r.nb_lost,
        r.superseded
    );
    if let Some((sb, lost)) = &r.sb {
        println!(
            "  patch -> SB LB (ovn-northd processed it) ({} seen): {}; not seen {lost}",
            sb.len(),
            sb.summary()
        );
    }
    let p99 = r.nb.pct(99.0).as_secs_f64() * 1000.0;
    let met = p99 <= p99_goal_ms && r.nb_lost == 0 && r.patch_errors == 0;
    println!(
        "  goal p99 <= {p99_goal_ms} ms, nothing lost: {}",
        verdict(met)
    );
    met
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let bin = match &args.controller {
        Some(p) => p.clone(),
        None => std::env::current_exe()?
            .parent()
            .context("binary directory")?
            .join("ovnkube-rs"),
    };
    let size = Size {
        nodes: args.nodes,
        pods: args.pods,
        services: args.services,
        endpoints_per_service: args.endpoints_per_service,
    };
    println!("scenario: {size:?}; controller {}", bin.display());
    let generated = cluster::generate(size)?;
    let api = TestApiServer::start(ApiConfig {
        objects: generated.objects,
        event_window: 200_000,
        ..ApiConfig::default()
    })
    .await?;
    let mut lab = Lab::new()?;
    let kubeconfig = lab.path().join("kubeconfig");
    api.write_kubeconfig(&kubeconfig)?;
    let client = kube::Client::try_from(
        kube::Config::from_custom_kubeconfig(
            kube::config::Kubeconfig::read_from(&kubeconfig)?,
            &Default::default(),
        )
        .await?,
    )?;
    let log_dir = args
        .log_dir
        .clone()
        .unwrap_or_else(|| lab.path().to_owned());
    std::fs::create_dir_all(&log_dir)?;
    let nb_id = lab.start_nb()?;
    let nb_remote = lab.server(nb_id).unix_remote();
    let nb_pid = lab.server(nb_id).pid().context("NB pid")?;

    // 1. Cold converge on an empty NB.
    let mut controller =
        Controller::spawn(&bin, &kubeconfig, &nb_remote, log_dir.join("cold.log"))?;
    let ready = controller.wait_ready(Duration::from_secs(600)).await?;
    let usage_at_ready = controller.usage()?;
    let (txns_ready, ops_ready) = controller.nb_counters().await;
    let quiet = controller
        .wait_quiet(Duration::from_secs(1), Duration::from_secs(600))
        .await?;
    let (txns_quiet, ops_quiet) = controller.nb_counters().await;
    let nb = Client::connect(nb_config(nb_remote.clone())).await?;
    let rows = nb.replica().row_count();
    let cold_tables = table_rows(&nb.replica());
    let nb_server_usage = process::usage(nb_pid)?;

    // 2. The floor: the same rows as one raw transaction into a fresh NB.
    let desired = raw::desired_from_api(&client).await?;
    let left = ovnkube_reconcile::diff(&desired, &nb.replica(), &ovnkube_reconcile::Scope::Full)
        .write_count();
    let fresh_id = lab.start_nb()?;
    let fresh_path = lab.server(fresh_id).unix_remote();
    let fresh = Client::connect(nb_config(fresh_path.clone())).await?;
    let empty = fresh.replica().clone();
    drop(fresh);
    let fresh_pid = lab.server(fresh_id).pid().context("fresh NB pid")?;
    let raw_cpu_before = process::usage(fresh_pid)?.cpu_seconds;
    let raw = raw::write(fresh_path.trim_start_matches("unix:"), &empty, &desired).await?;
    let raw_server_cpu = process::usage(fresh_pid)?.cpu_seconds - raw_cpu_before;
    let fresh_tables = table_rows(&Client::connect(nb_config(fresh_path)).await?.replica());
    let fresh_rows: usize = fresh_tables.values().sum();
    lab.kill(fresh_id);
    // The same write into another fresh NB with one monitoring client attached, as the
    // controller's own monitor is: the server sends every row back and the client parses it.
    let echo_id = lab.start_nb()?;
    let echo_path = lab.server(echo_id).unix_remote();
    let echo_pid = lab.server(echo_id).pid().context("NB pid")?;
    let watcher = Client::connect(nb_config(echo_path.clone())).await?;
    let mut changes = watcher.subscribe();
    let echo_cpu_before = process::usage(echo_pid)?.cpu_seconds;
    let echo_started = Instant::now();
    raw::write(echo_path.trim_start_matches("unix:"), &empty, &desired).await?;
    while watcher.replica().row_count() < fresh_rows {
        tokio::time::timeout(Duration::from_secs(120), changes.changed())
            .await
            .context("the monitoring client did not see the raw write")??;
    }
    let echoed = echo_started.elapsed();
    let echo_server_cpu = process::usage(echo_pid)?.cpu_seconds - echo_cpu_before;
    drop(watcher);
    lab.kill(echo_id);

    let ratio = ready.as_secs_f64() / raw.elapsed.as_secs_f64();
    println!("\n== cold converge (empty NB, {rows} rows)");
    println!(
        "ready after {} (from process start): {txns_ready} transactions, {ops_ready} operations",
        secs(ready)
    );
    println!(
        "quiet after {} (start-up keys worked off): {txns_quiet} transactions, {ops_quiet} operations in all",
        secs(quiet)
    );
    println!(
        "raw floor: {} operations ({:.1} MB) in one transaction into a fresh NB: {} ({fresh_rows} rows)",
        raw.operations,
        raw.request_bytes as f64 / 1e6,
        secs(raw.elapsed)
    );
    println!(
        "raw floor with a monitoring client attached: {} until the client holds every row (ratio to it {:.2}); NB server CPU {echo_server_cpu:.2} s",
        secs(echoed),
        ready.as_secs_f64() / echoed.as_secs_f64()
    );
    println!(
        "controller NB vs the rows sync computes from the API: {left} operations apart; NB server CPU {:.2} s (raw write: {raw_server_cpu:.2} s)",
        nb_server_usage.cpu_seconds
    );
    for (table, n) in &fresh_tables {
        let had = cold_tables.get(table).copied().unwrap_or(0);
        if had != *n {
            println!("  {table}: controller {had} rows, raw {n}");
        }
    }
    warnings_of(&controller.log);
    println!("peak RSS at ready {:.1} MiB", usage_at_ready.peak_rss_mib);
    if let Some(baseline) = &args.baseline {
        let id = lab.start_nb()?;
        let remote = lab.server(id).unix_remote();
        let mut base =
            Controller::spawn(baseline, &kubeconfig, &remote, log_dir.join("baseline.log"))?;
        let base_ready = base.wait_ready(Duration::from_secs(600)).await?;
        let base_usage = base.usage()?;
        let base_server_cpu = process::usage(lab.server(id).pid().context("NB pid")?)?.cpu_seconds;
        base.terminate()?;
        lab.kill(id);
        println!(
            "baseline {}: ready after {} (ratio {:.2}), peak RSS at ready {:.1} MiB, NB server CPU {base_server_cpu:.2} s",
            baseline.display(),
            secs(base_ready),
            base_ready.as_secs_f64() / raw.elapsed.as_secs_f64(),
            base_usage.peak_rss_mib
        );
    }
    let per_100_rows = txns_quiet / (rows as f64 / 100.0);
    let cold_met = ratio <= 1.5 && per_100_rows <= 1.0;
    println!(
        "ratio {ratio:.2} (goal <= 1.5), {per_100_rows:.3} transactions per 100 rows (goal <= 1): {}",
        verdict(cold_met)
    );

    // 3. Churn, with ovn-northd between NB and SB.
    let sb = if args.no_northd {
        None
    } else {
        let sb_id = lab.start_sb()?;
        lab.start_northd(nb_id, sb_id)?;
        let catch_up = nb_cfg_round_trip(&nb, Duration::from_secs(600)).await?;
        println!("\novn-northd first full computation: {}", secs(catch_up));
        Some(Client::connect(sb_config(lab.server(sb_id).unix_remote())).await?)
    };
    let mut churner = Churner::new(client.clone(), generated.slices, size.nodes);
    let mut churn_met = true;
    for (rate, goal) in args
        .rates
        .iter()
        .map(|&r| (r, if r <= 100 { 5.0 } else { 20.0 }))
    {
        let before = controller.nb_counters().await;
        let r = churner
            .run(
                &nb,
                sb.as_ref(),
                rate,
                Duration::from_secs_f64(args.churn_seconds),
                Duration::from_secs_f64(args.drain_seconds),
            )
            .await?;
        let after = controller.nb_counters().await;
        println!();
        churn_met &= report_churn(&r, goal);
        println!(
            "  controller: {} transactions, {} operations",
            after.0 - before.0,
            after.1 - before.1
        );
        if sb.is_some() {
            let idle = nb_cfg_round_trip(&nb, Duration::from_secs(120)).await?;
            println!(
                "  nb_cfg round trip through ovn-northd afterwards: {}",
                secs(idle)
            );
        }
    }

    // 4. Restart on the converged NB.
    let first_usage = controller.usage()?;
    controller.terminate()?;
    let mut restarted =
        Controller::spawn(&bin, &kubeconfig, &nb_remote, log_dir.join("restart.log"))?;
    let ready_again = restarted.wait_ready(Duration::from_secs(600)).await?;
    let (_, ops_at_ready) = restarted.nb_counters().await;
    restarted
        .wait_quiet(Duration::from_secs(1), Duration::from_secs(600))
        .await?;
    let (_, ops_after) = restarted.nb_counters().await;
    println!("\n== restart on the converged NB");
    let restart_met = ready_again <= Duration::from_secs(2) && ops_after == 0.0;
    println!(
        "ready after {}, {ops_at_ready} operations at ready, {ops_after} once quiet (goal <= 2 s, 0 operations): {}",
        secs(ready_again),
        verdict(restart_met)
    );

    // 5. The NB recreated empty under the running controller, as when MicroShift recreates its
    // NB container: from the new server being up until the controller has committed again
    // everything the cold start wrote (ovn-northd, if running, reconnects and recomputes
    // meanwhile, as it would there). Timed from the controller's own counter, so that no extra
    // monitoring client makes the server echo every row once more; the rows are checked after.
    drop(nb);
    let recreated_at = Instant::now();
    lab.recreate(nb_id)?;
    let server_up = recreated_at.elapsed();
    let started = Instant::now();
    let refill_deadline = started + Duration::from_secs(600);
    while restarted.nb_counters().await.1 - ops_after < ops_quiet {
        anyhow::ensure!(
            Instant::now() < refill_deadline,
            "the controller did not program the recreated NB"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let back = started.elapsed();
    restarted
        .wait_quiet(Duration::from_secs(1), Duration::from_secs(600))
        .await?;
    let (_, ops_refilled) = restarted.nb_counters().await;
    let refilled = table_rows(
        &Client::connect(nb_config(nb_remote.clone()))
            .await?
            .replica(),
    );
    let missing: Vec<String> = cold_tables
        .iter()
        .filter(|(table, n)| refilled.get(*table).copied().unwrap_or(0) < **n)
        .map(|(table, n)| {
            format!(
                "{table}: {} of {n}",
                refilled.get(table).copied().unwrap_or(0)
            )
        })
        .collect();
    println!("\n== NB recreated empty under the running controller");
    println!(
        "everything written again {} after the new server was up (ratio {:.2} to the raw floor; recreating it took {}); {} operations; rows missing: {}",
        secs(back),
        back.as_secs_f64() / raw.elapsed.as_secs_f64(),
        secs(server_up),
        ops_refilled - ops_after,
        if missing.is_empty() { "none".to_owned() } else { missing.join(", ") }
    );
    let second_usage: Usage = restarted.usage()?;

    if let Some(baseline) = &args.baseline {
        // The same converged NB, the restarted controller stopped first (one writer at a time).
        restarted.terminate()?;
        let mut base = Controller::spawn(
            baseline,
            &kubeconfig,
            &nb_remote,
            log_dir.join("baseline-restart.log"),
        )?;
        let base_ready = base.wait_ready(Duration::from_secs(600)).await?;
        let (_, base_ops) = base.nb_counters().await;
        let base_usage = base.usage()?;
        base.terminate()?;
        println!(
            "baseline: ready after {}, {base_ops} operations at ready, peak RSS {:.1} MiB",
            secs(base_ready),
            base_usage.peak_rss_mib
        );
    }

    println!("\n== resources");
    let peak = first_usage.peak_rss_mib.max(second_usage.peak_rss_mib);
    println!(
        "first run (cold + churn): peak RSS {:.1} MiB, CPU {:.1} s; restarted (and refilling the recreated NB): peak RSS {:.1} MiB, CPU {:.1} s",
        first_usage.peak_rss_mib,
        first_usage.cpu_seconds,
        second_usage.peak_rss_mib,
        second_usage.cpu_seconds
    );
    // The goal is in MB (10^6 bytes): 100 MB is 95.4 MiB.
    let peak_mb = peak * 1.048_576;
    let rss_met = peak_mb <= 100.0;
    println!(
        "peak RSS {peak_mb:.1} MB (goal <= 100 MB): {}",
        verdict(rss_met)
    );

    println!("\n== goals");
    println!("cold converge: {}", verdict(cold_met));
    println!("churn: {}", verdict(churn_met));
    println!("restart: {}", verdict(restart_met));
    println!("peak RSS: {}", verdict(rss_met));
    drop(restarted);
    Ok(())
}
