//! Issue 8's figures on the e2e lab (real processes, real packets), as a benchmark rather than a
//! timed test:
//! - lab bring-up (daemons, API server, controller, node agent, 3 seed pods wired);
//! - pod created through the API -> first successful ping from pod-1 (the runtime's CNI ADD is
//!   run as soon as `kubectl apply` returns, as a kubelet would once the pod is scheduled);
//! - Service (+ its EndpointSlice) created through the API -> first successful TCP connection.
//!
//!   cargo build --release --bins --examples && target/release/examples/e2e_bench [N]
//!
//! Every API call goes through `kubectl` (a process per call); its own start-up time is measured
//! and printed so it can be told apart. The pod figure includes two such calls (the apply, and
//! reading the pod's UID that a runtime would already have).

#[path = "../tests/e2e_common/mod.rs"]
mod e2e_common;

use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::Context;
use e2e_common::probe::{ask, Proto};
use e2e_common::seed::SeedLab;
use e2e_common::{bench_args, percentiles};

fn ping_once(netns: &str, ip: &str) -> bool {
    Command::new("ip")
        .args(["netns", "exec", netns, "ping", "-c1", "-W0.2", "-q", ip])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn main() -> anyhow::Result<()> {
    let (n, bin) = bench_args()?;
    let t0 = Instant::now();
    let mut seed = SeedLab::start(&bin);
    let bring_up = t0.elapsed();
    let pod1 = seed.netns("pod-1");

    let mut kubectl = Vec::new();
    for _ in 0..10 {
        let t = Instant::now();
        seed.lab.kubectl(&["get", "--raw", "/version"], None);
        kubectl.push(t.elapsed());
    }

    let mut to_ping = Vec::with_capacity(n);
    for i in 0..n {
        let name = format!("bench-{i}");
        let pod = format!(
            r#"{{"apiVersion":"v1","kind":"Pod","metadata":{{"namespace":"default","name":"{name}"}},
               "spec":{{"nodeName":"microshift-dev","containers":[{{"name":"main","image":"none"}}]}}}}"#
        );
        let t = Instant::now();
        seed.lab.kubectl(&["apply", "-f", "-"], Some(&pod));
        let (_, result) = seed.lab.add_pod("default", &name);
        let result = result.map_err(anyhow::Error::msg)?;
        let ip = result["ips"][0]["address"]
            .as_str()
            .and_then(|a| a.split('/').next())
            .context("the CNI result has no address")?
            .to_string();
        while !ping_once(&pod1, &ip) {
            anyhow::ensure!(
                t.elapsed() < Duration::from_secs(30),
                "{name} at {ip} never answered"
            );
        }
        to_ping.push(t.elapsed());
    }

    let (p50, p99) = percentiles(&mut to_ping);
    println!("pod created -> first ping from pod-1 ({n} pods): p50 {p50:.0} ms, p99 {p99:.0} ms");

    // One backend for every Service: pod-2's who-am-I server answers on 8080 already.
    let mut to_connect = Vec::with_capacity(n);
    for i in 0..n {
        let vip = format!("10.43.{}.{}", 200 + i / 250, 1 + i % 250);
        let name = format!("bench-svc-{i}");
        let service = serde_json::json!({"apiVersion": "v1", "kind": "Service",
             "metadata": {"namespace": "default", "name": name},
             "spec": {"type": "ClusterIP", "clusterIP": vip, "clusterIPs": [vip],
                      "ports": [{"port": 80, "protocol": "TCP", "targetPort": 8080}]}});
        let slice = serde_json::json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
             "metadata": {"namespace": "default", "name": format!("{name}-1"),
                          "labels": {"kubernetes.io/service-name": name}},
             "addressType": "IPv4",
             "endpoints": [{"addresses": ["10.42.0.13"], "conditions": {"ready": true}}],
             "ports": [{"port": 8080, "protocol": "TCP"}]});
        let objects = format!("{service}\n---\n{slice}\n");
        let dst: SocketAddr = format!("{vip}:80").parse()?;
        let t = Instant::now();
        seed.lab.kubectl(&["apply", "-f", "-"], Some(&objects));
        while ask(&pod1, Proto::Tcp, dst, Duration::from_millis(200)).is_err() {
            anyhow::ensure!(
                t.elapsed() < Duration::from_secs(30),
                "{name} at {dst} never answered"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        to_connect.push(t.elapsed());
    }
    anyhow::ensure!(seed.lab.daemons_alive(), "an ovnkube-rs daemon exited");

    let (k50, k99) = percentiles(&mut kubectl);
    let (s50, s99) = percentiles(&mut to_connect);
    println!(
        "lab bring-up incl. 3 seed pods wired: {:.2} s",
        bring_up.as_secs_f64()
    );
    println!("kubectl call (process start-up + request): p50 {k50:.0} ms, p99 {k99:.0} ms");
    println!(
        "service created -> first TCP connection ({n} services): p50 {s50:.0} ms, p99 {s99:.0} ms"
    );
    Ok(())
}
