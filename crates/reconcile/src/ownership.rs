//! Which existing NB rows and reference-set members are ovnkube-rs's, and which key owns them.
//!
//! Walks down from the root rows that are ours by name or `external_ids`:
//! - `ovn_cluster_router`, `join`, `clusterLBGroup`, `clusterPortGroup`, the Copp
//!   `ovnkube-default` and its `<kind>-rate-limiter` meters, `acl-logging`: the cluster;
//! - `GR_<n>`, `ext_<n>` and switches with `other_config:subnet` (and no secondary-network key):
//!   node `<n>`; `Load_Balancer` with `k8s.ovn.org/kind=Service`: the owning service.
//!
//! Children are ours when their name follows the upstream scheme (`stor-`, `k8s-`, `rtos-`,
//! `jtor-GR_`, pod ports with `external_ids:pod=true`), and everything under `GR_<n>` and
//! `ext_<n>` is the node's. On `ovn_cluster_router` only our patterns are ours: 1004 policies
//! matching `inport == "rtos-<n>"`, routes to a node's management `.2` address (local gateway)
//! or into the join subnet (shared gateway). Anything else (a route added by hand, a port
//! someone plugged into a node switch) is never touched.
//!
//! A full scope (or one holding the cluster key) classifies the whole replica by walking down
//! from the roots. A scope of keys classifies only the rows of those keys: it finds them through
//! the replica's indexes (names, `k8s.ovn.org/owner`, reverse references) and asks the same
//! rules of each row's parents, so a batch of K keys costs O(K) rows, not O(replica).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::net::Ipv4Addr;
use std::sync::Arc;

use ovnkube_desired::names::*;
use ovnkube_desired::net::Ipv4Cidr;
use ovnkube_desired::{Desired, OwnerKey, RowId};
use ovsdb::replica::Replica;
use ovsdb::{Atom, Datum, Row, Uuid};

use crate::Scope;

/// The owner of an existing row: a key, or `None` for a row that is ours by pattern but whose
/// key cannot be told (only removed by a full sync).
pub(crate) type Owner = Option<OwnerKey>;

/// The reference-set columns the reconciler manages member by member:
/// (parent table, column, child table).
pub(crate) const LINK_COLUMNS: &[(&str, &str, &str)] = &[
    (LOGICAL_SWITCH, "ports", LOGICAL_SWITCH_PORT),
    (LOGICAL_SWITCH, "load_balancer", LOAD_BALANCER),
    (LOGICAL_SWITCH, "load_balancer_group", LOAD_BALANCER_GROUP),
    (LOGICAL_ROUTER, "ports", LOGICAL_ROUTER_PORT),
    (LOGICAL_ROUTER, "static_routes", STATIC_ROUTE),
    (LOGICAL_ROUTER, "policies", POLICY),
    (LOGICAL_ROUTER, "nat", NAT),
    (LOGICAL_ROUTER, "load_balancer", LOAD_BALANCER),
    (LOGICAL_ROUTER, "load_balancer_group", LOAD_BALANCER_GROUP),
    (LOGICAL_ROUTER, "copp", COPP),
    (METER, "bands", METER_BAND),
    (LOGICAL_ROUTER_PORT, "gateway_chassis", GATEWAY_CHASSIS),
    (PORT_GROUP, "ports", LOGICAL_SWITCH_PORT),
    (LOAD_BALANCER_GROUP, "load_balancer", LOAD_BALANCER),
];

/// Root tables whose rows can be ours by name or ids.
const ROOT_TABLES: &[&str] = &[
    LOGICAL_SWITCH,
    LOGICAL_ROUTER,
    LOAD_BALANCER,
    LOAD_BALANCER_GROUP,
    PORT_GROUP,
    METER,
    COPP,
];

/// One existing member of a reference set, between two rows that are ours.
#[derive(Debug, Clone)]
pub(crate) struct ExistingLink {
    pub parent_table: &'static str,
    pub parent: Uuid,
    pub column: &'static str,
    pub child_table: &'static str,
    pub child: Uuid,
    pub owner: Owner,
}

/// The rows and links of the replica that are ours (uuids are unique across tables).
#[derive(Debug, Default)]
pub(crate) struct Inventory {
    pub rows: HashMap<Uuid, (&'static str, Owner)>,
    pub links: Vec<ExistingLink>,
}

fn name_of(row: &Row) -> &str {
    str_col(row, "name")
}

fn str_col<'a>(row: &'a Row, col: &str) -> &'a str {
    row.get(col)
        .and_then(Datum::as_atom)
        .and_then(Atom::as_str)
        .unwrap_or("")
}

/// Addresses that tie a row to a key when its name does not.
#[derive(Default)]
struct Hints {
    subnet_node: HashMap<Ipv4Cidr, Arc<str>>,
    join_node: HashMap<Ipv4Addr, Arc<str>>,
    pod_ip: HashMap<Ipv4Addr, OwnerKey>,
    join_subnet: Option<Ipv4Cidr>,
}

impl Hints {
    fn add_switch(&mut self, name: &str, row: &Row) {
        if let Some(s) = row
            .get("other_config")
            .and_then(|o| o.get("subnet"))
            .and_then(Atom::as_str)
        {
            if let Ok(c) = s.parse::<Ipv4Cidr>() {
                self.subnet_node.insert(c.trunc(), name.into());
            }
        }
    }
    fn add_router_port(&mut self, name: &str, row: &Row) {
        let networks: Vec<Ipv4Cidr> = row
            .get("networks")
            .map(|d| d.atoms().filter_map(|a| a.as_str()?.parse().ok()).collect())
            .unwrap_or_default();
        if name == router_to_join(CLUSTER_ROUTER) {
            self.join_subnet = networks.first().map(Ipv4Cidr::trunc);
        } else if let Some(node) = name.strip_prefix("rtoj-GR_") {
            for n in networks {
                self.join_node.insert(n.addr, node.into());
            }
        }
    }
    fn add_port(&mut self, row: &Row, owner: OwnerKey) {
        for a in row.get("addresses").into_iter().flat_map(Datum::atoms) {
            for word in a.as_str().unwrap_or("").split_whitespace().skip(1) {
                if let Ok(ip) = word.parse() {
                    self.pod_ip.insert(ip, owner.clone());
                }
            }
        }
    }

    fn collect(desired: &Desired, replica: &Replica) -> Hints {
        let mut h = Hints::default();
        h.add_tables(
            replica,
            &[LOGICAL_SWITCH, LOGICAL_ROUTER_PORT, LOGICAL_SWITCH_PORT],
        );
        h.add_desired(desired);
        h
    }

    fn add_tables(&mut self, replica: &Replica, tables: &[&str]) {
        for t in tables {
            for (_, row) in replica.table(t).into_iter().flat_map(|t| t.rows()) {
                self.add_row(t, row, pod_owner(row));
            }
        }
    }

    /// Desired rows come last: they win over what NB holds.
    fn add_desired(&mut self, desired: &Desired) {
        for (id, r) in &desired.rows {
            let owner = matches!(r.owner, OwnerKey::Pod(..)).then(|| r.owner.clone());
            self.add_row(id.table(), &r.columns, owner);
        }
    }

    fn add_row(&mut self, table: &str, row: &Row, pod: Option<OwnerKey>) {
        match table {
            LOGICAL_SWITCH => self.add_switch(name_of(row), row),
            LOGICAL_ROUTER_PORT => self.add_router_port(name_of(row), row),
            _ => {
                if let Some(p) = pod {
                    self.add_port(row, p);
                }
            }
        }
    }

    /// The node of a route on `ovn_cluster_router`, or `Some(None)` for our pattern without a
    /// known node, or `None` for a route that is not ours.
    fn cluster_route_owner(&self, row: &Row) -> Option<Owner> {
        let prefix = str_col(row, "ip_prefix");
        let nexthop: Ipv4Addr = str_col(row, "nexthop").parse().ok()?;
        let src_ip = str_col(row, "policy") == "src-ip";
        if let Ok(p) = prefix.parse::<Ipv4Cidr>() {
            if src_ip && p.nth(2) == nexthop {
                return Some(
                    self.subnet_node
                        .get(&p.trunc())
                        .cloned()
                        .map(OwnerKey::Node),
                );
            }
        }
        if self.join_subnet.is_some_and(|j| j.contains(nexthop)) {
            return Some(self.join_node.get(&nexthop).cloned().map(OwnerKey::Node));
        }
        None
    }
}

fn pod_owner(row: &Row) -> Option<OwnerKey> {
    let ext = row.get("external_ids")?;
    if ext.get("pod").and_then(Atom::as_str) != Some("true") {
        return None;
    }
    let ns = ext.get("namespace").and_then(Atom::as_str)?;
    let pod = name_of(row).strip_prefix(ns)?.strip_prefix('_')?;
    Some(OwnerKey::pod(ns, pod))
}

fn is_node_switch(row: &Row) -> bool {
    let oc = row.get("other_config");
    oc.and_then(|o| o.get("subnet")).is_some()
        && oc.and_then(|o| o.get("k8s.ovn.org/network")).is_none()
}

/// The owner of a root row, or `None` when it is not ours.
fn root_owner(table: &str, row: &Row) -> Option<Owner> {
    let name = name_of(row);
    let node = |n: &str| Some(Some(OwnerKey::Node(n.into())));
    match table {
        LOGICAL_ROUTER if name == CLUSTER_ROUTER => Some(Some(OwnerKey::Cluster)),
        LOGICAL_ROUTER => name.strip_prefix("GR_").and_then(node),
        LOGICAL_SWITCH if name == JOIN_SWITCH => Some(Some(OwnerKey::Cluster)),
        LOGICAL_SWITCH => match name.strip_prefix("ext_") {
            Some(n) => node(n),
            None if is_node_switch(row) => node(name),
            None => None,
        },
        LOAD_BALANCER => {
            let ext = row.get("external_ids")?;
            if ext.get(LB_KIND_KEY).and_then(Atom::as_str) != Some("Service") {
                return None;
            }
            let owner = ext.get(LB_OWNER_KEY).and_then(Atom::as_str).unwrap_or("");
            Some(
                owner
                    .split_once('/')
                    .map(|(ns, n)| OwnerKey::Service(ns.into(), n.into())),
            )
        }
        LOAD_BALANCER_GROUP if name == CLUSTER_LB_GROUP => Some(Some(OwnerKey::Cluster)),
        PORT_GROUP if name == CLUSTER_PORT_GROUP => Some(Some(OwnerKey::Cluster)),
        COPP if name == COPP_NAME => Some(Some(OwnerKey::Cluster)),
        METER
            if name == ACL_LOGGING_METER
                || COPP_PROTOCOLS.iter().any(|k| rate_limiter(k) == name) =>
        {
            Some(Some(OwnerKey::Cluster))
        }
        _ => None,
    }
}

/// The owner of a child found in `parent.column`, or `None` when it is not ours.
fn child_owner(
    hints: &Hints,
    parent: &Row,
    parent_owner: &Owner,
    column: &str,
    child: &Row,
) -> Option<Owner> {
    let pname = name_of(parent);
    let cname = name_of(child);
    let node_named = |prefix: &str| {
        cname
            .strip_prefix(prefix)
            .map(|n| Some(OwnerKey::Node(n.into())))
    };
    if pname == CLUSTER_ROUTER {
        return match column {
            "ports" if cname == router_to_join(CLUSTER_ROUTER) => Some(Some(OwnerKey::Cluster)),
            "ports" => node_named("rtos-"),
            "static_routes" => hints.cluster_route_owner(child),
            "policies" => {
                let prio = child
                    .get("priority")
                    .and_then(Datum::as_atom)
                    .and_then(Atom::as_integer);
                (prio == Some(NODE_REROUTE_PRIORITY))
                    .then(|| node_of_reroute_match(str_col(child, "match")))
                    .flatten()
                    .map(|n| Some(OwnerKey::Node(n.into())))
            }
            _ => None,
        };
    }
    if pname == JOIN_SWITCH {
        return match cname {
            c if c == join_to_router(CLUSTER_ROUTER) => Some(Some(OwnerKey::Cluster)),
            _ => node_named("jtor-GR_"),
        };
    }
    if column == "nat" {
        // Per-pod SNATs carry a bare pod address; the cluster-CIDR SNAT is the node's.
        let lip = str_col(child, "logical_ip");
        return Some(match lip.parse::<Ipv4Addr>() {
            Ok(ip) => hints.pod_ip.get(&ip).cloned(),
            Err(_) => parent_owner.clone(),
        });
    }
    match parent_owner {
        // A node switch: only its stor-/k8s- ports and pod ports.
        Some(OwnerKey::Node(n)) if pname == &**n => {
            if cname == switch_to_router(n) || cname == management_port(n) {
                Some(parent_owner.clone())
            } else {
                pod_owner(child).map(Some)
            }
        }
        // Everything under GR_<n>, ext_<n> and our router ports is the node's.
        _ => Some(parent_owner.clone()),
    }
}

/// Classifies the replica's rows and links: all of them for a full scope or one that holds the
/// cluster key; else at least every row and link of the scope's keys (others found on the way
/// may be listed too: the diff only acts within its scope).
pub(crate) fn inventory(replica: &Replica, desired: &Desired, scope: &Scope) -> Inventory {
    match scope {
        Scope::Keys(keys) if !keys.contains(&OwnerKey::Cluster) => {
            Scoped::new(replica, desired, keys).inventory(desired)
        }
        _ => full_inventory(replica, desired),
    }
}

/// Walks the whole replica down from its roots.
fn full_inventory(replica: &Replica, desired: &Desired) -> Inventory {
    let hints = Hints::collect(desired, replica);
    let mut inv = Inventory::default();
    // Roots first, then walk the link columns down (router ports before their gateway_chassis).
    let mut frontier: Vec<(&'static str, Uuid)> = Vec::new();
    for table in ROOT_TABLES {
        for (uuid, row) in replica.table(table).into_iter().flat_map(|t| t.rows()) {
            if let Some(owner) = root_owner(table, row) {
                inv.rows.insert(*uuid, (table, owner));
                frontier.push((table, *uuid));
            }
        }
    }
    // Groups hold rows that are ours through their own parents: walk them last, and only
    // record members already known (a foreign port in clusterPortGroup stays foreign).
    let (groups, mut frontier): (Vec<_>, Vec<_>) = frontier
        .into_iter()
        .partition(|(t, _)| *t == PORT_GROUP || *t == LOAD_BALANCER_GROUP);
    let mut visited = std::collections::HashSet::new();
    while let Some((table, uuid)) = frontier.pop() {
        if !visited.insert(uuid) {
            continue;
        }
        for w in walk(replica, &hints, &inv, table, uuid, true) {
            if w.newly_found {
                frontier.push((w.child_table, w.child));
            }
            record(&mut inv, table, uuid, w);
        }
    }
    for (table, uuid) in groups {
        for w in walk(replica, &hints, &inv, table, uuid, false) {
            record(&mut inv, table, uuid, w);
        }
    }
    inv
}

/// One owned member found in a link column.
struct Walked {
    column: &'static str,
    child_table: &'static str,
    child: Uuid,
    owner: Owner,
    newly_found: bool,
}

/// The owned members of the link columns of `table`/`uuid`. With `classify` false only
/// children already in the inventory count.
fn walk(
    replica: &Replica,
    hints: &Hints,
    inv: &Inventory,
    table: &'static str,
    uuid: Uuid,
    classify: bool,
) -> Vec<Walked> {
    let mut out = Vec::new();
    let Some(row) = replica.get(table, &uuid) else {
        return out;
    };
    let owner = &inv.rows[&uuid].1;
    for &(_, column, child_table) in LINK_COLUMNS.iter().filter(|(t, _, _)| *t == table) {
        let child_is_root = ROOT_TABLES.contains(&child_table);
        for child in row
            .get(column)
            .into_iter()
            .flat_map(Datum::atoms)
            .filter_map(Atom::as_uuid)
        {
            let known = inv.rows.get(&child);
            let child_owner = match known {
                Some((_, o)) => Some(o.clone()),
                // Roots are ours only by their own name or ids.
                None if child_is_root || !classify => None,
                None => replica
                    .get(child_table, &child)
                    .and_then(|c| child_owner(hints, row, owner, column, c)),
            };
            if let Some(o) = child_owner {
                out.push(Walked {
                    column,
                    child_table,
                    child,
                    owner: o,
                    newly_found: known.is_none(),
                });
            }
        }
    }
    out
}

fn is_group(table: &str) -> bool {
    table == PORT_GROUP || table == LOAD_BALANCER_GROUP
}

/// The link column `table.column` that holds rows of `child_table`, as the walk knows it.
fn link_column(
    table: &str,
    column: &str,
    child_table: &str,
) -> Option<&'static (&'static str, &'static str, &'static str)> {
    LINK_COLUMNS
        .iter()
        .find(|(t, c, ct)| *t == table && *c == column && *ct == child_table)
}

/// The inventory of some keys: their rows, found through indexes, each classified by the same
/// rules the full walk applies, asked of its parents (reverse references) instead of reached
/// from the roots.
struct Scoped<'a> {
    replica: &'a Replica,
    keys: &'a BTreeSet<OwnerKey>,
    hints: Hints,
    /// Owners found so far; `None`: not ours.
    owners: HashMap<Uuid, Option<Owner>>,
}

impl<'a> Scoped<'a> {
    fn new(replica: &'a Replica, desired: &Desired, keys: &'a BTreeSet<OwnerKey>) -> Self {
        let mut hints = Hints::default();
        if keys.iter().any(|k| matches!(k, OwnerKey::Node(_))) {
            // Routes of ovn_cluster_router are told apart by node subnets and join addresses
            // (one row per node: only node keys pay for them).
            hints.add_tables(replica, &[LOGICAL_SWITCH, LOGICAL_ROUTER_PORT]);
        }
        // A pod's SNATs are told by its addresses: only the scope's pods can own one here.
        for key in keys {
            if let OwnerKey::Pod(ns, name) = key {
                for (_, row) in pod_ports(replica, key, ns, name) {
                    hints.add_port(row, key.clone());
                }
            }
        }
        hints.add_desired(desired);
        Scoped {
            replica,
            keys,
            hints,
            owners: HashMap::new(),
        }
    }

    fn covers(&self, owner: &Owner) -> bool {
        owner.as_ref().is_some_and(|k| self.keys.contains(k))
    }

    /// The owner of a row as the full walk would find it; `None` when it is not ours.
    fn owner_of(&mut self, table: &'static str, uuid: Uuid) -> Option<Owner> {
        if let Some(known) = self.owners.get(&uuid) {
            return known.clone();
        }
        // Not ours until shown otherwise (also ends a reference cycle).
        self.owners.insert(uuid, None);
        let replica = self.replica;
        let row = replica.get(table, &uuid)?;
        let owner = if ROOT_TABLES.contains(&table) {
            // Roots are ours only by their own name or ids.
            root_owner(table, row)
        } else {
            let mut found = None;
            for r in replica.referrers(&uuid) {
                // Groups hold rows that are ours through their own parents only.
                let Some(&(parent_table, column, _)) = link_column(r.table, r.column, table) else {
                    continue;
                };
                if is_group(parent_table) {
                    continue;
                }
                let Some(parent_owner) = self.owner_of(parent_table, r.parent) else {
                    continue;
                };
                let Some(parent) = replica.get(parent_table, &r.parent) else {
                    continue;
                };
                found = child_owner(&self.hints, parent, &parent_owner, column, row);
                if found.is_some() {
                    break;
                }
            }
            found
        };
        self.owners.insert(uuid, owner.clone());
        owner
    }

    /// Rows that may belong to the scope's keys (each is checked before it counts).
    fn candidates(&self, desired: &Desired) -> Vec<(&'static str, Uuid)> {
        let replica = self.replica;
        let named = |table: &'static str, name: &str| -> Vec<(&'static str, Uuid)> {
            let t = replica.table(table);
            t.into_iter()
                .flat_map(|t| t.by_name(name))
                .map(|u| (table, u))
                .collect()
        };
        let members = |table: &'static str, uuid: Uuid| {
            let row = replica.get(table, &uuid);
            LINK_COLUMNS
                .iter()
                .filter(move |(t, _, _)| *t == table)
                .flat_map(move |&(_, column, child_table)| {
                    row.and_then(|r| r.get(column))
                        .into_iter()
                        .flat_map(Datum::atoms)
                        .filter_map(Atom::as_uuid)
                        .map(move |u| (child_table, u))
                })
        };
        let mut out = Vec::new();
        let mut shared_done = false;
        // Routers whose NATs may be a scope pod's SNAT: the gateway router of its node.
        let mut snat_routers = BTreeSet::new();
        for key in self.keys {
            match key {
                OwnerKey::Node(n) => {
                    out.extend(named(LOGICAL_SWITCH, n));
                    out.extend(named(LOGICAL_ROUTER, &gateway_router(n)));
                    out.extend(named(LOGICAL_SWITCH, &external_switch(n)));
                    // The node's ports, routes and policies on the cluster-wide rows.
                    if !shared_done {
                        shared_done = true;
                        for (table, name) in [
                            (LOGICAL_ROUTER, CLUSTER_ROUTER),
                            (LOGICAL_SWITCH, JOIN_SWITCH),
                        ] {
                            for (t, u) in named(table, name) {
                                out.extend(members(t, u));
                            }
                        }
                    }
                }
                OwnerKey::Pod(ns, name) => {
                    for (u, _) in pod_ports(replica, key, ns, name) {
                        out.push((LOGICAL_SWITCH_PORT, u));
                        for r in replica.referrers(&u) {
                            if r.table == LOGICAL_SWITCH && r.column == "ports" {
                                if let Some(sw) = replica.get(LOGICAL_SWITCH, &r.parent) {
                                    snat_routers.insert(gateway_router(name_of(sw)));
                                }
                            }
                        }
                    }
                }
                OwnerKey::Service(ns, name) => {
                    let owner = format!("{ns}/{name}");
                    let Some(t) = replica.table(LOAD_BALANCER) else {
                        continue;
                    };
                    if replica.indexes_external_id(LB_OWNER_KEY) {
                        out.extend(
                            t.by_external_id(LB_OWNER_KEY, &owner)
                                .map(|u| (LOAD_BALANCER, u)),
                        );
                    } else {
                        let mine = |r: &Row| {
                            r.get("external_ids")
                                .and_then(|e| e.get(LB_OWNER_KEY))
                                .and_then(Atom::as_str)
                                == Some(owner.as_str())
                        };
                        out.extend(
                            t.rows()
                                .filter(|(_, r)| mine(r))
                                .map(|(u, _)| (LOAD_BALANCER, *u)),
                        );
                    }
                }
                OwnerKey::Cluster => {}
            }
        }
        for (id, row) in &desired.rows {
            if let RowId::Child {
                table: NAT, parent, ..
            } = id
            {
                if self.keys.contains(&row.owner) && matches!(row.owner, OwnerKey::Pod(..)) {
                    snat_routers.insert(parent.name.clone());
                }
            }
        }
        for router in &snat_routers {
            for (t, u) in named(LOGICAL_ROUTER, router) {
                out.extend(members(t, u).filter(|(table, _)| *table == NAT));
            }
        }
        out
    }

    fn inventory(mut self, desired: &Desired) -> Inventory {
        let replica = self.replica;
        let mut inv = Inventory::default();
        let mut linked: HashSet<(Uuid, &'static str, Uuid)> = HashSet::new();
        let mut record = |inv: &mut Inventory, link: ExistingLink| {
            if linked.insert((link.parent, link.column, link.child)) {
                inv.links.push(link);
            }
        };
        let mut todo = self.candidates(desired);
        let mut visited = HashSet::new();
        while let Some((table, uuid)) = todo.pop() {
            if !visited.insert(uuid) {
                continue;
            }
            let owner = self.owner_of(table, uuid);
            let Some(owner) = owner.filter(|o| self.covers(o)) else {
                continue;
            };
            inv.rows.insert(uuid, (table, owner.clone()));
            let Some(row) = replica.get(table, &uuid) else {
                continue;
            };
            // Down: its members (a link to a cluster-wide row is the parent's key's).
            for &(_, column, child_table) in LINK_COLUMNS.iter().filter(|(t, _, _)| *t == table) {
                for child in row
                    .get(column)
                    .into_iter()
                    .flat_map(Datum::atoms)
                    .filter_map(Atom::as_uuid)
                {
                    let Some(child_owner) = self.owner_of(child_table, child) else {
                        continue;
                    };
                    let link_owner = if child_owner == Some(OwnerKey::Cluster) {
                        owner.clone()
                    } else {
                        child_owner.clone()
                    };
                    if self.covers(&child_owner) {
                        todo.push((child_table, child));
                    }
                    record(
                        &mut inv,
                        ExistingLink {
                            parent_table: table,
                            parent: uuid,
                            column,
                            child_table,
                            child,
                            owner: link_owner,
                        },
                    );
                }
            }
            // Up: the rows of ours that hold it (its key is not the cluster's: the link is its).
            for r in replica.referrers(&uuid) {
                let Some(&(parent_table, column, _)) = link_column(r.table, r.column, table) else {
                    continue;
                };
                if self.owner_of(parent_table, r.parent).is_none() {
                    continue;
                }
                record(
                    &mut inv,
                    ExistingLink {
                        parent_table,
                        parent: r.parent,
                        column,
                        child_table: table,
                        child: uuid,
                        owner: owner.clone(),
                    },
                );
            }
        }
        inv
    }
}

/// The switch ports of pod `key` in NB (by name; the ids say which pod it is).
fn pod_ports<'r>(
    replica: &'r Replica,
    key: &OwnerKey,
    ns: &str,
    name: &str,
) -> Vec<(Uuid, &'r Row)> {
    let Some(t) = replica.table(LOGICAL_SWITCH_PORT) else {
        return Vec::new();
    };
    t.by_name(&pod_port(ns, name))
        .filter_map(|u| t.get(&u).map(|r| (u, r)))
        .filter(|(_, r)| pod_owner(r).as_ref() == Some(key))
        .collect()
}

/// Records an owned child and its link. A link to a cluster-wide row (a group) belongs to the
/// key of its parent; any other link belongs to the key of its child.
fn record(inv: &mut Inventory, parent_table: &'static str, parent: Uuid, w: Walked) {
    let owner = if w.owner == Some(OwnerKey::Cluster) {
        inv.rows[&parent].1.clone()
    } else {
        w.owner.clone()
    };
    inv.rows.insert(w.child, (w.child_table, w.owner));
    inv.links.push(ExistingLink {
        parent_table,
        parent,
        column: w.column,
        child_table: w.child_table,
        child: w.child,
        owner,
    });
}

/// True when `id`'s identity matches the existing `row` (names, or key columns of a child).
pub(crate) fn key_matches(id: &RowId, row: &Row) -> bool {
    match id {
        RowId::Named(n) => name_of(row) == n.name,
        RowId::Child { key, .. } => key
            .iter()
            .all(|(c, v)| crate::same(row.get(c).unwrap_or(&Datum::empty_set()), v)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_common::{apply, generated_snapshot, microshift_config, nb_replica, of_keys};
    use crate::{diff, Scope};
    use ovnkube_desired::desired_cluster;

    type LinkSet = BTreeSet<(Uuid, &'static str, Uuid, Owner)>;

    /// The rows and links of `inv` that `keys` own.
    fn restricted(
        inv: &Inventory,
        keys: &BTreeSet<OwnerKey>,
    ) -> (BTreeSet<(Uuid, Owner)>, LinkSet) {
        let covers = |o: &Owner| o.as_ref().is_some_and(|k| keys.contains(k));
        let rows = inv
            .rows
            .iter()
            .filter(|(_, (_, o))| covers(o))
            .map(|(u, (_, o))| (*u, o.clone()))
            .collect();
        let links = inv
            .links
            .iter()
            .filter(|l| covers(&l.owner))
            .map(|l| (l.parent, l.column, l.child, l.owner.clone()))
            .collect();
        (rows, links)
    }

    #[test]
    fn a_scope_of_keys_finds_exactly_what_the_full_walk_gives_those_keys() {
        let config = microshift_config();
        let (all, errors) = desired_cluster(&config, &generated_snapshot(3, 4, 12));
        assert!(errors.is_empty(), "{errors:?}");
        let mut replica = nb_replica();
        let first = diff(&all, &replica, &Scope::Full);
        apply(&mut replica, &first.ops);
        // Objects deleted since: a node (with its pods), a pod, a service; and a pod added.
        let mut now = generated_snapshot(3, 4, 12);
        let gone =
            |name: &Option<String>, names: &[&str]| names.contains(&name.as_deref().unwrap_or(""));
        now.nodes.retain(|n| !gone(&n.metadata.name, &["node-2"]));
        now.pods.retain(|p| {
            !gone(
                &p.metadata.name,
                &["pod-1-1", "pod-2-0", "pod-2-1", "pod-2-2", "pod-2-3"],
            )
        });
        now.services
            .retain(|s| !gone(&s.metadata.name, &["svc-3", "svc-10"]));
        let extra = generated_snapshot(2, 5, 0);
        now.pods.extend(
            extra
                .pods
                .into_iter()
                .filter(|p| gone(&p.metadata.name, &["pod-0-4"])),
        );
        let (desired, _) = desired_cluster(&config, &now);
        let mut keys = all.keys();
        keys.extend(desired.keys());
        keys.remove(&OwnerKey::Cluster);
        let mut scopes: Vec<BTreeSet<OwnerKey>> =
            keys.iter().map(|k| BTreeSet::from([k.clone()])).collect();
        scopes.push(keys.clone());
        scopes.push(
            keys.iter()
                .filter(|k| !matches!(k, OwnerKey::Node(_)))
                .cloned()
                .collect(),
        );
        for scope in scopes {
            let batch = of_keys(&desired, &scope);
            let full = restricted(&full_inventory(&replica, &batch), &scope);
            let scoped = restricted(
                &inventory(&replica, &batch, &Scope::Keys(scope.clone())),
                &scope,
            );
            assert_eq!(scoped, full, "scope {scope:?}");
            assert!(
                !full.0.is_empty() || scope.len() == 1,
                "scope {scope:?} owns rows"
            );
        }
    }
}
