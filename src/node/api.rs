//! The node agent's view of the Kubernetes API: its own Node (node subnet, InternalIP, the
//! annotations it publishes) and the Services and EndpointSlices its host rules follow, kept in
//! reflector stores by watches so a change reaches the host without waiting for a sync period.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::Path;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use k8s_openapi::api::core::v1::{Node, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::reflector::Store;
use kube::runtime::watcher;
use kube::Client;
use ovnkube_desired::annotations::{decode_node_subnets, NODE_SUBNETS};
use ovnkube_hostnet::net::Ipv4Cidr;
use tokio::runtime::Runtime;

use crate::controller::watch::{slim_endpoint_slice, slim_service, spawn_reflector, Notice};

/// How often the node is polled while waiting for the controller's `node-subnets`.
const POLL: Duration = Duration::from_millis(500);

/// A blocking client for the calls the node agent makes.
pub struct NodeApi {
    /// Multi-threaded so the watches run between the agent's blocking calls.
    rt: Runtime,
    client: Client,
    node: String,
}

/// Services and EndpointSlices as the watches last saw them, and a signal for each change.
pub struct ServiceWatch {
    services: Store<Service>,
    slices: Store<EndpointSlice>,
    changes: mpsc::Receiver<()>,
}

fn owned<K: Clone>(objects: Vec<Arc<K>>) -> Vec<K> {
    objects.into_iter().map(|o| (*o).clone()).collect()
}

/// A reflector callback that signals the agent on every notice.
fn signal<K>(tx: mpsc::Sender<()>) -> impl Fn(Notice<'_, K>) + Send + 'static {
    // The agent may have stopped listening; nothing to do then.
    move |_| {
        let _ = tx.send(());
    }
}

/// Changes closer together than this are handled in one sync (a Service and its slice usually
/// arrive together).
const DEBOUNCE: Duration = Duration::from_millis(50);

impl ServiceWatch {
    /// The objects as currently known.
    pub fn objects(&self) -> (Vec<Service>, Vec<EndpointSlice>) {
        (owned(self.services.state()), owned(self.slices.state()))
    }

    /// Waits up to `period` for a change (then a little longer for the rest of a burst);
    /// returns whether anything changed.
    pub fn wait_for_change(&self, period: Duration) -> bool {
        if self.changes.recv_timeout(period).is_err() {
            return false;
        }
        while self.changes.recv_timeout(DEBOUNCE).is_ok() {}
        true
    }
}

impl NodeApi {
    /// Connects with the given kubeconfig.
    pub fn connect(kubeconfig: &Path, node: &str) -> anyhow::Result<NodeApi> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()?;
        let kc = Kubeconfig::read_from(kubeconfig)
            .with_context(|| format!("reading {}", kubeconfig.display()))?;
        let client = rt.block_on(async {
            let cfg =
                kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default()).await?;
            anyhow::Ok(Client::try_from(cfg)?)
        })?;
        Ok(NodeApi {
            rt,
            client,
            node: node.to_string(),
        })
    }

    fn nodes(&self) -> Api<Node> {
        Api::all(self.client.clone())
    }

    /// Waits until the controller has written `k8s.ovn.org/node-subnets` on this node; returns
    /// the IPv4 subnet and the node's first InternalIP.
    pub fn wait_for_node_subnet(
        &self,
        timeout: Duration,
    ) -> anyhow::Result<(Ipv4Cidr, Option<Ipv4Addr>)> {
        let start = Instant::now();
        loop {
            let node = self
                .rt
                .block_on(self.nodes().get(&self.node))
                .with_context(|| format!("getting Node {}", self.node))?;
            let internal_ip = node
                .status
                .iter()
                .flat_map(|s| s.addresses.iter().flatten())
                .filter(|a| a.type_ == "InternalIP")
                .find_map(|a| a.address.parse().ok());
            let annotation = node
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(NODE_SUBNETS));
            if let Some(value) = annotation {
                let subnets =
                    decode_node_subnets(value).with_context(|| format!("Node {}", self.node))?;
                let v4 = subnets
                    .iter()
                    .find_map(|s| s.parse::<Ipv4Cidr>().ok())
                    .with_context(|| {
                        format!("Node {}: {NODE_SUBNETS} has no IPv4 subnet", self.node)
                    })?;
                return Ok((v4, internal_ip));
            }
            if start.elapsed() > timeout {
                bail!(
                    "Node {}: no {NODE_SUBNETS} annotation after {}s (is the controller running?)",
                    self.node,
                    timeout.as_secs()
                );
            }
            std::thread::sleep(POLL);
        }
    }

    /// Merge-patches the node's annotations.
    pub fn patch_annotations(&self, annotations: &BTreeMap<String, String>) -> anyhow::Result<()> {
        let patch = serde_json::json!({"metadata": {"annotations": annotations}});
        self.rt
            .block_on(self.nodes().patch(
                &self.node,
                &PatchParams::default(),
                &Patch::Merge(&patch),
            ))
            .with_context(|| format!("patching Node {} annotations", self.node))?;
        Ok(())
    }

    /// Starts watching every Service and EndpointSlice; returns once both are listed.
    pub fn watch_services(&self) -> anyhow::Result<ServiceWatch> {
        let (tx, changes) = mpsc::channel();
        let _guard = self.rt.enter();
        let services = spawn_reflector(
            Api::<Service>::all(self.client.clone()),
            watcher::Config::default(),
            slim_service,
            signal(tx.clone()),
        );
        let slices = spawn_reflector(
            Api::<EndpointSlice>::all(self.client.clone()),
            watcher::Config::default(),
            slim_endpoint_slice,
            signal(tx),
        );
        self.rt.block_on(async {
            services
                .wait_until_ready()
                .await
                .context("watching Services")?;
            slices
                .wait_until_ready()
                .await
                .context("watching EndpointSlices")
        })?;
        Ok(ServiceWatch {
            services,
            slices,
            changes,
        })
    }
}
