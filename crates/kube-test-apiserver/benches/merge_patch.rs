//! Merge-patch acknowledgement latency while watches are open.
//!
//! Starts the server, opens WATCHES raw HTTP watches on Pods, then sends merge patches to one Pod
//! over a keep-alive connection, first paced at RATE per second, then back to back, and prints
//! the achieved rate and latency percentiles; finally checks every watch saw every change.
//! Run: `cargo bench -p kube-test-apiserver --bench merge_patch`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kube_test_apiserver::{Config, TestApiServer};

const WATCHES: usize = 20;
const RATE: u64 = 1_000;
const PACED: u64 = 5_000;
const BURST: u64 = 5_000;

fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).expect("connect to the server");
    stream.set_nodelay(true).expect("TCP_NODELAY");
    stream
}

/// A keep-alive HTTP/1.1 client good for one request at a time with Content-Length replies.
struct Client {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Client {
    fn new(addr: SocketAddr) -> Self {
        let stream = connect(addr);
        Self {
            reader: BufReader::new(stream.try_clone().expect("clone socket")),
            writer: stream,
        }
    }

    /// Sends one request and reads the whole response; returns (status, body).
    fn request(
        &mut self,
        method: &str,
        path: &str,
        content_type: &str,
        body: &str,
    ) -> (u16, Vec<u8>) {
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        );
        self.writer
            .write_all(request.as_bytes())
            .expect("send request");
        let mut line = String::new();
        self.reader.read_line(&mut line).expect("status line");
        let status: u16 = line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .expect("status code");
        let mut length = 0usize;
        loop {
            line.clear();
            self.reader.read_line(&mut line).expect("header line");
            if line == "\r\n" {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().expect("content length");
                }
            }
        }
        let mut body = vec![0; length];
        self.reader.read_exact(&mut body).expect("response body");
        (status, body)
    }
}

/// Opens a watch from `rv` and counts the events it receives, forever (the thread is detached).
fn spawn_watch(addr: SocketAddr, rv: u64, seen: Arc<AtomicU64>) {
    std::thread::spawn(move || {
        let mut stream = connect(addr);
        let request = format!(
            "GET /api/v1/namespaces/default/pods?watch=true&resourceVersion={rv} HTTP/1.1\r\n\
             Host: 127.0.0.1\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).expect("send watch");
        let mut reader = BufReader::new(stream);
        let mut line = String::new();
        loop {
            line.clear();
            if reader.read_line(&mut line).expect("watch header") == 0 || line == "\r\n" {
                break;
            }
        }
        // Chunked body: one chunk per event line.
        loop {
            line.clear();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let size = usize::from_str_radix(line.trim(), 16).expect("chunk size");
            if size == 0 {
                return;
            }
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk).expect("chunk data");
            seen.fetch_add(
                chunk[..size].iter().filter(|b| **b == b'\n').count() as u64,
                Ordering::Relaxed,
            );
        }
    });
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// Sends `count` patches, paced at `rate` per second when given; returns the latencies.
fn run(
    client: &mut Client,
    first: u64,
    count: u64,
    rate: Option<u64>,
) -> (Vec<Duration>, Duration) {
    let started = Instant::now();
    let mut latencies = Vec::with_capacity(count as usize);
    for i in 0..count {
        if let Some(rate) = rate {
            let due = started + Duration::from_micros(i * 1_000_000 / rate);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
        }
        let body = format!(
            r#"{{"metadata":{{"annotations":{{"bench/counter":"{}"}}}}}}"#,
            first + i
        );
        let sent = Instant::now();
        let (status, _) = client.request(
            "PATCH",
            "/api/v1/namespaces/default/pods/bench",
            "application/merge-patch+json",
            &body,
        );
        latencies.push(sent.elapsed());
        assert_eq!(status, 200, "patch {i} failed");
    }
    let elapsed = started.elapsed();
    latencies.sort();
    (latencies, elapsed)
}

fn report(name: &str, latencies: &[Duration], elapsed: Duration) {
    println!(
        "{name}: {} patches in {:.2} s = {:.0}/s; latency p50 {:?} p90 {:?} p99 {:?} max {:?}",
        latencies.len(),
        elapsed.as_secs_f64(),
        latencies.len() as f64 / elapsed.as_secs_f64(),
        percentile(latencies, 0.50),
        percentile(latencies, 0.90),
        percentile(latencies, 0.99),
        latencies[latencies.len() - 1],
    );
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let server = runtime
        .block_on(TestApiServer::start(Config::default()))
        .expect("server starts");
    let addr = server.addr();
    let mut client = Client::new(addr);
    let pod = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"bench","labels":{"app":"bench"}},
                 "spec":{"nodeName":"node-a","containers":[{"name":"c","image":"busybox"}]}}"#;
    let (status, _) = client.request(
        "POST",
        "/api/v1/namespaces/default/pods",
        "application/json",
        pod,
    );
    assert_eq!(status, 201, "creating the bench pod");

    let start_rv = server.resource_version();
    let counters: Vec<Arc<AtomicU64>> = (0..WATCHES).map(|_| Arc::new(AtomicU64::new(0))).collect();
    for seen in &counters {
        spawn_watch(addr, start_rv, Arc::clone(seen));
    }
    std::thread::sleep(Duration::from_millis(200));

    let (paced, elapsed) = run(&mut client, 0, PACED, Some(RATE));
    report(
        &format!("paced at {RATE}/s with {WATCHES} watches"),
        &paced,
        elapsed,
    );
    let (burst, elapsed) = run(&mut client, PACED, BURST, None);
    report(
        &format!("back to back with {WATCHES} watches"),
        &burst,
        elapsed,
    );

    let expected = PACED + BURST;
    let deadline = Instant::now() + Duration::from_secs(30);
    while counters
        .iter()
        .any(|c| c.load(Ordering::Relaxed) < expected)
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(10));
    }
    let delivered: Vec<u64> = counters.iter().map(|c| c.load(Ordering::Relaxed)).collect();
    println!(
        "events delivered per watch (expected {expected}): min {:?} max {:?}",
        delivered.iter().min(),
        delivered.iter().max()
    );
    assert!(
        delivered.iter().all(|d| *d == expected),
        "every watch saw every patch"
    );
    let p99 = percentile(&paced, 0.99);
    println!(
        "target: 1000 patches/s with p99 <= 2 ms while 20 watches are open: {}",
        if p99 <= Duration::from_millis(2) {
            "met"
        } else {
            "NOT met"
        }
    );
}
