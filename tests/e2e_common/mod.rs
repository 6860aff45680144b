//! The e2e lab: the seed's single-node MicroShift cluster on one machine, driven by the real
//! processes. A node namespace ([`NodeLab`], uplink layout: br-ex with 192.168.122.14/24, a veth
//! to an "external" namespace at 192.168.122.1) holds OVS (userspace datapath), ovn-controller,
//! the Kubernetes API test server (seed cluster), `ovnkube-rs controller` and `ovnkube-rs node`;
//! NB/SB and ovn-northd run on unix sockets. Pods are namespaces wired by `ovnkube-rs cni`, run
//! as a container runtime would. Everything is stopped by PID / deleted on drop.

// Shared by several test binaries; each uses a different part of it.
#![allow(dead_code)]

pub mod docker;
pub mod netns_api;
pub mod probe;
pub mod prometheus;
pub mod seed;
mod stdin;

pub use stdin::run_with_stdin;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use kube_test_apiserver::{load_objects, RequestRecord};
use ovnkube_hostnet::nodelab::{Layout, NodeLab};
use serde_json::Value;

use netns_api::{KillOnDrop as Daemon, NetnsApiServer as ApiServer};

const SEED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/seed/cluster.yaml");
/// The seed's node.
pub const NODE: &str = "microshift-dev";
/// Where the lab's controller serves `/metrics` (on the node namespace's loopback).
pub const CONTROLLER_METRICS: &str = "127.0.0.1:29409";
/// Where the lab's node agent serves `/metrics`.
pub const NODE_METRICS: &str = "127.0.0.1:29410";

/// p50 and p99 of `samples`, in milliseconds (for the benchmarks).
pub fn percentiles(samples: &mut [Duration]) -> (f64, f64) {
    samples.sort();
    let at = |q: f64| {
        let i = ((samples.len() as f64 * q).ceil() as usize).clamp(1, samples.len()) - 1;
        samples[i].as_secs_f64() * 1e3
    };
    (at(0.50), at(0.99))
}

/// The benchmarks' arguments: the count N (first argument, default 100) and the `ovnkube-rs`
/// binary (`OVNKUBE_RS_BIN`, or the one of the profile the example was built with).
pub fn bench_args() -> anyhow::Result<(usize, PathBuf)> {
    use anyhow::Context;
    let n = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()
        .context("N must be a number")?
        .unwrap_or(100);
    if let Some(bin) = std::env::var_os("OVNKUBE_RS_BIN") {
        return Ok((n, bin.into()));
    }
    let exe = std::env::current_exe().context("locating this executable")?;
    let bin = exe
        .parent()
        .and_then(|examples| examples.parent())
        .map(|profile| profile.join("ovnkube-rs"))
        .filter(|bin| bin.exists())
        .context("build ovnkube-rs (cargo build --bins) or set OVNKUBE_RS_BIN")?;
    Ok((n, bin))
}

/// Polls `ok` every 100 ms until it holds, panicking with `what` after `timeout`.
pub fn eventually(what: &str, timeout: Duration, mut ok: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ok() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        sleep(Duration::from_millis(100));
    }
}

/// A pod of the lab: its namespace and the CNI container id it was added with.
#[derive(Debug, Clone)]
pub struct Pod {
    /// Kubernetes namespace.
    pub namespace: String,
    /// Pod name.
    pub name: String,
    /// The network namespace standing in for its sandbox.
    pub netns: String,
    container_id: String,
    uid: String,
}

/// The running lab. Fields drop in order: daemons, then the API server, then the namespaces.
pub struct E2eLab {
    controller: Daemon,
    agent: Daemon,
    api: ApiServer,
    /// The node namespace, the external namespace and the OVN/OVS daemons.
    pub node: NodeLab,
    kubeconfig: PathBuf,
    /// The `ovnkube-rs` binary.
    bin: PathBuf,
    pods: u32,
}

/// The annotations `ovnkube-rs node` publishes on its Node (see ovnkube_hostnet::annotations).
const NODE_AGENT_ANNOTATIONS: [&str; 6] = [
    "k8s.ovn.org/l3-gateway-config",
    "k8s.ovn.org/node-chassis-id",
    "k8s.ovn.org/node-primary-ifaddr",
    "k8s.ovn.org/host-addresses",
    "k8s.ovn.org/node-mgmt-port-mac-address",
    "k8s.ovn.org/zone-name",
];

/// The seed cluster as the API server is loaded with it: the Node keeps the controller's
/// annotations (subnet, node id, join address) but not the node agent's, which the real agent
/// publishes for this machine's OVS (chassis id, br-ex MAC, management port MAC).
fn seed_objects() -> Vec<Value> {
    let text = std::fs::read_to_string(SEED).expect("read the seed cluster");
    let mut objects = load_objects(SEED, &text).expect("parse the seed cluster");
    for node in objects.iter_mut().filter(|o| o["kind"] == "Node") {
        let ann = node["metadata"]["annotations"]
            .as_object_mut()
            .expect("the seed Node has annotations");
        for key in NODE_AGENT_ANNOTATIONS {
            ann.remove(key);
        }
    }
    objects
}

/// The user the lab's controller authenticates as (its bearer token; the API test server
/// records requests by it): MicroShift's ServiceAccount of the ovnkube-master pod.
pub const CONTROLLER_USER: &str =
    "system:serviceaccount:openshift-ovn-kubernetes:ovn-kubernetes-controller";
/// The user of the lab's node agent and of the CNI plugin (which reads the agent's kubeconfig).
pub const NODE_USER: &str = "system:serviceaccount:openshift-ovn-kubernetes:ovn-kubernetes-node";

/// `kubeconfig` (the API test server's, user-less) with `user` as its bearer token.
fn kubeconfig_as(kubeconfig: &str, user: &str) -> String {
    kubeconfig.replace("user: {}", &format!("user: {{token: \"{user}\"}}"))
}

impl E2eLab {
    /// Brings the whole lab up with the `ovnkube-rs` binary `bin` and waits until the node agent
    /// has written the CNI config.
    pub fn start(bin: &Path) -> E2eLab {
        Self::start_with(bin, &[])
    }

    /// [`E2eLab::start`] with `controller_flags` appended to the controller's (the last of a
    /// repeated flag wins, e.g. `--leader-election=true`).
    pub fn start_with(bin: &Path, controller_flags: &[&str]) -> E2eLab {
        let node = NodeLab::start(Layout::Uplink);
        // The userspace datapath reads the pods' host-side veths with AF_PACKET, so unlike a
        // kernel OVS port they stay live kernel interfaces of the node namespace, and the kernel
        // would answer a pod's ARP for 10.42.0.2 (ovn-k8s-mp0) with the veth's MAC, steering
        // the pod's replies past OVN. Answer ARP only on the interface owning the address.
        node.exec(
            "sh",
            &[
                "-c",
                "for s in all default; do echo 1 > /proc/sys/net/ipv4/conf/$s/arp_ignore; done",
            ],
        );
        let (api, kubeconfig_text) = ApiServer::start_in(&node.netns, seed_objects());
        let dir = node.dir().to_path_buf();
        let d = |f: &str| dir.join(f).display().to_string();
        let kubeconfig = dir.join("kubeconfig");
        std::fs::write(&kubeconfig, &kubeconfig_text).expect("write the kubeconfig");
        for (file, user) in [
            ("kubeconfig-controller", CONTROLLER_USER),
            ("kubeconfig-node", NODE_USER),
        ] {
            std::fs::write(dir.join(file), kubeconfig_as(&kubeconfig_text, user))
                .expect("write a daemon's kubeconfig");
        }
        let controller_args = [
            "controller",
            "--init-master",
            NODE,
            "--gateway-mode",
            "local",
            "--gateway-interface",
            "br-ex",
            "--disable-snat-multiple-gws",
            "--leader-election=false",
            &format!("--k8s-kubeconfig={}", d("kubeconfig-controller")),
            &format!("--nb-address=unix:{}", d("ovnnb_db.sock")),
            // The GR's static MAC binding for the masquerade next hop (169.254.169.4) goes to
            // the SB: without it replies routed there wait for an ARP nobody answers.
            &format!("--sb-address=unix:{}", d("ovnsb_db.sock")),
            &format!("--metrics-bind-address={CONTROLLER_METRICS}"),
        ];
        let controller = Self::daemon(
            bin,
            &node,
            "controller",
            &[&controller_args[..], controller_flags].concat(),
        );
        let agent = Self::daemon(
            bin,
            &node,
            "node",
            &[
                "node",
                &format!("--node-name={NODE}"),
                &format!("--kubeconfig={}", d("kubeconfig-node")),
                &format!("--sb-address=unix:{}", d("ovnsb_db.sock")),
                &format!("--ovs-rundir={}", d("")),
                &format!("--cni-conf={}", d("net.d/10-ovn-kubernetes.conf")),
                "--sync-period=1",
                "--patch-port-timeout=60",
                &format!("--metrics-bind-address={NODE_METRICS}"),
            ],
        );
        let lab = E2eLab {
            controller,
            agent,
            api,
            node,
            kubeconfig,
            bin: bin.to_path_buf(),
            pods: 0,
        };
        let conf = lab.cni_conf_path();
        eventually(
            "the node agent's CNI config (see node.log in the lab dir)",
            Duration::from_secs(90),
            || conf.exists(),
        );
        lab
    }

    fn daemon(bin: &Path, node: &NodeLab, name: &str, args: &[&str]) -> Daemon {
        let log = File::create(node.dir().join(format!("{name}.log"))).expect("log file");
        let child = Command::new("ip")
            .args(["netns", "exec", &node.netns])
            .arg(bin)
            .args(args)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log fd"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start ovnkube-rs {name}: {e}"));
        Daemon(child)
    }

    fn cni_conf_path(&self) -> PathBuf {
        self.node.dir().join("net.d/10-ovn-kubernetes.conf")
    }

    /// Whether both ovnkube-rs daemons are still running (a crash shows in their logs).
    pub fn daemons_alive(&mut self) -> bool {
        [&mut self.controller, &mut self.agent]
            .into_iter()
            .all(|d| matches!(d.0.try_wait(), Ok(None)))
    }

    /// `kubectl` against the API test server (run inside the node namespace); panics on failure.
    pub fn kubectl(&self, args: &[&str], stdin: Option<&str>) -> String {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.node.netns, "kubectl"])
            .arg(format!("--kubeconfig={}", self.kubeconfig.display()))
            .args(args);
        let out = run_with_stdin(&mut cmd, stdin.unwrap_or(""));
        assert!(
            out.status.success(),
            "kubectl {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Creates a namespace for pod `namespace/name` and runs CNI ADD for it as a container
    /// runtime would (CNI env, the agent's config on stdin). Returns the pod and the plugin's
    /// output (the CNI result, or the CNI error JSON).
    pub fn add_pod(&mut self, namespace: &str, name: &str) -> (Pod, Result<Value, String>) {
        self.pods += 1;
        // A runtime passes the pod's UID; the plugin stamps it as iface-id-ver, which
        // ovn-controller compares with the LSP's before claiming the port.
        let uid = self.kubectl(
            &[
                "-n",
                namespace,
                "get",
                "pod",
                name,
                "-o",
                "jsonpath={.metadata.uid}",
            ],
            None,
        );
        let pod = Pod {
            namespace: namespace.into(),
            name: name.into(),
            netns: format!("{}-p{}", self.node.netns, self.pods),
            container_id: format!("e2e{:04}{}", self.pods, "0".repeat(28)),
            uid,
        };
        self.node.add_netns(&pod.netns);
        let result = self.cni("ADD", &pod);
        (pod, result)
    }

    /// [`E2eLab::add_pod`], panicking unless the plugin returned an address.
    pub fn add_running_pod(&mut self, namespace: &str, name: &str) -> Pod {
        let (pod, result) = self.add_pod(namespace, name);
        let result = result.unwrap_or_else(|e| panic!("{e}"));
        assert!(result["ips"][0]["address"].is_string(), "{result}");
        pod
    }

    /// `kubectl apply` of one object.
    pub fn apply(&self, object: &Value) {
        self.kubectl(&["apply", "-f", "-"], Some(&object.to_string()));
    }

    /// Work through every path of the daemons that talks to the API, named after `tag`: a pod
    /// (annotated with its address, then wired by the CNI plugin, which reads it), a node without
    /// annotations (its subnet allocated) and a Service with bad input (a Warning Event and a
    /// reconcile error). Returns once all three have happened.
    pub fn exercise_api(&mut self, tag: &str) {
        let (pod, node, service) = (
            format!("{tag}-pod"),
            format!("{tag}-node"),
            format!("{tag}-bad-ip"),
        );
        self.apply(&serde_json::json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": pod, "namespace": "default"},
            "spec": {"nodeName": NODE, "containers": [{"name": "c", "image": "x"}]}
        }));
        self.add_running_pod("default", &pod);
        self.apply(&serde_json::json!({
            "apiVersion": "v1", "kind": "Node", "metadata": {"name": node},
            "status": {"addresses": [{"type": "InternalIP", "address": "192.168.122.15"}]}
        }));
        // An externalIP that is no address.
        self.apply(&serde_json::json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": service, "namespace": "default"},
            "spec": {"type": "ClusterIP", "externalIPs": ["300.1.2.3"],
                     "ports": [{"port": 80, "protocol": "TCP"}]}
        }));
        let subnets = "jsonpath={.metadata.annotations.k8s\\.ovn\\.org/node-subnets}";
        eventually(
            &format!("the subnet of {node}"),
            Duration::from_secs(30),
            || {
                self.kubectl(&["get", "node", &node, "-o", subnets], None)
                    .contains("10.42.")
            },
        );
        let about = format!("--field-selector=involvedObject.name={service}");
        eventually(
            &format!("the Event about {service}"),
            Duration::from_secs(30),
            || {
                self.kubectl(
                    &["get", "events", "-n", "default", &about, "-o", "name"],
                    None,
                )
                .contains("event")
            },
        );
    }

    /// Every (user, verb, group, resource) the API test server has served so far.
    pub fn api_requests(&self) -> Vec<RequestRecord> {
        serde_json::from_str(&self.kubectl(&["get", "--raw", "/debug/requests"], None))
            .expect("the request records are JSON")
    }

    /// The kubeconfig of the API test server (reachable from inside the node namespace).
    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    /// Runs the CNI plugin with `command` for `pod`: the parsed stdout on success, the raw
    /// output on failure.
    pub fn cni(&self, command: &str, pod: &Pod) -> Result<Value, String> {
        let conf = std::fs::read_to_string(self.cni_conf_path()).expect("CNI config");
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.node.netns])
            .arg(&self.bin)
            .arg("cni")
            .env("CNI_COMMAND", command)
            .env("CNI_CONTAINERID", &pod.container_id)
            .env("CNI_NETNS", format!("/var/run/netns/{}", pod.netns))
            .env("CNI_IFNAME", "eth0")
            .env(
                "CNI_ARGS",
                format!(
                    "IgnoreUnknown=1;K8S_POD_NAMESPACE={};K8S_POD_NAME={};K8S_POD_INFRA_CONTAINER_ID={};K8S_POD_UID={}",
                    pod.namespace, pod.name, pod.container_id, pod.uid
                ),
            )
            .env("CNI_PATH", "/opt/cni/bin");
        let out = run_with_stdin(&mut cmd, &conf);
        cni_result(command, &format!("{}/{}", pod.namespace, pod.name), &out)
    }

    /// `ovn-nbctl` against the lab's NB.
    pub fn nbctl(&self, args: &[&str]) -> String {
        self.node.nbctl(args)
    }

    /// `ovn-trace --minimal` on `switch` for `flow`, every connection-tracking step taken as a
    /// new connection: `Ok(port)` with the last `output("...")` port, or `Err(trace)` when the
    /// packet is dropped.
    pub fn trace_output(&self, switch: &str, flow: &str) -> Result<String, String> {
        let out = Command::new("ovn-trace")
            .arg(format!(
                "--db=unix:{}",
                self.node.dir().join("ovnsb_db.sock").display()
            ))
            .args(["--minimal", "--ct=new", "--ct=new", "--ct=new", "--ct=new"])
            .args([switch, flow])
            .output()
            .expect("ovn-trace runs");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        trace_last_output(&text).ok_or(text)
    }
}

/// The CNI plugin's answer to `command` for `who`: the parsed result (`Null` when it printed
/// nothing, as DEL does), or its output on failure.
pub fn cni_result(command: &str, who: &str, out: &Output) -> Result<Value, String> {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        return Err(format!(
            "CNI {command} {who}: {stdout} {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    if stdout.trim().is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_str(&stdout).map_err(|e| format!("CNI {command} output {stdout:?}: {e}"))
}

/// The last `output("...")` port of an `ovn-trace --minimal` text.
pub fn trace_last_output(text: &str) -> Option<String> {
    text.rmatch_indices("output(\"")
        .next()
        .and_then(|(i, m)| text[i + m.len()..].split('"').next())
        .map(String::from)
}
