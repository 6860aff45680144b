//! deploy/monitoring/: Debian's real Prometheus scrapes the e2e lab's controller and node agent
//! with the jobs of prometheus.yml while they do real work (a pod, a node, bad input), then
//! every query of the Grafana dashboard must return data.

mod e2e_common;

use std::path::Path;
use std::time::Duration;

use e2e_common::prometheus::{dashboard_queries, Prometheus, CONTROLLER_JOB, NODE_JOB};
use e2e_common::{E2eLab, CONTROLLER_METRICS, NODE_METRICS};

const BIN: &str = env!("CARGO_BIN_EXE_ovnkube-rs");

#[test]
fn every_dashboard_query_has_data_from_the_running_daemons() {
    let mut lab = E2eLab::start(Path::new(BIN));
    let prometheus = Prometheus::start(
        &lab.node.dir().join("prometheus"),
        Some(&lab.node.netns),
        "127.0.0.1:29090",
        &[
            (CONTROLLER_JOB, vec![CONTROLLER_METRICS.to_owned()]),
            (NODE_JOB, vec![NODE_METRICS.to_owned()]),
        ],
    );
    for job in [CONTROLLER_JOB, NODE_JOB] {
        prometheus.wait_for_data(
            &format!("up{{job=\"{job}\"}} == 1"),
            Duration::from_secs(20),
        );
    }
    // Work while Prometheus watches: rates, latencies and the error counters get samples.
    lab.exercise_api("monitoring");
    prometheus.wait_for_data(
        "increase(ovnkube_controller_nb_transactions_total[30s]) > 0",
        Duration::from_secs(20),
    );
    assert!(lab.daemons_alive(), "a daemon exited");
    let queries = dashboard_queries();
    assert!(queries.len() >= 20, "{queries:?}");
    let without_data = prometheus.dashboard_queries_without_data(Duration::from_secs(20));
    assert!(
        without_data.is_empty(),
        "{} of {} dashboard queries have no data:\n{}",
        without_data.len(),
        queries.len(),
        without_data.join("\n")
    );
}
