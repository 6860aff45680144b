//! Harness shared by the controller integration tests: the API test server loaded with the
//! seed's cluster, `ovnkube-rs controller` as a child process (killed on drop), its metrics, and
//! `ovnkube-rs sync` against a dump of the API objects as the convergence oracle.

// Each test binary compiles this module on its own and uses only part of it.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, ListParams};
use kube_test_apiserver::{load_objects, Config as ApiConfig, TestApiServer};
use ovn_testlab::Lab;
use serde_json::json;

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_ovnkube-rs");
/// The seed's single-node cluster.
pub const SEED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/seed/cluster.yaml");
/// The seed's node: every pod the tests create runs there.
pub const NODE: &str = "microshift-dev";
/// The ovnkube flags of MicroShift that change NB rows (shared by `controller` and `sync`).
const OVNKUBE_FLAGS: [&str; 3] = ["--gateway-mode", "local", "--disable-snat-multiple-gws"];

/// A controller process, SIGKILLed on drop.
pub struct Controller {
    child: Child,
    /// Its `/metrics`, `/healthz`, `/readyz` listener.
    pub metrics: SocketAddr,
    /// Its stderr.
    pub log: PathBuf,
}

impl Controller {
    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL, then reap.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// True once the process has exited.
    pub fn has_exited(&mut self) -> bool {
        self.child.try_wait().ok().flatten().is_some()
    }

    /// The value of an unlabelled metric (NaN when unreadable).
    pub fn metric(&self, name: &str) -> f64 {
        let text = http_get(self.metrics, "/metrics").unwrap_or_default();
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(f64::NAN)
    }

    /// The NB write operations sent so far.
    pub fn nb_operations(&self) -> f64 {
        self.metric("ovnkube_controller_nb_operations_total")
    }

    /// The HTTP status of `/readyz` (None while nothing answers).
    pub fn readyz(&self) -> Option<u16> {
        let reply = http_get(self.metrics, "/readyz")?;
        reply.split_whitespace().nth(1)?.parse().ok()
    }

    /// Waits for `/readyz` to answer 200.
    pub async fn wait_ready(&self, timeout: Duration) {
        let log = self.log.display().to_string();
        wait_until(
            &format!("the controller to be ready ({log})"),
            timeout,
            || self.readyz() == Some(200),
        )
        .await;
    }

    /// Waits until the controller has nothing queued and sends nothing more for a while, so a
    /// `sync` run afterwards cannot race with it.
    pub async fn wait_quiet(&self, timeout: Duration) {
        let mut last = (f64::NAN, Instant::now());
        wait_until(
            &format!("the controller to go quiet ({})", self.log.display()),
            timeout,
            || {
                let ops = self.nb_operations();
                let depth = self.metric("ovnkube_controller_workqueue_depth");
                if ops != last.0 || depth != 0.0 {
                    last = (ops, Instant::now());
                    return false;
                }
                last.1.elapsed() > Duration::from_millis(700)
            },
        )
        .await;
    }

    /// Its stderr so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Controller {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A free TCP port on loopback.
pub fn free_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

fn http_get(addr: SocketAddr, path: &str) -> Option<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

/// Polls `f` every 50 ms until it holds; panics naming `what` after `timeout`.
pub async fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out after {timeout:?} waiting for {what}");
}

/// The lab, the API test server loaded with the seed, and a client of it.
pub struct Cluster {
    pub lab: Lab,
    pub api: TestApiServer,
    pub kubeconfig: PathBuf,
    pub client: kube::Client,
    spawned: AtomicUsize,
}

impl Cluster {
    /// Starts the API test server with the seed's objects; the NB servers live in `lab`.
    pub async fn with_seed(lab: Lab) -> Cluster {
        let objects = load_objects(SEED, &std::fs::read_to_string(SEED).unwrap()).unwrap();
        let api = TestApiServer::start(ApiConfig {
            objects,
            ..ApiConfig::default()
        })
        .await
        .unwrap();
        let kubeconfig = lab.path().join("kubeconfig");
        api.write_kubeconfig(&kubeconfig).unwrap();
        let config = kube::Config::from_custom_kubeconfig(
            kube::config::Kubeconfig::read_from(&kubeconfig).unwrap(),
            &Default::default(),
        )
        .await
        .unwrap();
        Cluster {
            lab,
            api,
            kubeconfig,
            client: kube::Client::try_from(config).unwrap(),
            spawned: AtomicUsize::new(0),
        }
    }

    /// Starts a controller against `nb` with MicroShift's flags plus `extra`; does not wait.
    /// Its log is `controller-<tag>-<n>.log` in the lab directory.
    pub fn spawn_controller(&self, nb: &str, tag: &str, extra: &[&str]) -> Controller {
        let metrics = free_port();
        let n = self.spawned.fetch_add(1, Ordering::Relaxed);
        let log = self.lab.path().join(format!("controller-{tag}-{n}.log"));
        let child = Command::new(BIN)
            .args(["controller", "--init-master", NODE])
            .args(OVNKUBE_FLAGS)
            .args(extra)
            .arg(format!("--k8s-kubeconfig={}", self.kubeconfig.display()))
            .arg(format!("--nb-address={nb}"))
            .arg(format!("--metrics-bind-address={metrics}"))
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("controller starts");
        Controller {
            child,
            metrics,
            log,
        }
    }

    /// Starts a controller without leader election and waits until it is ready.
    pub async fn start_controller(&self, nb: &str, tag: &str) -> Controller {
        let c = self.spawn_controller(nb, tag, &["--leader-election=false"]);
        c.wait_ready(Duration::from_secs(60)).await;
        c
    }

    /// Every object of the four kinds as the API server now has them (with the uids it
    /// assigned), written as a `kind: List` file that `sync` reads.
    pub async fn dump_objects(&self, path: &Path) {
        let lp = ListParams::default();
        let c = &self.client;
        let mut items = Vec::new();
        let value = |v: &dyn erased::Item| v.to_json();
        for n in Api::<Node>::all(c.clone()).list(&lp).await.unwrap() {
            items.push(value(&n));
        }
        for p in Api::<Pod>::all(c.clone()).list(&lp).await.unwrap() {
            items.push(value(&p));
        }
        for s in Api::<Service>::all(c.clone()).list(&lp).await.unwrap() {
            items.push(value(&s));
        }
        for e in Api::<EndpointSlice>::all(c.clone())
            .list(&lp)
            .await
            .unwrap()
        {
            items.push(value(&e));
        }
        let list = json!({"apiVersion": "v1", "kind": "List", "items": items});
        std::fs::write(path, serde_json::to_string(&list).unwrap()).unwrap();
    }

    /// Dumps the API objects and runs `sync` with them against `nb`: its output, which is
    /// "0 operations" when the NB already holds exactly the rows of those objects.
    pub async fn sync_against_api(&self, nb: &str) -> String {
        let dump = self.lab.path().join("objects.json");
        self.dump_objects(&dump).await;
        sync_ops(nb, &dump)
    }

    /// `ovn-nbctl --db=<nb> <args>`.
    pub fn nbctl(&self, nb: &str, args: &[&str]) -> String {
        self.lab.nbctl(nb, args).expect("ovn-nbctl runs")
    }
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

/// `ovnkube-rs sync -f <objects> --nb-address <nb>`: what it printed.
pub fn sync_ops(nb: &str, objects: &Path) -> String {
    let o = Command::new(BIN)
        .arg("sync")
        .arg("-f")
        .arg(objects)
        .args(OVNKUBE_FLAGS)
        .arg(format!("--nb-address={nb}"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).trim().to_owned()
}
