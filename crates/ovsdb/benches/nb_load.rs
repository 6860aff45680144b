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

fn lb_row(i: usize) -> Row {
    let ns = format!("ns{}", i % 100);
    Row::from([
        (
            "name".into(),
            Datum::scalar(format!("Service_{ns}/svc{i}_TCP_cluster")),
        ),
        ("protocol".into(), Datum::scalar("tcp")),
        (
            "vips".into(),
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
            "external_ids".into(),
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
async fn via_client(remote: String, n: usize, batch: usize, monitor_all: bool) -> Duration {
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
    let start = Instant::now();
    let mut in_flight = Vec::new();
    for ops in batches {
        let c = client.clone();
        in_flight.push(tokio::spawn(async move { c.transact(ops).await }));
    }
    for t in in_flight {
        t.await.expect("task").expect("transaction");
    }
    let took = start.elapsed();
    if monitor_all {
        let rows = client
            .replica()
            .table("Load_Balancer")
            .map_or(0, |t| t.len());
        assert_eq!(rows, n, "client replica row count");
    }
    took
}

async fn via_raw_socket(path: &str, n: usize) -> Duration {
    let mut params = vec![serde_json::Value::String(NB.into())];
    params.extend((0..n).map(|i| insert(i).to_json()));
    let request = serde_json::to_vec(&serde_json::json!({
        "id": 1, "method": "transact", "params": params
    }))
    .expect("serialize");
    let mut s = UnixStream::connect(path).await.expect("connect");
    let mut decoder = FrameDecoder::default();
    let start = Instant::now();
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
    let took = start.elapsed();
    let results = reply["result"].as_array().expect("result array");
    assert!(
        results.iter().all(|r| r.get("error").is_none()),
        "raw transaction failed"
    );
    took
}

/// The server's share of a dump: a raw `monitor_cond` of Load_Balancer, read and parsed into a
/// `serde_json::Value` (no replica).
async fn raw_dump(path: &str) -> Duration {
    let mut s = UnixStream::connect(path).await.expect("connect");
    let req = br#"{"id":1,"method":"monitor_cond","params":["OVN_Northbound","x",{"Load_Balancer":[{}]}]}"#;
    let mut decoder = FrameDecoder::default();
    let start = Instant::now();
    s.write_all(req).await.expect("write");
    loop {
        if decoder.next_message().expect("decode").is_some() {
            return start.elapsed();
        }
        let got = s.read_buf(decoder.buffer()).await.expect("read");
        assert!(got > 0, "server closed");
    }
}

async fn monitor_dump(remote: String, n: usize) -> Duration {
    let start = Instant::now();
    let client = Client::connect(config(remote)).await.expect("client");
    let took = start.elapsed();
    let rows = client
        .replica()
        .table("Load_Balancer")
        .map_or(0, |t| t.len());
    assert_eq!(rows, n, "dumped row count");
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
    println!("rows\traw(s)\tclient(s)\tratio\tclient+monitor(s)\tratio\tdump(s)\tserver dump(s)");
    for n in sizes {
        let mut lab = Lab::new().expect("lab");
        let nbs: Vec<_> = (0..3).map(|_| lab.start_nb().expect("nb")).collect();
        let remote = |i: usize| lab.server(nbs[i]).unix_remote();
        let (raw_sock, quiet, monitored) = (remote(0), remote(1), remote(2));
        let r = rt.block_on(async {
            let raw = via_raw_socket(raw_sock.trim_start_matches("unix:"), n).await;
            let client = via_client(quiet, n, batch, false).await;
            let client_monitored = via_client(monitored.clone(), n, batch, true).await;
            let dump = monitor_dump(monitored.clone(), n).await;
            let server_dump = raw_dump(monitored.trim_start_matches("unix:")).await;
            [raw, client, client_monitored, dump, server_dump].map(|d| d.as_secs_f64())
        });
        println!(
            "{n}\t{:.3}\t{:.3}\t{:.2}\t{:.3}\t{:.2}\t{:.3}\t{:.3}",
            r[0],
            r[1],
            r[1] / r[0],
            r[2],
            r[2] / r[0],
            r[3],
            r[4]
        );
    }
}
