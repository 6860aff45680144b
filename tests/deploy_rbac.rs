//! deploy/microshift/rbac.yaml grants exactly what ovnkube-rs uses. The e2e lab runs the real
//! controller (with leader election) and the real node agent, each with a kubeconfig whose token
//! names its ServiceAccount, through every path that touches the API: start-up lists and
//! watches, a new pod (its address annotation, then the CNI plugin reading it), a new node (its
//! subnet annotation), a Service with bad input (a Warning Event), Lease renewals. The API test
//! server records each (user, verb, group, resource); the rules bound to each ServiceAccount
//! must grant every request of the processes running as it, and every rule must be used.

mod e2e_common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use e2e_common::{eventually, E2eLab, CONTROLLER_USER, NODE_USER};
use serde::Deserialize as _;
use serde_yaml::Value;

const BIN: &str = env!("CARGO_BIN_EXE_ovnkube-rs");
const RBAC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/microshift/rbac.yaml");
const MASTER_CONTAINER: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/deploy/microshift/ovnkube-master-container.yaml"
);

/// (verb, API group, resource[/subresource]).
type Permission = (String, String, String);

fn strings(v: &Value) -> Vec<String> {
    v.as_sequence()
        .map(|s| {
            s.iter()
                .filter_map(|x| x.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// The manifest's objects.
fn documents(path: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap();
    serde_yaml::Deserializer::from_str(&text)
        .map(|d| Value::deserialize(d).unwrap())
        .filter(|v| !v.is_null())
        .collect()
}

/// The permissions each ServiceAccount user (`system:serviceaccount:<ns>:<name>`) gets from the
/// (Cluster)Roles its bindings refer to. A Role counts for any namespace: the records carry no
/// namespace (the controller's Lease lives in its --ovn-config-namespace).
fn grants(objects: &[Value]) -> BTreeMap<String, BTreeSet<Permission>> {
    let mut roles: BTreeMap<(String, String), BTreeSet<Permission>> = BTreeMap::new();
    for o in objects {
        let kind = o["kind"].as_str().unwrap_or_default();
        if kind != "ClusterRole" && kind != "Role" {
            continue;
        }
        let name = o["metadata"]["name"].as_str().unwrap().to_owned();
        let set = roles.entry((kind.to_owned(), name.clone())).or_default();
        for rule in o["rules"].as_sequence().unwrap() {
            let (groups, resources, verbs) = (
                strings(&rule["apiGroups"]),
                strings(&rule["resources"]),
                strings(&rule["verbs"]),
            );
            for word in groups.iter().chain(&resources).chain(&verbs) {
                assert_ne!(
                    word, "*",
                    "{kind} {name}: wildcards grant more than is used"
                );
            }
            for g in &groups {
                for r in &resources {
                    for v in &verbs {
                        set.insert((v.clone(), g.clone(), r.clone()));
                    }
                }
            }
        }
    }
    let mut by_user: BTreeMap<String, BTreeSet<Permission>> = BTreeMap::new();
    for o in objects {
        let kind = o["kind"].as_str().unwrap_or_default();
        if kind != "ClusterRoleBinding" && kind != "RoleBinding" {
            continue;
        }
        let role_ref = &o["roleRef"];
        let key = (
            role_ref["kind"].as_str().unwrap().to_owned(),
            role_ref["name"].as_str().unwrap().to_owned(),
        );
        let granted = roles
            .get(&key)
            .unwrap_or_else(|| panic!("binding to a role the manifest lacks: {key:?}"));
        for s in o["subjects"].as_sequence().unwrap() {
            assert_eq!(s["kind"].as_str(), Some("ServiceAccount"));
            let user = format!(
                "system:serviceaccount:{}:{}",
                s["namespace"].as_str().unwrap(),
                s["name"].as_str().unwrap()
            );
            by_user.entry(user).or_default().extend(granted.clone());
        }
    }
    by_user
}

/// The permissions `users` used, from the API test server's records.
fn used_by(lab: &E2eLab, users: &[&str]) -> BTreeSet<Permission> {
    lab.api_requests()
        .into_iter()
        .filter(|r| users.contains(&r.user.as_str()))
        .map(|r| (r.verb, r.group, r.resource))
        .collect()
}

/// Drives the controller and the node agent through every path that talks to the API.
fn exercise(lab: &mut E2eLab) {
    lab.exercise_api("rbac");
    // The Lease renewed at least once (the retry period is 1 s here).
    eventually("a Lease renewal", Duration::from_secs(30), || {
        used_by(lab, &[CONTROLLER_USER]).contains(&(
            "update".into(),
            "coordination.k8s.io".into(),
            "leases".into(),
        ))
    });
    assert!(lab.daemons_alive(), "a daemon exited");
}

fn describe(set: &BTreeSet<Permission>) -> Vec<String> {
    set.iter()
        .map(|(v, g, r)| format!("{v} {}/{r}", if g.is_empty() { "core" } else { g }))
        .collect()
}

#[test]
fn rbac_grants_exactly_what_the_controller_and_node_agent_use() {
    let mut lab = E2eLab::start_with(
        Path::new(BIN),
        &[
            "--leader-election=true",
            "--lease-duration-seconds=3",
            "--lease-retry-seconds=1",
        ],
    );
    exercise(&mut lab);
    let grants = grants(&documents(RBAC));
    // MicroShift's master container runs the node agent in the controller's process.
    let master = std::fs::read_to_string(MASTER_CONTAINER).unwrap();
    assert!(master.contains("--init-node"), "{master}");
    let processes_of = [
        (CONTROLLER_USER, vec![CONTROLLER_USER, NODE_USER]),
        (NODE_USER, vec![NODE_USER]),
    ];
    for (service_account, processes) in processes_of {
        let used = used_by(&lab, &processes);
        let granted = grants.get(service_account).cloned().unwrap_or_default();
        eprintln!("{service_account} uses {:?}", describe(&used));
        let missing: BTreeSet<_> = used.difference(&granted).cloned().collect();
        let unused: BTreeSet<_> = granted.difference(&used).cloned().collect();
        assert!(
            missing.is_empty(),
            "{service_account}: used but not granted: {:?}",
            describe(&missing)
        );
        assert!(
            unused.is_empty(),
            "{service_account}: granted but never used: {:?}",
            describe(&unused)
        );
    }
}
