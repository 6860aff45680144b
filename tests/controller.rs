//! `ovnkube-rs controller` as a process against a real NB (ovn-testlab) and the Kubernetes API
//! test server loaded with the seed's cluster: it converges to the rows `sync` would write,
//! follows API changes, writes nothing after a restart on a converged NB, and survives watch
//! expiry and bad input.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, DeleteParams, PostParams};
use kube_test_apiserver::{load_objects, Config as ApiConfig, TestApiServer};
use ovn_testlab::Lab;
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_ovnkube-rs");
const SEED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/seed/cluster.yaml");

/// A controller process, killed on drop.
struct Controller {
    child: Child,
    metrics: SocketAddr,
    log: PathBuf,
}

impl Drop for Controller {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

fn http_get(addr: SocketAddr, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

/// The value of an unlabelled metric.
fn metric(c: &Controller, name: &str) -> f64 {
    let text = http_get(c.metrics, "/metrics").unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(f64::NAN)
}

fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out waiting for {what}");
}

fn start_controller(dir: &Path, kubeconfig: &Path, nb: &str, tag: &str) -> Controller {
    let metrics = free_port();
    let log = dir.join(format!("controller-{tag}.log"));
    let child = Command::new(BIN)
        .args([
            "controller",
            "--init-master",
            "microshift-dev",
            "--gateway-mode",
            "local",
            "--disable-snat-multiple-gws",
            "--leader-election=false",
        ])
        .arg(format!("--k8s-kubeconfig={}", kubeconfig.display()))
        .arg(format!("--nb-address={nb}"))
        .arg(format!("--metrics-bind-address={metrics}"))
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("controller starts");
    let c = Controller {
        child,
        metrics,
        log: log.clone(),
    };
    wait_until(
        "the controller to be ready",
        Duration::from_secs(60),
        || http_get(metrics, "/readyz").is_some_and(|r| r.starts_with("HTTP/1.1 200")),
    );
    c
}

/// Every object of the four kinds as the API server now has them (with the uids it assigned),
/// written as a `kind: List` file that `sync` reads.
async fn dump_objects(client: &kube::Client, path: &Path) {
    let lp = kube::api::ListParams::default();
    let mut items = Vec::new();
    let json = |v: &dyn erased::Item| v.to_json();
    for n in Api::<Node>::all(client.clone()).list(&lp).await.unwrap() {
        items.push(json(&n));
    }
    for p in Api::<Pod>::all(client.clone()).list(&lp).await.unwrap() {
        items.push(json(&p));
    }
    for s in Api::<Service>::all(client.clone()).list(&lp).await.unwrap() {
        items.push(json(&s));
    }
    for e in Api::<EndpointSlice>::all(client.clone())
        .list(&lp)
        .await
        .unwrap()
    {
        items.push(json(&e));
    }
    let list = json!({"apiVersion": "v1", "kind": "List", "items": items});
    std::fs::write(path, serde_json::to_string(&list).unwrap()).unwrap();
}

mod erased {
    /// Any serializable object (so the four lists share one conversion).
    pub trait Item {
        fn to_json(&self) -> serde_json::Value;
    }
    impl<T: serde::Serialize> Item for T {
        fn to_json(&self) -> serde_json::Value {
            serde_json::to_value(self).unwrap()
        }
    }
}

fn sync_ops(nb: &str, objects: &Path) -> String {
    let o = Command::new(BIN)
        .arg("sync")
        .arg("-f")
        .arg(objects)
        .args(["--gateway-mode", "local", "--disable-snat-multiple-gws"])
        .arg(format!("--nb-address={nb}"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).trim().to_owned()
}

fn nbctl(lab: &Lab, nb: &str, args: &[&str]) -> String {
    lab.nbctl(nb, args).expect("ovn-nbctl runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controller_converges_follows_changes_and_restarts_without_writes() {
    let mut lab = Lab::new().unwrap();
    let nb_id = lab.start_nb().unwrap();
    let nb = lab.server(nb_id).unix_remote();
    let objects = load_objects(SEED, &std::fs::read_to_string(SEED).unwrap()).unwrap();
    let api = TestApiServer::start(ApiConfig {
        objects,
        ..ApiConfig::default()
    })
    .await
    .unwrap();
    let kubeconfig = lab.path().join("kubeconfig");
    api.write_kubeconfig(&kubeconfig).unwrap();
    let client = kube::Client::try_from(
        kube::Config::from_custom_kubeconfig(
            kube::config::Kubeconfig::read_from(&kubeconfig).unwrap(),
            &Default::default(),
        )
        .await
        .unwrap(),
    )
    .unwrap();

    // 1. Cold start on an empty NB: the rows `sync` would write for the same objects.
    let first = start_controller(lab.path(), &kubeconfig, &nb, "1");
    assert!(metric(&first, "ovnkube_controller_nb_operations_total") > 0.0);
    let dump = lab.path().join("objects.json");
    dump_objects(&client, &dump).await;
    assert_eq!(
        sync_ops(&nb, &dump),
        "0 operations",
        "controller and sync disagree; see {}",
        first.log.display()
    );

    // 2. A Service with an EndpointSlice appears, then goes away.
    let services: Api<Service> = Api::namespaced(client.clone(), "default");
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), "default");
    let svc: Service = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"type": "ClusterIP", "selector": {"app": "web"},
                 "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}]}
    }))
    .unwrap();
    let svc = services.create(&PostParams::default(), &svc).await.unwrap();
    let cluster_ip = svc.spec.unwrap().cluster_ip.unwrap();
    let slice: EndpointSlice = serde_json::from_value(json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "web-1", "namespace": "default",
                     "labels": {"kubernetes.io/service-name": "web"}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": ["10.42.0.13"], "conditions": {"ready": true}}],
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]
    }))
    .unwrap();
    slices.create(&PostParams::default(), &slice).await.unwrap();
    let vip = format!("{cluster_ip}:80");
    wait_until("the web LB", Duration::from_secs(10), || {
        nbctl(
            &lab,
            &nb,
            &[
                "--bare",
                "--columns=vips",
                "find",
                "Load_Balancer",
                "external_ids:k8s.ovn.org/owner=default/web",
            ],
        )
        .contains(&format!("{vip}=10.42.0.13:8080"))
    });
    let ls_lbs = nbctl(&lab, &nb, &["ls-lb-list", "microshift-dev"]);
    assert!(ls_lbs.contains(&vip), "{ls_lbs}");
    services
        .delete("web", &DeleteParams::default())
        .await
        .unwrap();
    wait_until("the web LB to go", Duration::from_secs(10), || {
        nbctl(
            &lab,
            &nb,
            &[
                "--bare",
                "--columns=name",
                "find",
                "Load_Balancer",
                "external_ids:k8s.ovn.org/owner=default/web",
            ],
        )
        .trim()
        .is_empty()
    });

    // 3. A pod without an address gets one (annotation first), then its LSP.
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let pod: Pod = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "pod-3", "namespace": "default"},
        "spec": {"nodeName": "microshift-dev", "containers": [{"name": "c", "image": "x"}]},
        "status": {"phase": "Pending"}
    }))
    .unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();
    let mut annotated = String::new();
    for _ in 0..200 {
        let p = pods.get("pod-3").await.unwrap();
        if let Some(a) = p
            .metadata
            .annotations
            .and_then(|a| a.get("k8s.ovn.org/pod-networks").cloned())
        {
            annotated = a;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let network: serde_json::Value =
        serde_json::from_str(&annotated).expect("pod-networks annotation");
    let ip = network["default"]["ip_address"]
        .as_str()
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    let taken = [
        "10.42.0.4",
        "10.42.0.5",
        "10.42.0.7",
        "10.42.0.12",
        "10.42.0.13",
    ];
    assert!(!taken.contains(&ip.as_str()), "{ip} was already in use");
    let mac = network["default"]["mac_address"]
        .as_str()
        .unwrap()
        .to_owned();
    wait_until("the pod-3 LSP", Duration::from_secs(10), || {
        nbctl(
            &lab,
            &nb,
            &[
                "--if-exists",
                "get",
                "Logical_Switch_Port",
                "default_pod-3",
                "addresses",
            ],
        )
        .contains(&format!("{mac} {ip}"))
    });
    pods.delete("pod-3", &DeleteParams::default())
        .await
        .unwrap();
    wait_until("the pod-3 LSP to go", Duration::from_secs(10), || {
        nbctl(
            &lab,
            &nb,
            &[
                "--bare",
                "--columns=name",
                "find",
                "Logical_Switch_Port",
                "name=default_pod-3",
            ],
        )
        .trim()
        .is_empty()
    });

    // 4. Bad input: an invalid Service is reported and the rest keeps flowing.
    let bad: Service = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "bad", "namespace": "default"},
        "spec": {"clusterIP": "fd00::10", "ports": [{"port": 80, "protocol": "TCP"}]}
    }))
    .unwrap();
    let _ = services.create(&PostParams::default(), &bad).await;

    // 5. Watch expiry: the controller relists and writes nothing new for unchanged objects.
    let before = metric(&first, "ovnkube_controller_nb_operations_total");
    api.expire_watches();
    api.close_watches();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        metric(&first, "ovnkube_controller_nb_operations_total"),
        before
    );
    drop(first);

    // 6. Restart on the converged NB: zero write operations.
    let second = start_controller(lab.path(), &kubeconfig, &nb, "2");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        metric(&second, "ovnkube_controller_nb_operations_total"),
        0.0,
        "restart rewrote rows; see {}",
        second.log.display()
    );

    // 7. The node goes away: every row of it leaves NB.
    let nodes: Api<Node> = Api::all(client.clone());
    nodes
        .delete("microshift-dev", &DeleteParams::default())
        .await
        .unwrap();
    wait_until("the node's rows to go", Duration::from_secs(10), || {
        let switches = nbctl(&lab, &nb, &["ls-list"]);
        let routers = nbctl(&lab, &nb, &["lr-list"]);
        !switches.contains("microshift-dev") && !routers.contains("GR_microshift-dev")
    });
    let routes = nbctl(&lab, &nb, &["lr-route-list", "ovn_cluster_router"]);
    assert!(!routes.contains("10.42.0.0/24"), "{routes}");
    let policies = nbctl(&lab, &nb, &["lr-policy-list", "ovn_cluster_router"]);
    assert!(!policies.contains("rtos-microshift-dev"), "{policies}");
    let log = std::fs::read_to_string(&second.log).unwrap_or_default();
    assert!(!log.contains("panicked"), "{log}");
}
