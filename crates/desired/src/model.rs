//! The desired-state model: rows with stable identities, and symbolic links between them.
//!
//! A [`DesiredRow`] holds the columns ovnkube-rs manages, as whole values; columns it does not
//! list are never written. References between rows are never uuids here: a [`Link`] says
//! "`parent.column` contains the row with identity X", and the reconciler resolves both ends
//! to existing uuids or to named-uuids of rows it inserts in the same transaction. Reference
//! sets that several keys contribute to (a switch's `ports`, a router's `load_balancer`, ...)
//! are therefore only ever changed member by member.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

use ovsdb::{Datum, Row};

/// The Kubernetes key (or the cluster itself) that a row or link is derived from. Every row and
/// link carries its key, so the names are shared (`Arc<str>`): a clone allocates nothing.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum OwnerKey {
    /// Cluster-wide topology: `ovn_cluster_router`, `join`, groups.
    Cluster,
    /// A Node: its switch, gateway router, external switch, routes and policies.
    Node(Arc<str>),
    /// A Pod (`namespace`, `name`): its switch port (and per-pod SNAT).
    Pod(Arc<str>, Arc<str>),
    /// A Service (`namespace`, `name`): its load balancers and their attachments.
    Service(Arc<str>, Arc<str>),
}

impl OwnerKey {
    /// The key of pod `namespace`/`name`.
    pub fn pod(namespace: &str, name: &str) -> OwnerKey {
        OwnerKey::Pod(namespace.into(), name.into())
    }
}

impl fmt::Display for OwnerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OwnerKey::Cluster => write!(f, "cluster"),
            OwnerKey::Node(n) => write!(f, "node {n}"),
            OwnerKey::Pod(ns, n) => write!(f, "pod {ns}/{n}"),
            OwnerKey::Service(ns, n) => write!(f, "service {ns}/{n}"),
        }
    }
}

/// A row identified by its `name` column.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NamedRef {
    /// The table.
    pub table: &'static str,
    /// The value of the `name` column.
    pub name: String,
}

impl NamedRef {
    /// A reference to the row of `table` named `name`.
    pub fn new(table: &'static str, name: impl Into<String>) -> NamedRef {
        NamedRef {
            table,
            name: name.into(),
        }
    }
}

/// The stable identity of a desired row.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum RowId {
    /// Found by its `name` column (switches, routers, ports, load balancers, groups).
    Named(NamedRef),
    /// A nameless child (static route, policy, NAT): among the rows `parent.column` references,
    /// the one whose `key` columns hold these values.
    Child {
        /// The child's table.
        table: &'static str,
        /// The parent row.
        parent: NamedRef,
        /// The parent's reference column that holds the child.
        column: &'static str,
        /// The identifying columns and their values.
        key: Row,
    },
}

impl RowId {
    /// The table of the row.
    pub fn table(&self) -> &'static str {
        match self {
            RowId::Named(n) => n.table,
            RowId::Child { table, .. } => table,
        }
    }
}

impl fmt::Display for RowId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RowId::Named(n) => write!(f, "{} {}", n.table, n.name),
            RowId::Child {
                table, parent, key, ..
            } => {
                let k: Vec<String> = key.iter().map(|(c, v)| format!("{c}={v}")).collect();
                write!(
                    f,
                    "{table} of {} {} [{}]",
                    parent.table,
                    parent.name,
                    k.join(" ")
                )
            }
        }
    }
}

/// One desired row: the key it belongs to and the columns ovnkube-rs manages in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredRow {
    /// The key that produced the row.
    pub owner: OwnerKey,
    /// Managed columns with their whole desired values (identity columns included).
    pub columns: Row,
}

/// "`parent.column` contains `child`": one member of a reference set, owned by one key.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Link {
    /// The key that wants the member there.
    pub owner: OwnerKey,
    /// The row holding the reference set.
    pub parent: NamedRef,
    /// The reference-set column.
    pub column: &'static str,
    /// The member.
    pub child: RowId,
}

/// A set of desired rows and links, for one key or many.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Desired {
    /// Rows by identity (ordered, so output is deterministic).
    pub rows: BTreeMap<RowId, DesiredRow>,
    /// Reference-set members.
    pub links: BTreeSet<Link>,
}

impl Desired {
    /// Adds a named row; the `name` column is filled in from the identity.
    pub fn named(&mut self, owner: &OwnerKey, table: &'static str, name: &str, mut columns: Row) {
        columns.insert("name", Datum::scalar(name));
        self.rows.insert(
            RowId::Named(NamedRef::new(table, name)),
            DesiredRow {
                owner: owner.clone(),
                columns,
            },
        );
    }

    /// Adds a nameless child of `parent.column`, identified by the `key` columns of `columns`.
    pub fn child(
        &mut self,
        owner: &OwnerKey,
        table: &'static str,
        parent: NamedRef,
        column: &'static str,
        key: &[&str],
        columns: Row,
    ) {
        let key = key
            .iter()
            .map(|k| {
                let v = columns.get(k).cloned().unwrap_or_default();
                (*k, v)
            })
            .collect();
        let id = RowId::Child {
            table,
            parent,
            column,
            key,
        };
        self.rows.insert(
            id,
            DesiredRow {
                owner: owner.clone(),
                columns,
            },
        );
    }

    /// Adds a link `parent.column ∋ child`.
    pub fn link(&mut self, owner: &OwnerKey, parent: NamedRef, column: &'static str, child: RowId) {
        self.links.insert(Link {
            owner: owner.clone(),
            parent,
            column,
            child,
        });
    }

    /// Moves everything of `other` into `self`.
    pub fn extend(&mut self, other: Desired) {
        self.rows.extend(other.rows);
        self.links.extend(other.links);
    }

    /// The keys that contributed rows or links.
    pub fn keys(&self) -> BTreeSet<OwnerKey> {
        self.rows
            .values()
            .map(|r| r.owner.clone())
            .chain(self.links.iter().map(|l| l.owner.clone()))
            .collect()
    }

    /// The row with this identity, if desired.
    pub fn get(&self, id: &RowId) -> Option<&DesiredRow> {
        self.rows.get(id)
    }

    /// The columns of the named row of `table`, if desired.
    pub fn named_row(&self, table: &'static str, name: &str) -> Option<&Row> {
        self.rows
            .get(&RowId::Named(NamedRef::new(table, name)))
            .map(|r| &r.columns)
    }
}

/// Builds a [`Row`] from `(column, datum)` pairs.
pub fn row<const N: usize>(cols: [(&str, Datum); N]) -> Row {
    cols.into_iter().collect()
}

/// A string scalar.
pub fn text(s: impl Into<String>) -> Datum {
    Datum::scalar(s.into())
}

/// A string→string map.
pub fn smap<K: Into<String>, V: Into<String>>(pairs: impl IntoIterator<Item = (K, V)>) -> Datum {
    Datum::map(pairs.into_iter().map(|(k, v)| (k.into(), v.into())))
}

/// A set of strings.
pub fn sset<S: Into<String>>(items: impl IntoIterator<Item = S>) -> Datum {
    Datum::set(items.into_iter().map(Into::into))
}
