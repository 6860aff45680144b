//! `ovnkube-rs node`: the node agent process (run it inside the node's network namespace).
//!
//! Sets the node up (OVS keys, management port, waits for the br-ex patch port), syncs flows,
//! iptables and `ip` state, writes the CNI config last, then re-syncs every `--sync-period`.
//! With `--kubeconfig` it waits for the controller's `k8s.ovn.org/node-subnets` on its Node,
//! publishes its node annotations there and watches Services/EndpointSlices, syncing on each
//! change as well as every period. Without
//! one, `--node-subnet`, `--node-ip` and `--services-file` (a `kubectl get -o yaml` dump) stand in.

mod api;

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use api::{NodeApi, ServiceWatch};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use ovnkube_hostnet::agent::{AgentConfig, NodeAgent};
use ovnkube_hostnet::host::Host;
use ovnkube_hostnet::net::Ipv4Cidr;
use ovnkube_hostnet::services::{host_services, HostService};
use serde::Deserialize as _;

use crate::metrics::{serve_in_background, NodeMetrics};

/// The CNI config's file name in the CNI config directory (upstream's, which MicroShift waits for).
pub const CNI_CONF_FILE: &str = "10-ovn-kubernetes.conf";

/// Flags of `ovnkube-rs node` (names follow upstream ovnkube where one exists).
#[derive(clap::Args, Debug)]
pub struct NodeArgs {
    /// Kubernetes node name.
    #[arg(long = "node-name", env = "K8S_NODE")]
    node_name: String,
    /// The node's InternalIP (encap IP, source of the 169.254.169.1 route); default: from the Node.
    #[arg(long = "node-ip", env = "K8S_NODE_IP")]
    node_ip: Option<Ipv4Addr>,
    /// The node subnet; default: the Node's `k8s.ovn.org/node-subnets` (waits for it).
    #[arg(long = "node-subnet")]
    node_subnet: Option<Ipv4Cidr>,
    /// Cluster subnets.
    #[arg(
        long = "cluster-subnets",
        value_delimiter = ',',
        default_value = "10.42.0.0/16"
    )]
    cluster_subnets: Vec<Ipv4Cidr>,
    /// Service CIDRs.
    #[arg(
        long = "k8s-service-cidrs",
        value_delimiter = ',',
        default_value = "10.43.0.0/16"
    )]
    service_cidrs: Vec<Ipv4Cidr>,
    /// The gateway bridge.
    #[arg(long = "gateway-interface", default_value = "br-ex")]
    gateway_interface: String,
    /// Explicit gateway next hop(s).
    #[arg(long = "gateway-nexthop", value_delimiter = ',')]
    gateway_nexthop: Vec<Ipv4Addr>,
    /// MTU of pods and the management port.
    #[arg(long, default_value_t = 1400)]
    mtu: u32,
    /// SB database address written to `ovn-remote`.
    #[arg(long = "sb-address", default_value = "unix:/var/run/ovn/ovnsb_db.sock")]
    sb_address: String,
    /// OVS run directory (`db.sock`, `<bridge>.mgmt`).
    #[arg(
        long = "ovs-rundir",
        env = "OVS_RUNDIR",
        default_value = "/var/run/openvswitch"
    )]
    ovs_rundir: PathBuf,
    /// Where the CNI config is written (last, as the readiness signal).
    #[arg(
        long = "cni-conf",
        default_value = "/etc/cni/net.d/10-ovn-kubernetes.conf"
    )]
    cni_conf: PathBuf,
    /// Kubeconfig for the API (also handed to the CNI plugin through the CNI config).
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// Seconds to wait for the controller's `k8s.ovn.org/node-subnets`.
    #[arg(long = "node-subnet-timeout", default_value_t = 300)]
    node_subnet_timeout: u64,
    /// Services and EndpointSlices as a `kubectl get -o yaml` dump (JSON works too).
    #[arg(long = "services-file")]
    services_file: Option<PathBuf>,
    /// Write the node annotations (JSON object) here after each sync.
    #[arg(long = "annotations-out")]
    annotations_out: Option<PathBuf>,
    /// Seconds between syncs (flows, iptables, routes are all re-checked).
    #[arg(long = "sync-period", default_value_t = 15)]
    sync_period: u64,
    /// Seconds to wait for ovn-controller to create the br-ex patch port.
    #[arg(long = "patch-port-timeout", default_value_t = 300)]
    patch_port_timeout: u64,
    /// Sync once and exit.
    #[arg(long)]
    once: bool,
    /// Serve `/metrics` (`ovnkube_node_*`), `/healthz` and `/readyz` (ready once the CNI config
    /// is written) on this address, as upstream ovnkube's flag of the same name; none without it.
    #[arg(long = "metrics-bind-address")]
    metrics_bind_address: Option<String>,
}

impl NodeArgs {
    /// Parses node flags given as a list (`--node-name n --kubeconfig k ...`), for running the
    /// agent inside the controller process as MicroShift's `--init-node` does.
    pub fn from_list(args: &[String]) -> anyhow::Result<NodeArgs> {
        #[derive(clap::Parser)]
        struct Wrapper {
            #[command(flatten)]
            args: NodeArgs,
        }
        let argv = std::iter::once("node".to_owned()).chain(args.iter().cloned());
        Ok(<Wrapper as clap::Parser>::try_parse_from(argv)?.args)
    }
}

/// Reads Services and EndpointSlices from a YAML/JSON list (or a single object).
fn read_objects(path: &PathBuf) -> anyhow::Result<(Vec<Service>, Vec<EndpointSlice>)> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut services = Vec::new();
    let mut slices = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(&text) {
        let value = serde_yaml::Value::deserialize(doc)
            .with_context(|| format!("parsing {}", path.display()))?;
        let items = match value.get("items") {
            Some(serde_yaml::Value::Sequence(items)) => items.clone(),
            _ => vec![value],
        };
        for item in items {
            match item.get("kind").and_then(|k| k.as_str()) {
                Some("Service") => {
                    services.push(serde_yaml::from_value(item).context("decoding a Service")?)
                }
                Some("EndpointSlice") => {
                    slices.push(serde_yaml::from_value(item).context("decoding an EndpointSlice")?)
                }
                _ => {}
            }
        }
    }
    Ok((services, slices))
}

/// The Services and EndpointSlices to follow: from the API's watches, else from
/// `--services-file`.
fn services(
    args: &NodeArgs,
    watch: Option<&ServiceWatch>,
    agent: &NodeAgent,
) -> anyhow::Result<Vec<HostService>> {
    let (svcs, slices) = match (watch, &args.services_file) {
        (Some(watch), _) => watch.objects(),
        (None, Some(path)) => read_objects(path)?,
        (None, None) => return Ok(Vec::new()),
    };
    Ok(host_services(&svcs, &slices, &agent.host_ips()))
}

/// Runs the node agent until killed (or once with `--once`), recording into `metrics` (served
/// on `--metrics-bind-address` if given).
pub fn run(args: NodeArgs, metrics: Arc<NodeMetrics>) -> anyhow::Result<()> {
    let mut extra = serde_json::Map::new();
    extra.insert("mtu".into(), args.mtu.into());
    extra.insert(
        "ovsRunDir".into(),
        args.ovs_rundir.display().to_string().into(),
    );
    if let Some(k) = &args.kubeconfig {
        extra.insert("kubeconfig".into(), k.display().to_string().into());
    }
    let node_name = args.node_name.to_lowercase();
    let api = match &args.kubeconfig {
        Some(k) => Some(NodeApi::connect(k, &node_name)?),
        None => None,
    };
    let (node_subnet, node_ip) = match (&api, args.node_subnet) {
        (_, Some(subnet)) => (subnet, args.node_ip),
        (Some(api), None) => {
            let (subnet, internal_ip) =
                api.wait_for_node_subnet(Duration::from_secs(args.node_subnet_timeout))?;
            (subnet, args.node_ip.or(internal_ip))
        }
        (None, None) => bail!("--node-subnet is required without --kubeconfig"),
    };
    let node_ip =
        node_ip.context("the node IP is unknown: pass --node-ip or give the Node an InternalIP")?;
    let cfg = AgentConfig {
        node_name,
        node_ip,
        bridge: args.gateway_interface.clone(),
        service_cidrs: args.service_cidrs.clone(),
        cluster_subnets: args.cluster_subnets.clone(),
        node_subnet,
        mtu: args.mtu,
        sb_remote: args.sb_address.clone(),
        next_hops: args.gateway_nexthop.clone(),
        patch_port_timeout: Duration::from_secs(args.patch_port_timeout),
        cni_conf_path: args.cni_conf.clone(),
        cni_conf_extra: extra,
    };
    if let Some(address) = &args.metrics_bind_address {
        let bound = serve_in_background(address, metrics.clone())?;
        tracing::info!(address = %bound, "serving /metrics, /healthz, /readyz");
    }
    let mut agent = NodeAgent::start(Host::current(&args.ovs_rundir), cfg).context("node setup")?;
    // Publish first: the controller builds the gateway (and so the patch port) from them.
    let mut published = agent.annotations();
    if let Some(api) = &api {
        api.patch_annotations(&published)?;
    }
    agent
        .wait_for_gateway()
        .context("waiting for the br-ex patch port")?;
    tracing::info!(node = %args.node_name, facts = ?agent.facts(), "node set up");
    let watch = api.as_ref().map(NodeApi::watch_services).transpose()?;
    let mut first = true;
    let mut annotations_file_written = false;
    loop {
        let svcs = services(&args, watch.as_ref(), &agent)?;
        let started = Instant::now();
        match agent.sync(&svcs) {
            Ok(report) => {
                metrics.synced(started.elapsed());
                if report.changed() {
                    metrics.host_changes.inc();
                    tracing::info!(?report, "host state repaired or updated");
                }
            }
            // A tool may fail for a moment (xtables lock, OVS restarting): retry after the
            // period; the CNI config waits for a sync that succeeded.
            Err(e) if !args.once => {
                metrics.sync_errors.inc();
                tracing::error!(error = %e, "node sync failed; retrying");
                wait(&args, watch.as_ref());
                continue;
            }
            Err(e) => return Err(e).context("node sync"),
        }
        let annotations = agent.annotations();
        if annotations != published {
            if let Some(api) = &api {
                api.patch_annotations(&annotations)?;
            }
            published = annotations;
            annotations_file_written = false;
        }
        if let (Some(out), false) = (&args.annotations_out, annotations_file_written) {
            let text = serde_json::to_string_pretty(&published)?;
            std::fs::write(out, text).with_context(|| format!("writing {}", out.display()))?;
            annotations_file_written = true;
        }
        if first {
            if agent.write_cni_config()? {
                tracing::info!(path = %args.cni_conf.display(), "CNI config written");
            }
            metrics.set_ready();
            first = false;
        }
        if args.once {
            return Ok(());
        }
        wait(&args, watch.as_ref());
    }
}

/// Waits for the next sync: the sync period, or a change the watches report.
fn wait(args: &NodeArgs, watch: Option<&ServiceWatch>) {
    let period = Duration::from_secs(args.sync_period);
    match watch {
        Some(watch) => {
            watch.wait_for_change(period);
        }
        None => std::thread::sleep(period),
    }
}
