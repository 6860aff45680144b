//! A reusable test fixture: a network namespace standing in for a node, with a real OVS
//! (userspace datapath, `ovs-vswitchd` inside the namespace), `br-int` and `br-ex`, and a real
//! OVN (NB/SB `ovsdb-server`, `ovn-northd` on unix sockets, `ovn-controller` in the namespace).
//!
//! `$OVS_VSWITCHD` names the ovs-vswitchd to run (default: the one on `PATH`); `hack/test.sh`
//! sets it to Debian 13's (hack/ovs-datapath.sh), whose userspace datapath allows the eight
//! recirculations that flows through br-ex and the gateway router need.
//!
//! Everything lives under a fresh temp dir; daemons are stopped by PID and the namespaces
//! deleted on drop, also while unwinding from a failed assertion. Nothing touches the root
//! namespace's network configuration: databases listen on unix sockets only.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread::sleep;
use std::time::{Duration, Instant};

use crate::host::Host;

static NEXT_LAB: AtomicU32 = AtomicU32::new(0);

/// br-ex's MAC in MicroShift (`other_config:hwaddr` set by its OVS init script).
pub const BRIDGE_MAC: &str = "0a:59:00:00:00:01";
/// The chassis id the lab gives OVS.
pub const SYSTEM_ID: &str = "nodelab-chassis";

/// Which br-ex layout the lab builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// MicroShift 4.14: br-ex without uplink, only `10.44.0.0/32` on it.
    NoUplink,
    /// MicroShift 4.13: a veth `eth0` in br-ex whose peer sits in an "external" namespace
    /// (`192.168.122.1/24`), the node IP `192.168.122.14/24` on br-ex, `10.44.0.0/32` on lo.
    Uplink,
}

/// A running node namespace with OVS and OVN.
pub struct NodeLab {
    /// The node's network namespace.
    pub netns: String,
    /// The external namespace (only in the uplink layout).
    pub external_netns: Option<String>,
    dir: PathBuf,
    namespaces: Vec<String>,
}

/// The ovs-vswitchd the lab runs: `$OVS_VSWITCHD`, else the one on `PATH`.
pub fn vswitchd_program() -> String {
    std::env::var("OVS_VSWITCHD").unwrap_or_else(|_| "ovs-vswitchd".into())
}

/// Panics, saying why, unless the lab's ovs-vswitchd is Open vSwitch 3.5 or newer: a flow from
/// br-ex through the gateway router to a pod takes seven recirculations in one userspace-datapath
/// pass, and Debian 12's 3.1 stops at six (coverage `datapath_drop_recirc_error`).
pub fn require_gateway_capable_datapath() {
    let program = vswitchd_program();
    let out = must(Command::new(&program).arg("--version"));
    let version: Vec<u32> = out
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().last())
        .map(|v| v.split('.').filter_map(|n| n.parse().ok()).collect())
        .unwrap_or_default();
    assert!(
        version.as_slice() >= [3, 5].as_slice(),
        "{program} is {out:?}: flows through the gateway router need Open vSwitch >= 3.5's \
         userspace datapath; run hack/test.sh, or set OVS_VSWITCHD to what hack/ovs-datapath.sh prints"
    );
}

/// Runs a command to completion, panicking with its stderr on failure (fixture setup).
fn must(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl NodeLab {
    /// Starts a lab; `node` is the node name used for the gateway topology.
    pub fn start(layout: Layout) -> NodeLab {
        let n = NEXT_LAB.fetch_add(1, Ordering::SeqCst);
        let id = format!("{}-{n}", std::process::id());
        let dir = std::env::temp_dir().join(format!("nodelab-{id}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create lab dir");
        let mut lab = NodeLab {
            netns: format!("nodelab-{id}"),
            external_netns: None,
            dir,
            namespaces: Vec::new(),
        };
        lab.boot(layout, &id);
        lab
    }

    /// The lab's directory (sockets, pid files, logs, DBs).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A [`Host`] running commands inside the node namespace.
    pub fn host(&self) -> Host {
        Host::in_netns(&self.netns, &self.dir)
    }

    /// The SB remote (`unix:<dir>/ovnsb_db.sock`).
    pub fn sb_remote(&self) -> String {
        format!("unix:{}", self.dir.join("ovnsb_db.sock").display())
    }

    /// An agent configuration for node `node` at `node_ip` in this lab: MicroShift's subnets,
    /// the lab's SB, and the CNI config under the lab directory.
    pub fn agent_config(&self, node: &str, node_ip: &str) -> crate::agent::AgentConfig {
        crate::agent::AgentConfig {
            node_name: node.into(),
            node_ip: node_ip.parse().expect("an IPv4 address"),
            bridge: "br-ex".into(),
            service_cidrs: vec!["10.43.0.0/16".parse().expect("constant")],
            cluster_subnets: vec!["10.42.0.0/16".parse().expect("constant")],
            node_subnet: "10.42.0.0/24".parse().expect("constant"),
            mtu: 1500,
            sb_remote: self.sb_remote(),
            next_hops: vec![],
            patch_port_timeout: Duration::from_secs(20),
            cni_conf_path: self.dir.join("net.d/10-ovn-kubernetes.conf"),
            cni_conf_extra: serde_json::Map::new(),
        }
    }

    fn env(&self, cmd: &mut Command) {
        for k in [
            "OVS_RUNDIR",
            "OVS_LOGDIR",
            "OVS_DBDIR",
            "OVN_RUNDIR",
            "OVN_LOGDIR",
            "OVN_DBDIR",
        ] {
            cmd.env(k, &self.dir);
        }
    }

    fn cmd(&self, prog: &str, args: &[&str]) -> String {
        let mut c = Command::new(prog);
        c.args(args);
        self.env(&mut c);
        must(&mut c)
    }

    /// Runs a command inside the node namespace and returns its stdout (panics on failure).
    pub fn exec(&self, prog: &str, args: &[&str]) -> String {
        self.exec_in(&self.netns, prog, args)
    }

    /// An OVS coverage counter of the node's ovs-vswitchd (total since it started).
    pub fn coverage(&self, counter: &str) -> u64 {
        let text = self.exec("ovs-appctl", &["coverage/read-counter", counter]);
        text.trim()
            .parse()
            .unwrap_or_else(|_| panic!("coverage counter {counter}: {text:?}"))
    }

    /// Runs a command inside namespace `ns` (panics on failure).
    pub fn exec_in(&self, ns: &str, prog: &str, args: &[&str]) -> String {
        let mut all = vec!["netns", "exec", ns, prog];
        all.extend_from_slice(args);
        self.cmd("ip", &all)
    }

    /// `ovn-nbctl` against the lab's NB.
    pub fn nbctl(&self, args: &[&str]) -> String {
        let db = format!("--db=unix:{}", self.dir.join("ovnnb_db.sock").display());
        let mut all = vec![db.as_str(), "--timeout=30"];
        all.extend_from_slice(args);
        self.cmd("ovn-nbctl", &all)
    }

    /// Adds a pod's logical switch port to `switch` with its `"<mac> <ip>"` addresses, as the
    /// controller would (for tests without one).
    pub fn add_pod_port(&self, switch: &str, lsp: &str, addresses: &str) {
        self.nbctl(&[
            "--",
            "lsp-add",
            switch,
            lsp,
            "--",
            "lsp-set-addresses",
            lsp,
            addresses,
        ]);
    }

    /// `ovs-vsctl` against the lab's OVS database.
    pub fn vsctl(&self, args: &[&str]) -> String {
        let db = format!("--db=unix:{}", self.dir.join("db.sock").display());
        let mut all = vec![db.as_str(), "--timeout=30"];
        all.extend_from_slice(args);
        self.cmd("ovs-vsctl", &all)
    }

    /// Creates a namespace owned (and deleted) by the lab, with `lo` up.
    pub fn add_netns(&mut self, name: &str) {
        self.cmd("ip", &["netns", "add", name]);
        self.namespaces.push(name.to_string());
        self.cmd("ip", &["-n", name, "link", "set", "lo", "up"]);
    }

    fn wait_for_file(&self, name: &str) {
        let path = self.dir.join(name);
        let start = Instant::now();
        while !path.exists() {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "{} did not appear",
                path.display()
            );
            sleep(Duration::from_millis(20));
        }
    }

    fn ovsdb_server(&self, name: &str, db: &str, schema: &str) {
        let d = |f: &str| self.dir.join(f).display().to_string();
        self.cmd("ovsdb-tool", &["create", &d(db), schema]);
        self.cmd(
            "ovsdb-server",
            &[
                "--detach",
                "--no-chdir",
                &format!("--pidfile={}", d(&format!("{name}.pid"))),
                &format!("--log-file={}", d(&format!("{name}.log"))),
                &format!("--unixctl={}", d(&format!("{name}.ctl"))),
                &format!("--remote=punix:{}", d(&format!("{name}.sock"))),
                &d(db),
            ],
        );
        self.wait_for_file(&format!("{name}.sock"));
    }

    fn boot(&mut self, layout: Layout, id: &str) {
        let dir = self.dir.clone();
        let d = |f: &str| dir.join(f).display().to_string();
        self.ovsdb_server("ovnnb_db", "ovnnb_db.db", "/usr/share/ovn/ovn-nb.ovsschema");
        self.ovsdb_server("ovnsb_db", "ovnsb_db.db", "/usr/share/ovn/ovn-sb.ovsschema");
        self.ovsdb_server("db", "conf.db", "/usr/share/openvswitch/vswitch.ovsschema");
        self.nbctl(&["--no-wait", "init"]);
        self.cmd(
            "ovn-northd",
            &[
                "--detach",
                "--no-chdir",
                &format!("--pidfile={}", d("ovn-northd.pid")),
                &format!("--log-file={}", d("ovn-northd.log")),
                &format!("--ovnnb-db=unix:{}", d("ovnnb_db.sock")),
                &format!("--ovnsb-db=unix:{}", d("ovnsb_db.sock")),
            ],
        );
        self.vsctl(&["--no-wait", "init"]);
        // userspace TSO must be on before vswitchd starts, or userspace conntrack drops TCP.
        self.vsctl(&[
            "--no-wait",
            "set",
            "Open_vSwitch",
            ".",
            "other_config:userspace-tso-enable=true",
            &format!("external_ids:system-id={SYSTEM_ID}"),
            "external_ids:ovn-bridge=br-int",
            "external_ids:ovn-bridge-datapath-type=netdev",
            &format!("external_ids:ovn-remote=\"unix:{}\"", d("ovnsb_db.sock")),
            "external_ids:ovn-encap-type=geneve",
            "external_ids:ovn-encap-ip=127.0.0.1",
        ]);
        self.vsctl(&[
            "--no-wait",
            "--",
            "add-br",
            "br-int",
            "--",
            "set",
            "Bridge",
            "br-int",
            "datapath_type=netdev",
            "fail-mode=secure",
            "other-config:disable-in-band=true",
            "--",
            "add-br",
            "br-ex",
            "--",
            "br-set-external-id",
            "br-ex",
            "bridge-id",
            "br-ex",
            "--",
            "set",
            "Bridge",
            "br-ex",
            "datapath_type=netdev",
            "fail-mode=standalone",
            &format!("other_config:hwaddr={BRIDGE_MAC}"),
        ]);
        let ns = self.netns.clone();
        self.add_netns(&ns);
        self.exec(
            &vswitchd_program(),
            &[
                "--detach",
                "--no-chdir",
                &format!("--pidfile={}", d("ovs-vswitchd.pid")),
                &format!("--log-file={}", d("ovs-vswitchd.log")),
                &format!("unix:{}", d("db.sock")),
            ],
        );
        // Without --no-wait this returns once vswitchd has applied the configuration.
        self.vsctl(&["set", "Bridge", "br-ex", "datapath_type=netdev"]);
        self.exec(
            "ovn-controller",
            &[
                "--detach",
                "--no-chdir",
                &format!("--pidfile={}", d("ovn-controller.pid")),
                &format!("--log-file={}", d("ovn-controller.log")),
                &format!("unix:{}", d("db.sock")),
            ],
        );
        self.exec("ip", &["link", "set", "br-ex", "up"]);
        match layout {
            Layout::NoUplink => {
                self.exec("ip", &["addr", "add", "10.44.0.0/32", "dev", "br-ex"]);
            }
            Layout::Uplink => {
                let ext = format!("nodelab-ext-{id}");
                self.add_netns(&ext);
                self.exec(
                    "ip",
                    &[
                        "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns",
                        &ext,
                    ],
                );
                self.exec("ip", &["link", "set", "eth0", "up"]);
                self.exec_in(
                    &ext,
                    "ip",
                    &["addr", "add", "192.168.122.1/24", "dev", "eth0"],
                );
                self.exec_in(&ext, "ip", &["link", "set", "eth0", "up"]);
                self.vsctl(&["add-port", "br-ex", "eth0"]);
                self.exec("ip", &["addr", "add", "192.168.122.14/24", "dev", "br-ex"]);
                self.exec("ip", &["addr", "add", "10.44.0.0/32", "dev", "lo"]);
                self.exec(
                    "ip",
                    &[
                        "route",
                        "add",
                        "default",
                        "via",
                        "192.168.122.1",
                        "dev",
                        "br-ex",
                    ],
                );
                self.external_netns = Some(ext);
            }
        }
    }

    /// NB rows that make ovn-controller create br-ex's patch port: the gateway router bound to
    /// this chassis and `ext_<node>` with the localnet port `br-ex_<node>` on `physnet`.
    pub fn add_gateway_topology(&self, node: &str) {
        let ext = format!("ext_{node}");
        let gr = format!("GR_{node}");
        let lnet = format!("br-ex_{node}");
        let rtoe = format!("rtoe-{gr}");
        let etor = format!("etor-{gr}");
        self.nbctl(&[
            "--",
            "ls-add",
            &ext,
            "--",
            "lsp-add",
            &ext,
            &lnet,
            "--",
            "lsp-set-type",
            &lnet,
            "localnet",
            "--",
            "lsp-set-addresses",
            &lnet,
            "unknown",
            "--",
            "lsp-set-options",
            &lnet,
            "network_name=physnet",
            "--",
            "lr-add",
            &gr,
            "--",
            "set",
            "Logical_Router",
            &gr,
            &format!("options:chassis={SYSTEM_ID}"),
            "--",
            "lrp-add",
            &gr,
            &rtoe,
            BRIDGE_MAC,
            "172.31.0.2/24",
            "--",
            "lsp-add",
            &ext,
            &etor,
            "--",
            "lsp-set-type",
            &etor,
            "router",
            "--",
            "lsp-set-addresses",
            &etor,
            "router",
            "--",
            "lsp-set-options",
            &etor,
            &format!("router-port={rtoe}"),
        ]);
    }

    fn kill_daemons(&self) {
        for name in [
            "ovn-controller",
            "ovs-vswitchd",
            "ovn-northd",
            "ovnnb_db",
            "ovnsb_db",
            "db",
        ] {
            let Ok(pid) = std::fs::read_to_string(self.dir.join(format!("{name}.pid"))) else {
                continue;
            };
            let Ok(pid) = pid.trim().parse::<i32>() else {
                continue;
            };
            // SAFETY: signalling a PID read from our own pid file; no memory is shared.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
    }
}

impl Drop for NodeLab {
    fn drop(&mut self) {
        self.kill_daemons();
        for ns in self.namespaces.iter().rev() {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
        if std::env::var_os("NODELAB_KEEP").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
