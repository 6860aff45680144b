//! Test helpers: the real NB schema, the seed fixture, and a small in-memory executor of
//! operations with OVSDB's semantics (named-uuids, set mutations, garbage collection of
//! unreferenced non-root rows, weak references dropped with their target), so a diff can be
//! applied and diffed again without a server. The integration tests use the real server.

#![allow(dead_code)]

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use ovnkube_desired::{Config, Desired, OwnerKey, Snapshot};
use ovsdb::ops::{Condition, Function, Mutator, Operation};
use ovsdb::replica::Replica;
use ovsdb::schema::DatabaseSchema;
use ovsdb::{Atom, Datum, Row, Uuid};
use serde_json::json;

pub fn nb_replica() -> Replica {
    let schema =
        DatabaseSchema::from_json_str(include_str!("../../testdata/ovn-nb.ovsschema")).unwrap();
    Replica::new(Arc::new(schema), vec!["k8s.ovn.org/owner".into()])
}

pub fn seed_snapshot() -> Snapshot {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../fixtures/seed/cluster.yaml"
    );
    let (s, _, errors) = Snapshot::from_yaml(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert!(errors.is_empty());
    s
}

fn generated_node(i: usize) -> serde_json::Value {
    let name = format!("node-{i}");
    let l3 = json!({"default": {"mode": "local", "interface-id": format!("br-ex_{name}"),
        "mac-address": "52:54:00:e2:ed:d0", "ip-addresses": [format!("192.168.{}.{}/16", i / 250, i % 250 + 2)],
        "next-hops": ["192.168.0.1"], "node-port-enable": "true", "vlan-id": "0"}});
    json!({"kind": "Node", "metadata": {"name": name, "annotations": {
        "k8s.ovn.org/node-subnets": json!({"default": [format!("10.42.{i}.0/24")]}).to_string(),
        "k8s.ovn.org/l3-gateway-config": l3.to_string(),
        "k8s.ovn.org/node-chassis-id": format!("00000000-0000-0000-0000-{i:012}"),
        "k8s.ovn.org/node-gateway-router-lrp-ifaddr": json!({"ipv4": format!("100.64.{}.{}/16", (i + 2) / 256, (i + 2) % 256)}).to_string(),
        "k8s.ovn.org/node-mgmt-port-mac-address": "76:3a:81:5a:05:d7"}}})
}

fn generated_pod(n: usize, p: usize) -> serde_json::Value {
    let ip = format!("10.42.{n}.{}", p + 3);
    let net = json!({"default": {"ip_addresses": [format!("{ip}/24")], "mac_address": format!("0a:58:0a:2a:{n:02x}:{:02x}", p + 3)}});
    json!({"kind": "Pod", "metadata": {"name": format!("pod-{n}-{p}"), "namespace": "bench",
        "annotations": {"k8s.ovn.org/pod-networks": net.to_string()}},
        "spec": {"nodeName": format!("node-{n}"), "containers": []}, "status": {"phase": "Running"}})
}

fn generated_service(s: usize, nodes: usize, pods: usize) -> [serde_json::Value; 2] {
    let name = format!("svc-{s}");
    let eps: Vec<serde_json::Value> = (0..2)
        .map(|k| {
            let n = (s + k) % nodes;
            json!({"addresses": [format!("10.42.{n}.{}", (s + k) % pods + 3)], "conditions": {"ready": true}})
        })
        .collect();
    let mut spec = json!({"clusterIP": format!("10.43.{}.{}", s / 250, s % 250 + 2), "ports": [{"port": 80, "protocol": "TCP"}]});
    if s % 10 == 0 {
        spec["type"] = json!("NodePort");
        spec["ports"][0]["nodePort"] = json!(30000 + s);
    }
    [
        json!({"kind": "Service", "metadata": {"name": name, "namespace": "bench"}, "spec": spec}),
        json!({"kind": "EndpointSlice", "metadata": {"name": format!("{name}-x"), "namespace": "bench",
            "labels": {"kubernetes.io/service-name": name}},
            "addressType": "IPv4", "endpoints": eps, "ports": [{"name": "", "port": 8080, "protocol": "TCP"}]}),
    ]
}

/// A generated cluster: `nodes` nodes with `pods` pods each, `services` services with two
/// endpoints (every tenth a NodePort).
pub fn generated_snapshot(nodes: usize, pods: usize, services: usize) -> Snapshot {
    let mut objects = Vec::new();
    for n in 0..nodes {
        objects.push(generated_node(n));
        objects.extend((0..pods).map(|p| generated_pod(n, p)));
    }
    for s in 0..services {
        objects.extend(generated_service(s, nodes, pods));
    }
    let (snapshot, _, errors) = Snapshot::from_objects(objects);
    assert!(errors.is_empty(), "{errors:?}");
    snapshot
}

pub fn microshift_config() -> Config {
    Config::microshift()
}

fn resolve(d: &Datum, names: &HashMap<String, Uuid>) -> Datum {
    let r = |a: &Atom| match a {
        Atom::NamedUuid(n) => Atom::Uuid(
            *names
                .get(&**n)
                .unwrap_or_else(|| panic!("unknown named-uuid {n}")),
        ),
        a => a.clone(),
    };
    match d {
        Datum::Set(s) => Datum::Set(s.iter().map(r).collect()),
        Datum::Map(m) => Datum::Map(m.iter().map(|(k, v)| (r(k), r(v))).collect()),
    }
}

fn matching(
    replica: &Replica,
    table: &str,
    conds: &[Condition],
    names: &HashMap<String, Uuid>,
) -> Vec<Uuid> {
    let Some(t) = replica.table(table) else {
        return vec![];
    };
    t.rows()
        .filter(|(u, row)| {
            conds.iter().all(|c| {
                let want = resolve(&c.value, names);
                let have = row.get(&c.column).cloned().unwrap_or_default();
                match (c.column.as_str(), c.function) {
                    ("_uuid", _) => want == Datum::scalar(**u),
                    (_, Function::Includes) => {
                        want.pairs().all(|(k, v)| have.pairs().any(|p| p == (k, v)))
                    }
                    _ => have == want,
                }
            })
        })
        .map(|(u, _)| *u)
        .collect()
}

/// Applies a transaction; panics where the server would fail it.
pub fn apply(replica: &mut Replica, ops: &[Operation]) {
    let mut names = HashMap::new();
    for op in ops {
        if let Operation::Insert {
            uuid_name: Some(n), ..
        } = op
        {
            assert!(
                names.insert(n.clone(), Uuid::new_v4()).is_none(),
                "duplicate uuid-name {n}"
            );
        }
    }
    for op in ops {
        match op {
            Operation::Wait {
                table,
                conditions,
                until_equal: false,
                rows,
                ..
            } => {
                let found = matching(replica, table, conditions, &names);
                assert!(
                    found.len() != rows.len(),
                    "wait on {table} {conditions:?} fails: a duplicate exists"
                );
            }
            Operation::Insert {
                table,
                row,
                uuid_name,
            } => {
                let u = names[uuid_name.as_ref().unwrap()];
                let row: Row = row.iter().map(|(c, v)| (c, resolve(v, &names))).collect();
                replica.put(table, u, row);
            }
            Operation::Update {
                table,
                conditions,
                row,
            } => {
                for u in matching(replica, table, conditions, &names) {
                    let mut cur = replica.get(table, &u).unwrap().clone();
                    for (c, v) in row {
                        cur.insert(c, resolve(v, &names));
                    }
                    replica.put(table, u, cur);
                }
            }
            Operation::Mutate {
                table,
                conditions,
                mutations,
            } => {
                let found = matching(replica, table, conditions, &names);
                assert_eq!(
                    found.len(),
                    1,
                    "mutate of {table} {conditions:?} matched {}",
                    found.len()
                );
                let mut cur = replica.get(table, &found[0]).unwrap().clone();
                for m in mutations {
                    let Datum::Set(v) = resolve(&m.value, &names) else {
                        panic!("map mutation")
                    };
                    let col = cur.get_or_insert_with(&m.column, Datum::empty_set);
                    let Datum::Set(s) = col else {
                        panic!("set mutation of a map")
                    };
                    *s = match m.mutator {
                        Mutator::Insert => s.iter().chain(&v).cloned().collect(),
                        Mutator::Delete => s.iter().filter(|a| !v.contains(a)).cloned().collect(),
                        other => panic!("unexpected mutator {other:?}"),
                    };
                }
                replica.put(table, found[0], cur);
            }
            Operation::Delete { table, conditions } => {
                let found = matching(replica, table, conditions, &names);
                assert_eq!(found.len(), 1, "delete of {table} {conditions:?}");
                replica.remove(table, found[0]);
            }
            other => panic!("unexpected op {other:?}"),
        }
    }
    garbage_collect(replica);
}

fn all_rows(replica: &Replica) -> Vec<(String, Uuid)> {
    replica
        .schema()
        .tables
        .keys()
        .flat_map(|t| {
            replica
                .table(t)
                .into_iter()
                .flat_map(move |tab| tab.rows().map(move |(u, _)| (t.clone(), *u)))
        })
        .collect()
}

fn garbage_collect(replica: &mut Replica) {
    loop {
        let rows = all_rows(replica);
        let exists: std::collections::HashSet<Uuid> = rows.iter().map(|(_, u)| *u).collect();
        let mut referenced = std::collections::HashSet::new();
        let mut changed = false;
        for (t, u) in &rows {
            let row = replica.get(t, u).unwrap().clone();
            let mut new = row.clone();
            for (c, d) in &row {
                // Drop dangling references (weak ones vanish with their target).
                if let Datum::Set(s) = d {
                    let kept: ovsdb::datum::AtomSet = s
                        .iter()
                        .filter(|a| a.as_uuid().is_none_or(|x| exists.contains(&x)))
                        .cloned()
                        .collect();
                    let strong = replica
                        .schema()
                        .table(t)
                        .and_then(|tab| tab.columns.get(c))
                        .is_some_and(|col| {
                            col.kind.key.ref_table.is_some() && col.kind.key.ref_strong
                        });
                    if strong {
                        referenced.extend(kept.iter().filter_map(Atom::as_uuid));
                    }
                    if kept.len() != s.len() {
                        new.insert(c, Datum::Set(kept));
                    }
                }
            }
            if new != row {
                replica.put(t, *u, new);
                changed = true;
            }
        }
        for (t, u) in rows {
            let root = replica.schema().table(&t).is_some_and(|s| s.is_root);
            if !root && !referenced.contains(&u) {
                replica.remove(&t, u);
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
}

/// The rows and links of `desired` that belong to `keys`.
pub fn of_keys(desired: &Desired, keys: &BTreeSet<OwnerKey>) -> Desired {
    Desired {
        rows: desired
            .rows
            .iter()
            .filter(|(_, r)| keys.contains(&r.owner))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        links: desired
            .links
            .iter()
            .filter(|l| keys.contains(&l.owner))
            .cloned()
            .collect(),
    }
}
