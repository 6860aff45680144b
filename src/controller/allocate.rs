//! Ties IPAM to the API: rebuilds the allocators from annotations, allocates what a node or pod
//! lacks and writes it back as an annotation (merge patch) before any NB row uses it.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, Patch, PatchParams};
use kube::Client;
use ovnkube_desired::annotations::{self as ann, IfAddr, PodNetwork};
use ovnkube_desired::net::Ipv4Cidr;
use ovnkube_desired::Config;
use serde_json::json;

use super::ipam::{node_id_pool, IndexPool, IpamError, NodeSubnets, PodAddresses};
use super::pod_record::{PodObject, PodRecord};

/// Why a node or pod could not get its addresses.
#[derive(Debug, thiserror::Error)]
pub enum AllocError {
    #[error(transparent)]
    Ipam(#[from] IpamError),
    #[error("writing the annotation: {0}")]
    Api(#[from] kube::Error),
    #[error("{0}")]
    NotReady(String),
}

/// All address allocators of the cluster.
pub struct Ipam {
    config: Config,
    subnets: NodeSubnets,
    node_ids: IndexPool<String>,
    /// Pod addresses per node subnet.
    pods: BTreeMap<Ipv4Cidr, PodAddresses>,
}

fn annotation<'a>(meta: &'a kube::api::ObjectMeta, key: &str) -> Option<&'a str> {
    meta.annotations.as_ref()?.get(key).map(String::as_str)
}

/// `namespace/name` of a pod, the IPAM owner key.
pub fn pod_key(pod: &PodRecord) -> String {
    format!("{}/{}", pod.namespace, pod.name)
}

/// The node subnet written in a node's annotation, if any.
fn node_subnet(node: &Node) -> Option<Ipv4Cidr> {
    let subnets = ann::decode_node_subnets(annotation(&node.metadata, ann::NODE_SUBNETS)?).ok()?;
    subnets.first()?.parse::<Ipv4Cidr>().ok().map(|c| c.trunc())
}

/// True for pods that get an address from the node subnet.
pub fn needs_address(pod: &PodRecord) -> bool {
    pod.parts().gets_address()
}

/// The first address of a pod's `pod-networks` annotation.
fn annotated_ip(pod: &PodRecord) -> Option<Ipv4Addr> {
    let n = ann::decode_pod_networks(pod.pod_networks.as_deref()?).ok()?;
    let first = n.ip_addresses.first().unwrap_or(&n.ip_address);
    first.parse::<Ipv4Cidr>().ok().map(|c| c.addr)
}

impl Ipam {
    /// Empty allocators for `config`.
    pub fn new(config: &Config) -> Self {
        Ipam {
            config: config.clone(),
            subnets: NodeSubnets::new(&config.cluster_subnets),
            node_ids: node_id_pool(),
            pods: BTreeMap::new(),
        }
    }

    /// Rebuilds the state from the annotations of every node and pod. Returns the objects whose
    /// annotations conflict with an earlier one (they will be reallocated or reported).
    pub fn rebuild<'a>(
        &mut self,
        nodes: impl IntoIterator<Item = &'a Node>,
        pods: impl IntoIterator<Item = &'a PodRecord>,
    ) -> Vec<(String, IpamError)> {
        let mut conflicts = Vec::new();
        for node in nodes {
            let name = node.metadata.name.clone().unwrap_or_default();
            if let Some(subnet) = node_subnet(node) {
                if let Err(e) = self.subnets.reserve(&name, subnet) {
                    conflicts.push((format!("node {name}"), e));
                }
                self.pods
                    .entry(subnet)
                    .or_insert_with(|| PodAddresses::new(subnet));
            }
            if let Some(id) =
                annotation(&node.metadata, ann::NODE_ID).and_then(|s| ann::decode_node_id(s).ok())
            {
                if let Err(e) = self.node_ids.reserve(&name, id) {
                    conflicts.push((format!("node {name}"), e));
                }
            }
        }
        for pod in pods {
            if !needs_address(pod) {
                continue;
            }
            if let Some(ip) = annotated_ip(pod) {
                let key = pod_key(pod);
                match self.pods.values_mut().find(|p| p.subnet().contains(ip)) {
                    Some(pool) => {
                        if let Err(e) = pool.reserve(&key, ip) {
                            conflicts.push((format!("pod {key}"), e));
                        }
                    }
                    None => conflicts.push((
                        format!("pod {key}"),
                        IpamError::OutOfRange {
                            what: ip.to_string(),
                        },
                    )),
                }
            }
        }
        conflicts
    }

    /// The annotations a node lacks (subnet, id, join address), allocated now.
    fn node_patch(&mut self, node: &Node) -> Result<BTreeMap<&'static str, String>, IpamError> {
        let name = node.metadata.name.clone().unwrap_or_default();
        let mut patch = BTreeMap::new();
        let subnet = match node_subnet(node) {
            Some(s) => s,
            None => {
                let s = self.subnets.allocate(&name)?;
                patch.insert(
                    ann::NODE_SUBNETS,
                    ann::encode_node_subnets(&[s.to_string()]),
                );
                s
            }
        };
        self.pods
            .entry(subnet)
            .or_insert_with(|| PodAddresses::new(subnet));
        let id = match annotation(&node.metadata, ann::NODE_ID)
            .and_then(|s| ann::decode_node_id(s).ok())
        {
            Some(id) => id,
            None => {
                let id = self
                    .node_ids
                    .allocate(&name)
                    .ok_or_else(|| IpamError::Exhausted {
                        what: "node ids".into(),
                    })?;
                patch.insert(ann::NODE_ID, ann::encode_node_id(id));
                id
            }
        };
        if annotation(&node.metadata, ann::NODE_GATEWAY_ROUTER_LRP_IFADDR).is_none() {
            let join = Ipv4Cidr::new(self.config.join_subnet.nth(id), self.config.join_subnet.len);
            patch.insert(
                ann::NODE_GATEWAY_ROUTER_LRP_IFADDR,
                ann::encode_ifaddr(&IfAddr {
                    ipv4: join.to_string(),
                    ipv6: String::new(),
                }),
            );
        }
        Ok(patch)
    }

    /// Frees a deleted node's subnet and id.
    pub fn release_node(&mut self, name: &str) {
        self.subnets.release(name);
        self.node_ids.release(&name.to_owned());
    }

    /// The `pod-networks` value for a pod without one, allocated from its node's subnet.
    fn pod_network(&mut self, pod: &PodRecord, subnet: Ipv4Cidr) -> Result<PodNetwork, IpamError> {
        let pool = self
            .pods
            .entry(subnet)
            .or_insert_with(|| PodAddresses::new(subnet));
        let ip = pool.allocate(&pod_key(pod))?;
        Ok(PodNetwork::for_address(&self.config, subnet, ip))
    }

    /// Frees what nodes and pods outside `nodes` / `pods` (`namespace/name` of pods that need
    /// an address) hold: a deletion absorbed by a full sync never reaches `release_node` or
    /// `release_pod`, and neither does one missed while a watch relisted.
    pub fn retain(&mut self, nodes: &BTreeSet<String>, pods: &BTreeSet<String>) {
        self.subnets.retain(|n| nodes.contains(n));
        self.node_ids.retain(|n| nodes.contains(n));
        for pool in self.pods.values_mut() {
            pool.retain(|p| pods.contains(p));
        }
    }

    /// Frees a pod's address (deleted or completed pods).
    pub fn release_pod(&mut self, key: &str) {
        for pool in self.pods.values_mut() {
            if pool.release(key).is_some() {
                return;
            }
        }
    }
}

fn annotations_patch(values: &BTreeMap<&'static str, String>) -> Patch<serde_json::Value> {
    Patch::Merge(json!({ "metadata": { "annotations": values } }))
}

/// Gives `node` the annotations it lacks; returns the patched node, or `None` if it had them all.
pub async fn ensure_node(
    ipam: &std::sync::Mutex<Ipam>,
    client: &Client,
    node: &Node,
) -> Result<Option<Node>, AllocError> {
    let patch = ipam
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .node_patch(node)?;
    if patch.is_empty() {
        return Ok(None);
    }
    let name = node.metadata.name.clone().unwrap_or_default();
    let api: Api<Node> = Api::all(client.clone());
    let patched = api
        .patch(&name, &PatchParams::default(), &annotations_patch(&patch))
        .await?;
    Ok(Some(patched))
}

/// Gives `pod` its `pod-networks` annotation if it needs one; returns the patched pod.
pub async fn ensure_pod(
    ipam: &std::sync::Mutex<Ipam>,
    client: &Client,
    pod: &PodRecord,
    node: Option<&Node>,
) -> Result<Option<PodRecord>, AllocError> {
    if !needs_address(pod) || pod.pod_networks.is_some() {
        return Ok(None);
    }
    let node_name = pod.node_name.as_deref().unwrap_or_default();
    let subnet = node
        .and_then(node_subnet)
        .ok_or_else(|| AllocError::NotReady(format!("node {node_name} has no subnet yet")))?;
    let network = ipam
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .pod_network(pod, subnet)?;
    let value = BTreeMap::from([(ann::POD_NETWORKS, ann::encode_pod_networks(&network))]);
    // The reply decodes into a record too: no full pod is built.
    let api: Api<PodObject> = Api::namespaced(client.clone(), &pod.namespace);
    let patched = api
        .patch(
            &pod.name,
            &PatchParams::default(),
            &annotations_patch(&value),
        )
        .await?;
    Ok(Some(patched.into_record()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_annotation_is_byte_compatible_with_upstream() {
        let config = Config::default();
        let n = PodNetwork::for_address(
            &config,
            "10.42.0.0/24".parse().unwrap(),
            "10.42.0.5".parse().unwrap(),
        );
        assert_eq!(
            ann::encode_pod_networks(&n),
            r#"{"default":{"ip_addresses":["10.42.0.5/24"],"mac_address":"0a:58:0a:2a:00:05","gateway_ips":["10.42.0.1"],"routes":[{"dest":"10.42.0.0/16","nextHop":"10.42.0.1"},{"dest":"10.43.0.0/16","nextHop":"10.42.0.1"},{"dest":"100.64.0.0/16","nextHop":"10.42.0.1"}],"ip_address":"10.42.0.5/24","gateway_ip":"10.42.0.1"}}"#
        );
    }

    fn node(name: &str, annotations: &[(&str, &str)]) -> Node {
        let mut n = Node::default();
        n.metadata.name = Some(name.into());
        n.metadata.annotations = Some(
            annotations
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        );
        n
    }

    #[test]
    fn nodes_get_subnet_id_and_join_address_once() {
        let mut ipam = Ipam::new(&Config::default());
        let existing = node(
            "a",
            &[
                (ann::NODE_SUBNETS, r#"{"default":["10.42.0.0/24"]}"#),
                (ann::NODE_ID, "2"),
            ],
        );
        assert!(ipam.rebuild([&existing], []).is_empty());
        let patch = ipam.node_patch(&node("b", &[])).unwrap();
        assert_eq!(patch[ann::NODE_SUBNETS], r#"{"default":["10.42.1.0/24"]}"#);
        assert_eq!(patch[ann::NODE_ID], "3");
        assert_eq!(
            patch[ann::NODE_GATEWAY_ROUTER_LRP_IFADDR],
            r#"{"ipv4":"100.64.0.3/16"}"#
        );
        let lacking_join = ipam.node_patch(&existing).unwrap();
        assert_eq!(lacking_join.len(), 1);
        assert_eq!(
            lacking_join[ann::NODE_GATEWAY_ROUTER_LRP_IFADDR],
            r#"{"ipv4":"100.64.0.2/16"}"#
        );
    }

    fn annotated_pod(name: &str, ip: &str) -> PodRecord {
        let n = PodNetwork::for_address(
            &Config::default(),
            "10.42.0.0/24".parse().unwrap(),
            ip.parse().unwrap(),
        );
        PodRecord {
            namespace: "default".into(),
            name: name.into(),
            node_name: Some("a".into()),
            pod_networks: Some(ann::encode_pod_networks(&n)),
            ..PodRecord::default()
        }
    }

    fn node_with_subnet(name: &str, subnet: &str) -> Node {
        let value = ann::encode_node_subnets(&[subnet.to_owned()]);
        node(name, &[(ann::NODE_SUBNETS, &value)])
    }

    #[test]
    fn retain_frees_what_gone_nodes_and_pods_hold() {
        let mut ipam = Ipam::new(&Config::default());
        let a = node_with_subnet("a", "10.42.0.0/24");
        let b = node_with_subnet("b", "10.42.1.0/24");
        let (p1, p2) = (
            annotated_pod("p1", "10.42.0.5"),
            annotated_pod("p2", "10.42.0.6"),
        );
        assert!(ipam.rebuild([&a, &b], [&p1, &p2]).is_empty());
        ipam.retain(
            &BTreeSet::from(["a".to_owned()]),
            &BTreeSet::from(["default/p1".to_owned()]),
        );
        // p2's address and b's subnet are free again; p1's address and a's subnet are not.
        let c = node_with_subnet("c", "10.42.1.0/24");
        let p3 = annotated_pod("p3", "10.42.0.6");
        assert!(ipam.rebuild([&c], [&p3]).is_empty());
        let p4 = annotated_pod("p4", "10.42.0.5");
        assert_eq!(ipam.rebuild([], [&p4]).len(), 1);
    }

    #[test]
    fn conflicting_annotations_are_reported() {
        let mut ipam = Ipam::new(&Config::default());
        let a = node_with_subnet("a", "10.42.0.0/24");
        let b = node_with_subnet("b", "10.42.0.0/24");
        let conflicts = ipam.rebuild([&a, &b], []);
        assert_eq!(conflicts.len(), 1);
        assert_eq!(conflicts[0].0, "node b");
    }
}
