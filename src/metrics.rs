//! Prometheus metrics and the health endpoints (`/metrics`, `/healthz`, `/readyz`) of the
//! controller (`ovnkube_controller_*`) and the node agent (`ovnkube_node_*`).
//!
//! Names follow upstream's where a counterpart exists, so dashboards built for ovn-kubernetes
//! find them (deploy/monitoring/ has ours). No label carries an object name (upstream learned that per-Service
//! labels explode cardinality); `kind` is one of a handful of values.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use prometheus_client::encoding::{text::encode, EncodeLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// The label of per-kind metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    pub kind: &'static str,
}

fn latency_histogram() -> Histogram {
    // 100 µs .. ~100 s.
    Histogram::new(exponential_buckets(0.0001, 2.0, 21))
}

/// Every metric of the controller.
pub struct Metrics {
    registry: Registry,
    pub reconcile_duration: Family<KindLabel, Histogram>,
    pub reconcile_errors: Family<KindLabel, Counter>,
    pub workqueue_depth: Gauge,
    pub workqueue_retries: Counter,
    pub nb_transaction_duration: Histogram,
    pub nb_transactions: Counter,
    pub nb_operations: Counter,
    pub nb_reconnects: Counter,
    pub programmed: Family<KindLabel, Gauge>,
    pub pod_annotation_to_lsp: Histogram,
    pub leader: Gauge,
    pub ready_duration: Gauge<f64, std::sync::atomic::AtomicU64>,
    ready: AtomicBool,
}

impl Metrics {
    /// Creates and registers every metric under the `ovnkube_controller` prefix.
    pub fn new() -> Arc<Metrics> {
        let mut registry = Registry::with_prefix("ovnkube_controller");
        let m = Metrics {
            reconcile_duration: Family::new_with_constructor(latency_histogram),
            reconcile_errors: Family::default(),
            workqueue_depth: Gauge::default(),
            workqueue_retries: Counter::default(),
            nb_transaction_duration: latency_histogram(),
            nb_transactions: Counter::default(),
            nb_operations: Counter::default(),
            nb_reconnects: Counter::default(),
            programmed: Family::default(),
            pod_annotation_to_lsp: latency_histogram(),
            leader: Gauge::default(),
            ready_duration: Gauge::default(),
            ready: AtomicBool::new(false),
            registry: Registry::default(),
        };
        registry.register(
            "reconcile_duration_seconds",
            "Time to compute, diff and commit one batch, per object kind",
            m.reconcile_duration.clone(),
        );
        registry.register(
            "reconcile_errors",
            "Objects that could not be programmed, per kind",
            m.reconcile_errors.clone(),
        );
        registry.register(
            "workqueue_depth",
            "Keys waiting to be reconciled",
            m.workqueue_depth.clone(),
        );
        registry.register(
            "workqueue_retries",
            "Keys requeued after a failure",
            m.workqueue_retries.clone(),
        );
        registry.register(
            "nb_transaction_duration_seconds",
            "Latency of NB transactions",
            m.nb_transaction_duration.clone(),
        );
        registry.register(
            "nb_transactions",
            "NB transactions sent",
            m.nb_transactions.clone(),
        );
        registry.register(
            "nb_operations",
            "NB write operations sent",
            m.nb_operations.clone(),
        );
        registry.register(
            "nb_reconnects",
            "Reconnections to the NB database",
            m.nb_reconnects.clone(),
        );
        registry.register(
            "objects_programmed",
            "Objects whose rows are in NB, per kind",
            m.programmed.clone(),
        );
        registry.register(
            "pod_creation_latency_seconds",
            "From the pod-networks annotation being written to the pod's LSP committed in NB",
            m.pod_annotation_to_lsp.clone(),
        );
        registry.register(
            "leader",
            "1 while this replica holds the leader lease",
            m.leader.clone(),
        );
        registry.register(
            "ready_duration_seconds",
            "Time from start to the first full sync",
            m.ready_duration.clone(),
        );
        Arc::new(Metrics { registry, ..m })
    }

    /// Marks the process ready (after the first full sync) and records how long that took.
    pub fn set_ready(&self, since_start: Duration) {
        self.ready_duration.set(since_start.as_secs_f64());
        self.ready.store(true, Ordering::Release);
    }
}

/// What the endpoints serve: a registry's exposition and whether the process is ready.
pub trait Exposition: Send + Sync + 'static {
    /// The OpenMetrics text exposition.
    fn encode(&self) -> String;
    /// Whether `/readyz` answers 200.
    fn is_ready(&self) -> bool;
}

fn encode_registry(registry: &Registry) -> String {
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = encode(&mut out, registry);
    out
}

impl Exposition for Metrics {
    fn encode(&self) -> String {
        encode_registry(&self.registry)
    }

    /// True once the first full sync is done.
    fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }
}

/// Every metric of the node agent.
pub struct NodeMetrics {
    registry: Registry,
    pub sync_duration: Histogram,
    pub sync_errors: Counter,
    pub host_changes: Counter,
    last_sync: Gauge<f64, AtomicU64>,
    ready: AtomicBool,
}

impl NodeMetrics {
    /// Creates and registers every metric under the `ovnkube_node` prefix.
    pub fn new() -> Arc<NodeMetrics> {
        let mut registry = Registry::with_prefix("ovnkube_node");
        let m = NodeMetrics {
            sync_duration: latency_histogram(),
            sync_errors: Counter::default(),
            host_changes: Counter::default(),
            last_sync: Gauge::default(),
            ready: AtomicBool::new(false),
            registry: Registry::default(),
        };
        registry.register(
            "sync_duration_seconds",
            "Time to check and repair flows, iptables and routes once",
            m.sync_duration.clone(),
        );
        registry.register(
            "sync_errors",
            "Syncs that failed (retried after the sync period or the next change)",
            m.sync_errors.clone(),
        );
        registry.register(
            "host_changes",
            "Syncs that changed host state (repairs or updates)",
            m.host_changes.clone(),
        );
        registry.register(
            "last_successful_sync_timestamp_seconds",
            "Unix time of the last successful sync",
            m.last_sync.clone(),
        );
        Arc::new(NodeMetrics { registry, ..m })
    }

    /// Records a successful sync that took `took`.
    pub fn synced(&self, took: Duration) {
        self.sync_duration.observe(took.as_secs_f64());
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        self.last_sync.set(now.as_secs_f64());
    }

    /// Marks the agent ready (the CNI config is written).
    pub fn set_ready(&self) {
        self.ready.store(true, Ordering::Release);
    }
}

impl Exposition for NodeMetrics {
    fn encode(&self) -> String {
        encode_registry(&self.registry)
    }

    /// True once the CNI config is written.
    fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }
}

/// The controller's metrics plus, with `--init-node`, the in-process node agent's: one endpoint
/// for MicroShift's one process, ready when both are.
pub struct ProcessMetrics {
    pub controller: Arc<Metrics>,
    pub node: Option<Arc<NodeMetrics>>,
}

impl Exposition for ProcessMetrics {
    fn encode(&self) -> String {
        let controller = self.controller.encode();
        let Some(node) = &self.node else {
            return controller;
        };
        // One exposition may hold one `# EOF` only: its last line.
        let mut text = controller
            .strip_suffix("# EOF\n")
            .unwrap_or(&controller)
            .to_owned();
        text.push_str(&node.encode());
        text
    }

    fn is_ready(&self) -> bool {
        self.controller.is_ready() && self.node.as_ref().is_none_or(|n| n.is_ready())
    }
}

/// Binds `address` and serves the endpoints from a thread of their own, for processes without
/// a tokio runtime (the node agent); returns the bound address.
pub fn serve_in_background<E: Exposition>(
    address: &str,
    metrics: Arc<E>,
) -> anyhow::Result<SocketAddr> {
    use anyhow::Context as _;
    let listener = std::net::TcpListener::bind(address)
        .with_context(|| format!("binding metrics on {address}"))?;
    listener.set_nonblocking(true)?;
    let bound = listener.local_addr()?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?;
    std::thread::Builder::new()
        .name("metrics".into())
        .spawn(move || {
            rt.block_on(async move {
                match TcpListener::from_std(listener) {
                    Ok(l) => serve(l, metrics).await,
                    Err(e) => tracing::error!(error = %e, "metrics listener"),
                }
            })
        })?;
    Ok(bound)
}

/// Serves `/metrics`, `/healthz` and `/readyz` on `listener` until the task is dropped.
///
/// A deliberately small HTTP/1.1 responder: one request per connection, which is all
/// Prometheus and kubelet probes need.
pub async fn serve<E: Exposition>(listener: TcpListener, metrics: Arc<E>) {
    loop {
        let Ok((mut sock, _)) = listener.accept().await else {
            continue;
        };
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            let mut n = 0;
            while n < buf.len() {
                match sock.read(&mut buf[n..]).await {
                    Ok(0) | Err(_) => break,
                    Ok(k) => n += k,
                }
                if buf[..n].windows(4).any(|w| w == b"\r\n\r\n") {
                    break;
                }
            }
            let head = String::from_utf8_lossy(&buf[..n]);
            let path = head.split_whitespace().nth(1).unwrap_or("/");
            let (status, ctype, body) = match path {
                "/metrics" => (
                    "200 OK",
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    metrics.encode(),
                ),
                "/healthz" => ("200 OK", "text/plain", "ok\n".to_owned()),
                "/readyz" if metrics.is_ready() => ("200 OK", "text/plain", "ready\n".to_owned()),
                "/readyz" => (
                    "503 Service Unavailable",
                    "text/plain",
                    "not synced yet\n".to_owned(),
                ),
                _ => ("404 Not Found", "text/plain", "not found\n".to_owned()),
            };
            let reply = format!(
                "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = sock.write_all(reply.as_bytes()).await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn get(addr: std::net::SocketAddr, path: &str) -> String {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out
    }

    #[tokio::test]
    async fn endpoints_answer() {
        let m = Metrics::new();
        m.nb_operations.inc_by(3);
        m.reconcile_duration
            .get_or_create(&KindLabel { kind: "service" })
            .observe(0.002);
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(serve(l, m.clone()));
        let metrics = get(addr, "/metrics").await;
        assert!(metrics.contains("ovnkube_controller_nb_operations_total 3"));
        assert!(metrics
            .contains("ovnkube_controller_reconcile_duration_seconds_count{kind=\"service\"} 1"));
        assert!(get(addr, "/healthz").await.starts_with("HTTP/1.1 200"));
        assert!(get(addr, "/readyz").await.starts_with("HTTP/1.1 503"));
        m.set_ready(Duration::from_millis(1500));
        assert!(get(addr, "/readyz").await.starts_with("HTTP/1.1 200"));
        assert!(get(addr, "/nope").await.starts_with("HTTP/1.1 404"));
    }

    #[tokio::test]
    async fn node_metrics_served_from_their_own_thread() {
        let m = NodeMetrics::new();
        m.synced(Duration::from_millis(30));
        m.sync_errors.inc();
        let addr = serve_in_background("127.0.0.1:0", m.clone()).unwrap();
        let metrics = get(addr, "/metrics").await;
        assert!(metrics.contains("ovnkube_node_sync_duration_seconds_count 1"));
        assert!(metrics.contains("ovnkube_node_sync_errors_total 1"));
        let last: f64 = metrics
            .lines()
            .find_map(|l| l.strip_prefix("ovnkube_node_last_successful_sync_timestamp_seconds "))
            .unwrap()
            .parse()
            .unwrap();
        assert!(last > 1.7e9, "{metrics}");
        assert!(get(addr, "/readyz").await.starts_with("HTTP/1.1 503"));
        m.set_ready();
        assert!(get(addr, "/readyz").await.starts_with("HTTP/1.1 200"));
    }
}
