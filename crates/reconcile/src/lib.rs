//! The reconciler: desired rows (for some keys, or the whole cluster) against the NB replica,
//! into the minimal list of operations for one transaction.
//!
//! - Pure: inputs are a [`Desired`] set and an [`ovsdb::replica::Replica`]; the output is a [`Diff`]. Nothing
//!   is sent here, so every rule is unit-testable without a server.
//! - Minimal: a matched row gets one `update` with only its changed columns; reference sets
//!   are changed with `mutate insert`/`delete` of single members, merged per parent column;
//!   a converged NB yields no operation at all.
//! - Owned rows only: which rows are ours, and which key owns them, is decided by the
//!   [`ownership`](self::ownership) rules; rows of others are never updated, deleted, or
//!   removed from a reference set.
//! - Scope: [`Scope::Full`] deletes every owned row no desired row matches (stale nodes, pods,
//!   services); [`Scope::Keys`] only those attributed to the given keys, so a controller can
//!   reconcile a batch of keys without computing the rest of the cluster; [`Scope::AllBut`]
//!   everything except the given keys, which finishes a full sync done in batches.
//! - References: a desired [`Link`](ovnkube_desired::Link) resolves to the existing uuid, or to
//!   the named-uuid of a row inserted in the same transaction (written straight into the
//!   parent's insert when the parent is new too). Inserts of rows without a schema index
//!   (`Logical_Switch`, `Logical_Router`, `Load_Balancer`, policies) are guarded by a `wait`
//!   (`until != `, timeout 0), as upstream does, so a concurrent duplicate fails the transaction.

mod ownership;
mod plan;
#[cfg(test)]
#[path = "../tests/common/mod.rs"]
mod test_common;

use std::collections::BTreeSet;

use ovnkube_desired::{Desired, OwnerKey};
use ovsdb::ops::Operation;
use ovsdb::Datum;

pub use plan::{diff, diff_owned};

/// Which owned rows a diff may delete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Everything ovnkube-rs owns: unmatched owned rows are stale and deleted.
    Full,
    /// Only rows and links attributed to these keys.
    Keys(BTreeSet<OwnerKey>),
    /// Every owned row and link except those of these keys: with no desired rows, the stale
    /// rows a full sync would delete, once the live keys have been reconciled batch by batch.
    AllBut(BTreeSet<OwnerKey>),
}

impl Scope {
    /// The scope of exactly the keys present in `desired` (plus `extra`, e.g. deleted objects).
    pub fn of(desired: &Desired, extra: impl IntoIterator<Item = OwnerKey>) -> Scope {
        let mut keys = desired.keys();
        keys.extend(extra);
        Scope::Keys(keys)
    }

    fn covers(&self, owner: &Option<OwnerKey>) -> bool {
        match (self, owner) {
            (Scope::Full, _) => true,
            (Scope::Keys(keys), Some(k)) => keys.contains(k),
            (Scope::Keys(_), None) => false,
            (Scope::AllBut(live), Some(k)) => !live.contains(k),
            (Scope::AllBut(_), None) => true,
        }
    }
}

/// The operations that bring NB to the desired state, and what could not be placed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Diff {
    /// Operations for one `transact`, in a valid order (waits, inserts, updates, mutates, deletes).
    pub ops: Vec<Operation>,
    /// Desired rows or links skipped because a row they need is neither desired nor in NB.
    pub issues: Vec<String>,
}

impl Diff {
    /// The number of operations that change the database.
    pub fn write_count(&self) -> usize {
        self.ops.iter().filter(|o| o.is_write()).count()
    }
}

/// Column equality as the server sees it (an empty map and an empty set are both "nothing").
pub(crate) fn same(a: &Datum, b: &Datum) -> bool {
    a == b || (a.is_empty() && b.is_empty())
}
