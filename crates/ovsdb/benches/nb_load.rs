//! Load benchmark against a real NB ovsdb-server (not a timed test).
//!
//! For each N it inserts N Load_Balancer rows (one VIP with 3 backends, owner external_ids)
//! 1. through the [`Client`], as pipelined transactions of `NB_LOAD_BATCH` rows, and
//! 2. through the fastest raw path: one pre-serialized transaction written to the socket,
//!
//! each into a fresh server; the client both without and with a monitor of Load_Balancer (with
//! one, the server also sends every row back as an update). Then it times a fresh client's full
//! monitor dump of the N rows, and the server's share of it (a raw `monitor_cond` on the socket).
//!
//! `cargo bench -p ovsdb --bench nb_load [-- SIZES]`, SIZES like `1000,10000` (default
//! `1000,10000,50000`, also from `NB_LOAD_SIZES`); `NB_LOAD_BATCH` (default 1000).

use std::time::{Duration, Instant};

use ovn_testlab::Lab;
use ovsdb::framing::FrameDecoder;
use ovsdb::ops::Operation;
use ovsdb::{Client, ClientConfig, Datum, MonitorSpec, Row, TableMonitor};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

const NB: &str = "OVN_Northbound";

/// Wall time plus the CPU time the server and this process used: CPU figures stay meaningful
/// when other work shares the machine.
#[derive(Debug, Clone, Copy)]
struct Sample {
    wall: f64,
    server_cpu: f64,
    client_cpu: f64,
}

struct Meter {
    server: u32,
    start: Instant,
    server_cpu: f64,
    client_cpu: f64,
}

/// utime + stime of a process (`self` or a pid), from /proc.
fn cpu_seconds(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc stat");
    // Fields after the parenthesized command name; utime and stime are fields 14 and 15.
    let rest = &stat[stat.rfind(')').expect("stat format") + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f[11].parse::<f64>().expect("utime") + f[12].parse::<f64>().expect("stime");
    ticks / 100.0 // USER_HZ is 100 on Linux
}

impl Meter {
    fn start(server: u32) -> Meter {
        Meter {
            server,
            server_cpu: cpu_seconds(&server.to_string()),
            client_cpu: cpu_seconds("self"),
            start: Instant::now(),
        }
    }
    fn stop(self) -> Sample {
        Sample {
            wall: self.start.elapsed().as_secs_f64(),
            server_cpu: cpu_seconds(&self.server.to_string()) - self.server_cpu,
            client_cpu: cpu_seconds("self") - self.client_cpu,
        }
    }
}

fn lb_row(i: usize) -> Row {
    let ns = format!("ns{}", i % 100);
    Row::from([
        (
            "name",
            Datum::scalar(format!("Service_{ns}/svc{i}_TCP_cluster")),
        ),
        ("protocol", Datum::scalar("tcp")),
        (
            "vips",
            Datum::map([(
                format!("10.43.{}.{}:80", i / 250, i % 250),
                format!(
                    "10.42.{a}.{b}:8080,10.42.{a}.{c}:8080,10.42.{a}.{d}:8080",
                    a = i / 250 % 250,
                    b = i % 250,
                    c = (i + 1) % 250,
                    d = (i + 2) % 250
                ),
            )]),
        ),
        (
            "external_ids",
            Datum::map([
                ("k8s.ovn.org/kind".to_owned(), "Service".to_owned()),
                ("k8s.ovn.org/owner".to_owned(), format!("{ns}/svc{i}")),
            ]),
        ),
    ])
}

fn insert(i: usize) -> Operation {
    Operation::Insert {
        table: "Load_Balancer".into(),
        row: lb_row(i),
        uuid_name: None,
    }
}

fn config(remote: String) -> ClientConfig {
    let mut c = ClientConfig::new(NB, vec![remote]);
    c.request_wait = Duration::from_secs(600);
    c.connect_timeout = Duration::from_secs(600);
    c.inactivity_probe = None;
    c.indexed_external_ids = vec!["k8s.ovn.org/owner".into()];
    c
}

/// Inserts through the client; with `monitor_all` false it monitors only NB_Global, so the
/// server does not echo the rows back (the raw path gets no echo either).
async fn via_client(
    remote: String,
    server: u32,
    n: usize,
    batch: usize,
    monitor_all: bool,
) -> Sample {
    let mut config = config(remote);
    if !monitor_all {
        config.monitor = MonitorSpec {
            tables: Some([("NB_Global".to_owned(), TableMonitor::default())].into()),
        };
    }
    let client = Client::connect(config).await.expect("client");
    // Rows are built before the clock starts, as the raw path's request is.
    let batches: Vec<Vec<Operation>> = (0..n)
        .step_by(batch)
        .map(|lo| (lo..(lo + batch).min(n)).map(insert).collect())
        .collect();
    let meter = Meter::start(server);
    let mut in_flight = Vec::new();
    for ops in batches {
        let c = client.clone();
        in_flight.push(tokio::spawn(async move { c.transact(ops).await }));
    }
    for t in in_flight {
        t.await.expect("task").expect("transaction");
    }
    let took = meter.stop();
    if monitor_all {
        let rows = client
            .replica()
            .table("Load_Balancer")
            .map_or(0, |t| t.len());
        assert_eq!(rows, n, "client replica row count");
    }
    took
}

async fn via_raw_socket(path: &str, server: u32, n: usize) -> Sample {
    let mut params = vec![serde_json::Value::String(NB.into())];
    params.extend((0..n).map(|i| insert(i).to_json()));
    let request = serde_json::to_vec(&serde_json::json!({
        "id": 1, "method": "transact", "params": params
    }))
    .expect("serialize");
    let mut s = UnixStream::connect(path).await.expect("connect");
    let mut decoder = FrameDecoder::default();
    let meter = Meter::start(server);
    s.write_all(&request).await.expect("write");
    let reply = loop {
        if let Some(m) = decoder.next_message().expect("decode") {
            if m["id"] == 1 {
                break m;
            }
            continue;
        }
        let got = s.read_buf(decoder.buffer()).await.expect("read");
        assert!(got > 0, "server closed");
    };
    let took = meter.stop();
    let results = reply["result"].as_array().expect("result array");
    assert!(
        results.iter().all(|r| r.get("error").is_none()),
        "raw transaction failed"
    );
    took
}

/// The server's share of a dump: a raw `monitor_cond` of Load_Balancer, read and parsed into a
/// `serde_json::Value` (no replica).
async fn raw_dump(path: &str, server: u32) -> Sample {
    let mut s = UnixStream::connect(path).await.expect("connect");
    let req = br#"{"id":1,"method":"monitor_cond","params":["OVN_Northbound","x",{"Load_Balancer":[{}]}]}"#;
    let mut decoder = FrameDecoder::default();
    let meter = Meter::start(server);
    s.write_all(req).await.expect("write");
    loop {
        if decoder.next_message().expect("decode").is_some() {
            return meter.stop();
        }
        let got = s.read_buf(decoder.buffer()).await.expect("read");
        assert!(got > 0, "server closed");
    }
}

async fn monitor_dump(remote: String, server: u32, n: usize) -> Sample {
    let meter = Meter::start(server);
    let client = Client::connect(config(remote)).await.expect("client");
    let took = meter.stop();
    let rows = client
        .replica()
        .table("Load_Balancer")
        .map_or(0, |t| t.len());
    assert_eq!(rows, n, "dumped row count");
    // Let the session task free the replica before the next measurement starts.
    drop(client);
    tokio::time::sleep(Duration::from_millis(500)).await;
    took
}

fn main() {
    let arg = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .or_else(|| std::env::var("NB_LOAD_SIZES").ok())
        .unwrap_or_else(|| "1000,10000,50000".into());
    let sizes: Vec<usize> = arg
        .split(',')
        .map(|s| s.trim().parse().expect("size"))
        .collect();
    let batch: usize = std::env::var("NB_LOAD_BATCH")
        .ok()
        .map(|b| b.parse().expect("NB_LOAD_BATCH"))
        .unwrap_or(1000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    for n in sizes {
        let mut lab = Lab::new().expect("lab");
        let nbs: Vec<_> = (0..3).map(|_| lab.start_nb().expect("nb")).collect();
        let server = |i: usize| {
            let s = lab.server(nbs[i]);
            (s.unix_remote(), s.pid().expect("running"))
        };
        let ((raw_remote, raw_pid), (quiet, quiet_pid), (monitored, mon_pid)) =
            (server(0), server(1), server(2));
        let path = |r: &str| r.trim_start_matches("unix:").to_owned();
        let samples = rt.block_on(async {
            // The dump reads the rows the quiet client wrote; the monitoring client runs last so
            // that freeing its replica does not overlap another measurement.
            let raw = via_raw_socket(&path(&raw_remote), raw_pid, n).await;
            let client = via_client(quiet.clone(), quiet_pid, n, batch, false).await;
            let dump = monitor_dump(quiet.clone(), quiet_pid, n).await;
            let server_dump = raw_dump(&path(&quiet), quiet_pid).await;
            let monitoring = via_client(monitored, mon_pid, n, batch, true).await;
            [
                ("raw: one pre-serialized transaction", raw),
                ("client: pipelined batches", client),
                ("client, monitoring the table", monitoring),
                ("fresh client: connect + full dump", dump),
                ("server's share: raw monitor_cond", server_dump),
            ]
        });
        println!("\n{n} Load_Balancer rows (batches of {batch})");
        println!(
            "{:<36} {:>8} {:>14} {:>14}",
            "", "wall(s)", "server cpu(s)", "client cpu(s)"
        );
        for (what, s) in &samples {
            println!(
                "{what:<36} {:>8.3} {:>14.2} {:>14.2}",
                s.wall, s.server_cpu, s.client_cpu
            );
        }
        let (raw, client, monitored) = (samples[0].1, samples[1].1, samples[2].1);
        println!(
            "client/raw wall {:.2} (server cpu {:.2}); monitoring client/raw wall {:.2} (server cpu {:.2})",
            client.wall / raw.wall,
            client.server_cpu / raw.server_cpu,
            monitored.wall / raw.wall,
            monitored.server_cpu / raw.server_cpu,
        );
    }
}
