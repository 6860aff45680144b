//! The `kube-test-apiserver` binary: flags, loading, kubeconfig, debug endpoints, shutdown.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};

use serde_json::Value;

/// The server process, killed by PID if the test panics before stopping it.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        // Already exited when the test stopped it; nothing to do then.
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One HTTP/1.1 request on a fresh connection; returns (status, body).
fn http(addr: &str, method: &str, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).expect("connect");
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
    )
    .expect("send");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    let status = response[9..12].parse().expect("status code");
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

#[test]
fn loads_objects_writes_kubeconfig_and_records_requests() {
    let dir = std::env::temp_dir().join(format!("kta-binary-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let objects = dir.join("objects.yaml");
    std::fs::write(
        &objects,
        "apiVersion: v1\nkind: List\nitems:\n\
         - {apiVersion: v1, kind: Node, metadata: {name: node-a}}\n\
         - {apiVersion: v1, kind: Node, metadata: {name: node-b}}\n---\n\
         apiVersion: coordination.k8s.io/v1\nkind: Lease\nmetadata: {name: node-a, namespace: kube-node-lease}\n",
    )
    .unwrap();
    let (kubeconfig, records) = (dir.join("kubeconfig"), dir.join("requests.json"));
    let child = Command::new(env!("CARGO_BIN_EXE_kube-test-apiserver"))
        .args(["--port", "0", "--event-window", "2", "--load"])
        .arg(&objects)
        .arg("--kubeconfig-out")
        .arg(&kubeconfig)
        .arg("--requests-out")
        .arg(&records)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the binary starts");
    let mut server = Server(child);
    let mut first_line = String::new();
    BufReader::new(server.0.stdout.take().unwrap())
        .read_line(&mut first_line)
        .unwrap();
    let url = first_line
        .trim()
        .strip_prefix("listening on ")
        .expect("address line");
    let addr = url.strip_prefix("http://").unwrap().to_string();
    assert!(std::fs::read_to_string(&kubeconfig).unwrap().contains(url));

    let (status, body) = http(&addr, "GET", "/api/v1/nodes");
    assert_eq!(status, 200);
    let nodes: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(nodes["items"].as_array().unwrap().len(), 2);
    let rv: u64 = nodes["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let (status, _) = http(
        &addr,
        "GET",
        "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/node-a",
    );
    assert_eq!(status, 200);

    // With a window of two events, a watch from the start of history has expired: the
    // stream opens, then says 410 in an ERROR event.
    let (status, body) = http(
        &addr,
        "GET",
        "/api/v1/nodes?watch=1&resourceVersion=1&timeoutSeconds=1",
    );
    assert_eq!(status, 200);
    assert!(
        body.contains(r#""type":"ERROR""#) && body.contains(r#""code":410"#),
        "{body}"
    );
    let (_, body) = http(&addr, "POST", "/debug/expire-watches");
    assert!(
        body.contains(&format!(r#""resourceVersion":"{rv}""#)),
        "{body}"
    );
    let watch_from = format!(
        "/api/v1/nodes?watch=1&resourceVersion={}&timeoutSeconds=1",
        rv - 1
    );
    assert!(http(&addr, "GET", &watch_from).1.contains(r#""code":410"#));

    let pid = server.0.id().to_string();
    let stopped = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(stopped.success());
    assert!(server.0.wait().unwrap().success(), "clean exit on SIGTERM");
    let seen: Value = serde_json::from_str(&std::fs::read_to_string(&records).unwrap()).unwrap();
    let has = |verb: &str, group: &str, resource: &str| {
        seen.as_array()
            .unwrap()
            .iter()
            .any(|r| r["verb"] == verb && r["group"] == group && r["resource"] == resource)
    };
    assert!(has("list", "", "nodes") && has("watch", "", "nodes"));
    assert!(has("get", "coordination.k8s.io", "leases"));
    assert!(
        !has("create", "", "nodes"),
        "initial objects are not client requests"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
