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

use std::collections::HashMap;
use std::net::Ipv4Addr;

use ovnkube_desired::names::*;
use ovnkube_desired::net::Ipv4Cidr;
use ovnkube_desired::{Desired, OwnerKey, RowId};
use ovsdb::replica::Replica;
use ovsdb::{Atom, Datum, Row, Uuid};

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
    subnet_node: HashMap<Ipv4Cidr, String>,
    join_node: HashMap<Ipv4Addr, String>,
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
                self.subnet_node.insert(c.trunc(), name.to_owned());
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
                self.join_node.insert(n.addr, node.to_owned());
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
        let tables = [LOGICAL_SWITCH, LOGICAL_ROUTER_PORT, LOGICAL_SWITCH_PORT];
        for t in tables {
            for (_, row) in replica.table(t).into_iter().flat_map(|t| t.rows()) {
                h.add_row(t, row, pod_owner(row));
            }
        }
        for (id, r) in &desired.rows {
            let owner = matches!(r.owner, OwnerKey::Pod(..)).then(|| r.owner.clone());
            h.add_row(id.table(), &r.columns, owner);
        }
        h
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
    Some(OwnerKey::Pod(ns.to_owned(), pod.to_owned()))
}

fn is_node_switch(row: &Row) -> bool {
    let oc = row.get("other_config");
    oc.and_then(|o| o.get("subnet")).is_some()
        && oc.and_then(|o| o.get("k8s.ovn.org/network")).is_none()
}

/// The owner of a root row, or `None` when it is not ours.
fn root_owner(table: &str, row: &Row) -> Option<Owner> {
    let name = name_of(row);
    let node = |n: &str| Some(Some(OwnerKey::Node(n.to_owned())));
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
            .map(|n| Some(OwnerKey::Node(n.to_owned())))
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
                    .map(|n| Some(OwnerKey::Node(n.to_owned())))
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
        Some(OwnerKey::Node(n)) if pname == n => {
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

/// Classifies the replica's rows and links.
pub(crate) fn inventory(replica: &Replica, desired: &Desired) -> Inventory {
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
