//! Counters the client keeps for the controller's metrics endpoint.

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

/// Called with the latency of every answered transaction (e.g. to feed a histogram).
pub type LatencyObserver = Arc<dyn Fn(Duration) + Send + Sync>;

#[derive(Default)]
pub(crate) struct Metrics {
    transactions: AtomicU64,
    operations: AtomicU64,
    latency_us_sum: AtomicU64,
    latency_count: AtomicU64,
    reconnects: AtomicU64,
    resyncs_found: AtomicU64,
    resyncs_full: AtomicU64,
    /// 0: no monitor yet, 1: last monitor was a full dump, 2: last monitor reported found=true.
    last_found: AtomicU8,
}

/// A point-in-time copy of the client's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetricsSnapshot {
    /// Transactions written to a server.
    pub transactions_sent: u64,
    /// Write operations (insert/update/mutate/delete) in those transactions.
    pub operations_sent: u64,
    /// Sum of the latencies of answered transactions.
    pub transaction_latency_sum: Duration,
    /// Number of answered transactions.
    pub transaction_latency_count: u64,
    /// Connections established after the first one.
    pub reconnects: u64,
    /// Monitors answered with found=true (only the changes since our last txn id were sent).
    pub resyncs_found: u64,
    /// Monitors answered with a full dump.
    pub resyncs_full: u64,
    /// Whether the latest monitor reported found=true (`None` before the first monitor).
    pub last_monitor_found: Option<bool>,
}

impl Metrics {
    pub(crate) fn transaction_sent(&self, write_ops: usize) {
        self.transactions.fetch_add(1, Relaxed);
        self.operations.fetch_add(write_ops as u64, Relaxed);
    }

    pub(crate) fn transaction_answered(&self, latency: Duration) {
        self.latency_us_sum
            .fetch_add(latency.as_micros() as u64, Relaxed);
        self.latency_count.fetch_add(1, Relaxed);
    }

    pub(crate) fn reconnected(&self) {
        self.reconnects.fetch_add(1, Relaxed);
    }

    pub(crate) fn monitored(&self, found: bool) {
        if found {
            self.resyncs_found.fetch_add(1, Relaxed);
        } else {
            self.resyncs_full.fetch_add(1, Relaxed);
        }
        self.last_found.store(if found { 2 } else { 1 }, Relaxed);
    }

    pub(crate) fn snapshot(&self) -> MetricsSnapshot {
        MetricsSnapshot {
            transactions_sent: self.transactions.load(Relaxed),
            operations_sent: self.operations.load(Relaxed),
            transaction_latency_sum: Duration::from_micros(self.latency_us_sum.load(Relaxed)),
            transaction_latency_count: self.latency_count.load(Relaxed),
            reconnects: self.reconnects.load(Relaxed),
            resyncs_found: self.resyncs_found.load(Relaxed),
            resyncs_full: self.resyncs_full.load(Relaxed),
            last_monitor_found: match self.last_found.load(Relaxed) {
                0 => None,
                v => Some(v == 2),
            },
        }
    }
}
