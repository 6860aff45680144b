//! The reconcile loop: takes batches of keys, computes their desired rows from the stores,
//! diffs them against the NB replica and commits each batch as one transaction.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::Client;
use ovnkube_desired::names::LB_OWNER_KEY;
use ovnkube_desired::{
    cluster_rows, desired_objects, node_rows, pod_rows, service_rows, ClusterObjects, Config,
    Desired, ObjectError, OwnerKey, PodInfo, ServiceInfo,
};
use ovnkube_reconcile::{diff_owned, Scope};
use tracing::{debug, info, warn};

use super::allocate::{ensure_node, ensure_pod, needs_address, pod_key, AllocError, Ipam};
use super::events::{EventRecorder, Regarding};
use super::queue::WorkQueue;
use super::state::{ClusterView, NodeInfos, WorkKey};
use crate::metrics::{KindLabel, Metrics};

/// Most keys one transaction carries.
const MAX_BATCH: usize = 2000;

/// The `external_ids` keys the NB replica indexes: load balancers by owner, pod ports.
pub const INDEXED_EXTERNAL_IDS: &[&str] = &[LB_OWNER_KEY, POD_KEY];
const POD_KEY: &str = "pod";

/// Everything the loop works with.
pub struct Worker {
    pub config: Config,
    pub client: Client,
    pub nb: ovsdb::Client,
    pub view: ClusterView,
    pub queue: Arc<WorkQueue<WorkKey>>,
    pub ipam: Mutex<Ipam>,
    pub metrics: Arc<Metrics>,
    pub events: EventRecorder,
    pub node_infos: NodeInfos,
    /// When each pod's annotation was written, for the annotation → LSP latency.
    pub annotated_at: HashMap<String, Instant>,
    /// When the object gauges were last counted (counting scans the replica).
    pub gauges_at: Option<Instant>,
}

fn kind_of(key: &WorkKey) -> &'static str {
    match key {
        WorkKey::Full => "full",
        WorkKey::Object(OwnerKey::Cluster) => "cluster",
        WorkKey::Object(OwnerKey::Node(_)) => "node",
        WorkKey::Object(OwnerKey::Pod(..)) => "pod",
        WorkKey::Object(OwnerKey::Service(..)) => "service",
    }
}

/// The object an error is about, for its Event.
fn regarding(e: &ObjectError, uid: Option<String>) -> Regarding {
    let (namespace, name) = match e.name.split_once('/') {
        Some((ns, n)) => (ns.to_owned(), n.to_owned()),
        None => (String::new(), e.name.clone()),
    };
    let api_version = if e.kind == "EndpointSlice" {
        "discovery.k8s.io/v1"
    } else {
        "v1"
    };
    Regarding {
        kind: e.kind,
        api_version,
        namespace,
        name,
        uid,
    }
}

/// "Not ready yet" is waiting, not an error: the object comes back when its node is ready.
fn is_waiting(e: &ObjectError) -> bool {
    e.reason.contains("not ready yet") || e.reason.contains("unknown or not ready")
}

impl Worker {
    async fn report(&self, e: &ObjectError) {
        if is_waiting(e) {
            debug!(error = %e, "waiting");
            return;
        }
        warn!(error = %e, "cannot program object");
        self.metrics
            .reconcile_errors
            .get_or_create(&KindLabel { kind: e.kind })
            .inc();
        self.events
            .warn(&regarding(e, None), "OVNProgrammingFailed", &e.reason)
            .await;
    }

    /// Allocates what the node lacks; returns the node as it now is.
    async fn node_with_addresses(&self, node: Arc<Node>) -> Result<Arc<Node>, AllocError> {
        match ensure_node(&self.ipam, &self.client, &node).await? {
            Some(patched) => Ok(Arc::new(patched)),
            None => Ok(node),
        }
    }

    /// Allocates the pod's address if it needs one; returns the pod as it now is.
    async fn pod_with_address(&mut self, pod: Arc<Pod>) -> Result<Arc<Pod>, AllocError> {
        let node_name = pod.spec.as_ref().and_then(|s| s.node_name.clone());
        let node = node_name.and_then(|n| self.view.node(&n));
        match ensure_pod(&self.ipam, &self.client, &pod, node.as_deref()).await? {
            Some(patched) => {
                self.annotated_at.insert(pod_key(&patched), Instant::now());
                Ok(Arc::new(patched))
            }
            None => Ok(pod),
        }
    }

    async fn alloc_failed(&self, kind: &'static str, name: String, e: AllocError) {
        let e = ObjectError::new(kind, name, e.to_string());
        self.report(&e).await;
    }

    /// Desired rows of one key; `Err` for an object that must be left as it is in NB.
    async fn key_rows(&mut self, key: &OwnerKey) -> Result<Desired, ObjectError> {
        match key {
            OwnerKey::Cluster => Ok(cluster_rows(&self.config)),
            OwnerKey::Node(name) => {
                let Some(node) = self.view.node(name) else {
                    self.ipam
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .release_node(name);
                    return Ok(Desired::default());
                };
                let node = self
                    .node_with_addresses(node)
                    .await
                    .map_err(|e| ObjectError::new("Node", name.clone(), e.to_string()))?;
                let info = ovnkube_desired::NodeInfo::from_node(&node, &self.config)?;
                Ok(node_rows(&self.config, &info))
            }
            OwnerKey::Pod(ns, name) => {
                let full = format!("{ns}/{name}");
                let pod = match self.view.pod(ns, name) {
                    Some(p) if needs_address(&p) => p,
                    _ => {
                        self.ipam
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .release_pod(&full);
                        return Ok(Desired::default());
                    }
                };
                let pod = self
                    .pod_with_address(pod)
                    .await
                    .map_err(|e| ObjectError::new("Pod", full.clone(), e.to_string()))?;
                let Some(info) = PodInfo::from_pod(&pod)? else {
                    return Ok(Desired::default());
                };
                match self.node_infos.get(&info.node) {
                    Some(Ok(node)) => pod_rows(&self.config, &info, node),
                    _ => Err(ObjectError::new(
                        "Pod",
                        full,
                        format!("its node {} is unknown or not ready", info.node),
                    )),
                }
            }
            OwnerKey::Service(ns, name) => {
                let Some(svc) = self.view.service(ns, name) else {
                    return Ok(Desired::default());
                };
                let Some(info) = ServiceInfo::from_service(&svc)? else {
                    return Ok(Desired::default());
                };
                let slices = self.view.slices_of(ns, name);
                service_rows(&self.config, &info, &slices, self.node_infos.valid())
            }
        }
    }

    /// Allocates for every node and pod that lacks addresses, then builds the whole desired state.
    async fn full_rows(&mut self) -> Desired {
        // The stores' objects by reference (patched ones where an allocation was written).
        let mut nodes: Vec<Arc<Node>> = Vec::new();
        for node in self.view.nodes.state() {
            let name = node.metadata.name.clone().unwrap_or_default();
            match self.node_with_addresses(node.clone()).await {
                Ok(n) => nodes.push(n),
                Err(e) => {
                    self.alloc_failed("Node", name, e).await;
                    nodes.push(node);
                }
            }
        }
        self.node_infos.refresh(&self.view, &self.config);
        let mut pods: Vec<Arc<Pod>> = Vec::new();
        for pod in self.view.pods.state() {
            match self.pod_with_address(pod.clone()).await {
                Ok(p) => pods.push(p),
                Err(e) => self.alloc_failed("Pod", pod_key(&pod), e).await,
            }
        }
        let live_nodes: BTreeSet<String> = nodes
            .iter()
            .filter_map(|n| n.metadata.name.clone())
            .collect();
        let live_pods: BTreeSet<String> = self
            .view
            .pods
            .state()
            .iter()
            .filter(|p| needs_address(p))
            .map(|p| pod_key(p))
            .collect();
        self.ipam
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(&live_nodes, &live_pods);
        let services = self.view.services.state();
        let slices = self.view.slices.state();
        let (desired, errors) = desired_objects(
            &self.config,
            ClusterObjects {
                nodes: &nodes.iter().map(AsRef::as_ref).collect::<Vec<_>>(),
                pods: &pods.iter().map(AsRef::as_ref).collect::<Vec<_>>(),
                services: &services.iter().map(AsRef::as_ref).collect::<Vec<_>>(),
                endpoint_slices: &slices.iter().map(AsRef::as_ref).collect::<Vec<_>>(),
            },
        );
        for e in &errors {
            self.report(e).await;
        }
        desired
    }

    /// Reconciles one batch. Returns the number of write operations sent.
    async fn process(&mut self, batch: &[WorkKey]) -> Result<usize, ovsdb::error::Error> {
        let started = Instant::now();
        self.node_infos.refresh(&self.view, &self.config);
        let (desired, scope) = if batch.contains(&WorkKey::Full) {
            (self.full_rows().await, Scope::Full)
        } else {
            let mut desired = Desired::default();
            let mut keys = BTreeSet::new();
            for key in batch {
                let WorkKey::Object(key) = key else { continue };
                match self.key_rows(key).await {
                    Ok(rows) => {
                        desired.extend(rows);
                        keys.insert(key.clone());
                    }
                    // Leave the object's rows as they are: only its own key is skipped.
                    Err(e) => self.report(&e).await,
                }
            }
            (desired, Scope::Keys(keys))
        };
        let computed = started.elapsed();
        let plan = {
            let replica = self.nb.replica();
            // The desired rows move into the inserts (a cold start inserts every one of them).
            diff_owned(desired, &replica, &scope)
        };
        let diffed = started.elapsed();
        for issue in &plan.issues {
            debug!(%issue, "row not placed yet");
        }
        let writes = plan.write_count();
        if !plan.ops.is_empty() {
            let t = Instant::now();
            self.nb.transact(plan.ops).await?;
            self.metrics
                .nb_transaction_duration
                .observe(t.elapsed().as_secs_f64());
            self.metrics.nb_transactions.inc();
            self.metrics.nb_operations.inc_by(writes as u64);
        }
        if scope == Scope::Full {
            // Where a start-up goes: desired rows, the diff, the transaction.
            info!(desired = ?computed, diff = ?(diffed - computed), transaction = ?(started.elapsed() - diffed), writes, "full sync");
        }
        self.record_pod_latencies(batch);
        let elapsed = started.elapsed().as_secs_f64();
        let kinds: BTreeSet<&'static str> = batch.iter().map(kind_of).collect();
        for kind in kinds {
            self.metrics
                .reconcile_duration
                .get_or_create(&KindLabel { kind })
                .observe(elapsed);
        }
        Ok(writes)
    }

    fn record_pod_latencies(&mut self, batch: &[WorkKey]) {
        for key in batch {
            if let WorkKey::Object(OwnerKey::Pod(ns, name)) = key {
                if let Some(t) = self.annotated_at.remove(&format!("{ns}/{name}")) {
                    self.metrics
                        .pod_annotation_to_lsp
                        .observe(t.elapsed().as_secs_f64());
                }
            }
        }
        if batch.contains(&WorkKey::Full) {
            for (_, t) in self.annotated_at.drain() {
                self.metrics
                    .pod_annotation_to_lsp
                    .observe(t.elapsed().as_secs_f64());
            }
        }
    }

    fn update_gauges(&mut self) {
        self.metrics.workqueue_depth.set(self.queue.depth() as i64);
        // The client counts its reconnections; the registered counter follows it.
        let reconnects = self.nb.metrics().reconnects;
        let reported = self.metrics.nb_reconnects.get();
        if reconnects > reported {
            self.metrics.nb_reconnects.inc_by(reconnects - reported);
        }
        if self
            .gauges_at
            .is_some_and(|t| t.elapsed() < std::time::Duration::from_secs(1))
        {
            return;
        }
        self.gauges_at = Some(Instant::now());
        let replica = self.nb.replica();
        // From the indexes: the worker must not stall on a scan of the replica.
        let indexed = |table: &str, key: &str| -> i64 {
            replica.table(table).map_or(0, |t| {
                t.external_id_values(key)
                    .map(|v| t.by_external_id(key, v).count())
                    .sum::<usize>() as i64
            })
        };
        let routers = replica.table("Logical_Router").map_or(0, |t| {
            t.names().filter(|n| n.starts_with("GR_")).count() as i64
        });
        let set = |kind: &'static str, v: i64| {
            self.metrics
                .programmed
                .get_or_create(&KindLabel { kind })
                .set(v);
        };
        set("pod", indexed("Logical_Switch_Port", POD_KEY));
        set("service_lb", indexed("Load_Balancer", LB_OWNER_KEY));
        set("node", routers);
    }

    /// Runs until the queue shuts down.
    pub async fn run(mut self) {
        while let Some(batch) = self.queue.next_batch(MAX_BATCH).await {
            match self.process(&batch).await {
                Ok(writes) => {
                    if writes > 0 {
                        info!(keys = batch.len(), writes, "batch committed");
                    }
                    for key in &batch {
                        self.queue.forget(key);
                        self.queue.done(key);
                    }
                }
                Err(e) => {
                    warn!(keys = batch.len(), error = %e, "batch failed; retrying with backoff");
                    for key in &batch {
                        self.metrics.workqueue_retries.inc();
                        self.queue.retry(key);
                    }
                }
            }
            self.update_gauges();
        }
    }

    /// Reconciles everything once (start-up); returns the write operations sent.
    pub async fn full_sync(&mut self) -> Result<usize, ovsdb::error::Error> {
        self.process(&[WorkKey::Full]).await
    }
}
