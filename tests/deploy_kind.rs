//! deploy/kind/ and e2e/kind/ cannot run here (no kind, no registry); this checks what can be
//! checked without them: every manifest parses, the controller's and the node agent's arguments
//! are accepted by the binary's parsers (the controller's with the ConfigMap's ovnkube.conf, as
//! `render` shares its parser), and the pieces agree with each other: subnets, ServiceAccounts,
//! scripts, metrics ports.

use std::collections::BTreeSet;
use std::process::Command;

use serde::Deserialize as _;
use serde_yaml::Value;

const BIN: &str = env!("CARGO_BIN_EXE_ovnkube-rs");
const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const SEED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/seed/cluster.yaml");

fn documents(path: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(format!("{ROOT}/{path}")).unwrap();
    serde_yaml::Deserializer::from_str(&text)
        .map(|d| Value::deserialize(d).unwrap_or_else(|e| panic!("{path}: {e}")))
        .filter(|v| !v.is_null())
        .collect()
}

fn object<'a>(objects: &'a [Value], kind: &str, name: &str) -> &'a Value {
    objects
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name}"))
}

fn container<'a>(workload: &'a Value, name: &str) -> &'a Value {
    workload["spec"]["template"]["spec"]["containers"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no container {name}"))
}

/// The container's args with Kubernetes' `$(VAR)` references replaced as the pod would see them.
fn args(c: &Value, vars: &[(&str, &str)]) -> Vec<String> {
    c["args"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|a| {
            vars.iter()
                .fold(a.as_str().unwrap().to_owned(), |a, (k, v)| {
                    a.replace(&format!("$({k})"), v)
                })
        })
        .collect()
}

fn flag<'a>(args: &'a [String], name: &str) -> &'a str {
    args.iter()
        .find_map(|a| a.strip_prefix(&format!("--{name}=")))
        .unwrap_or_else(|| panic!("no --{name} in {args:?}"))
}

fn manifests() -> Vec<Value> {
    documents("deploy/kind/ovnkube-rs.yaml")
}

#[test]
fn the_controller_flags_and_config_are_accepted() {
    let objects = manifests();
    let conf_text = object(&objects, "ConfigMap", "ovnkube-config")["data"]["ovnkube.conf"]
        .as_str()
        .unwrap()
        .to_owned();
    let dir = std::env::temp_dir().join(format!("ovnkube-rs-kind-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let conf = dir.join("ovnkube.conf");
    std::fs::write(&conf, &conf_text).unwrap();
    let master = object(&objects, "Deployment", "ovnkube-master");
    let args: Vec<String> = args(
        container(master, "ovnkube-controller"),
        &[("K8S_NODE", "microshift-dev")],
    )
    .into_iter()
    .map(|a| a.replace("/run/ovnkube-config/ovnkube.conf", conf.to_str().unwrap()))
    .collect();
    assert_eq!(args[0], "controller");
    let out = Command::new(BIN)
        .args(["render", "-f", SEED])
        .args(&args[1..])
        .output()
        .unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{args:?}: {stderr}");
    assert!(!stderr.contains("unknown flag"), "{stderr}");
    // The seed's rows: the config's subnets are MicroShift's, like the kind cluster's.
    assert!(String::from_utf8_lossy(&out.stdout).contains("10.42.0.1/24"));
}

#[test]
fn the_node_agent_flags_are_accepted() {
    let objects = manifests();
    let node = object(&objects, "DaemonSet", "ovnkube-node");
    let args = args(
        container(node, "ovnkube-node"),
        &[
            ("K8S_NODE", "kind-worker"),
            ("CONTROL_PLANE_IP", "172.18.0.2"),
        ],
    );
    assert_eq!(args[..2], ["/usr/bin/ovnkube-rs", "node"]);
    // clap stops at --help only after every earlier flag and value parsed.
    let out = Command::new(BIN)
        .args(&args[1..])
        .arg("--help")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_pieces_agree() {
    let objects = manifests();
    let kind = &documents("deploy/kind/kind-config.yaml")[0];
    let networking = &kind["networking"];
    assert_eq!(networking["disableDefaultCNI"].as_bool(), Some(true));
    let (pods, services) = (
        networking["podSubnet"].as_str().unwrap(),
        networking["serviceSubnet"].as_str().unwrap(),
    );
    let conf = object(&objects, "ConfigMap", "ovnkube-config")["data"]["ovnkube.conf"]
        .as_str()
        .unwrap();
    assert!(
        conf.contains(&format!("cluster-subnets=\"{pods}\"")),
        "{conf}"
    );
    assert!(
        conf.contains(&format!("service-cidrs=\"{services}\"")),
        "{conf}"
    );
    let daemonset = object(&objects, "DaemonSet", "ovnkube-node");
    let node_args = args(container(daemonset, "ovnkube-node"), &[]);
    assert_eq!(flag(&node_args, "cluster-subnets"), pods);
    assert_eq!(flag(&node_args, "k8s-service-cidrs"), services);

    // The ServiceAccounts come from deploy/microshift/rbac.yaml.
    let rbac = documents("deploy/microshift/rbac.yaml");
    for workload in objects
        .iter()
        .filter(|o| o["spec"]["template"].is_mapping())
    {
        let sa = workload["spec"]["template"]["spec"]["serviceAccountName"]
            .as_str()
            .unwrap();
        object(&rbac, "ServiceAccount", sa);
    }

    // Every script a container runs is in deploy/kind/scripts (the ConfigMap create.sh makes).
    let scripts: BTreeSet<String> = std::fs::read_dir(format!("{ROOT}/deploy/kind/scripts"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let text = std::fs::read_to_string(format!("{ROOT}/deploy/kind/ovnkube-rs.yaml")).unwrap();
    let used: BTreeSet<String> = text
        .split("/scripts/")
        .skip(1)
        .map(|s| {
            s.split(|c: char| c == '"' || c.is_whitespace())
                .next()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert!(!used.is_empty());
    assert!(used.is_subset(&scripts), "{used:?} vs {scripts:?}");

    // Metrics: the flag, the named container port, the headless Service and prometheus.yml.
    let prometheus = &documents("deploy/monitoring/prometheus.yml")[0];
    let master = object(&objects, "Deployment", "ovnkube-master");
    let controller_args = args(container(master, "ovnkube-controller"), &[]);
    for (c, port_name, flag_args, service) in [
        (
            container(master, "ovnkube-controller"),
            "controller-metrics",
            &controller_args,
            "ovnkube-rs-controller-metrics",
        ),
        (
            container(daemonset, "ovnkube-node"),
            "node-metrics",
            &node_args,
            "ovnkube-rs-node-metrics",
        ),
    ] {
        let port = flag(flag_args, "metrics-bind-address")
            .rsplit(':')
            .next()
            .unwrap()
            .parse::<u64>()
            .unwrap();
        assert!(
            c["ports"]
                .as_sequence()
                .unwrap()
                .iter()
                .any(|p| p["name"] == port_name && p["containerPort"].as_u64() == Some(port)),
            "{port_name}"
        );
        let svc = object(&objects, "Service", service);
        assert_eq!(svc["spec"]["clusterIP"].as_str(), Some("None"));
        assert_eq!(svc["spec"]["ports"][0]["port"].as_u64(), Some(port));
        let discovered = prometheus["scrape_configs"]
            .as_sequence()
            .unwrap()
            .iter()
            .flat_map(|j| {
                j["dns_sd_configs"]
                    .as_sequence()
                    .cloned()
                    .unwrap_or_default()
            })
            .any(|sd| {
                sd["port"].as_u64() == Some(port)
                    && sd["names"][0].as_str().is_some_and(|n| {
                        n.starts_with(&format!("{service}.openshift-ovn-kubernetes."))
                    })
            });
        assert!(
            discovered,
            "prometheus.yml does not discover {service}:{port}"
        );
    }

    // The e2e workloads parse and expose the NodePort run.sh checks.
    let workloads = documents("e2e/kind/workloads.yaml");
    let nodeport = object(&workloads, "Service", "server-nodeport");
    let run = std::fs::read_to_string(format!("{ROOT}/e2e/kind/run.sh")).unwrap();
    let port = nodeport["spec"]["ports"][0]["nodePort"].as_u64().unwrap();
    assert!(run.contains(&format!("NODE_PORT={port}")));
}
