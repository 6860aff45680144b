//! `ovnkube-rs controller`: the cluster work (watchers, IPAM, NB reconciliation).
//!
//! Start-up order: NB connected and its replica downloaded, the leader lease held, every store
//! listed once (the three at the same time); IPAM rebuilt from annotations; one full sync (which also removes rows of objects
//! deleted while we were down, and writes nothing on a converged NB); then `/readyz` turns ready
//! and the worker reconciles batches of keys as the watches report changes.

pub mod allocate;
pub mod events;
pub mod ipam;
pub mod leader;
pub mod pod_record;
pub mod queue;
pub mod southbound;
pub mod state;
pub mod watch;
pub mod worker;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use k8s_openapi::api::coordination::v1::Lease;
use kube::{Api, Client};
use ovsdb::client::ClientConfig;
use tokio::net::TcpListener;
use tracing::{info, warn};

use crate::flags;
use crate::metrics::{self, Metrics, NodeMetrics, ProcessMetrics};
use allocate::Ipam;
use events::EventRecorder;
use leader::{LeaderElector, LeaseTiming};
use queue::{Backoff, WorkQueue};
use state::{ClusterView, NodeInfos, WorkKey};
use worker::Worker;

/// Arguments: ovnkube's own flags, in its syntax (`--init-master node --nb-address ...`).
#[derive(clap::Args, Debug)]
pub struct ControllerArgs {
    /// ovnkube flags (e.g. `--config-file`, `--nb-address`, `--k8s-kubeconfig`,
    /// `--metrics-bind-address`, `--init-master`), plus `--leader-election=false` and
    /// `--leader-identity` for tests running several replicas on one host.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<String>,
}

/// Options of the controller process itself, beyond what changes NB rows.
struct ProcessOptions {
    /// `--init-node <node>`: also run the node agent for this node in this process.
    init_node: Option<String>,
    kubeconfig: Option<String>,
    /// `--cni-conf-dir` (`[cni] conf-dir`): where the node agent writes its CNI config.
    cni_conf_dir: Option<String>,
    metrics_address: String,
    lease_namespace: String,
    identity: String,
    leader_election: bool,
    lease: LeaseTiming,
}

const OWN_FLAGS: &[&str] = &[
    "k8s-kubeconfig",
    "metrics-bind-address",
    "ovn-config-namespace",
    "init-master",
    "init-node",
    "cni-conf-dir",
    "leader-identity",
    "leader-election",
    // Hidden: shorter lease timings for tests of the hand-over (production: 137 s / 26 s).
    "lease-duration-seconds",
    "lease-retry-seconds",
];

/// Parses a whole number of seconds given to `--<flag>`.
fn seconds(flag: &str, value: Option<String>, default: u64) -> anyhow::Result<Duration> {
    let Some(v) = value else {
        return Ok(Duration::from_secs(default));
    };
    match v.parse::<u64>() {
        Ok(s) if s > 0 => Ok(Duration::from_secs(s)),
        _ => anyhow::bail!("--{flag}: {v:?} is not a positive number of seconds"),
    }
}

fn process_options(own: &[(String, String)]) -> anyhow::Result<ProcessOptions> {
    let get = |name: &str| {
        own.iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    let lease = LeaseTiming {
        lease_duration: seconds("lease-duration-seconds", get("lease-duration-seconds"), 137)?,
        retry_period: seconds("lease-retry-seconds", get("lease-retry-seconds"), 26)?,
    };
    if lease.retry_period >= lease.lease_duration {
        anyhow::bail!(
            "--lease-retry-seconds ({:?}) must be shorter than --lease-duration-seconds ({:?})",
            lease.retry_period,
            lease.lease_duration
        );
    }
    let node = get("init-master")
        .unwrap_or_else(|| std::env::var("HOSTNAME").unwrap_or_else(|_| "ovnkube-rs".into()));
    Ok(ProcessOptions {
        init_node: get("init-node").filter(|s| !s.is_empty()),
        kubeconfig: get("k8s-kubeconfig").filter(|s| !s.is_empty()),
        cni_conf_dir: get("cni-conf-dir").filter(|s| !s.is_empty()),
        metrics_address: get("metrics-bind-address").unwrap_or_else(|| "127.0.0.1:9409".into()),
        lease_namespace: get("ovn-config-namespace")
            .unwrap_or_else(|| "openshift-ovn-kubernetes".into()),
        identity: get("leader-identity").unwrap_or(node),
        leader_election: match get("leader-election").as_deref() {
            None | Some("true") => true,
            Some("false") => false,
            Some(v) => anyhow::bail!("--leader-election: {v:?} is neither true nor false"),
        },
        lease,
    })
}

async fn kube_client(kubeconfig: Option<&str>) -> anyhow::Result<Client> {
    let config = match kubeconfig {
        Some(path) => {
            let kc = kube::config::Kubeconfig::read_from(path)
                .with_context(|| format!("reading kubeconfig {path}"))?;
            kube::Config::from_custom_kubeconfig(kc, &Default::default())
                .await
                .with_context(|| format!("kubeconfig {path}"))?
        }
        None => kube::Config::infer().await.context("no kubeconfig found")?,
    };
    Client::try_from(config).context("building the Kubernetes client")
}

/// Runs the controller until it loses leadership or fails.
pub fn run(args: ControllerArgs) -> anyhow::Result<()> {
    let parsed = flags::parse(&args.args, OWN_FLAGS)?;
    for w in &parsed.warnings {
        warn!("{w}");
    }
    let options = process_options(&parsed.own)?;
    let ovnkube = parsed.ovnkube;
    let node_metrics = match &options.init_node {
        Some(node) => Some(start_node_agent(node, &ovnkube, &options)?),
        None => None,
    };
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?
        .block_on(run_async(ovnkube, options, node_metrics))
}

async fn run_async(
    ovnkube: flags::OvnkubeConfig,
    options: ProcessOptions,
    node_metrics: Option<Arc<NodeMetrics>>,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let metrics = Metrics::new();
    let listener = TcpListener::bind(&options.metrics_address)
        .await
        .with_context(|| format!("binding metrics on {}", options.metrics_address))?;
    info!(address = %listener.local_addr()?, "serving /metrics, /healthz, /readyz");
    let exposed = ProcessMetrics {
        controller: metrics.clone(),
        node: node_metrics,
    };
    tokio::spawn(metrics::serve(listener, Arc::new(exposed)));

    let client = kube_client(options.kubeconfig.as_deref()).await?;
    // The lists run while the NB replica downloads and the lease is awaited (nothing is written
    // before the full sync, which clears the keys they queue).
    let queue = Arc::new(WorkQueue::new(Backoff::default()));
    let view = ClusterView::start(&client, queue.clone());
    let mut nb_config = ClientConfig::new("OVN_Northbound", ovnkube.nb_address.clone());
    nb_config.leader_only = true;
    // A service key finds its load balancers by owner, and the gauges count pods and load
    // balancers, without scanning the tables.
    nb_config.indexed_external_ids = worker::INDEXED_EXTERNAL_IDS
        .iter()
        .map(|k| (*k).to_owned())
        .collect();
    nb_config.tls = ovnkube.nb_tls.clone();
    let nb = ovsdb::Client::connect(nb_config)
        .await
        .with_context(|| format!("connecting to NB at {}", ovnkube.nb_address.join(",")))?;
    info!(remote = ?nb.current_remote(), rows = nb.replica().row_count(), "NB replica ready");
    // The start-up full sync covers this first load; a later one is answered by `resync_on_reload`.
    let mut nb_reloads = nb.reloads();
    nb_reloads.borrow_and_update();

    if options.leader_election {
        let (tx, mut leading) = tokio::sync::watch::channel(false);
        let elector = LeaderElector::new(
            Api::<Lease>::namespaced(client.clone(), &options.lease_namespace),
            "ovn-kubernetes-master",
            &options.identity,
            options.lease.clone(),
        );
        tokio::spawn(elector.run(tx));
        info!(identity = %options.identity, "waiting for the leader lease");
        leading.wait_for(|l| *l).await?;
        metrics.leader.set(1);
        let m = metrics.clone();
        tokio::spawn(async move {
            // Upstream exits when it loses the lease; a restart then waits as a follower.
            let _ = leading.wait_for(|l| !*l).await;
            m.leader.set(0);
            warn!("lost the leader lease; exiting");
            std::process::exit(1);
        });
    } else {
        metrics.leader.set(1);
    }

    view.wait_synced().await;
    info!(elapsed = ?started.elapsed(), "every store listed");
    let mut sb_config = ClientConfig::new("OVN_Southbound", ovnkube.sb_address.clone());
    sb_config.tls = ovnkube.sb_tls.clone();
    tokio::spawn(southbound::run(
        sb_config,
        ovnkube.config.clone(),
        view.clone(),
    ));
    let mut ipam = Ipam::new(&ovnkube.config);
    let nodes = view.nodes.state();
    let pods = view.pods.state();
    for (object, e) in ipam.rebuild(
        nodes.iter().map(|n| n.as_ref()),
        pods.iter().map(|p| p.as_ref()),
    ) {
        warn!(%object, error = %e, "conflicting address annotation");
    }
    let mut worker = Worker {
        config: ovnkube.config,
        client: client.clone(),
        nb,
        view,
        queue,
        ipam: Mutex::new(ipam),
        metrics: metrics.clone(),
        events: EventRecorder::new(client, "ovnkube-rs-controller"),
        node_infos: NodeInfos::default(),
        annotated_at: HashMap::new(),
        gauges_at: None,
    };
    // The initial lists queued a key for every object (and `Full`, for the nodes): the full
    // sync reads the stores after this point, so it covers them; working them off again after
    // it would repeat the whole start-up computation.
    worker.queue.clear_ready();
    let writes = worker
        .full_sync()
        .await
        .context("the start-up full sync failed")?;
    metrics.set_ready(started.elapsed());
    info!(writes, elapsed = ?started.elapsed(), "initial sync done; ready");
    tokio::spawn(resync_on_reload(nb_reloads, worker.queue.clone()));
    let queue = worker.queue.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        info!("terminating: finishing the batch in flight");
        queue.shut_down();
    });
    worker.run().await;
    Ok(())
}

/// Queues a full sync whenever the NB replica is reloaded from a full dump: after a reconnection
/// the server could not resume (a restarted standalone NB, or one recreated empty, as when
/// MicroShift recreates its NB container) any row may be gone or changed, and no Kubernetes
/// event will say which.
async fn resync_on_reload(
    mut reloads: tokio::sync::watch::Receiver<u64>,
    queue: Arc<WorkQueue<WorkKey>>,
) {
    while reloads.changed().await.is_ok() {
        info!("NB replica reloaded from a full dump; full sync");
        queue.add(WorkKey::Full);
    }
}

/// Runs the node agent on its own thread, as MicroShift's single ovnkube process does with
/// `--init-master <node> --init-node <node>`; the process ends if the agent fails. Its metrics
/// are served with the controller's, on the one `--metrics-bind-address`.
fn start_node_agent(
    node: &str,
    ovnkube: &flags::OvnkubeConfig,
    options: &ProcessOptions,
) -> anyhow::Result<Arc<NodeMetrics>> {
    let args = crate::node::NodeArgs::from_list(&node_agent_flags(node, ovnkube, options))?;
    let metrics = NodeMetrics::new();
    let agent_metrics = metrics.clone();
    std::thread::Builder::new()
        .name("node-agent".into())
        .spawn(move || {
            if let Err(e) = crate::node::run(args, agent_metrics) {
                tracing::error!(error = %format!("{e:#}"), "the node agent failed; exiting");
                std::process::exit(1);
            }
        })?;
    Ok(metrics)
}

/// The node agent's flags for the ovnkube configuration the controller was given.
fn node_agent_flags(
    node: &str,
    ovnkube: &flags::OvnkubeConfig,
    options: &ProcessOptions,
) -> Vec<String> {
    let join = |items: Vec<String>| items.join(",");
    let config = &ovnkube.config;
    let mut list = vec![
        "--node-name".to_owned(),
        node.to_owned(),
        "--cluster-subnets".to_owned(),
        join(
            config
                .cluster_subnets
                .iter()
                .map(|c| c.cidr.to_string())
                .collect(),
        ),
        "--k8s-service-cidrs".to_owned(),
        join(config.service_cidrs.iter().map(|c| c.to_string()).collect()),
        "--gateway-interface".to_owned(),
        config.gateway_interface.clone(),
        "--mtu".to_owned(),
        config.mtu.to_string(),
        "--sb-address".to_owned(),
        ovnkube.sb_address.join(","),
    ];
    if let Some(k) = &options.kubeconfig {
        list.extend(["--kubeconfig".to_owned(), k.to_owned()]);
    }
    if let Some(dir) = &options.cni_conf_dir {
        let path = std::path::Path::new(dir).join(crate::node::CNI_CONF_FILE);
        list.extend(["--cni-conf".to_owned(), path.display().to_string()]);
    }
    list
}

/// SIGTERM (kubelet) or SIGINT.
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn process_options_default_to_microshift() {
        let o = process_options(&[("init-master".into(), "microshift-dev".into())]).unwrap();
        assert_eq!(o.identity, "microshift-dev");
        assert_eq!(o.lease_namespace, "openshift-ovn-kubernetes");
        assert!(o.leader_election);
        assert_eq!(o.lease.lease_duration, Duration::from_secs(137));
        assert_eq!(o.lease.retry_period, Duration::from_secs(26));
        assert!(o.init_node.is_none());
        assert!(process_options(&[("leader-election".into(), "maybe".into())]).is_err());
        let short = process_options(&[
            ("lease-duration-seconds".into(), "4".into()),
            ("lease-retry-seconds".into(), "1".into()),
        ])
        .unwrap();
        assert_eq!(short.lease.lease_duration, Duration::from_secs(4));
        assert_eq!(short.lease.retry_period, Duration::from_secs(1));
        assert!(process_options(&[("lease-retry-seconds".into(), "200".into())]).is_err());
        assert!(process_options(&[("lease-duration-seconds".into(), "0".into())]).is_err());
    }

    #[test]
    fn init_node_runs_the_agent_with_the_same_configuration() {
        let args: Vec<String> = [
            "--init-master",
            "n1",
            "--init-node",
            "n1",
            "--mtu",
            "1500",
            "--sb-address",
            "unix:/run/sb.sock",
            "--k8s-kubeconfig",
            "/k",
            "--cni-conf-dir",
            "/run/cni",
        ]
        .map(String::from)
        .to_vec();
        let parsed = flags::parse(&args, OWN_FLAGS).unwrap();
        let o = process_options(&parsed.own).unwrap();
        assert_eq!(o.init_node.as_deref(), Some("n1"));
        let list = node_agent_flags("n1", &parsed.ovnkube, &o);
        let node = crate::node::NodeArgs::from_list(&list).unwrap();
        let text = format!("{node:?}");
        for want in [
            "node_name: \"n1\"",
            "mtu: 1500",
            "unix:/run/sb.sock",
            "\"/k\"",
            "br-ex",
            "\"/run/cni/10-ovn-kubernetes.conf\"",
        ] {
            assert!(text.contains(want), "{want} missing in {text}");
        }
    }
}
