//! Issue 9's figures on the multi-node Docker bed (e2e/docker/README.md), as a benchmark rather
//! than a timed test (run by hack/bench-e2e-docker.sh):
//! - bed bring-up (first `docker run` to every node agent ready, 3 nodes);
//! - pod created through the API on node2/node3 -> first ping answered from a pod on node1
//!   (p50/p99 over N pods; the kubelet's part is `kubectl apply`, CNI ADD and tx offload off,
//!   each a process; the ping runs in node1's container through `docker exec`, whose own
//!   start-up is measured and printed so it can be told apart);
//! - node killed, then its Node deleted through the API -> its rows gone from NB;
//! - node container started again -> re-registered, agent ready, a new pod on it answering;
//! - controller and node agent RSS in the containers.

#[path = "../tests/e2e_common/mod.rs"]
mod e2e_common;

use std::time::{Duration, Instant};

use e2e_common::docker::{container, BedPod, DockerBed};
use e2e_common::{bench_args, percentiles};

/// Pings `ip` from `from` every 20 ms until the first reply (one `docker exec`).
fn first_ping(bed: &DockerBed, from: &BedPod, ip: &str) -> bool {
    bed.pod_exec(
        from,
        &["ping", "-n", "-q", "-c", "1", "-i", "0.02", "-w", "10", ip],
    )
    .status
    .success()
}

/// Resident set size of the process whose PID is in `pidfile` inside container `name`.
fn rss(bed: &DockerBed, name: &str, pidfile: &str) -> String {
    let script = format!("grep VmRSS /proc/$(cat {pidfile})/status");
    bed.exec(name, &["sh", "-c", &script])
        .split_whitespace()
        .skip(1)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Polls `done` every 20 ms (up to a minute); the time it took.
fn time_until(mut done: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < Duration::from_secs(60), "timed out");
        std::thread::sleep(Duration::from_millis(20));
    }
    start.elapsed()
}

fn main() -> anyhow::Result<()> {
    let (n, bin) = bench_args()?;
    let mut bed = DockerBed::up_with_nodes(&bin, 3);
    println!(
        "bed bring-up (3 nodes, first docker run -> every agent ready): {:.2} s",
        bed.bringup.as_secs_f64()
    );
    let client = bed.add_pod("default", "client", "node1", "client");

    let mut exec_overhead: Vec<Duration> = (0..20)
        .map(|_| {
            let start = Instant::now();
            bed.exec("node1", &["true"]);
            start.elapsed()
        })
        .collect();
    let mut to_ping = Vec::with_capacity(n);
    for i in 0..n {
        let node = ["node2", "node3"][i % 2];
        let start = Instant::now();
        let pod = bed.add_pod("default", &format!("bench-{i}"), node, "bench");
        anyhow::ensure!(
            first_ping(&bed, &client, &pod.ip),
            "{} never answered",
            pod.ip
        );
        to_ping.push(start.elapsed());
    }
    let (p50, p99) = percentiles(&mut to_ping);
    let (e50, e99) = percentiles(&mut exec_overhead);
    println!("pod created (kubectl apply) -> CNI ADD -> first ping from node1, {n} pods: p50 {p50:.0} ms, p99 {p99:.0} ms");
    println!("  (of which one docker exec for the ping: p50 {e50:.0} ms, p99 {e99:.0} ms)");
    println!(
        "controller RSS (central container): {}",
        rss(&bed, "central", "/run/e2e/controller.pid")
    );
    for node in ["node1", "node2", "node3"] {
        println!(
            "node agent RSS ({node}): {}",
            rss(&bed, node, "/run/e2e/node-agent.pid")
        );
    }

    // Node lost: killed, then deleted through the API (with its pods, as the pod GC would).
    let mgmt = bed.mgmt_ip("node3");
    let killed = Instant::now();
    bed.docker(&["kill", &container("node3")]);
    bed.kubectl(
        &[
            "delete",
            "pods",
            "-l",
            "app=bench",
            "--field-selector",
            "spec.nodeName=node3",
            "--wait=false",
        ],
        None,
    );
    bed.kubectl(&["delete", "node", "node3", "--wait=false"], None);
    let gone = time_until(|| bed.node_rows("node3", &mgmt).is_empty());
    println!(
        "node killed -> its rows gone from NB: {:.0} ms after the Node's deletion returned ({:.0} ms after docker kill, incl. the kubectl calls)",
        gone.as_secs_f64() * 1e3,
        killed.elapsed().as_secs_f64() * 1e3
    );

    // Node back: started, registered, ready, a new pod on it answering node1.
    let started = Instant::now();
    bed.docker(&["start", &container("node3")]);
    bed.register_node("node3");
    bed.wait_node_ready("node3", Duration::from_secs(90));
    let ready = started.elapsed();
    let pod = bed.add_pod("default", "back-0", "node3", "bench");
    anyhow::ensure!(
        first_ping(&bed, &client, &pod.ip),
        "{} never answered",
        pod.ip
    );
    println!(
        "node back (docker start) -> agent ready {:.2} s -> its new pod answering {:.2} s",
        ready.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
