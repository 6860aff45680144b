//! The multi-node e2e bed in Docker (`hack/e2e-docker.sh`, `e2e/docker/`): a central container
//! (NB, SB, ovn-northd, the Kubernetes API test server, `ovnkube-rs controller`), node containers
//! (OVS userspace datapath, ovn-controller, `ovnkube-rs node`) and an external container, all
//! running the host-built binaries. The test process reaches the API and NB over the bed's
//! Docker network and enters the containers' network namespaces (and the pods' namespaces inside
//! them) through /proc, so the probes of [`super::probe`] run unchanged. The bed is removed on
//! drop, also while unwinding from a failed assertion.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use serde_json::{json, Value};

use super::{cni_result, eventually, run_with_stdin, trace_last_output};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/hack/e2e-docker.sh");
/// Container names start with this (see hack/e2e-docker.sh).
pub const PREFIX: &str = "ovnkrs-e2e";
/// The central container's address (API on 6443, NB on 6641).
pub const CENTRAL_IP: &str = "172.31.240.10";
/// The external container's address (the nodes' default gateway).
pub const EXTERNAL_IP: &str = "172.31.240.100";
/// The nodes of a bed brought up with [`DockerBed::up`].
pub const NODES: [&str; 2] = ["node1", "node2"];
/// The node agent's CNI config in a node container (its readiness signal; /run is a tmpfs, so
/// it is gone when the container restarts).
const CNI_CONF: &str = "/run/cni/net.d/10-ovn-kubernetes.conf";
/// Where the driver script keeps the kubeconfig.
const STATE: &str = "/tmp/ovnkrs-e2e-docker";

/// One bed at a time on this machine (fixed names and subnet): tests take this lock first.
static BED: Mutex<()> = Mutex::new(());

/// A pod of the bed: a network namespace inside its node's container, wired by the CNI plugin.
#[derive(Debug, Clone)]
pub struct BedPod {
    /// Kubernetes namespace.
    pub namespace: String,
    /// Pod name.
    pub name: String,
    /// The node (container) it runs on.
    pub node: String,
    /// Its address, from the CNI result.
    pub ip: String,
    /// The namespace's name under the container's /run/netns.
    netns: String,
    container_id: String,
    uid: String,
}

/// A running bed; removed on drop.
pub struct DockerBed {
    /// The script's bring-up time (first `docker run` to every node agent ready).
    pub bringup: Duration,
    /// Its nodes: node1, node2, ...
    pub nodes: Vec<String>,
    bin_dir: PathBuf,
    pods: u32,
    _one_at_a_time: MutexGuard<'static, ()>,
}

/// The full container name of bed member `name` (`central`, `external`, `node1`, ...).
pub fn container(name: &str) -> String {
    format!("{PREFIX}-{name}")
}

fn must(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    check(cmd, &out);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn check(cmd: &Command, out: &Output) {
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl DockerBed {
    /// Brings the bed up with the binaries next to `bin` (`ovnkube-rs`; `kube-test-apiserver`
    /// is built beside it by `cargo test --workspace`).
    pub fn up(bin: &Path) -> DockerBed {
        Self::up_with_nodes(bin, NODES.len())
    }

    /// [`DockerBed::up`] with `count` nodes.
    pub fn up_with_nodes(bin: &Path, count: usize) -> DockerBed {
        let guard = BED.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let bin_dir = bin.parent().expect("the binary's directory").to_path_buf();
        let mut bed = DockerBed {
            bringup: Duration::ZERO,
            nodes: (1..=count).map(|i| format!("node{i}")).collect(),
            bin_dir,
            pods: 0,
            _one_at_a_time: guard,
        };
        let out = bed.script("up");
        let seconds = out
            .lines()
            .find_map(|l| l.strip_prefix("BRINGUP_SECONDS "))
            .and_then(|s| s.trim().parse::<f64>().ok())
            .unwrap_or_else(|| panic!("no bring-up time in the script's output: {out}"));
        bed.bringup = Duration::from_secs_f64(seconds);
        bed
    }

    fn script(&self, command: &str) -> String {
        let mut cmd = Command::new(SCRIPT);
        cmd.arg(command)
            .env("OVNKRS_E2E_NODES", self.nodes.len().to_string())
            .env("OVNKRS_E2E_BIN_DIR", &self.bin_dir)
            .env("OVNKRS_E2E_STATE", STATE);
        must(&mut cmd)
    }

    /// `docker exec` in bed member `name`; the raw output.
    pub fn try_exec(&self, name: &str, args: &[&str]) -> Output {
        Command::new("docker")
            .args(["exec", &container(name)])
            .args(args)
            .output()
            .expect("docker exec runs")
    }

    /// `docker exec` in bed member `name`; stdout (panics on failure).
    pub fn exec(&self, name: &str, args: &[&str]) -> String {
        let mut cmd = Command::new("docker");
        cmd.args(["exec", &container(name)]).args(args);
        must(&mut cmd)
    }

    /// `docker` itself (kill, start, ...); stdout (panics on failure).
    pub fn docker(&self, args: &[&str]) -> String {
        must(Command::new("docker").args(args))
    }

    /// `kubectl` against the bed's API server; stdout (panics on failure).
    pub fn kubectl(&self, args: &[&str], stdin: Option<&str>) -> String {
        let mut cmd = Command::new("kubectl");
        cmd.arg(format!("--kubeconfig={STATE}/kubeconfig"))
            .args(args);
        let out = run_with_stdin(&mut cmd, stdin.unwrap_or(""));
        check(&cmd, &out);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `kubectl apply` of one object.
    pub fn apply(&self, object: &Value) {
        self.kubectl(&["apply", "-f", "-"], Some(&object.to_string()));
    }

    /// `ovn-nbctl` against the bed's NB (TCP on the central container).
    pub fn nbctl(&self, args: &[&str]) -> String {
        let db = format!("--db=tcp:{CENTRAL_IP}:6641");
        must(
            Command::new("ovn-nbctl")
                .args([db.as_str(), "--timeout=30"])
                .args(args),
        )
    }

    /// `ovn-trace --minimal` (every ct step a new connection) from `datapath` for `flow` in
    /// the central container: the last `output("...")` port, or the trace when dropped.
    pub fn trace_output(&self, datapath: &str, flow: &str) -> Result<String, String> {
        let out = self.exec(
            "central",
            &[
                "ovn-trace",
                "--minimal",
                "--ct=new",
                "--ct=new",
                "--ct=new",
                "--ct=new",
                datapath,
                flow,
            ],
        );
        trace_last_output(&out).ok_or(out)
    }

    /// The PID of bed member `name`'s init process (as seen from the host).
    pub fn pid(&self, name: &str) -> u32 {
        self.docker(&["inspect", "-f", "{{.State.Pid}}", &container(name)])
            .trim()
            .parse()
            .expect("a running container has a PID")
    }

    /// The network namespace of bed member `name` itself (a node's host network).
    pub fn netns(&self, name: &str) -> String {
        format!("/proc/{}/ns/net", self.pid(name))
    }

    /// The network namespace of `pod`, for [`super::probe`].
    pub fn pod_netns(&self, pod: &BedPod) -> String {
        format!("/proc/{}/root/run/netns/{}", self.pid(&pod.node), pod.netns)
    }

    /// The Pod object a scheduler would have bound to `node`.
    pub fn pod_object(namespace: &str, name: &str, node: &str, app: &str) -> Value {
        json!({"apiVersion": "v1", "kind": "Pod",
               "metadata": {"namespace": namespace, "name": name, "labels": {"app": app}},
               "spec": {"nodeName": node,
                        "containers": [{"name": "c", "image": "registry.invalid/pause"}]}})
    }

    /// Creates `count` Pods `<prefix>-<i>` labelled `app` through the API in one request, spread
    /// round-robin over the nodes as a scheduler would: (name, node, uid) of each.
    pub fn create_pods(
        &self,
        prefix: &str,
        app: &str,
        count: usize,
    ) -> Vec<(String, String, String)> {
        let placed: Vec<(String, String)> = (0..count)
            .map(|i| {
                (
                    format!("{prefix}-{i}"),
                    self.nodes[i % self.nodes.len()].clone(),
                )
            })
            .collect();
        let items: Vec<Value> = placed
            .iter()
            .map(|(name, node)| Self::pod_object("default", name, node, app))
            .collect();
        let list = json!({"apiVersion": "v1", "kind": "List", "items": items});
        // kubectl's client-side validation of a List fails against the API test server.
        let uids = self.kubectl(
            &[
                "apply",
                "--validate=false",
                "-o",
                "jsonpath={.items[*].metadata.uid}",
                "-f",
                "-",
            ],
            Some(&list.to_string()),
        );
        let uids: Vec<&str> = uids.split_whitespace().collect();
        assert_eq!(uids.len(), count, "uids of the created pods: {uids:?}");
        placed
            .into_iter()
            .zip(uids)
            .map(|((name, node), uid)| (name, node, uid.to_string()))
            .collect()
    }

    /// [`DockerBed::create_pods`], then each started as the kubelet would; panics on failure.
    pub fn add_deployment(&mut self, prefix: &str, app: &str, count: usize) -> Vec<BedPod> {
        self.create_pods(prefix, app, count)
            .into_iter()
            .map(|(name, node, uid)| {
                self.start_pod("default", &name, &node, &uid)
                    .unwrap_or_else(|e| panic!("{e}"))
            })
            .collect()
    }

    /// Registers node `node` through the API as the kubelet does: labels, Ready, and its
    /// container's address on the bed's network as InternalIP.
    pub fn register_node(&self, node: &str) {
        let ip = self.address(node);
        self.apply(&json!({"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": node,
                         "labels": {"kubernetes.io/hostname": node, "kubernetes.io/os": "linux"}},
            "status": {"addresses": [{"type": "InternalIP", "address": ip},
                                     {"type": "Hostname", "address": node}],
                       "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}]}}));
    }

    /// The address of bed member `name` on the bed's network.
    pub fn address(&self, name: &str) -> String {
        let ip = self.docker(&[
            "inspect",
            "-f",
            &format!("{{{{(index .NetworkSettings.Networks \"{PREFIX}-net\").IPAddress}}}}"),
            &container(name),
        ]);
        ip.trim().to_owned()
    }

    /// The management address of `node` (its subnet's .2), from its `k8s.ovn.org/node-subnets`.
    pub fn mgmt_ip(&self, node: &str) -> String {
        let subnets = self.kubectl(
            &[
                "get",
                "node",
                node,
                "-o",
                r"jsonpath={.metadata.annotations.k8s\.ovn\.org/node-subnets}",
            ],
            None,
        );
        let subnets: Value = serde_json::from_str(&subnets).expect("node-subnets JSON");
        let subnet = subnets["default"][0].as_str().expect("an IPv4 subnet");
        let base: Ipv4Addr = subnet
            .split('/')
            .next()
            .unwrap_or_default()
            .parse()
            .expect("IPv4");
        Ipv4Addr::from(u32::from(base) + 2).to_string()
    }

    /// Runs a command inside `pod`'s network namespace in its node's container.
    pub fn pod_exec(&self, pod: &BedPod, args: &[&str]) -> Output {
        let mut all = vec!["ip", "netns", "exec", &pod.netns];
        all.extend_from_slice(args);
        self.try_exec(&pod.node, &all)
    }

    /// The NB rows a node owns: switches, routers and ports whose names mention `node`, and
    /// the cluster router's routes and policies through its management address `mgmt_ip`.
    pub fn node_rows(&self, node: &str, mgmt_ip: &str) -> Vec<String> {
        let mut rows: Vec<String> = [
            "Logical_Switch",
            "Logical_Router",
            "Logical_Switch_Port",
            "Logical_Router_Port",
        ]
        .iter()
        .flat_map(|table| {
            self.nbctl(&["--bare", "--columns=name", "list", table])
                .lines()
                .filter(|name| name.contains(node))
                .map(|name| format!("{table} {name}"))
                .collect::<Vec<_>>()
        })
        .collect();
        let routing = [
            self.nbctl(&["lr-route-list", "ovn_cluster_router"]),
            self.nbctl(&["lr-policy-list", "ovn_cluster_router"]),
        ];
        rows.extend(
            routing
                .iter()
                .flat_map(|text| text.lines())
                .filter(|line| line.split_whitespace().any(|w| w == mgmt_ip))
                .map(|line| line.trim().to_string()),
        );
        rows
    }

    /// Pings every address in `ips` from `pod` (one process in its node's container; each
    /// address gets up to `seconds` for its first reply): the addresses that never answered.
    pub fn unreachable_from(&self, pod: &BedPod, ips: &[&str], seconds: u32) -> Vec<String> {
        let script = format!(
            "for ip in {}; do ip netns exec {} ping -n -q -c 1 -w {seconds} $ip >/dev/null || echo $ip; done",
            ips.join(" "),
            pod.netns
        );
        self.exec(&pod.node, &["sh", "-c", &script])
            .split_whitespace()
            .map(String::from)
            .collect()
    }

    /// Creates the Pod through the API and starts it on `node` as the kubelet would
    /// ([`DockerBed::start_pod`]).
    pub fn add_pod(&mut self, namespace: &str, name: &str, node: &str, app: &str) -> BedPod {
        let pod = Self::pod_object(namespace, name, node, app).to_string();
        let uid = self.kubectl(
            &["apply", "-o", "jsonpath={.metadata.uid}", "-f", "-"],
            Some(&pod),
        );
        self.start_pod(namespace, name, node, &uid)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// The sandbox of an existing Pod on `node`: a network namespace in the node's container,
    /// CNI ADD run as a container runtime would (CNI env, the agent's config on stdin), then tx
    /// checksum offload off in the pod (OVS 3.1's userspace tunnels drop offloaded TCP).
    pub fn start_pod(
        &mut self,
        namespace: &str,
        name: &str,
        node: &str,
        uid: &str,
    ) -> Result<BedPod, String> {
        self.pods += 1;
        let netns = format!("pod{}", self.pods);
        let mut pod = BedPod {
            namespace: namespace.into(),
            name: name.into(),
            node: node.into(),
            ip: String::new(),
            container_id: format!("{:08}{}", self.pods, "c".repeat(56)),
            uid: uid.into(),
            netns,
        };
        self.exec(node, &["ip", "netns", "add", &pod.netns]);
        let result = self.cni("ADD", &pod)?;
        let cidr = result["ips"][0]["address"]
            .as_str()
            .ok_or_else(|| format!("CNI ADD {namespace}/{name}: no address in {result}"))?;
        pod.ip = cidr.split('/').next().unwrap_or_default().to_string();
        self.exec(
            node,
            &[
                "ip", "netns", "exec", &pod.netns, "ethtool", "-K", "eth0", "tx", "off",
            ],
        );
        Ok(pod)
    }

    /// Runs the CNI plugin in `pod`'s node container with `command`: the parsed result, or
    /// the plugin's output on failure.
    pub fn cni(&self, command: &str, pod: &BedPod) -> Result<Value, String> {
        let conf = self.exec(&pod.node, &["cat", CNI_CONF]);
        let args = format!(
            "IgnoreUnknown=1;K8S_POD_NAMESPACE={};K8S_POD_NAME={};K8S_POD_INFRA_CONTAINER_ID={};K8S_POD_UID={}",
            pod.namespace, pod.name, pod.container_id, pod.uid
        );
        let mut cmd = Command::new("docker");
        cmd.args(["exec", "-i"])
            .args(["-e", &format!("CNI_COMMAND={command}")])
            .args(["-e", &format!("CNI_CONTAINERID={}", pod.container_id)])
            .args(["-e", &format!("CNI_NETNS=/run/netns/{}", pod.netns)])
            .args(["-e", "CNI_IFNAME=eth0"])
            .args(["-e", &format!("CNI_ARGS={args}")])
            .args(["-e", "CNI_PATH=/opt/cni/bin"])
            .arg(container(&pod.node))
            .args(["/opt/ovnkube-rs/ovnkube-rs", "cni"]);
        let out = run_with_stdin(&mut cmd, &conf);
        let who = format!("{}/{} on {}", pod.namespace, pod.name, pod.node);
        cni_result(command, &who, &out)
    }

    /// A selector-less Service (the test owns its EndpointSlice) with one TCP port 80 → 8080.
    pub fn service(name: &str, spec: Value) -> Value {
        let mut spec = spec;
        spec["ports"] =
            json!([{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080}]);
        json!({"apiVersion": "v1", "kind": "Service",
               "metadata": {"namespace": "default", "name": name}, "spec": spec})
    }

    /// The EndpointSlice of Service `service`: `(pod, ready)` endpoints on port 8080.
    pub fn endpoint_slice(service: &str, endpoints: &[(&BedPod, bool)]) -> Value {
        let endpoints: Vec<Value> = endpoints
            .iter()
            .map(|(pod, ready)| {
                json!({"addresses": [pod.ip], "nodeName": pod.node,
                       "conditions": {"ready": ready, "serving": ready, "terminating": false},
                       "targetRef": {"kind": "Pod", "namespace": pod.namespace, "name": pod.name}})
            })
            .collect();
        json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
               "metadata": {"namespace": "default", "name": format!("{service}-1"),
                            "labels": {"kubernetes.io/service-name": service}},
               "addressType": "IPv4", "endpoints": endpoints,
               "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]})
    }

    /// A field of Service `name` (jsonpath).
    pub fn service_field(&self, name: &str, path: &str) -> String {
        self.kubectl(
            &["get", "service", name, "-o", &format!("jsonpath={path}")],
            None,
        )
    }

    /// Sum of OVS coverage counter `counter` (total since start) in node `node`'s ovs-vswitchd.
    pub fn coverage(&self, node: &str, counter: &str) -> u64 {
        let text = self.exec(node, &["ovs-appctl", "coverage/read-counter", counter]);
        text.trim().parse().unwrap_or(0)
    }

    /// Waits until node `node`'s agent has written its CNI config (it is ready for pods).
    pub fn wait_node_ready(&self, node: &str, timeout: Duration) {
        eventually(&format!("{node}'s CNI config"), timeout, || {
            self.try_exec(node, &["test", "-e", CNI_CONF])
                .status
                .success()
        });
    }
}

impl Drop for DockerBed {
    fn drop(&mut self) {
        if std::env::var_os("OVNKRS_E2E_KEEP").is_some() {
            return;
        }
        let _ = Command::new(SCRIPT)
            .arg("down")
            .env("OVNKRS_E2E_STATE", STATE)
            .output();
    }
}
