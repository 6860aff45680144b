//! `ovnkube-rs node` and `ovnkube-rs cni` as processes inside a node namespace with real OVS
//! and OVN: the agent programs the host and writes the CNI config, the plugin wires a pod from it.

use std::process::{Command, Output};

use ovnkube_hostnet::nodelab::{Layout, NodeLab};

#[path = "e2e_common/stdin.rs"]
mod stdin;
use stdin::run_with_stdin;

const BIN: &str = env!("CARGO_BIN_EXE_ovnkube-rs");

fn in_ns(lab: &NodeLab, args: &[&str], env: &[(&str, String)], stdin: &str) -> Output {
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", &lab.netns, BIN]).args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    run_with_stdin(&mut cmd, stdin.as_bytes())
}

const SERVICES: &str = r#"
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Service
  metadata: {namespace: default, name: svc-nodeport}
  spec:
    type: NodePort
    clusterIP: 10.43.19.182
    clusterIPs: [10.43.19.182]
    ports: [{port: 7000, nodePort: 30700, protocol: TCP, targetPort: 8080}]
"#;

#[test]
fn node_agent_then_cni_plugin_as_processes() {
    let mut lab = NodeLab::start(Layout::NoUplink);
    lab.add_gateway_topology("node1");
    lab.nbctl(&["ls-add", "node1"]);
    let dir = lab.dir().to_path_buf();
    let d = |f: &str| dir.join(f).display().to_string();
    std::fs::write(d("services.yaml"), SERVICES).unwrap();

    let out = in_ns(
        &lab,
        &[
            "node",
            "--node-name=node1",
            "--node-ip=10.44.0.0",
            "--node-subnet=10.42.0.0/24",
            &format!("--sb-address=unix:{}", d("ovnsb_db.sock")),
            &format!("--ovs-rundir={}", d("")),
            &format!("--cni-conf={}", d("net.d/10-ovn-kubernetes.conf")),
            &format!("--services-file={}", d("services.yaml")),
            &format!("--annotations-out={}", d("annotations.json")),
            "--once",
        ],
        &[],
        "",
    );
    assert!(
        out.status.success(),
        "node failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let nat = lab.exec("iptables-save", &["-t", "nat"]);
    assert!(nat.contains(
        "-A OVN-KUBE-NODEPORT -p tcp -m addrtype --dst-type LOCAL -m tcp --dport 30700 -j DNAT --to-destination 10.43.19.182:7000"
    ));
    let annotations: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d("annotations.json")).unwrap()).unwrap();
    let mac = annotations["k8s.ovn.org/node-mgmt-port-mac-address"]
        .as_str()
        .unwrap();
    assert!(lab
        .exec("ip", &["link", "show", "ovn-k8s-mp0"])
        .contains(mac));
    assert_eq!(
        annotations["k8s.ovn.org/node-primary-ifaddr"]
            .as_str()
            .unwrap(),
        r#"{"ipv4":"10.44.0.0/32"}"#
    );

    // The plugin reads the agent's CNI config, plus the test seam for the pod annotation.
    let mut conf: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d("net.d/10-ovn-kubernetes.conf")).unwrap())
            .unwrap();
    assert_eq!(conf["type"], "ovn-k8s-cni-overlay");
    assert_eq!(conf["mtu"], 1400);
    conf["podNetworksDir"] = d("podnets").into();
    conf["readinessTimeoutSeconds"] = 30.into();
    std::fs::create_dir_all(d("podnets")).unwrap();
    std::fs::write(
        d("podnets/default_pod-1"),
        r#"{"default":{"ip_addresses":["10.42.0.12/24"],"mac_address":"0a:58:0a:2a:00:0c","gateway_ips":["10.42.0.1"],"ip_address":"10.42.0.12/24","gateway_ip":"10.42.0.1"}}"#,
    )
    .unwrap();
    lab.add_pod_port("node1", "default_pod-1", "0a:58:0a:2a:00:0c 10.42.0.12");
    let pod_ns = format!("{}-pod1", lab.netns);
    lab.add_netns(&pod_ns);
    let env = vec![
        ("CNI_COMMAND", "ADD".to_string()),
        ("CNI_CONTAINERID", "c0ffee00c0ffee00c0ffee".to_string()),
        ("CNI_NETNS", format!("/var/run/netns/{pod_ns}")),
        ("CNI_IFNAME", "eth0".to_string()),
        (
            "CNI_ARGS",
            "K8S_POD_NAMESPACE=default;K8S_POD_NAME=pod-1;K8S_POD_UID=u1".to_string(),
        ),
        ("CNI_PATH", "/opt/cni/bin".to_string()),
    ];
    let out = in_ns(&lab, &["cni"], &env, &conf.to_string());
    assert!(
        out.status.success(),
        "ADD failed: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let result: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(result["ips"][0]["address"], "10.42.0.12/24");
    assert_eq!(
        lab.exec_in(&pod_ns, "ip", &["route"]),
        "default via 10.42.0.1 dev eth0 \n10.42.0.0/24 dev eth0 proto kernel scope link src 10.42.0.12 \n"
    );

    // Bad input: an error JSON with the spec code on stdout and a failing exit status.
    let out = in_ns(&lab, &["cni"], &env[1..], &conf.to_string());
    assert!(!out.status.success());
    let err: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(err["code"], 4);
    assert!(err["msg"].as_str().unwrap().contains("CNI_COMMAND"));

    let mut del = env.clone();
    del[0].1 = "DEL".into();
    let out = in_ns(&lab, &["cni"], &del, &conf.to_string());
    assert!(out.status.success() && out.stdout.is_empty());
    assert!(!lab
        .vsctl(&["list-ports", "br-int"])
        .contains("c0ffee00c0ffee0"));
}

/// Runtimes exec the plugin by its file name in the CNI bin dir, with no arguments.
#[test]
fn the_binary_linked_as_the_upstream_plugin_name_is_the_cni_plugin() {
    let dir = std::env::temp_dir().join(format!("ovnkube-rs-cni-name-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let link = dir.join("ovn-k8s-cni-overlay");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(BIN, &link).unwrap();
    let out = run_with_stdin(
        Command::new(&link).env("CNI_COMMAND", "VERSION"),
        br#"{"cniVersion":"1.0.0"}"#,
    );
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["cniVersion"], "1.0.0");
    assert!(v["supportedVersions"].as_array().unwrap().len() >= 2);
}
