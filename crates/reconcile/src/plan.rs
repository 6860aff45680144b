//! Building the operation list of one diff.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use ovnkube_desired::names::*;
use ovnkube_desired::{Desired, DesiredRow, NamedRef, RowId};
use ovsdb::ops::{Condition, Mutation, Operation};
use ovsdb::replica::Replica;
use ovsdb::{Atom, Datum, Row, Uuid};

use crate::ownership::{inventory, key_matches};
use crate::{same, Diff, Scope};

/// Where a desired row is (or will be).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    Existing(Uuid),
    New(String),
}

impl Target {
    fn atom(&self) -> Atom {
        match self {
            Target::Existing(u) => Atom::Uuid(*u),
            Target::New(n) => Atom::NamedUuid(n.as_str().into()),
        }
    }
}

/// One member to place: `parent.column ∋ child`.
struct PlannedLink<'a> {
    parent: &'a NamedRef,
    column: &'static str,
    child: &'a RowId,
}

/// Tables whose inserts are guarded by a `wait` (no schema index on their identity).
fn wait_guard(id: &RowId, row: &Row) -> Option<Operation> {
    let cols: &[&str] = match id.table() {
        LOGICAL_SWITCH | LOGICAL_ROUTER | LOAD_BALANCER => &["name"],
        POLICY => &["priority", "match"],
        _ => return None,
    };
    let key: Row = cols
        .iter()
        .map(|c| ((*c).to_owned(), row[*c].clone()))
        .collect();
    let mut conditions: Vec<Condition> = key
        .iter()
        .map(|(c, v)| Condition::eq(c, v.clone()))
        .collect();
    if id.table() == LOAD_BALANCER {
        // Only our load balancers count as duplicates; a same-named one of others does not.
        conditions.push(Condition::includes(
            "external_ids",
            Datum::map([(LB_KIND_KEY, "Service")]),
        ));
    }
    Some(Operation::Wait {
        table: id.table().to_owned(),
        conditions,
        columns: cols.iter().map(|c| (*c).to_owned()).collect(),
        until_equal: false,
        rows: vec![key],
        timeout_ms: Some(0),
    })
}

/// Insert order: children before the parents that reference them by named-uuid.
fn insert_rank(table: &str) -> u8 {
    match table {
        GATEWAY_CHASSIS | METER_BAND => 0,
        LOGICAL_SWITCH_PORT | STATIC_ROUTE | POLICY | NAT | LOAD_BALANCER => 1,
        LOGICAL_ROUTER_PORT => 2,
        _ => 3,
    }
}

struct Planner<'a> {
    replica: &'a Replica,
    /// Named desired rows: where they are (or will be).
    named: HashMap<&'a NamedRef, Target>,
    /// Child desired rows: where they are (or will be).
    children: BTreeMap<&'a RowId, Target>,
    /// Parents looked up in NB (rows not desired here, e.g. another key's switch).
    nb_parents: RefCell<HashMap<NamedRef, Option<Uuid>>>,
    issues: Vec<String>,
}

impl<'a> Planner<'a> {
    fn lookup_named(&self, n: &NamedRef) -> Option<Uuid> {
        let table = self.replica.table(n.table)?;
        table
            .by_name(&n.name)
            .filter(|u| {
                // Same-named load balancers of others are not candidates.
                n.table != LOAD_BALANCER
                    || table
                        .get(u)
                        .and_then(|r| r.get("external_ids"))
                        .and_then(|e| e.get(LB_KIND_KEY))
                        .and_then(Atom::as_str)
                        == Some("Service")
            })
            .min()
    }

    /// The target of a row by identity: desired (matched or new) first, then NB.
    fn resolve(&self, id: &RowId) -> Option<Target> {
        match id {
            RowId::Named(n) => self.resolve_parent(n),
            RowId::Child { .. } => match self.children.get(id) {
                Some(t) => Some(t.clone()),
                None => self.find_child(id).map(Target::Existing),
            },
        }
    }

    fn resolve_parent(&self, n: &NamedRef) -> Option<Target> {
        if let Some(t) = self.named.get(n) {
            return Some(t.clone());
        }
        let mut cache = self.nb_parents.borrow_mut();
        let found = *cache
            .entry(n.clone())
            .or_insert_with(|| self.lookup_named(n));
        found.map(Target::Existing)
    }

    /// An existing child of an existing parent whose key columns match.
    fn find_child(&self, id: &RowId) -> Option<Uuid> {
        let RowId::Child {
            table,
            parent,
            column,
            ..
        } = id
        else {
            return None;
        };
        let Some(Target::Existing(p)) = self.resolve_parent(parent) else {
            return None;
        };
        let prow = self.replica.get(parent.table, &p)?;
        prow.get(column)?
            .atoms()
            .filter_map(Atom::as_uuid)
            .filter(|u| {
                self.replica
                    .get(table, u)
                    .is_some_and(|r| key_matches(id, r))
            })
            .min()
    }

    fn remember(&mut self, id: &'a RowId, t: Target) {
        match id {
            RowId::Named(n) => self.named.insert(n, t),
            RowId::Child { .. } => self.children.insert(id, t),
        };
    }

    fn existing(&self, id: &RowId) -> Option<Uuid> {
        match id {
            RowId::Named(n) => self.lookup_named(n),
            RowId::Child { .. } => self.find_child(id),
        }
    }
}

fn is_root(replica: &Replica, table: &str) -> bool {
    replica.schema().table(table).is_some_and(|t| t.is_root)
}

fn max_one(replica: &Replica, table: &str, column: &str) -> bool {
    replica
        .schema()
        .table(table)
        .and_then(|t| t.columns.get(column))
        .is_some_and(|c| c.kind.max == Some(1))
}

fn is_weak(replica: &Replica, table: &str, column: &str) -> bool {
    replica
        .schema()
        .table(table)
        .and_then(|t| t.columns.get(column))
        .is_some_and(|c| !c.kind.key.ref_strong)
}

/// Everything of a diff but the inserts' columns.
fn plan(desired: &Desired, replica: &Replica, scope: &Scope) -> Plan {
    let inv = inventory(replica, desired, scope);
    let mut p = Planner {
        replica,
        named: HashMap::new(),
        children: BTreeMap::new(),
        nb_parents: RefCell::new(HashMap::new()),
        issues: Vec::new(),
    };

    // 1. Match desired rows (named ones first: children's parents resolve through them).
    let mut updates = Vec::new();
    let mut matched: HashSet<Uuid> = HashSet::new();
    let mut new_rows: Vec<(usize, &RowId, &DesiredRow, String)> = Vec::new();
    for (i, (id, row)) in desired.rows.iter().enumerate() {
        match p.existing(id) {
            Some(u) => {
                matched.insert(u);
                p.remember(id, Target::Existing(u));
                let cur = replica.get(id.table(), &u).expect("found in replica");
                let changed: Row = row
                    .columns
                    .iter()
                    .filter(|(c, v)| !same(cur.get(c).unwrap_or(&Datum::empty_set()), v))
                    .map(|(c, v)| (c, v.clone()))
                    .collect();
                if !changed.is_empty() {
                    updates.push(Operation::Update {
                        table: id.table().to_owned(),
                        conditions: vec![Condition::uuid(u)],
                        row: changed,
                    });
                }
            }
            None => {
                let name = format!("row{i}");
                p.remember(id, Target::New(name.clone()));
                new_rows.push((i, id, row, name));
            }
        }
    }

    // 2. Every link: explicit ones and the parent link implied by a child's identity.
    let mut links: Vec<PlannedLink> = desired
        .links
        .iter()
        .map(|l| PlannedLink {
            parent: &l.parent,
            column: l.column,
            child: &l.child,
        })
        .collect();
    for id in desired.rows.keys() {
        if let RowId::Child { parent, column, .. } = id {
            links.push(PlannedLink {
                parent,
                column,
                child: id,
            });
        }
    }

    // A new non-root row needs a parent that exists or is inserted (and placeable) too.
    let mut unplaceable: BTreeSet<&RowId> = BTreeSet::new();
    loop {
        let placed: BTreeSet<&RowId> = links
            .iter()
            .filter(|l| {
                let parent_id = RowId::Named(l.parent.clone());
                p.resolve_parent(l.parent).is_some() && !unplaceable.contains(&parent_id)
            })
            .map(|l| l.child)
            .collect();
        let before = unplaceable.len();
        for (_, id, _, _) in &new_rows {
            if !is_root(replica, id.table()) && !placed.contains(id) {
                unplaceable.insert(id);
            }
        }
        if unplaceable.len() == before {
            break;
        }
    }
    for id in &unplaceable {
        p.issues.push(format!(
            "{id}: no parent row to hold it (desired nowhere, absent from NB)"
        ));
    }

    let mut into_new: HashMap<String, BTreeMap<&'static str, BTreeSet<Atom>>> = HashMap::new();
    let mut mutate_insert: BTreeMap<(&str, Uuid, &str), BTreeSet<Atom>> = BTreeMap::new();
    let mut mutate_delete: BTreeMap<(&str, Uuid, &str), BTreeSet<Atom>> = BTreeMap::new();
    let mut wanted: HashSet<(Uuid, &str, Uuid)> = HashSet::new();
    for l in &links {
        let parent_id = RowId::Named(l.parent.clone());
        if unplaceable.contains(l.child) || unplaceable.contains(&parent_id) {
            continue;
        }
        let (Some(parent), Some(child)) = (p.resolve_parent(l.parent), p.resolve(l.child)) else {
            p.issues.push(format!(
                "link {}.{} ∋ {}: an end is neither desired nor in NB",
                l.parent.name, l.column, l.child
            ));
            continue;
        };
        match (&parent, &child) {
            (Target::New(name), _) => {
                into_new
                    .entry(name.clone())
                    .or_default()
                    .entry(l.column)
                    .or_default()
                    .insert(child.atom());
            }
            (Target::Existing(pu), _) => {
                if let Target::Existing(cu) = child {
                    wanted.insert((*pu, l.column, cu));
                    let present = replica
                        .get(l.parent.table, pu)
                        .and_then(|r| r.get(l.column))
                        .is_some_and(|d| d.atoms().any(|a| a.as_uuid() == Some(cu)));
                    if present {
                        continue;
                    }
                }
                // A column holding at most one reference (a router's copp) is replaced.
                if max_one(replica, l.parent.table, l.column) {
                    let others: Vec<Atom> = replica
                        .get(l.parent.table, pu)
                        .and_then(|r| r.get(l.column))
                        .into_iter()
                        .flat_map(Datum::atoms)
                        .filter(|a| **a != child.atom())
                        .cloned()
                        .collect();
                    if !others.is_empty() {
                        mutate_delete
                            .entry((l.parent.table, *pu, l.column))
                            .or_default()
                            .extend(others);
                    }
                }
                mutate_insert
                    .entry((l.parent.table, *pu, l.column))
                    .or_default()
                    .insert(child.atom());
            }
        }
    }

    // 3. Stale rows and links of the scope.
    let stale: HashSet<Uuid> = inv
        .rows
        .iter()
        .filter(|(u, (_, owner))| !matched.contains(u) && scope.covers(owner))
        .map(|(u, _)| *u)
        .collect();
    for l in &inv.links {
        if !scope.covers(&l.owner)
            || wanted.contains(&(l.parent, l.column, l.child))
            || stale.contains(&l.parent)
        {
            continue;
        }
        // A stale root goes with its delete, a weak reference with its target.
        if stale.contains(&l.child)
            && (is_root(replica, l.child_table) || is_weak(replica, l.parent_table, l.column))
        {
            continue;
        }
        mutate_delete
            .entry((l.parent_table, l.parent, l.column))
            .or_default()
            .insert(Atom::Uuid(l.child));
    }
    let mut deletes: Vec<(&str, Uuid)> = inv
        .rows
        .iter()
        .filter(|(u, (t, _))| stale.contains(u) && is_root(replica, t))
        .map(|(u, (t, _))| (*t, *u))
        .collect();
    deletes.sort();

    // 4. Assemble: waits, inserts (children first), updates, mutates, deletes.
    let mut waits = Vec::new();
    new_rows.retain(|(_, id, _, _)| !unplaceable.contains(id));
    new_rows.sort_by_key(|(_, id, _, _)| insert_rank(id.table()));
    for (_, id, row, _) in &new_rows {
        waits.extend(wait_guard(id, &row.columns));
    }
    let inserts = new_rows
        .into_iter()
        .map(|(index, id, _, name)| PendingInsert {
            index,
            table: id.table(),
            links: into_new.remove(&name).unwrap_or_default(),
            name,
        })
        .collect();
    let mut ops = updates;
    // One mutate per parent row, with a delete and an insert per column as needed.
    let mut per_row: BTreeMap<(&str, Uuid), Vec<Mutation>> = BTreeMap::new();
    for ((table, u, column), del) in mutate_delete {
        per_row
            .entry((table, u))
            .or_default()
            .push(Mutation::delete(column, Datum::set(del)));
    }
    for ((table, u, column), ins) in mutate_insert {
        per_row
            .entry((table, u))
            .or_default()
            .push(Mutation::insert(column, Datum::set(ins)));
    }
    for ((table, u), mutations) in per_row {
        ops.push(Operation::Mutate {
            table: table.to_owned(),
            conditions: vec![Condition::uuid(u)],
            mutations,
        });
    }
    for (table, u) in deletes {
        ops.push(Operation::Delete {
            table: table.to_owned(),
            conditions: vec![Condition::uuid(u)],
        });
    }
    Plan {
        waits,
        inserts,
        rest: ops,
        issues: p.issues,
    }
}

/// A desired row to insert, by its position in the desired rows.
struct PendingInsert {
    index: usize,
    table: &'static str,
    name: String,
    /// Members of its reference columns (rows inserted with it, or existing ones).
    links: BTreeMap<&'static str, BTreeSet<Atom>>,
}

/// A diff whose inserts still need their rows' columns.
struct Plan {
    waits: Vec<Operation>,
    inserts: Vec<PendingInsert>,
    /// Updates, mutates, deletes.
    rest: Vec<Operation>,
    issues: Vec<String>,
}

impl Plan {
    /// The operations, with each insert's columns from `columns(index)`.
    fn assemble(self, mut columns: impl FnMut(usize) -> Row) -> Diff {
        let mut ops = self.waits;
        ops.reserve(self.inserts.len() + self.rest.len());
        for insert in self.inserts {
            let mut cols = columns(insert.index);
            cols.retain(|_, v| !v.is_empty());
            for (column, members) in insert.links {
                cols.insert(column, Datum::set(members));
            }
            ops.push(Operation::Insert {
                table: insert.table.to_owned(),
                row: cols,
                uuid_name: Some(insert.name),
            });
        }
        ops.extend(self.rest);
        Diff {
            ops,
            issues: self.issues,
        }
    }
}

/// Computes the operations that make NB hold `desired`, deleting stale owned rows in `scope`.
pub fn diff(desired: &Desired, replica: &Replica, scope: &Scope) -> Diff {
    let rows: Vec<&DesiredRow> = desired.rows.values().collect();
    plan(desired, replica, scope).assemble(|i| rows[i].columns.clone())
}

/// [`diff`], moving the desired rows into the inserts instead of copying them: a cold start
/// inserts every row, and needs no second copy of them.
pub fn diff_owned(desired: Desired, replica: &Replica, scope: &Scope) -> Diff {
    let plan = plan(&desired, replica, scope);
    let mut rows: Vec<Option<Row>> = desired
        .rows
        .into_values()
        .map(|r| Some(r.columns))
        .collect();
    plan.assemble(|i| rows[i].take().expect("each row is inserted once"))
}
