//! `ovnkube-rs node --kubeconfig` against the in-memory API server, both inside a node
//! namespace with real OVS and OVN: it waits for the controller's node subnet, publishes its
//! annotations on the Node and follows Services created through the API.

use std::process::{Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use ovnkube_hostnet::nodelab::{Layout, NodeLab};
use serde_json::json;

#[path = "e2e_common/netns_api.rs"]
mod netns_api;
use netns_api::{KillOnDrop, NetnsApiServer};
#[path = "e2e_common/stdin.rs"]
mod stdin;
use stdin::run_with_stdin;

const BIN: &str = env!("CARGO_BIN_EXE_ovnkube-rs");

fn eventually(what: &str, mut ok: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ok() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "timed out waiting for {what}"
        );
        sleep(Duration::from_millis(200));
    }
}

fn service(name: &str, cluster_ip: &str, port: u16, node_port: u16) -> serde_json::Value {
    json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"namespace": "default", "name": name},
        "spec": {"type": "NodePort", "clusterIP": cluster_ip, "clusterIPs": [cluster_ip],
                 "ports": [{"port": port, "nodePort": node_port, "protocol": "TCP", "targetPort": 8080}]}
    })
}

/// The API test server in the lab's namespace with Node `node1` (no annotations yet) and a
/// NodePort Service; its kubeconfig is written to `kubeconfig` in the lab's directory.
fn start_api(lab: &NodeLab) -> NetnsApiServer {
    let node = json!({
        "apiVersion": "v1", "kind": "Node", "metadata": {"name": "node1"},
        "status": {"addresses": [{"type": "InternalIP", "address": "10.44.0.0"}]}
    });
    let (api, kubeconfig) = NetnsApiServer::start_in(
        &lab.netns,
        vec![node, service("svc-nodeport", "10.43.19.182", 7000, 30700)],
    );
    std::fs::write(lab.dir().join("kubeconfig"), kubeconfig).unwrap();
    api
}

#[test]
fn agent_waits_for_node_subnet_publishes_annotations_and_follows_services() {
    let mut lab = NodeLab::start(Layout::NoUplink);
    let pod_ns = format!("{}-pod1", lab.netns);
    lab.add_netns(&pod_ns);
    let _api = start_api(&lab);
    let d = |f: &str| lab.dir().join(f).display().to_string();
    let kubectl = |args: &[&str], stdin: Option<&str>| -> String {
        let mut cmd = Command::new("ip");
        cmd.args([
            "netns",
            "exec",
            &lab.netns,
            "kubectl",
            "--kubeconfig",
            &d("kubeconfig"),
        ])
        .args(args);
        let out = run_with_stdin(&mut cmd, stdin.unwrap_or(""));
        assert!(
            out.status.success(),
            "kubectl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };

    let _agent = KillOnDrop(
        Command::new("ip")
            .args([
                "netns",
                "exec",
                &lab.netns,
                BIN,
                "node",
                "--node-name=node1",
            ])
            .arg(format!("--kubeconfig={}", d("kubeconfig")))
            .arg(format!("--sb-address=unix:{}", d("ovnsb_db.sock")))
            .arg(format!("--ovs-rundir={}", d("")))
            .arg(format!("--cni-conf={}", d("net.d/10-ovn-kubernetes.conf")))
            // Long enough that only the watches can bring the Service changes below in time.
            .arg("--sync-period=3600")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    // Without the controller's node subnet the agent must not declare itself ready.
    sleep(Duration::from_secs(1));
    assert!(!std::path::Path::new(&d("net.d/10-ovn-kubernetes.conf")).exists());

    kubectl(
        &[
            "annotate",
            "node",
            "node1",
            r#"k8s.ovn.org/node-subnets={"default":["10.42.0.0/24"]}"#,
        ],
        None,
    );
    // The agent publishes its gateway before it has a patch port; the controller (here: the
    // test) builds ext_<node> from it, and only then can the agent finish.
    eventually("the l3-gateway-config annotation", || {
        kubectl(&["get", "node", "node1", "-o", "json"], None)
            .contains("k8s.ovn.org/l3-gateway-config")
    });
    assert!(!std::path::Path::new(&d("net.d/10-ovn-kubernetes.conf")).exists());
    lab.add_gateway_topology("node1");
    eventually("the CNI config", || {
        std::path::Path::new(&d("net.d/10-ovn-kubernetes.conf")).exists()
    });
    let nat = lab.exec("iptables-save", &["-t", "nat"]);
    assert!(
        nat.contains("--dport 30700 -j DNAT --to-destination 10.43.19.182:7000"),
        "{nat}"
    );
    assert!(lab
        .exec("ip", &["addr", "show", "ovn-k8s-mp0"])
        .contains("inet 10.42.0.2/24"));

    let node: serde_json::Value =
        serde_json::from_str(&kubectl(&["get", "node", "node1", "-o", "json"], None)).unwrap();
    let ann = &node["metadata"]["annotations"];
    let mac = ann["k8s.ovn.org/node-mgmt-port-mac-address"]
        .as_str()
        .expect("mgmt mac published");
    assert!(lab
        .exec("ip", &["link", "show", "ovn-k8s-mp0"])
        .contains(mac));
    assert_eq!(ann["k8s.ovn.org/node-chassis-id"], "nodelab-chassis");
    assert_eq!(
        ann["k8s.ovn.org/node-primary-ifaddr"],
        r#"{"ipv4":"10.44.0.0/32"}"#
    );
    assert!(ann["k8s.ovn.org/l3-gateway-config"]
        .as_str()
        .unwrap()
        .contains(r#""next-hops":["169.254.169.4"]"#));

    // A Service created through the API shows up in the node's rules at once (watched).
    kubectl(
        &["create", "-f", "-"],
        Some(&service("svc-two", "10.43.5.5", 80, 30080).to_string()),
    );
    eventually("the new NodePort rule", || {
        lab.exec("iptables-save", &["-t", "nat"])
            .contains("--dport 30080 -j DNAT --to-destination 10.43.5.5:80")
    });
    kubectl(&["delete", "service", "svc-nodeport"], None);
    eventually("the deleted service's rule to go", || {
        !lab.exec("iptables-save", &["-t", "nat"]).contains("30700")
    });

    // The CNI plugin, fed the agent's own config, reads the pod annotation from the API.
    let annotation = r#"{"default":{"ip_addresses":["10.42.0.12/24"],"mac_address":"0a:58:0a:2a:00:0c","gateway_ips":["10.42.0.1"],"ip_address":"10.42.0.12/24","gateway_ip":"10.42.0.1"}}"#;
    let pod = json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"namespace": "default", "name": "pod-1", "annotations": {"k8s.ovn.org/pod-networks": annotation}},
        "spec": {"containers": [{"name": "c", "image": "x"}], "nodeName": "node1"}});
    kubectl(&["create", "-f", "-"], Some(&pod.to_string()));
    let created: serde_json::Value =
        serde_json::from_str(&kubectl(&["get", "pod", "pod-1", "-o", "json"], None)).unwrap();
    let uid = created["metadata"]["uid"].as_str().unwrap().to_string();
    lab.nbctl(&["ls-add", "node1"]);
    lab.add_pod_port("node1", "default_pod-1", "0a:58:0a:2a:00:0c 10.42.0.12");
    let conf = std::fs::read_to_string(d("net.d/10-ovn-kubernetes.conf")).unwrap();
    let cni = |uid: &str| {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &lab.netns, BIN, "cni"])
            .env("CNI_COMMAND", "ADD")
            .env("CNI_CONTAINERID", "feedfacefeedface00")
            .env("CNI_NETNS", format!("/var/run/netns/{pod_ns}"))
            .env("CNI_IFNAME", "eth0")
            .env(
                "CNI_ARGS",
                format!("K8S_POD_NAMESPACE=default;K8S_POD_NAME=pod-1;K8S_POD_UID={uid}"),
            );
        let out = run_with_stdin(&mut cmd, &conf);
        (
            out.status.success(),
            serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap(),
        )
    };
    let (ok, err) = cni("some-other-uid");
    assert!(
        !ok && err["msg"].as_str().unwrap().contains("some-other-uid"),
        "{err}"
    );
    let (ok, result) = cni(&uid);
    assert!(ok, "{result}");
    assert_eq!(result["ips"][0]["address"], "10.42.0.12/24");
    assert_eq!(
        lab.exec_in(&pod_ns, "ip", &["route"]),
        "default via 10.42.0.1 dev eth0 \n10.42.0.0/24 dev eth0 proto kernel scope link src 10.42.0.12 \n"
    );
    let ids = lab.vsctl(&["get", "Interface", "feedfacefeedfac", "external_ids"]);
    assert!(
        ids.contains(&format!("iface-id-ver=\"{uid}\""))
            || ids.contains(&format!("iface-id-ver={uid}")),
        "{ids}"
    );
}

/// MicroShift's one process: `controller --init-master <node> --init-node <node>` allocates the
/// node subnet, builds the node's NB topology and does the node work (annotations, host rules,
/// CNI config in `--cni-conf-dir`), with no separate agent.
#[test]
fn controller_with_init_node_does_the_node_work_in_the_same_process() {
    let lab = NodeLab::start(Layout::NoUplink);
    let _api = start_api(&lab);
    let d = |f: &str| lab.dir().join(f).display().to_string();
    let cni_conf = d("net.d/10-ovn-kubernetes.conf");
    let _ovnkube = KillOnDrop(
        Command::new("ip")
            .args(["netns", "exec", &lab.netns, BIN, "controller"])
            .args(["--init-master", "node1", "--init-node", "node1"])
            .arg(format!("--k8s-kubeconfig={}", d("kubeconfig")))
            .arg(format!("--nb-address=unix:{}", d("ovnnb_db.sock")))
            .arg(format!("--sb-address=unix:{}", d("ovnsb_db.sock")))
            .arg(format!("--cni-conf-dir={}", d("net.d")))
            // The namespace's own loopback: no port clash with anything else.
            .args(["--metrics-bind-address", "127.0.0.1:29409"])
            .env("OVS_RUNDIR", d(""))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let started = Instant::now();
    while !std::path::Path::new(&cni_conf).exists() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no CNI config from the in-process node agent; GR: {}",
            lab.nbctl(&["--bare", "--columns=name", "find", "Logical_Router"])
        );
        sleep(Duration::from_millis(200));
    }
    // The controller's half: the node's switch and gateway router, with its subnet.
    assert_eq!(
        lab.nbctl(&["get", "Logical_Switch", "node1", "other_config:subnet"]),
        "\"10.42.0.0/24\"\n"
    );
    assert!(lab
        .nbctl(&["--bare", "--columns=name", "list", "Logical_Router"])
        .contains("GR_node1"));
    // The node's half: host rules, the management port and the br-ex flows.
    assert!(lab
        .exec("iptables-save", &["-t", "nat"])
        .contains("--dport 30700 -j DNAT --to-destination 10.43.19.182:7000"));
    assert!(lab
        .exec("ip", &["addr", "show", "ovn-k8s-mp0"])
        .contains("inet 10.42.0.2/24"));
    assert!(lab.exec("ovs-ofctl", &["dump-flows", "br-ex"]).contains(
        "nw_dst=10.43.0.0/16 actions=ct(commit,table=2,zone=64001,nat(src=169.254.169.2))"
    ));
}
