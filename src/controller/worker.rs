//! The reconcile loop: takes batches of keys, computes their desired rows from the stores,
//! diffs them against the NB replica and commits each batch as one transaction.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use futures::stream::{FuturesUnordered, StreamExt};
use k8s_openapi::api::core::v1::{Node, Service};
use kube::Client;
use ovnkube_desired::names::LB_OWNER_KEY;
use ovnkube_desired::{
    cluster_rows, node_rows, pod_rows, service_rows, Config, Desired, ObjectError, OwnerKey,
    PodInfo, ServiceInfo,
};
use ovnkube_reconcile::{diff_owned, Scope};
use tracing::{debug, info, warn};

use super::allocate::{ensure_node, ensure_pod, needs_address, pod_key, AllocError, Ipam};
use super::events::{EventRecorder, Regarding};
use super::pod_record::PodRecord;
use super::queue::WorkQueue;
use super::state::{ns_name, ClusterView, NodeInfos, WorkKey};
use crate::metrics::{KindLabel, Metrics};

/// Most keys one transaction carries.
const MAX_BATCH: usize = 2000;

/// Pods per transaction of a full sync: a few thousand rows, big enough that northd and the
/// server see few transactions, small enough to overlap with computing the next batch.
const FULL_SYNC_PODS: usize = 2000;
/// Full-sync transactions sent and not yet answered, at most.
const FULL_SYNC_IN_FLIGHT: usize = 2;
/// A pod or a service, for the batches of a full sync.
enum Object {
    Pod(Arc<PodRecord>),
    Service(Arc<Service>),
}

impl Object {
    fn key(&self) -> OwnerKey {
        match self {
            Object::Pod(p) => OwnerKey::pod(&p.namespace, &p.name),
            Object::Service(s) => {
                let (ns, name) = ns_name(&s.metadata);
                OwnerKey::Service(ns.into(), name.into())
            }
        }
    }
}

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
    async fn pod_with_address(
        &mut self,
        pod: Arc<PodRecord>,
    ) -> Result<Arc<PodRecord>, AllocError> {
        let node = pod.node_name.as_deref().and_then(|n| self.view.node(n));
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
                    .map_err(|e| ObjectError::new("Node", name.to_string(), e.to_string()))?;
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
                    .map_err(|e| ObjectError::new("Pod", full, e.to_string()))?;
                self.pod_object_rows(&pod)
            }
            OwnerKey::Service(ns, name) => match self.view.service(ns, name) {
                Some(svc) => self.service_object_rows(&svc),
                None => Ok(Desired::default()),
            },
        }
    }

    /// Allocates for every node and pod that lacks addresses; returns the objects as they now
    /// are (patched where an allocation was written) and forgets allocations of objects gone.
    async fn allocate_all(&mut self) -> (Vec<Arc<Node>>, Vec<Arc<PodRecord>>) {
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
        // Pods read their node's subnet from the patched nodes, not the store's older copies.
        self.node_infos.refresh(nodes.iter().cloned(), &self.config);
        let mut pods: Vec<Arc<PodRecord>> = Vec::new();
        for pod in self.view.pods.state() {
            if !needs_address(&pod) {
                continue;
            }
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
        (nodes, pods)
    }

    /// Desired rows of one pod as it is now (its address allocated).
    fn pod_object_rows(&self, pod: &PodRecord) -> Result<Desired, ObjectError> {
        let Some(info) = PodInfo::from_parts(&pod.parts())? else {
            return Ok(Desired::default());
        };
        match self.node_infos.get(&info.node) {
            Some(Ok(node)) => pod_rows(&self.config, &info, node),
            _ => Err(ObjectError::new(
                "Pod",
                pod_key(pod),
                format!("its node {} is unknown or not ready", info.node),
            )),
        }
    }

    /// Desired rows of one service with its endpoint slices.
    fn service_object_rows(&self, svc: &Service) -> Result<Desired, ObjectError> {
        let Some(info) = ServiceInfo::from_service(svc)? else {
            return Ok(Desired::default());
        };
        let slices = self.view.slices_of(&info.namespace, &info.name);
        service_rows(&self.config, &info, &slices, self.node_infos.valid())
    }

    /// The desired rows of `objects`, their keys as the scope (also for objects whose input is
    /// bad, which are reported and left as they are), diffed against the replica.
    async fn plan_objects(
        &self,
        objects: impl IntoIterator<Item = (OwnerKey, Result<Desired, ObjectError>)>,
    ) -> ovnkube_reconcile::Diff {
        let mut desired = Desired::default();
        let mut keys = BTreeSet::new();
        for (key, rows) in objects {
            match rows {
                Ok(rows) => {
                    desired.extend(rows);
                    keys.insert(key);
                }
                Err(e) => self.report(&e).await,
            }
        }
        diff_owned(desired, &self.nb.replica(), &Scope::Keys(keys))
    }

    /// Sends a transaction and counts it; returns the writes it carried.
    fn commit(
        &self,
        plan: ovnkube_reconcile::Diff,
    ) -> impl std::future::Future<Output = Result<usize, ovsdb::error::Error>> + 'static {
        for issue in &plan.issues {
            debug!(%issue, "row not placed yet");
        }
        let writes = plan.write_count();
        let nb = self.nb.clone();
        let metrics = self.metrics.clone();
        async move {
            if plan.ops.is_empty() {
                return Ok(0);
            }
            let t = Instant::now();
            nb.transact(plan.ops).await?;
            metrics
                .nb_transaction_duration
                .observe(t.elapsed().as_secs_f64());
            metrics.nb_transactions.inc();
            metrics.nb_operations.inc_by(writes as u64);
            Ok(writes)
        }
    }

    /// Reconciles everything: the cluster and the nodes first (every other row refers to
    /// theirs), then pods and services in batches of keys whose transactions overlap with the
    /// computing of the next batch, then one diff that deletes the owned rows of every key not
    /// live any more (objects deleted while the controller was away). Only one batch's desired
    /// rows are held at a time, and a converged NB gets no operation.
    async fn sync_everything(&mut self) -> Result<usize, ovsdb::error::Error> {
        let started = Instant::now();
        let (nodes, pods) = self.allocate_all().await;
        let services = self.view.services.state();
        let mut live = BTreeSet::from([OwnerKey::Cluster]);
        let mut base = vec![(OwnerKey::Cluster, Ok(cluster_rows(&self.config)))];
        for node in &nodes {
            let key = OwnerKey::Node(node.metadata.name.as_deref().unwrap_or_default().into());
            let rows = ovnkube_desired::NodeInfo::from_node(node, &self.config)
                .map(|info| node_rows(&self.config, &info));
            live.insert(key.clone());
            base.push((key, rows));
        }
        let mut writes = self.commit(self.plan_objects(base).await).await?;
        let base_done = started.elapsed();
        let mut waited = std::time::Duration::ZERO;
        // All services in one transaction: the server answers each new load balancer's `wait`
        // guard by scanning the table, so spread over several transactions they cost it O(n²).
        // They go first, while the replica is smallest: their desired rows are the biggest
        // batch this process ever holds.
        let mut batches: Vec<Vec<Object>> =
            vec![services.iter().cloned().map(Object::Service).collect()];
        batches.extend(
            pods.chunks(FULL_SYNC_PODS)
                .map(|chunk| chunk.iter().cloned().map(Object::Pod).collect()),
        );
        let mut in_flight = FuturesUnordered::new();
        for batch in batches {
            let rows = batch.iter().map(|object| {
                let key = object.key();
                live.insert(key.clone());
                let rows = match object {
                    Object::Pod(p) => self.pod_object_rows(p),
                    Object::Service(s) => self.service_object_rows(s),
                };
                (key, rows)
            });
            // Lazily: each object's small `Desired` is merged into the batch's and freed at once.
            let plan = self.plan_objects(rows).await;
            if in_flight.len() == FULL_SYNC_IN_FLIGHT {
                let t = Instant::now();
                writes += in_flight.next().await.expect("in flight")?;
                waited += t.elapsed();
            }
            in_flight.push(self.commit(plan));
        }
        let t = Instant::now();
        while let Some(sent) = in_flight.next().await {
            writes += sent?;
        }
        waited += t.elapsed();
        let batches_done = started.elapsed();
        let stale = diff_owned(Desired::default(), &self.nb.replica(), &Scope::AllBut(live));
        writes += self.commit(stale).await?;
        // Where a start-up goes, next to the stores' listing logged before it.
        info!(elapsed = ?started.elapsed(), nodes = ?base_done, batches = ?(batches_done - base_done), waited_for_nb = ?waited, writes, "full sync");
        Ok(writes)
    }

    /// The diff of a batch of object keys (no full sync in it).
    async fn plan_keys(&mut self, batch: &[WorkKey]) -> ovnkube_reconcile::Diff {
        self.node_infos
            .refresh(self.view.nodes.state(), &self.config);
        let mut rows = Vec::new();
        for key in batch {
            let WorkKey::Object(key) = key else { continue };
            rows.push((key.clone(), self.key_rows(key).await));
        }
        self.plan_objects(rows).await
    }

    /// Reconciles one batch now. Returns the number of write operations sent.
    async fn process(&mut self, batch: &[WorkKey]) -> Result<usize, ovsdb::error::Error> {
        if batch.contains(&WorkKey::Full) {
            self.sync_everything().await
        } else {
            let plan = self.plan_keys(batch).await;
            self.commit(plan).await
        }
    }

    /// Marks a batch done (or due for a retry) once its transaction is answered.
    fn finish(
        &mut self,
        batch: &[WorkKey],
        started: Instant,
        result: Result<usize, ovsdb::error::Error>,
    ) {
        match result {
            Ok(writes) => {
                if writes > 0 {
                    debug!(keys = batch.len(), writes, "batch committed");
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
                for key in batch {
                    self.queue.forget(key);
                    self.queue.done(key);
                }
            }
            Err(e) => {
                warn!(keys = batch.len(), error = %e, "batch failed; retrying with backoff");
                for key in batch {
                    self.metrics.workqueue_retries.inc();
                    self.queue.retry(key);
                }
            }
        }
        self.update_gauges();
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

    /// Runs until the queue shuts down, one batch at a time: keys that arrive while a batch is
    /// in flight make the next batch bigger. (Pipelining batches was measured: at 1,000
    /// EndpointSlice patches/s with ovn-northd saturating a core it made more, smaller
    /// transactions and a worse p99, 80 vs 53 ms in the same run.)
    pub async fn run(mut self) {
        while let Some(batch) = self.queue.next_batch(MAX_BATCH).await {
            let started = Instant::now();
            let result = self.process(&batch).await;
            self.finish(&batch, started, result);
        }
    }

    /// Reconciles everything once (start-up); returns the write operations sent.
    pub async fn full_sync(&mut self) -> Result<usize, ovsdb::error::Error> {
        self.process(&[WorkKey::Full]).await
    }
}
