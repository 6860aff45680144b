//! The reconciler's rules on hand-built replicas (no server).

mod common;

use std::collections::BTreeSet;

use common::{apply, generated_snapshot, microshift_config, nb_replica, of_keys, seed_snapshot};
use ovnkube_desired::names::*;
use ovnkube_desired::{desired_cluster, Desired, OwnerKey};
use ovnkube_reconcile::{diff, diff_owned, Diff, Scope};
use ovsdb::ops::{Mutator, Operation};
use ovsdb::replica::Replica;
use ovsdb::{Datum, Row, Uuid};

fn seed_desired() -> Desired {
    let (d, errors) = desired_cluster(&microshift_config(), &seed_snapshot());
    assert!(errors.is_empty());
    d
}

fn converged() -> Replica {
    let mut r = nb_replica();
    let d = diff(&seed_desired(), &r, &Scope::Full);
    assert!(d.issues.is_empty(), "{:?}", d.issues);
    apply(&mut r, &d.ops);
    r
}

fn uuid_of(r: &Replica, table: &str, name: &str) -> Uuid {
    r.table(table)
        .unwrap()
        .by_name(name)
        .next()
        .unwrap_or_else(|| panic!("{table} {name}"))
}

fn names(r: &Replica, table: &str) -> BTreeSet<String> {
    r.table(table)
        .map(|t| t.rows().map(|(_, row)| row["name"].to_string()).collect())
        .unwrap_or_default()
}

fn kinds(d: &Diff) -> Vec<String> {
    d.ops
        .iter()
        .map(|o| match o {
            Operation::Wait { table, .. } => format!("wait {table}"),
            Operation::Insert { table, .. } => format!("insert {table}"),
            Operation::Update { table, row, .. } => {
                format!("update {table} {:?}", row.keys().collect::<Vec<_>>())
            }
            Operation::Mutate {
                table, mutations, ..
            } => {
                let m: Vec<String> = mutations
                    .iter()
                    .map(|m| {
                        format!(
                            "{} {}{}",
                            m.column,
                            if m.mutator == Mutator::Insert {
                                "+"
                            } else {
                                "-"
                            },
                            m.value
                        )
                    })
                    .collect();
                format!("mutate {table} {}", m.join(" "))
            }
            Operation::Delete { table, .. } => format!("delete {table}"),
            o => format!("{o:?}"),
        })
        .collect()
}

#[test]
fn empty_nb_gets_everything_in_one_transaction_and_then_converges() {
    let r = nb_replica();
    let d = diff(&seed_desired(), &r, &Scope::Full);
    let k = kinds(&d);
    // Guarded inserts: switches, routers, load balancers, policies.
    assert_eq!(
        k.iter().filter(|s| s.starts_with("wait")).count(),
        3 + 2 + 6 + 1,
        "{k:?}"
    );
    // Everything is new, so no mutate is needed: members go straight into their parents' inserts.
    assert!(
        k.iter()
            .all(|s| s.starts_with("wait") || s.starts_with("insert")),
        "{k:?}"
    );
    let r = converged();
    assert_eq!(
        names(&r, LOGICAL_SWITCH),
        BTreeSet::from([
            "ext_microshift-dev".into(),
            "join".into(),
            "microshift-dev".into()
        ])
    );
    assert_eq!(
        names(&r, LOGICAL_ROUTER),
        BTreeSet::from(["GR_microshift-dev".into(), "ovn_cluster_router".into()])
    );
    let again = diff(&seed_desired(), &r, &Scope::Full);
    assert!(again.ops.is_empty(), "{:?}", kinds(&again));
    // Every child is reachable from its parent (nothing was garbage collected).
    assert_eq!(r.table(NAT).unwrap().len(), 5);
    // GR: 3; ovn_cluster_router: the node subnet src-ip route and the GR join-IP route.
    assert_eq!(r.table(STATIC_ROUTE).unwrap().len(), 5);
    assert_eq!(r.table(GATEWAY_CHASSIS).unwrap().len(), 1);
    assert_eq!(r.table(LOGICAL_SWITCH_PORT).unwrap().len(), 11);
}

#[test]
fn a_changed_column_is_one_update_of_that_column() {
    let mut r = converged();
    let gr = uuid_of(&r, LOGICAL_ROUTER, "GR_microshift-dev");
    let mut row = r.get(LOGICAL_ROUTER, &gr).unwrap().clone();
    row.insert("options", Datum::map([("chassis", "other")]));
    r.put(LOGICAL_ROUTER, gr, row);
    let d = diff(&seed_desired(), &r, &Scope::Full);
    assert_eq!(kinds(&d), ["update Logical_Router [\"options\"]"]);
    apply(&mut r, &d.ops);
    assert!(diff(&seed_desired(), &r, &Scope::Full).ops.is_empty());
}

fn add_foreign_rows(r: &mut Replica, node_switch: &str) {
    let row = |cols: &[(&str, Datum)]| -> Row {
        cols.iter()
            .map(|(c, v)| ((*c).to_owned(), v.clone()))
            .collect()
    };
    // A load balancer of someone else, a switch, a port on our node switch, a route and a
    // policy on ovn_cluster_router that do not follow our patterns, a NAT on the cluster router.
    let lb = Uuid::new_v4();
    r.put(
        LOAD_BALANCER,
        lb,
        row(&[
            ("name", Datum::scalar("mine")),
            ("vips", Datum::map([("1.1.1.1:80", "2.2.2.2:80")])),
        ]),
    );
    r.put(
        LOGICAL_SWITCH,
        Uuid::new_v4(),
        row(&[("name", Datum::scalar("foreign-switch"))]),
    );
    let lsp = Uuid::new_v4();
    r.put(
        LOGICAL_SWITCH_PORT,
        lsp,
        row(&[
            ("name", Datum::scalar("vm-port")),
            ("addresses", Datum::set(["unknown"])),
        ]),
    );
    let route = Uuid::new_v4();
    r.put(
        STATIC_ROUTE,
        route,
        row(&[
            ("ip_prefix", Datum::scalar("192.0.2.0/24")),
            ("nexthop", Datum::scalar("10.42.0.99")),
        ]),
    );
    let policy = Uuid::new_v4();
    r.put(
        POLICY,
        policy,
        row(&[
            ("priority", Datum::scalar(1004i64)),
            ("match", Datum::scalar("ip4.src == 1.2.3.4")),
            ("action", Datum::scalar("allow")),
        ]),
    );
    let sw = uuid_of(r, LOGICAL_SWITCH, node_switch);
    let cr = uuid_of(r, LOGICAL_ROUTER, CLUSTER_ROUTER);
    let mut s = r.get(LOGICAL_SWITCH, &sw).unwrap().clone();
    for (col, u) in [("ports", lsp), ("load_balancer", lb)] {
        let Datum::Set(set) = s.get_or_insert_with(col, Datum::empty_set) else {
            panic!()
        };
        set.insert(u.into());
    }
    r.put(LOGICAL_SWITCH, sw, s);
    let mut c = r.get(LOGICAL_ROUTER, &cr).unwrap().clone();
    for (col, u) in [("static_routes", route), ("policies", policy)] {
        let Datum::Set(set) = c.get_or_insert_with(col, Datum::empty_set) else {
            panic!()
        };
        set.insert(u.into());
    }
    r.put(LOGICAL_ROUTER, cr, c);
}

#[test]
fn foreign_rows_survive_a_full_sync() {
    let mut r = converged();
    add_foreign_rows(&mut r, "microshift-dev");
    let d = diff(&seed_desired(), &r, &Scope::Full);
    assert!(d.ops.is_empty(), "{:?}", kinds(&d));
    // Even when every node, pod and service is gone.
    let (cluster_only, _) =
        desired_cluster(&microshift_config(), &ovnkube_desired::Snapshot::default());
    let d = diff(&cluster_only, &r, &Scope::Full);
    apply(&mut r, &d.ops);
    assert_eq!(
        names(&r, LOGICAL_SWITCH),
        BTreeSet::from(["foreign-switch".into(), "join".into()])
    );
    assert_eq!(names(&r, LOAD_BALANCER), BTreeSet::from(["mine".into()]));
    let cr = r
        .get(LOGICAL_ROUTER, &uuid_of(&r, LOGICAL_ROUTER, CLUSTER_ROUTER))
        .unwrap();
    assert_eq!(
        cr["static_routes"].atoms().count(),
        1,
        "the hand-made route stays"
    );
    assert_eq!(
        cr["policies"].atoms().count(),
        1,
        "the hand-made policy stays"
    );
    assert_eq!(
        cr["ports"].atoms().count(),
        1,
        "only rtoj-ovn_cluster_router is left"
    );
}

#[test]
fn a_deleted_pod_is_removed_by_its_key_only() {
    let mut r = converged();
    let mut snap = seed_snapshot();
    snap.pods
        .retain(|p| p.metadata.name.as_deref() != Some("pod-1"));
    let (d_all, _) = desired_cluster(&microshift_config(), &snap);
    // Scoped to another (absent) key: nothing happens to pod-1's rows.
    let other = Scope::Keys(BTreeSet::from([OwnerKey::Pod(
        "default".into(),
        "ghost".into(),
    )]));
    assert!(diff(&Desired::default(), &r, &other).ops.is_empty());
    // Scoped to pod-1 with no desired rows: its port and its SNAT leave their parents.
    let gone = Scope::Keys(BTreeSet::from([OwnerKey::Pod(
        "default".into(),
        "pod-1".into(),
    )]));
    let d = diff(&Desired::default(), &r, &gone);
    let k = kinds(&d);
    assert_eq!(k.len(), 2, "{k:?}");
    assert!(
        k.iter()
            .any(|s| s.starts_with("mutate Logical_Switch ports -")),
        "{k:?}"
    );
    assert!(
        k.iter()
            .any(|s| s.starts_with("mutate Logical_Router nat -")),
        "{k:?}"
    );
    apply(&mut r, &d.ops);
    assert!(r
        .table(LOGICAL_SWITCH_PORT)
        .unwrap()
        .by_name("default_pod-1")
        .next()
        .is_none());
    assert!(diff(&d_all, &r, &Scope::Full).ops.is_empty());
}

#[test]
fn a_full_sync_removes_a_stale_node_without_touching_its_deleted_parents() {
    let mut r = converged();
    let (cluster_only, _) =
        desired_cluster(&microshift_config(), &ovnkube_desired::Snapshot::default());
    let d = diff(&cluster_only, &r, &Scope::Full);
    let k = kinds(&d);
    // Roots deleted; only the surviving parents are mutated (cluster router: rtos port, route,
    // policy; join: jtor-GR port); nothing is mutated on GR_/ext_/node switch, which go whole.
    let deletes: Vec<&String> = k.iter().filter(|s| s.starts_with("delete")).collect();
    assert_eq!(deletes.len(), 3 + 6, "{k:?}");
    let mutates: Vec<&String> = k.iter().filter(|s| s.starts_with("mutate")).collect();
    assert_eq!(mutates.len(), 2, "{k:?}");
    apply(&mut r, &d.ops);
    assert!(diff(&cluster_only, &r, &Scope::Full).ops.is_empty());
    assert_eq!(r.table(LOGICAL_ROUTER_PORT).unwrap().len(), 1);
    assert_eq!(r.table(GATEWAY_CHASSIS).map_or(0, |t| t.len()), 0);
}

#[test]
fn per_key_service_sync_moves_load_balancers() {
    let mut r = converged();
    let mut snap = seed_snapshot();
    for s in snap
        .endpoint_slices
        .iter_mut()
        .filter(|s| s.metadata.name.as_deref() == Some("kubernetes"))
    {
        s.endpoints[0].addresses = vec!["192.168.122.14".into()];
    }
    let svc = snap
        .services
        .iter()
        .find(|s| s.metadata.name.as_deref() == Some("kubernetes"))
        .unwrap();
    let nodes: Vec<_> = snap
        .nodes
        .iter()
        .map(|n| ovnkube_desired::NodeInfo::from_node(n, &microshift_config()).unwrap())
        .collect();
    let info = ovnkube_desired::ServiceInfo::from_service(svc)
        .unwrap()
        .unwrap();
    let one =
        ovnkube_desired::service_rows(&microshift_config(), &info, &snap.endpoint_slices, &nodes)
            .unwrap();
    let d = diff(&one, &r, &Scope::of(&one, []));
    let k = kinds(&d);
    assert_eq!(
        k,
        [
            "wait Load_Balancer",
            "wait Load_Balancer",
            "insert Load_Balancer",
            "insert Load_Balancer",
            "mutate Logical_Router load_balancer +@row0",
            "mutate Logical_Switch load_balancer +@row1",
            "delete Load_Balancer"
        ],
        "{k:?}"
    );
    apply(&mut r, &d.ops);
    assert!(diff(&one, &r, &Scope::of(&one, [])).ops.is_empty());
    let (all, _) = desired_cluster(&microshift_config(), &snap);
    assert!(diff(&all, &r, &Scope::Full).ops.is_empty());
}

#[test]
fn a_pod_without_its_node_switch_is_reported_not_orphaned() {
    let snap = seed_snapshot();
    let (all, _) = desired_cluster(&microshift_config(), &snap);
    let pod_only = Desired {
        rows: all
            .rows
            .iter()
            .filter(|(_, r)| matches!(r.owner, OwnerKey::Pod(..)))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        links: all
            .links
            .iter()
            .filter(|l| matches!(l.owner, OwnerKey::Pod(..)))
            .cloned()
            .collect(),
    };
    let d = diff(&pod_only, &nb_replica(), &Scope::of(&pod_only, []));
    assert!(d.ops.is_empty(), "{:?}", kinds(&d));
    assert_eq!(d.issues.len(), 10, "{:?}", d.issues);
    assert!(d.issues[0].contains("no parent row"));
}

#[test]
fn duplicate_named_rows_of_ours_are_removed() {
    let mut r = converged();
    let gr = uuid_of(&r, LOGICAL_ROUTER, "GR_microshift-dev");
    let dup = r.get(LOGICAL_ROUTER, &gr).unwrap().clone();
    let mut dup_row: Row = dup
        .into_iter()
        .filter(|(c, _)| *c == "name" || *c == "options")
        .collect();
    dup_row.insert("external_ids", Datum::empty_map());
    let dup_uuid = Uuid::from_u128(if gr.as_u128() == u128::MAX {
        0
    } else {
        u128::MAX
    });
    r.put(LOGICAL_ROUTER, dup_uuid, dup_row);
    let d = diff(&seed_desired(), &r, &Scope::Full);
    let k = kinds(&d);
    assert!(k.iter().any(|s| s == "delete Logical_Router"), "{k:?}");
}

#[test]
fn a_deleted_node_is_removed_by_its_key_and_services_keep_their_rows() {
    let mut r = converged();
    let node = Scope::Keys(BTreeSet::from([OwnerKey::Node("microshift-dev".into())]));
    let d = diff(&Desired::default(), &r, &node);
    let k = kinds(&d);
    // GR, ext and node switch deleted; rtos port, route and policy leave the cluster router and
    // jtor-GR leaves join. Load balancers belong to their services and stay.
    assert_eq!(
        k.iter()
            .filter(|s| s.starts_with("delete Logical_"))
            .count(),
        3,
        "{k:?}"
    );
    assert!(!k.iter().any(|s| s == "delete Load_Balancer"), "{k:?}");
    apply(&mut r, &d.ops);
    assert_eq!(
        names(&r, LOGICAL_ROUTER),
        BTreeSet::from(["ovn_cluster_router".into()])
    );
    assert_eq!(r.table(LOAD_BALANCER).unwrap().len(), 6);
    let cr = r
        .get(LOGICAL_ROUTER, &uuid_of(&r, LOGICAL_ROUTER, CLUSTER_ROUTER))
        .unwrap();
    for col in ["static_routes", "policies"] {
        assert_eq!(cr.get(col).map_or(0, |d| d.atoms().count()), 0, "{col}");
    }
    // A later full sync of the remaining (node-less) cluster removes the services' node LBs.
    let (cluster_only, _) =
        desired_cluster(&microshift_config(), &ovnkube_desired::Snapshot::default());
    let d = diff(&cluster_only, &r, &Scope::Full);
    apply(&mut r, &d.ops);
    assert_eq!(r.table(LOAD_BALANCER).map_or(0, |t| t.len()), 0);
}

#[test]
fn the_cluster_lb_group_link_of_a_switch_belongs_to_its_node() {
    let r = converged();
    // Scoped to the cluster key with only cluster rows desired: node switches keep the group.
    let (cluster_only, _) =
        desired_cluster(&microshift_config(), &ovnkube_desired::Snapshot::default());
    let d = diff(
        &cluster_only,
        &r,
        &Scope::Keys(BTreeSet::from([OwnerKey::Cluster])),
    );
    assert!(d.ops.is_empty(), "{:?}", kinds(&d));
}

#[test]
fn a_foreign_copp_on_a_router_is_replaced_in_one_mutate() {
    let mut r = converged();
    let foreign = Uuid::new_v4();
    r.put(
        COPP,
        foreign,
        [("name".to_owned(), Datum::scalar("other"))].into(),
    );
    let gr = uuid_of(&r, LOGICAL_ROUTER, "GR_microshift-dev");
    let mut row = r.get(LOGICAL_ROUTER, &gr).unwrap().clone();
    row.insert("copp", Datum::scalar(foreign));
    r.put(LOGICAL_ROUTER, gr, row);
    let d = diff(&seed_desired(), &r, &Scope::Full);
    let k = kinds(&d);
    assert_eq!(k.len(), 1, "{k:?}");
    assert!(
        k[0].starts_with("mutate Logical_Router copp -") && k[0].contains("copp +"),
        "{k:?}"
    );
    apply(&mut r, &d.ops);
    assert!(diff(&seed_desired(), &r, &Scope::Full).ops.is_empty());
    assert!(
        r.get(COPP, &foreign).is_some(),
        "the foreign Copp row itself stays"
    );
}

#[test]
fn meters_sharing_one_band_as_upstream_writes_them_are_left_alone() {
    let mut r = converged();
    let shared = Uuid::new_v4();
    r.put(
        METER_BAND,
        shared,
        [
            ("action".to_owned(), Datum::scalar("drop")),
            ("rate".to_owned(), Datum::scalar(25i64)),
        ]
        .into(),
    );
    let meters: Vec<Uuid> = COPP_PROTOCOLS
        .iter()
        .map(|k| uuid_of(&r, METER, &rate_limiter(k)))
        .collect();
    for m in meters {
        let mut row = r.get(METER, &m).unwrap().clone();
        row.insert("bands", Datum::scalar(shared));
        r.put(METER, m, row);
    }
    apply(&mut r, &[]); // garbage-collects the meters' own bands
    assert_eq!(
        r.table(METER_BAND).unwrap().len(),
        2,
        "the shared band and acl-logging's"
    );
    let d = diff(&seed_desired(), &r, &Scope::Full);
    assert!(d.ops.is_empty(), "{:?}", kinds(&d));
}

#[test]
fn the_owned_diff_is_the_same_diff() {
    let desired = seed_desired();
    let empty = nb_replica();
    let mut converged_but_one = converged();
    let lb = *converged_but_one
        .table(LOAD_BALANCER)
        .unwrap()
        .rows()
        .next()
        .unwrap()
        .0;
    converged_but_one.remove(LOAD_BALANCER, lb);
    for (replica, scope) in [
        (&empty, Scope::Full),
        (&converged_but_one, Scope::Full),
        (&converged_but_one, Scope::of(&desired, [])),
    ] {
        let borrowed = diff(&desired, replica, &scope);
        assert!(!borrowed.ops.is_empty());
        assert_eq!(diff_owned(desired.clone(), replica, &scope), borrowed);
    }
}

/// Table sizes, the shape two ways of syncing must agree on.
fn sizes(r: &Replica) -> Vec<(String, usize)> {
    r.schema()
        .tables
        .keys()
        .map(|t| (t.clone(), r.table(t).map_or(0, |t| t.len())))
        .collect()
}

#[test]
fn a_full_sync_in_batches_ends_where_one_full_diff_does() {
    let config = microshift_config();
    let (before, errors) = desired_cluster(&config, &generated_snapshot(3, 4, 12));
    assert!(errors.is_empty(), "{errors:?}");
    let mut start = nb_replica();
    let first_sync = diff(&before, &start, &Scope::Full);
    apply(&mut start, &first_sync.ops);
    add_foreign_rows(&mut start, "node-0");
    // While the controller was away: a node went (with its pods), a pod and two services
    // were deleted, new pods and services came.
    let mut now = generated_snapshot(2, 5, 14);
    now.services
        .retain(|s| !["svc-3", "svc-10"].contains(&s.metadata.name.as_deref().unwrap_or("")));
    now.pods
        .retain(|p| p.metadata.name.as_deref() != Some("pod-1-1"));
    let (desired, errors) = desired_cluster(&config, &now);
    assert!(errors.is_empty(), "{errors:?}");

    let mut whole = start.clone();
    let full = diff(&desired, &whole, &Scope::Full);
    apply(&mut whole, &full.ops);

    // The controller's order: cluster and nodes, then batches of the other keys all diffed
    // against the same replica (their transactions are in flight together), then the stale.
    let mut batched = start.clone();
    let (base, rest): (BTreeSet<OwnerKey>, BTreeSet<OwnerKey>) = desired
        .keys()
        .into_iter()
        .partition(|k| matches!(k, OwnerKey::Cluster | OwnerKey::Node(_)));
    let first = diff(
        &of_keys(&desired, &base),
        &batched,
        &Scope::Keys(base.clone()),
    );
    assert!(first.issues.is_empty(), "{:?}", first.issues);
    apply(&mut batched, &first.ops);
    let rest: Vec<OwnerKey> = rest.into_iter().collect();
    let plans: Vec<Diff> = rest
        .chunks(4)
        .map(|chunk| {
            let keys: BTreeSet<OwnerKey> = chunk.iter().cloned().collect();
            diff(&of_keys(&desired, &keys), &batched, &Scope::Keys(keys))
        })
        .collect();
    for plan in &plans {
        assert!(plan.issues.is_empty(), "{:?}", plan.issues);
        apply(&mut batched, &plan.ops);
    }
    let stale = diff(
        &Desired::default(),
        &batched,
        &Scope::AllBut(desired.keys()),
    );
    assert!(
        kinds(&stale).iter().any(|k| k.starts_with("delete")),
        "the deleted node, pod and services leave: {:?}",
        kinds(&stale)
    );
    apply(&mut batched, &stale.ops);

    let again = diff(&desired, &batched, &Scope::Full);
    assert!(again.ops.is_empty(), "{:?}", kinds(&again));
    assert_eq!(sizes(&batched), sizes(&whole));
    // Nobody else's rows were touched on the way.
    for (table, name) in [
        (LOAD_BALANCER, "mine"),
        (LOGICAL_SWITCH, "foreign-switch"),
        (LOGICAL_SWITCH_PORT, "vm-port"),
    ] {
        assert!(
            batched.table(table).unwrap().by_name(name).next().is_some(),
            "{table} {name}"
        );
    }
}
