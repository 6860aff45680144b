//! Real packets through the whole node: an external namespace on br-ex's uplink opens a TCP
//! connection to the node's NodePort; iptables DNATs it to the cluster IP, the service route and
//! the br-ex flows hand it to the gateway router, whose load balancer (programmed by
//! `ovnkube-rs sync` from the same objects) sends it to a pod wired by the CNI plugin.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use ovnkube_hostnet::agent::{AgentConfig, NodeAgent};
use ovnkube_hostnet::cni::{self, CniArgs, CniError, PodAnnotation};
use ovnkube_hostnet::nodelab::{Layout, NodeLab};
use ovnkube_hostnet::services::HostService;
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_ovnkube-rs");
const NODE: &str = "microshift-dev";
const POD_NETWORKS: &str = r#"{"default":{"ip_addresses":["10.42.0.13/24"],"mac_address":"0a:58:0a:2a:00:0d","gateway_ips":["10.42.0.1"],"ip_address":"10.42.0.13/24","gateway_ip":"10.42.0.1"}}"#;

fn no_api(_: &Path, pod: &CniArgs) -> Result<PodAnnotation, CniError> {
    panic!(
        "{}/{} must come from podNetworksDir",
        pod.namespace, pod.name
    )
}

/// A process killed by PID on drop.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The node, its agent synced, the NB programmed from the objects and pod-2 serving on :8080.
fn setup() -> (NodeLab, NodeAgent, Killed) {
    let mut lab = NodeLab::start(Layout::Uplink);
    let pod_ns = format!("{}-pod2", lab.netns);
    lab.add_netns(&pod_ns);
    let d = |f: &str| lab.dir().join(f).display().to_string();

    let mut agent = NodeAgent::start(
        lab.host(),
        AgentConfig {
            node_name: NODE.into(),
            node_ip: "192.168.122.14".parse().unwrap(),
            bridge: "br-ex".into(),
            service_cidrs: vec!["10.43.0.0/16".parse().unwrap()],
            cluster_subnets: vec!["10.42.0.0/16".parse().unwrap()],
            node_subnet: "10.42.0.0/24".parse().unwrap(),
            mtu: 1400,
            sb_remote: lab.sb_remote(),
            next_hops: vec![],
            patch_port_timeout: Duration::from_secs(20),
            cni_conf_path: lab.dir().join("net.d/10-ovn-kubernetes.conf"),
            cni_conf_extra: serde_json::Map::new(),
        },
    )
    .expect("agent start");

    // The cluster as the controller sees it: this node (with the agent's annotations), the
    // backend pod, the seed's NodePort service and its endpoints.
    let mut annotations: BTreeMap<String, String> = agent.annotations();
    annotations.insert(
        "k8s.ovn.org/node-subnets".into(),
        r#"{"default":["10.42.0.0/24"]}"#.into(),
    );
    annotations.insert(
        "k8s.ovn.org/node-gateway-router-lrp-ifaddr".into(),
        r#"{"ipv4":"100.64.0.2/16"}"#.into(),
    );
    let objects = json!({"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "v1", "kind": "Node", "metadata": {"name": NODE, "annotations": annotations},
         "status": {"addresses": [{"type": "InternalIP", "address": "192.168.122.14"}]}},
        {"apiVersion": "v1", "kind": "Pod",
         "metadata": {"namespace": "default", "name": "pod-2", "uid": "uid-pod-2",
                      "annotations": {"k8s.ovn.org/pod-networks": POD_NETWORKS}},
         "spec": {"nodeName": NODE, "containers": [{"name": "c", "image": "x"}]},
         "status": {"phase": "Running", "podIP": "10.42.0.13"}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"namespace": "default", "name": "svc-nodeport"},
         "spec": {"type": "NodePort", "clusterIP": "10.43.19.182", "clusterIPs": ["10.43.19.182"],
                  "ports": [{"port": 7000, "nodePort": 30700, "protocol": "TCP", "targetPort": 8080}]}},
        {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
         "metadata": {"namespace": "default", "name": "svc-nodeport-1",
                      "labels": {"kubernetes.io/service-name": "svc-nodeport"}},
         "addressType": "IPv4",
         "endpoints": [{"addresses": ["10.42.0.13"], "conditions": {"ready": true}, "nodeName": NODE}],
         "ports": [{"name": "", "port": 8080, "protocol": "TCP"}]}
    ]});
    std::fs::write(d("objects.json"), objects.to_string()).unwrap();
    let out = Command::new(BIN)
        .args([
            "sync",
            "-f",
            &d("objects.json"),
            &format!("--nb-address=unix:{}", d("ovnnb_db.sock")),
        ])
        .args([
            "--gateway-mode=local",
            "--mtu=1400",
            "--disable-snat-multiple-gws",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "sync: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // Upstream's master also pins the dummy next hop's MAC on the GR's external port.
    lab.nbctl(&[
        "static-mac-binding-add",
        &format!("rtoe-GR_{NODE}"),
        "169.254.169.4",
        "0a:58:a9:fe:a9:04",
    ]);

    agent
        .wait_for_gateway()
        .expect("patch port from ovn-controller");
    let services = [HostService::seed_nodeport()];
    agent.sync(&services).expect("sync");

    // Wire the backend pod with the CNI plugin and start a one-line TCP server in it.
    std::fs::create_dir_all(d("podnets")).unwrap();
    std::fs::write(d("podnets/default_pod-2"), POD_NETWORKS).unwrap();
    let conf = json!({"cniVersion": "1.0.0", "name": "ovn-kubernetes", "type": "ovn-k8s-cni-overlay",
        "ovsRunDir": lab.dir(), "mtu": 1400, "podNetworksDir": d("podnets"), "readinessTimeoutSeconds": 30});
    let env = BTreeMap::from([
        ("CNI_COMMAND".to_string(), "ADD".to_string()),
        ("CNI_CONTAINERID".into(), "pod2sandbox0000000000".into()),
        ("CNI_NETNS".into(), format!("/var/run/netns/{pod_ns}")),
        ("CNI_IFNAME".into(), "eth0".into()),
        (
            "CNI_ARGS".into(),
            "K8S_POD_NAMESPACE=default;K8S_POD_NAME=pod-2;K8S_POD_UID=uid-pod-2".into(),
        ),
    ]);
    cni::run(&env, &conf.to_string(), Some(lab.host()), &no_api).expect("CNI ADD");
    let server = "import socket\ns=socket.socket()\ns.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\ns.bind(('10.42.0.13',8080))\ns.listen(8)\nwhile True:\n  c,a=s.accept()\n  c.sendall(('pod-2 saw %s' % a[0]).encode())\n  c.close()\n";
    let server = Killed(
        Command::new("ip")
            .args(["netns", "exec", &pod_ns, "python3", "-c", server])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    std::thread::sleep(Duration::from_millis(300));
    (lab, agent, server)
}

/// A TCP connection from namespace `ns` (up to `attempts` tries): what the server said, or the error.
fn connect(ns: &str, ip: &str, port: u16, attempts: u32) -> String {
    let c = format!(
        "import socket,time\nfor i in range({attempts}):\n  try:\n    c=socket.create_connection(('{ip}',{port}),timeout=2); print(c.recv(100).decode()); break\n  except OSError as e:\n    err=e; time.sleep(0.2)\nelse: print('ERR', err)\n"
    );
    let out = Command::new("ip")
        .args(["netns", "exec", ns, "python3", "-c", &c])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn host_reaches_the_pod_via_mp0_and_hands_service_traffic_to_the_gateway_router() {
    let (lab, _agent, _server) = setup();
    // Host -> pod: route via ovn-k8s-mp0, SNAT to the management port address.
    assert_eq!(
        connect(&lab.netns, "10.42.0.13", 8080, 10),
        "pod-2 saw 10.42.0.2"
    );
    // Host -> cluster IP: br-ex SNATs to 169.254.169.2 (zone 64001) and the GR's load
    // balancer DNATs to the backend.
    let _ = connect(&lab.netns, "10.43.19.182", 7000, 1);
    let ct = lab.exec("ovs-appctl", &["dpctl/dump-conntrack"]);
    assert!(
        ct.lines().any(|l| l.contains("dst=10.43.19.182,")
            && l.contains("reply=(src=10.43.19.182,dst=169.254.169.2")
            && l.contains("zone=64001")),
        "{ct}"
    );
    assert!(
        ct.lines()
            .any(|l| l.contains("orig=(src=169.254.169.2,dst=10.42.0.13")
                && l.contains("dport=8080")),
        "{ct}"
    );
}

/// The whole path: br-ex -> GR (DNAT, force-SNAT to the join IP) -> pod and back. It takes
/// seven recirculations in one userspace-datapath pass (Open vSwitch >= 3.5, see
/// hack/ovs-datapath.sh) and the GR join-IP route on ovn_cluster_router for the reply.
#[test]
fn external_client_reaches_a_pod_through_the_nodeport() {
    ovnkube_hostnet::nodelab::require_gateway_capable_datapath();
    let (lab, _agent, _server) = setup();
    let ext = lab.external_netns.clone().unwrap();
    let said = connect(&ext, "192.168.122.14", 30700, 10);
    assert!(
        said.starts_with("pod-2 saw "),
        "external -> NodePort failed: {said}"
    );
}
