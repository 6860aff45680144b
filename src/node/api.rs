//! The node agent's view of the Kubernetes API: its own Node (node subnet, InternalIP, the
//! annotations it publishes) and the Services and EndpointSlices its host rules follow.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use k8s_openapi::api::core::v1::{Node, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::Client;
use ovnkube_desired::annotations::{decode_node_subnets, NODE_SUBNETS};
use ovnkube_hostnet::net::Ipv4Cidr;
use tokio::runtime::Runtime;

/// How often the node is polled while waiting for the controller's `node-subnets`.
const POLL: Duration = Duration::from_millis(500);

/// A blocking client for the calls the node agent makes.
pub struct NodeApi {
    rt: Runtime,
    client: Client,
    node: String,
}

impl NodeApi {
    /// Connects with the given kubeconfig.
    pub fn connect(kubeconfig: &Path, node: &str) -> anyhow::Result<NodeApi> {
        let rt = tokio::runtime::Builder::new_current_thread()
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

    /// Lists every Service and EndpointSlice.
    pub fn services(&self) -> anyhow::Result<(Vec<Service>, Vec<EndpointSlice>)> {
        self.rt.block_on(async {
            let lp = ListParams::default();
            let svcs = Api::<Service>::all(self.client.clone())
                .list(&lp)
                .await
                .context("listing Services")?;
            let slices = Api::<EndpointSlice>::all(self.client.clone())
                .list(&lp)
                .await
                .context("listing EndpointSlices")?;
            anyhow::Ok((svcs.items, slices.items))
        })
    }
}
