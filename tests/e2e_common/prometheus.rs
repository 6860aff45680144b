//! A real Prometheus (Debian's `prometheus`) scraping the ovnkube-rs daemons with the jobs of
//! deploy/monitoring/prometheus.yml, and the Grafana dashboard's queries
//! (deploy/monitoring/ovnkube-rs-dashboard.json, read from the file) run against it. Any e2e bed
//! can use it: give it the daemons' metrics addresses and, if they are only reachable there, the
//! network namespace to run in.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::netns_api::KillOnDrop;

const MONITORING: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/monitoring");
/// The scrape config's jobs (and the dashboard's): the controller and the node agents.
pub const CONTROLLER_JOB: &str = "ovnkube-controller";
/// See [`CONTROLLER_JOB`].
pub const NODE_JOB: &str = "ovnkube-node";
/// What the dashboard's `$__rate_interval` stands for here (Grafana derives it from the scrape
/// interval; one second here).
const RATE_INTERVAL: &str = "30s";

/// A Prometheus process under `dir`, killed by PID on drop.
pub struct Prometheus {
    _process: KillOnDrop,
    netns: Option<String>,
    listen: String,
    /// Its data, config and log.
    pub dir: PathBuf,
}

/// One query of the dashboard.
#[derive(Debug, Clone)]
pub struct DashboardQuery {
    /// The panel's title.
    pub panel: String,
    /// PromQL as Prometheus' API takes it.
    pub expr: String,
}

/// The scrape config: deploy/monitoring/prometheus.yml (checked with `promtool`), its jobs
/// scraping `targets` (job name → addresses) every second instead of discovering them.
fn scrape_config(targets: &[(&str, Vec<String>)]) -> String {
    let deployed = format!("{MONITORING}/prometheus.yml");
    let check = Command::new("promtool")
        .args(["check", "config", &deployed])
        .output()
        .expect("promtool runs (apt-get install prometheus)");
    assert!(
        check.status.success(),
        "{deployed}: {}",
        String::from_utf8_lossy(&check.stdout)
    );
    let text = std::fs::read_to_string(&deployed).unwrap();
    let deployed: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    let jobs: Vec<&str> = deployed["scrape_configs"]
        .as_sequence()
        .expect("scrape_configs")
        .iter()
        .map(|j| j["job_name"].as_str().expect("job_name"))
        .collect();
    let given: Vec<&str> = targets.iter().map(|(job, _)| *job).collect();
    assert_eq!(jobs, given, "the deployed jobs are the ones scraped here");
    let scrape_configs: Vec<Value> = targets
        .iter()
        .map(|(job, addresses)| {
            serde_json::json!({"job_name": job, "static_configs": [{"targets": addresses}]})
        })
        .collect();
    let config = serde_json::json!({
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": scrape_configs,
    });
    // JSON is YAML.
    config.to_string()
}

/// `program`, run inside `netns` when given.
fn command_in(netns: Option<&str>, program: &str) -> Command {
    match netns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns, program]);
            c
        }
        None => Command::new(program),
    }
}

impl Prometheus {
    /// Starts Prometheus listening on `listen` (host:port) under `dir`, inside `netns` when
    /// given, scraping `targets` (job name → addresses); waits until it is ready.
    pub fn start(
        dir: &Path,
        netns: Option<&str>,
        listen: &str,
        targets: &[(&str, Vec<String>)],
    ) -> Prometheus {
        std::fs::create_dir_all(dir.join("data")).unwrap();
        let config = dir.join("prometheus.yml");
        std::fs::write(&config, scrape_config(targets)).unwrap();
        let log = File::create(dir.join("prometheus.log")).unwrap();
        let child = command_in(netns, "prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address={listen}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("prometheus starts (apt-get install prometheus)");
        let prometheus = Prometheus {
            _process: KillOnDrop(child),
            netns: netns.map(String::from),
            listen: listen.to_owned(),
            dir: dir.to_path_buf(),
        };
        let start = Instant::now();
        while prometheus.get("/-/ready", &[]).is_none() {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "Prometheus not ready; see {}/prometheus.log",
                dir.display()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        prometheus
    }

    /// GET `path` with URL-encoded `params` (curl, in the namespace): the body, None on failure.
    fn get(&self, path: &str, params: &[(&str, &str)]) -> Option<String> {
        let mut cmd = command_in(self.netns.as_deref(), "curl");
        cmd.args(["-sf", "--max-time", "10", "--get"]);
        for (k, v) in params {
            cmd.arg("--data-urlencode").arg(format!("{k}={v}"));
        }
        let out = cmd
            .arg(format!("http://{}{path}", self.listen))
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Runs an instant query: the result vector, or why there is none.
    pub fn query(&self, expr: &str) -> Result<Vec<Value>, String> {
        let body = self
            .get("/api/v1/query", &[("query", expr)])
            .ok_or_else(|| format!("query failed: {expr}"))?;
        let reply: Value = serde_json::from_str(&body).map_err(|e| format!("{e}: {body}"))?;
        if reply["status"] != "success" {
            return Err(body);
        }
        Ok(reply["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default())
    }

    /// Waits until `expr` returns data.
    pub fn wait_for_data(&self, expr: &str, timeout: Duration) {
        let start = Instant::now();
        while !self.query(expr).is_ok_and(|r| !r.is_empty()) {
            assert!(
                start.elapsed() < timeout,
                "no data for {expr}; see {}",
                self.dir.display()
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// The dashboard's queries that return no data (with Prometheus' answer), retried for up to
    /// `within` while scrapes accumulate.
    pub fn dashboard_queries_without_data(&self, within: Duration) -> Vec<String> {
        let queries = dashboard_queries();
        let start = Instant::now();
        loop {
            let empty: Vec<String> = queries
                .iter()
                .filter_map(|q| match self.query(&q.expr) {
                    Ok(result) if !result.is_empty() => None,
                    Ok(_) => Some(format!("{}: {} -> no data", q.panel, q.expr)),
                    Err(e) => Some(format!("{}: {} -> {e}", q.panel, q.expr)),
                })
                .collect();
            if empty.is_empty() || start.elapsed() > within {
                return empty;
            }
            std::thread::sleep(Duration::from_secs(1));
        }
    }
}

/// Every query of the dashboard, Grafana's `$__rate_interval` replaced.
pub fn dashboard_queries() -> Vec<DashboardQuery> {
    let path = format!("{MONITORING}/ovnkube-rs-dashboard.json");
    let dashboard: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap())
        .unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut queries = Vec::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"].as_str().expect("a target's expr");
            assert!(
                !expr.replace("$__rate_interval", "").contains('$'),
                "{path}: only $__rate_interval is substituted: {expr}"
            );
            queries.push(DashboardQuery {
                panel: panel["title"].as_str().unwrap_or_default().to_owned(),
                expr: expr.replace("$__rate_interval", RATE_INTERVAL),
            });
        }
    }
    queries
}
