//! The controller's view of the cluster: shared stores of the four kinds, the indexes derived
//! from them, and the mapping from watch notices to work keys.

use std::collections::{BTreeSet, HashMap};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::{Node, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Api, Client};
use ovnkube_desired::annotations as ann;
use ovnkube_desired::{Config, NodeInfo, ObjectError, OwnerKey};
use tokio::sync::watch;

use super::pod_record::{PodObject, PodRecord};
use super::queue::WorkQueue;
use super::watch::{slim_endpoint_slice, slim_node, slim_service, spawn_reflector, Notice};

/// A unit of work.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum WorkKey {
    /// Recompute everything and delete stale owned rows (start-up, and after a relist).
    Full,
    /// One object's rows.
    Object(OwnerKey),
}

/// The label that ties an EndpointSlice to its Service.
const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

pub(super) fn ns_name(meta: &kube::api::ObjectMeta) -> (String, String) {
    (
        meta.namespace.clone().unwrap_or_else(|| "default".into()),
        meta.name.clone().unwrap_or_default(),
    )
}

/// The annotations of a node that other keys' rows depend on (pods need the subnet and the
/// node's readiness; services need gateway and host addresses).
fn node_fingerprint(node: &Node) -> u64 {
    let mut h = DefaultHasher::new();
    if let Some(a) = node.metadata.annotations.as_ref() {
        for key in [
            ann::NODE_SUBNETS,
            ann::L3_GATEWAY_CONFIG,
            ann::HOST_ADDRESSES,
            ann::NODE_CHASSIS_ID,
            ann::NODE_MGMT_PORT_MAC,
            ann::NODE_GATEWAY_ROUTER_LRP_IFADDR,
        ] {
            a.get(key).hash(&mut h);
        }
    }
    h.finish()
}

/// EndpointSlice names per Service (`namespace`, `service`).
type SliceIndex = Arc<Mutex<HashMap<(String, String), BTreeSet<String>>>>;

/// Shared stores and derived indexes.
#[derive(Clone)]
pub struct ClusterView {
    pub nodes: Store<Node>,
    pub pods: Store<PodRecord>,
    pub services: Store<Service>,
    pub slices: Store<EndpointSlice>,
    slice_index: SliceIndex,
    /// Kinds whose initial list is done (4 when all stores are ready).
    listed: watch::Receiver<usize>,
}

impl ClusterView {
    /// Starts the four reflectors; every change becomes keys on `queue`.
    pub fn start(client: &Client, queue: Arc<WorkQueue<WorkKey>>) -> ClusterView {
        let (listed_tx, listed) = watch::channel(0usize);
        let listed_tx = Arc::new(listed_tx);
        let on_listed = move |first: bool, queue: &WorkQueue<WorkKey>| {
            if first {
                listed_tx.send_modify(|n| *n += 1);
            } else {
                queue.add(WorkKey::Full);
            }
        };
        let slice_index: SliceIndex = Arc::default();
        let fingerprints: Arc<Mutex<HashMap<String, u64>>> = Arc::default();

        let nodes = {
            let (q, listed) = (queue.clone(), on_listed.clone());
            let prints = fingerprints.clone();
            spawn_reflector(
                Api::<Node>::all(client.clone()),
                watcher::Config::default(),
                slim_node,
                move |n: Notice<'_, Node>| match n {
                    Notice::Applied(node) | Notice::Deleted(node) => {
                        let name = node.metadata.name.clone().unwrap_or_default();
                        let print = match n {
                            Notice::Deleted(_) => None,
                            _ => Some(node_fingerprint(node)),
                        };
                        let changed = {
                            let mut prints = prints.lock().unwrap_or_else(|p| p.into_inner());
                            let old = match print {
                                Some(p) => prints.insert(name.clone(), p),
                                None => prints.remove(&name),
                            };
                            old != print
                        };
                        q.add(WorkKey::Object(OwnerKey::Node(name.into())));
                        if changed {
                            // Services have per-node load balancers; pods wait for their node.
                            q.add(WorkKey::Full);
                        }
                    }
                    Notice::Listed { first } => listed(first, &q),
                },
            )
        };
        let pods = {
            let (q, listed) = (queue.clone(), on_listed.clone());
            spawn_reflector(
                Api::<PodObject>::all(client.clone()),
                watcher::Config::default(),
                PodObject::into_record,
                move |n: Notice<'_, PodRecord>| match n {
                    Notice::Applied(p) | Notice::Deleted(p) => {
                        let key = OwnerKey::pod(&p.namespace, &p.name);
                        q.add(WorkKey::Object(key));
                    }
                    Notice::Listed { first } => listed(first, &q),
                },
            )
        };
        let services = {
            let (q, listed) = (queue.clone(), on_listed.clone());
            spawn_reflector(
                Api::<Service>::all(client.clone()),
                watcher::Config::default(),
                slim_service,
                move |n: Notice<'_, Service>| match n {
                    Notice::Applied(s) | Notice::Deleted(s) => {
                        let (ns, name) = ns_name(&s.metadata);
                        q.add(WorkKey::Object(OwnerKey::Service(ns.into(), name.into())));
                    }
                    Notice::Listed { first } => listed(first, &q),
                },
            )
        };
        let slices = {
            let (q, listed) = (queue.clone(), on_listed);
            let index = slice_index.clone();
            spawn_reflector(
                Api::<EndpointSlice>::all(client.clone()),
                watcher::Config::default(),
                slim_endpoint_slice,
                move |n: Notice<'_, EndpointSlice>| match n {
                    Notice::Applied(s) | Notice::Deleted(s) => {
                        let (ns, name) = ns_name(&s.metadata);
                        let Some(svc) = s
                            .metadata
                            .labels
                            .as_ref()
                            .and_then(|l| l.get(SERVICE_NAME_LABEL))
                            .cloned()
                        else {
                            return;
                        };
                        {
                            let mut index = index.lock().unwrap_or_else(|p| p.into_inner());
                            let set = index.entry((ns.clone(), svc.clone())).or_default();
                            if matches!(n, Notice::Deleted(_)) {
                                set.remove(&name);
                            } else {
                                set.insert(name);
                            }
                        }
                        q.add(WorkKey::Object(OwnerKey::Service(ns.into(), svc.into())));
                    }
                    Notice::Listed { first } => listed(first, &q),
                },
            )
        };
        ClusterView {
            nodes,
            pods,
            services,
            slices,
            slice_index,
            listed,
        }
    }

    /// Waits until every kind has been listed once.
    pub async fn wait_synced(&self) {
        let mut listed = self.listed.clone();
        // The sender lives as long as the reflectors; an error means shutdown.
        let _ = listed.wait_for(|n| *n >= 4).await;
    }

    /// A node by name.
    pub fn node(&self, name: &str) -> Option<Arc<Node>> {
        self.nodes.get(&ObjectRef::new(name))
    }

    /// A pod by namespace and name.
    pub fn pod(&self, ns: &str, name: &str) -> Option<Arc<PodRecord>> {
        self.pods.get(&ObjectRef::new(name).within(ns))
    }

    /// A service by namespace and name.
    pub fn service(&self, ns: &str, name: &str) -> Option<Arc<Service>> {
        self.services.get(&ObjectRef::new(name).within(ns))
    }

    /// The EndpointSlices of a service.
    pub fn slices_of(&self, ns: &str, service: &str) -> Vec<EndpointSlice> {
        let names: Vec<String> = self
            .slice_index
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&(ns.to_owned(), service.to_owned()))
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default();
        names
            .iter()
            .filter_map(|n| self.slices.get(&ObjectRef::new(n).within(ns)))
            .map(|s| (*s).clone())
            .collect()
    }
}

/// Validated nodes, recomputed only when a node's resourceVersion changes.
#[derive(Default)]
pub struct NodeInfos {
    cache: HashMap<String, (Option<String>, Result<NodeInfo, ObjectError>)>,
    /// The valid ones sorted by name, kept with the cache (every service key reads them).
    valid: Vec<NodeInfo>,
}

impl NodeInfos {
    /// Every node given (the store's, or as just patched), validated (errors for nodes not
    /// ready or malformed).
    pub fn refresh(&mut self, nodes: impl IntoIterator<Item = Arc<Node>>, config: &Config) {
        let mut seen = BTreeSet::new();
        let mut changed = false;
        for node in nodes {
            let name = node.metadata.name.as_deref().unwrap_or_default();
            let rv = &node.metadata.resource_version;
            let fresh = self.cache.get(name).is_some_and(|(cached, _)| cached == rv);
            if !fresh {
                changed = true;
                self.cache.insert(
                    name.to_owned(),
                    (rv.clone(), NodeInfo::from_node(&node, config)),
                );
            }
            seen.insert(name.to_owned());
        }
        let before = self.cache.len();
        self.cache.retain(|name, _| seen.contains(name));
        if changed || self.cache.len() != before {
            self.valid = self
                .cache
                .values()
                .filter_map(|(_, r)| r.as_ref().ok().cloned())
                .collect();
            self.valid.sort_by(|a, b| a.name.cmp(&b.name));
        }
    }

    /// The validated node `name`.
    pub fn get(&self, name: &str) -> Option<&Result<NodeInfo, ObjectError>> {
        self.cache.get(name).map(|(_, r)| r)
    }

    /// Every valid node, sorted by name.
    pub fn valid(&self) -> &[NodeInfo] {
        &self.valid
    }
}
