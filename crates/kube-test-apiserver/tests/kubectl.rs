//! The real `kubectl` binary (on PATH) against the test server, through a written kubeconfig.

use std::path::PathBuf;
use std::process::Command;

use kube_test_apiserver::{Config, TestApiServer};
use serde_json::Value;

/// A server on its own runtime plus a scratch directory holding its kubeconfig.
struct Cluster {
    server: TestApiServer,
    dir: PathBuf,
    kubeconfig: PathBuf,
    // Declared last: the runtime outlives the server that runs on it.
    _runtime: tokio::runtime::Runtime,
}

impl Cluster {
    fn start(test: &str) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let server = runtime
            .block_on(TestApiServer::start(Config::default()))
            .expect("server starts");
        let dir = std::env::temp_dir().join(format!("kta-kubectl-{}-{test}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("scratch dir");
        let kubeconfig = dir.join("kubeconfig");
        server
            .write_kubeconfig(&kubeconfig)
            .expect("kubeconfig written");
        Self {
            server,
            dir,
            kubeconfig,
            _runtime: runtime,
        }
    }

    fn run(&self, args: &[&str]) -> std::process::Output {
        Command::new("kubectl")
            .args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .env("HOME", &self.dir)
            .output()
            .expect("kubectl is on PATH")
    }

    /// Runs kubectl, asserting success; returns stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "kubectl {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8 output")
    }

    /// Runs kubectl, asserting failure; returns stderr.
    fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            !out.status.success(),
            "kubectl {args:?} unexpectedly succeeded"
        );
        String::from_utf8(out.stderr).expect("utf-8 output")
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.extend(["-o", "json"]);
        serde_json::from_str(&self.ok(&all)).expect("kubectl printed JSON")
    }

    fn file(&self, name: &str, text: &str) -> String {
        let path = self.dir.join(name);
        std::fs::write(&path, text).expect("manifest written");
        path.display().to_string()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // Best effort: a leftover scratch dir under /tmp is harmless.
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

const MANIFEST: &str = "\
apiVersion: v1
kind: Node
metadata:
  name: node-a
  labels: {kubernetes.io/hostname: node-a}
status:
  addresses: [{type: InternalIP, address: 192.168.1.10}]
---
apiVersion: v1
kind: Pod
metadata: {name: web-1, namespace: shop, labels: {app: web}}
spec:
  nodeName: node-a
  containers: [{name: c, image: nginx, ports: [{containerPort: 8080}]}]
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  type: NodePort
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: 8080, protocol: TCP}]
---
apiVersion: v1
kind: Service
metadata: {name: db, namespace: shop}
spec:
  selector: {app: db}
  ports: [{port: 5432, protocol: TCP}]
";

fn names(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .expect("a list")
        .iter()
        .map(|i| i["metadata"]["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn create_with_validation_get_apply_and_delete() {
    let c = Cluster::start("crud");
    c.ok(&["create", "namespace", "shop"]);
    let manifest = c.file("shop.yaml", MANIFEST);
    let created = c.ok(&["create", "-f", &manifest]);
    assert!(created.contains("service/web created"), "{created}");

    let services = c.json(&["get", "svc", "-n", "shop"]);
    assert_eq!(names(&services), ["db", "web"]);
    let web = &services["items"][1];
    let ip = web["spec"]["clusterIP"].as_str().unwrap();
    assert!(ip.starts_with("10.43.") && ip != "10.43.0.1", "{ip}");
    let node_port = web["spec"]["ports"][0]["nodePort"].as_u64().unwrap();
    assert!((30000..=32767).contains(&node_port), "{node_port}");
    assert_ne!(
        services["items"][0]["spec"]["clusterIP"],
        web["spec"]["clusterIP"]
    );
    assert!(services["items"][0]["spec"]["ports"][0]
        .get("nodePort")
        .is_none());
    // Human output comes from server-side Tables, with the columns of a real cluster.
    let table = c.ok(&["get", "svc", "-A"]);
    let web_row = table
        .lines()
        .find(|l| l.contains(" web "))
        .expect("a row for web");
    let cells: Vec<&str> = web_row.split_whitespace().collect();
    let port_cell = format!("80:{node_port}/TCP");
    assert_eq!(
        cells[..6],
        ["shop", "web", "NodePort", ip, "<none>", port_cell.as_str()],
        "{table}"
    );
    assert!(table.contains("10.43.0.1"), "{table}");
    assert_eq!(names(&c.json(&["get", "no"])), ["node-a"]);
    assert_eq!(names(&c.json(&["get", "po", "-n", "shop"])), ["web-1"]);

    let relabelled = MANIFEST.replace("labels: {app: web}}", "labels: {app: web, tier: front}}");
    let applied = c.ok(&[
        "apply",
        "--server-side=false",
        "-f",
        &c.file("v2.yaml", &relabelled),
    ]);
    assert!(applied.contains("pod/web-1 configured"), "{applied}");
    let pod = c.json(&["get", "pod", "web-1", "-n", "shop"]);
    assert_eq!(pod["metadata"]["labels"]["tier"], "front");
    let kept = c.json(&["get", "svc", "web", "-n", "shop"]);
    assert_eq!(
        kept["spec"]["ports"][0]["nodePort"].as_u64(),
        Some(node_port)
    );
    assert_eq!(kept["spec"]["clusterIP"].as_str(), Some(ip));

    c.ok(&["delete", "pod", "web-1", "-n", "shop"]);
    let missing = c.fails(&["get", "pod", "web-1", "-n", "shop"]);
    assert!(missing.contains("not found"), "{missing}");
    c.ok(&["delete", "namespace", "shop"]);
    assert_eq!(names(&c.json(&["get", "svc", "-A"])), ["kubernetes"]);
}

#[test]
fn generators_send_protobuf_and_allocation_conflicts_are_reported() {
    let c = Cluster::start("generators");
    c.ok(&["create", "namespace", "team-a"]);
    let ns = c.json(&["get", "ns", "team-a"]);
    assert_eq!(ns["status"]["phase"], "Active");
    c.ok(&[
        "create",
        "service",
        "nodeport",
        "np",
        "--tcp=80:8080",
        "-n",
        "team-a",
    ]);
    let np = c.json(&["get", "svc", "np", "-n", "team-a"]);
    assert_eq!(np["spec"]["type"], "NodePort");
    assert_eq!(np["spec"]["ports"][0]["targetPort"], 8080);
    let taken_port = np["spec"]["ports"][0]["nodePort"].as_u64().unwrap();
    let taken_ip = np["spec"]["clusterIP"].as_str().unwrap().to_string();

    let clash = format!(
        "apiVersion: v1\nkind: Service\nmetadata: {{name: clash, namespace: team-a}}\n\
         spec: {{clusterIP: {taken_ip}, ports: [{{port: 1}}]}}\n"
    );
    let err = c.fails(&["create", "-f", &c.file("ip.yaml", &clash)]);
    assert!(err.contains("provided IP is already allocated"), "{err}");
    let port_clash = format!(
        "apiVersion: v1\nkind: Service\nmetadata: {{name: clash, namespace: team-a}}\n\
         spec: {{type: NodePort, ports: [{{port: 1, nodePort: {taken_port}}}]}}\n"
    );
    let err = c.fails(&["create", "-f", &c.file("port.yaml", &port_clash)]);
    assert!(err.contains("provided port is already allocated"), "{err}");
}

#[test]
fn patch_annotate_label_describe_and_selectors() {
    let c = Cluster::start("patching");
    c.ok(&["create", "-f", &c.file("shop.yaml", MANIFEST)]);
    let ns = ["-n", "shop"];
    c.ok(&[&["annotate", "pod", "web-1", "owner=team-a"][..], &ns].concat());
    c.ok(&[&["label", "pod", "web-1", "tier=front"][..], &ns].concat());
    c.ok(&[
        &[
            "patch",
            "pod",
            "web-1",
            "-p",
            r#"{"spec":{"containers":[{"name":"c","image":"nginx:2"}]}}"#,
        ][..],
        &ns,
    ]
    .concat());
    c.ok(&[
        &[
            "patch",
            "pod",
            "web-1",
            "--type=merge",
            "-p",
            r#"{"metadata":{"annotations":{"m":"1"}}}"#,
        ][..],
        &ns,
    ]
    .concat());
    c.ok(&[
        &[
            "patch",
            "pod",
            "web-1",
            "--type=json",
            "-p",
            r#"[{"op":"remove","path":"/metadata/annotations/m"}]"#,
        ][..],
        &ns,
    ]
    .concat());
    c.ok(&[
        "patch",
        "node",
        "node-a",
        "--subresource=status",
        "-p",
        r#"{"status":{"capacity":{"cpu":"4"}}}"#,
    ]);
    c.ok(&[&["label", "pod", "web-1", "app-"][..], &ns].concat());

    let pod = c.json(&[&["get", "pod", "web-1"][..], &ns].concat());
    assert_eq!(pod["metadata"]["annotations"]["owner"], "team-a");
    assert!(pod["metadata"]["annotations"].get("m").is_none());
    assert_eq!(
        pod["metadata"]["labels"],
        serde_json::json!({"tier": "front"})
    );
    assert_eq!(pod["spec"]["containers"][0]["image"], "nginx:2");
    assert_eq!(
        pod["spec"]["containers"][0]["ports"][0]["containerPort"],
        8080
    );
    let node = c.json(&["get", "node", "node-a"]);
    assert_eq!(node["status"]["capacity"]["cpu"], "4");
    assert_eq!(node["status"]["addresses"][0]["address"], "192.168.1.10");

    let by_label = c.json(&["get", "pods", "-A", "-l", "tier in (front,back),!app"]);
    assert_eq!(names(&by_label), ["web-1"]);
    let by_field = c.json(&[
        "get",
        "pods",
        "-A",
        "--field-selector",
        "spec.nodeName=node-b",
    ]);
    assert_eq!(names(&by_field), Vec::<String>::new());

    let described = c.ok(&[&["describe", "pod", "web-1"][..], &ns].concat());
    assert!(
        described.contains("owner: team-a") && described.contains("nginx:2"),
        "{described}"
    );
    let described = c.ok(&["describe", "svc", "web", "-n", "shop"]);
    assert!(described.contains("NodePort"), "{described}");
    c.ok(&["describe", "node", "node-a"]);

    let seen = c.server.requests();
    let has = |verb: &str, resource: &str| {
        seen.iter()
            .any(|r| r.verb == verb && r.resource == resource)
    };
    assert!(has("patch", "pods") && has("patch", "nodes/status") && has("list", "events"));
}
