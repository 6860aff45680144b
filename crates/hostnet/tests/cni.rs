//! The CNI plugin against real pod namespaces, a real br-int on the OVS userspace datapath and
//! a real ovn-controller that reports ports installed; pods then ping each other through OVN.

use std::collections::BTreeMap;

use std::path::Path;

use ovnkube_hostnet::cni::{
    self, CniArgs, CniError, PodAnnotation, ERR_DECODE, ERR_INVALID_ENV, ERR_TRY_AGAIN,
};
use ovnkube_hostnet::nodelab::{Layout, NodeLab};

/// These tests read annotations through the `podNetworksDir` seam; the API is never asked.
fn no_api(_: &Path, pod: &CniArgs) -> Result<PodAnnotation, CniError> {
    panic!(
        "no API server in this test, yet {}/{} was looked up",
        pod.namespace, pod.name
    )
}

struct Pod {
    name: &'static str,
    netns: String,
    container_id: String,
}

fn env(command: &str, pod: &Pod) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("CNI_COMMAND".into(), command.into()),
        ("CNI_CONTAINERID".into(), pod.container_id.clone()),
        ("CNI_NETNS".into(), format!("/var/run/netns/{}", pod.netns)),
        ("CNI_IFNAME".into(), "eth0".into()),
        (
            "CNI_ARGS".into(),
            format!(
                "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME={};K8S_POD_UID=uid-{}",
                pod.name, pod.name
            ),
        ),
        ("CNI_PATH".into(), "/opt/cni/bin".into()),
    ])
}

fn netconf(lab: &NodeLab, annotation_timeout: u64, readiness_timeout: u64) -> String {
    serde_json::json!({
        "cniVersion": "1.0.0",
        "name": "ovn-kubernetes",
        "type": "ovn-k8s-cni-overlay",
        "ovsRunDir": lab.dir(),
        "mtu": 1400,
        "podNetworksDir": lab.dir().join("podnets"),
        "annotationTimeoutSeconds": annotation_timeout,
        "readinessTimeoutSeconds": readiness_timeout,
    })
    .to_string()
}

/// Creates the pod namespace, its logical port in NB and its annotation file (set by hand).
fn pod(lab: &mut NodeLab, name: &'static str, ip: &str, mac: &str, routes: &str) -> Pod {
    let netns = format!("{}-{name}", lab.netns);
    lab.add_netns(&netns);
    let lsp = format!("default_{name}");
    lab.add_pod_port("node1", &lsp, &format!("{mac} {ip}"));
    std::fs::create_dir_all(lab.dir().join("podnets")).unwrap();
    std::fs::write(
        lab.dir().join("podnets").join(&lsp),
        format!(
            r#"{{"default":{{"ip_addresses":["{ip}/24"],"mac_address":"{mac}","gateway_ips":["10.42.0.1"],"routes":[{routes}],"ip_address":"{ip}/24","gateway_ip":"10.42.0.1"}}}}"#
        ),
    )
    .unwrap();
    Pod {
        name,
        netns,
        container_id: format!("{name}0123456789abcdef-sandbox"),
    }
}

#[test]
fn add_wires_pods_like_the_seed_they_ping_and_del_cleans_up() {
    let mut lab = NodeLab::start(Layout::NoUplink);
    lab.nbctl(&["ls-add", "node1"]);
    let p1 = pod(&mut lab, "pod-1", "10.42.0.12", "0a:58:0a:2a:00:0c", "");
    let p2 = pod(
        &mut lab,
        "pod-2",
        "10.42.0.13",
        "0a:58:0a:2a:00:0d",
        r#"{"dest":"10.43.0.0/16","nextHop":"10.42.0.1"}"#,
    );
    let conf = netconf(&lab, 5, 30);

    let out = cni::run(&env("ADD", &p1), &conf, Some(lab.host()), &no_api).expect("ADD pod-1");
    let result: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(result["cniVersion"], "1.0.0");
    assert_eq!(result["ips"][0]["address"], "10.42.0.12/24");
    assert_eq!(result["ips"][0]["gateway"], "10.42.0.1");
    assert_eq!(result["interfaces"][1]["mac"], "0a:58:0a:2a:00:0c");
    cni::run(&env("ADD", &p2), &conf, Some(lab.host()), &no_api).expect("ADD pod-2");

    // The pod's routes are exactly the seed's `ip route` in pod-1.
    let routes = lab.exec_in(&p1.netns, "ip", &["route"]);
    assert_eq!(
        routes,
        "default via 10.42.0.1 dev eth0 \n10.42.0.0/24 dev eth0 proto kernel scope link src 10.42.0.12 \n"
    );
    let routes2 = lab.exec_in(&p2.netns, "ip", &["route"]);
    assert!(
        routes2.contains("10.43.0.0/16 via 10.42.0.1 dev eth0"),
        "{routes2}"
    );
    let eth0 = lab.exec_in(&p1.netns, "ip", &["addr", "show", "eth0"]);
    assert!(
        eth0.contains("link/ether 0a:58:0a:2a:00:0c") && eth0.contains("mtu 1400"),
        "{eth0}"
    );

    let host_if = &p1.container_id[..15];
    let ids = lab.vsctl(&["get", "Interface", host_if, "external_ids"]);
    for want in [
        "iface-id=default_pod-1",
        "iface-id-ver=uid-pod-1",
        "ovn-installed=\"true\"",
        "attached_mac=\"0a:58:0a:2a:00:0c\"",
    ] {
        assert!(ids.contains(want), "missing {want} in {ids}");
    }
    // CHECK passes on a wired pod.
    cni::run(&env("CHECK", &p1), &conf, Some(lab.host()), &no_api).expect("CHECK");

    // Real packets: pod-1 reaches pod-2 through br-int and OVN.
    lab.exec_in(
        &p1.netns,
        "ping",
        &["-c", "2", "-i", "0.2", "-W", "2", "10.42.0.13"],
    );

    // DEL removes the port and the veth, and is idempotent.
    for _ in 0..2 {
        assert_eq!(
            cni::run(&env("DEL", &p1), &conf, Some(lab.host()), &no_api).expect("DEL"),
            ""
        );
    }
    assert!(!lab.vsctl(&["list-ports", "br-int"]).contains(host_if));
    assert!(!lab.exec("ip", &["-o", "link"]).contains(host_if));
    assert!(!lab
        .exec_in(&p1.netns, "ip", &["-o", "link"])
        .contains("eth0"));
    assert!(cni::run(&env("CHECK", &p1), &conf, Some(lab.host()), &no_api).is_err());
}

#[test]
fn bad_input_gives_cni_errors() {
    let mut lab = NodeLab::start(Layout::NoUplink);
    lab.nbctl(&["ls-add", "node1"]);
    let p = pod(&mut lab, "pod-3", "10.42.0.14", "0a:58:0a:2a:00:0e", "");
    let conf = netconf(&lab, 0, 1);

    let mut no_args = env("ADD", &p);
    no_args.remove("CNI_ARGS");
    assert_eq!(
        cni::run(&no_args, &conf, Some(lab.host()), &no_api)
            .unwrap_err()
            .code,
        ERR_INVALID_ENV
    );

    let mut bad_netns = env("ADD", &p);
    bad_netns.insert("CNI_NETNS".into(), "/var/run/netns/does-not-exist".into());
    let err = cni::run(&bad_netns, &conf, Some(lab.host()), &no_api).unwrap_err();
    assert_eq!(err.code, ERR_INVALID_ENV);
    assert!(err.details.contains("does-not-exist"), "{err}");

    assert_eq!(
        cni::run(&env("ADD", &p), "not json", Some(lab.host()), &no_api)
            .unwrap_err()
            .code,
        ERR_DECODE
    );

    // No annotation for this pod: a clear "try again later" error naming the pod.
    std::fs::remove_file(lab.dir().join("podnets/default_pod-3")).unwrap();
    let err = cni::run(&env("ADD", &p), &conf, Some(lab.host()), &no_api).unwrap_err();
    assert_eq!(err.code, ERR_TRY_AGAIN);
    assert!(err.msg.contains("default/pod-3"), "{err}");

    // An annotation but no logical port: ovn-controller never reports the port installed.
    let q = pod(&mut lab, "pod-4", "10.42.0.15", "0a:58:0a:2a:00:0f", "");
    lab.nbctl(&["lsp-del", "default_pod-4"]);
    let err = cni::run(&env("ADD", &q), &conf, Some(lab.host()), &no_api).unwrap_err();
    assert_eq!(err.code, ERR_TRY_AGAIN);
    assert!(err.msg.contains(&q.container_id[..15]), "{err}");
    let json: serde_json::Value = serde_json::from_str(&err.to_json("1.0.0")).unwrap();
    assert_eq!(json["code"], ERR_TRY_AGAIN);

    let version = cni::run(
        &BTreeMap::from([("CNI_COMMAND".into(), "VERSION".into())]),
        "",
        None,
        &no_api,
    )
    .unwrap();
    assert!(version.contains("\"1.0.0\""));
}
