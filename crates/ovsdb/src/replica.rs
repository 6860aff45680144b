//! An in-memory replica of monitored tables, fed by `update` / `update2` / `update3` notifications.
//!
//! Rows are kept by uuid with three kinds of secondary index: by the `name` column (for tables
//! that have one), by chosen `external_ids` keys (e.g. `k8s.ovn.org/owner`), and by reference
//! (which rows' reference columns hold a uuid), so the reconciler finds its rows, and the rows
//! that hold them, without scanning.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::Value;
use uuid::Uuid;

use crate::datum::{Atom, Datum, Row, Text};
use crate::schema::DatabaseSchema;
use crate::updates::{RowUpdate1, RowUpdate2, TableUpdates};

/// A malformed update notification.
#[derive(Debug, Clone, thiserror::Error)]
pub enum UpdateError {
    #[error("malformed update: {0}")]
    Malformed(String),
}

/// The entries under one index key, in order: almost always one (a name, an owner, a
/// referenced row), kept inline then so an index costs no allocation per row beyond its key.
#[derive(Debug, Clone)]
enum Members<T> {
    One(T),
    /// Two or more, sorted.
    Many(Vec<T>),
}

impl<T: Ord + Copy> Members<T> {
    fn as_slice(&self) -> &[T] {
        match self {
            Members::One(member) => std::slice::from_ref(member),
            Members::Many(members) => members,
        }
    }

    fn insert(&mut self, member: T) {
        let Err(at) = self.as_slice().binary_search(&member) else {
            return;
        };
        let mut members = self.as_slice().to_vec();
        members.insert(at, member);
        *self = Members::Many(members);
    }

    /// Removes `member`; true when none is left.
    fn remove(&mut self, member: &T) -> bool {
        match self {
            Members::One(only) => only == member,
            Members::Many(members) => {
                if let Ok(at) = members.binary_search(member) {
                    members.remove(at);
                }
                if let [last] = members.as_slice() {
                    *self = Members::One(*last);
                }
                false
            }
        }
    }
}

/// Adds `member` under `key`.
fn add_member<K: Eq + Hash, T: Ord + Copy>(index: &mut HashMap<K, Members<T>>, key: K, member: T) {
    match index.entry(key) {
        Entry::Occupied(mut e) => e.get_mut().insert(member),
        Entry::Vacant(e) => {
            e.insert(Members::One(member));
        }
    }
}

/// Removes `member` from under `key`, and the key when nothing is left under it.
fn remove_member<K, Q, T>(index: &mut HashMap<K, Members<T>>, key: &Q, member: &T)
where
    K: Eq + Hash + std::borrow::Borrow<Q>,
    Q: Eq + Hash + ?Sized,
    T: Ord + Copy,
{
    if index.get_mut(key).is_some_and(|m| m.remove(member)) {
        index.remove(key);
    }
}

/// One table of the replica.
#[derive(Debug, Default, Clone)]
pub struct Table {
    rows: HashMap<Uuid, Row>,
    by_name: HashMap<Text, Members<Uuid>>,
    /// Indexed `external_ids` key -> value -> rows (nested so lookups by `&str` allocate nothing).
    by_external_id: HashMap<Text, HashMap<Text, Members<Uuid>>>,
}

impl Table {
    /// All rows, in no particular order.
    pub fn rows(&self) -> impl Iterator<Item = (&Uuid, &Row)> {
        self.rows.iter()
    }
    /// Number of rows.
    pub fn len(&self) -> usize {
        self.rows.len()
    }
    /// True when the table holds no rows.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
    /// One row by uuid.
    pub fn get(&self, uuid: &Uuid) -> Option<&Row> {
        self.rows.get(uuid)
    }
    /// The uuids of rows whose `name` column is `name` (names are not unique in every table).
    pub fn by_name(&self, name: &str) -> impl Iterator<Item = Uuid> + '_ {
        let members = self.by_name.get(name).map(Members::as_slice);
        members.into_iter().flatten().copied()
    }
    /// The `name` values present (each once).
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.by_name.keys().map(|name| &**name)
    }
    /// The values an indexed `external_ids` key has in some row (each once).
    pub fn external_id_values(&self, key: &str) -> impl Iterator<Item = &str> {
        self.by_external_id
            .get(key)
            .into_iter()
            .flat_map(|values| values.keys().map(|value| &**value))
    }
    /// The uuids of rows with `external_ids:key=value`, for an indexed key.
    pub fn by_external_id(&self, key: &str, value: &str) -> impl Iterator<Item = Uuid> + '_ {
        self.by_external_id
            .get(key)
            .and_then(|values| values.get(value))
            .map(Members::as_slice)
            .into_iter()
            .flatten()
            .copied()
    }
}

/// One reference to a row: the `column` of row `parent` in `table` holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Referrer<'a> {
    pub table: &'a str,
    pub column: &'a str,
    pub parent: Uuid,
}

/// The schema's reference columns, numbered so the reverse index stores a small id per entry.
#[derive(Debug, Default)]
struct RefColumns {
    /// `(table, column)` by id.
    list: Vec<(String, String)>,
    /// The reference columns of each table, with their ids.
    by_table: HashMap<String, Vec<(u32, String)>>,
}

impl RefColumns {
    fn of(schema: &DatabaseSchema) -> RefColumns {
        let mut r = RefColumns::default();
        for (table, t) in &schema.tables {
            for (column, c) in &t.columns {
                let refs = |b: &crate::schema::BaseType| b.ref_table.is_some();
                if refs(&c.kind.key) || c.kind.value.as_ref().is_some_and(refs) {
                    let id = r.list.len() as u32;
                    r.list.push((table.clone(), column.clone()));
                    r.by_table
                        .entry(table.clone())
                        .or_default()
                        .push((id, column.clone()));
                }
            }
        }
        r
    }
}

/// The replica of one database.
#[derive(Debug, Clone)]
pub struct Replica {
    schema: Arc<DatabaseSchema>,
    tables: HashMap<String, Table>,
    indexed_keys: Arc<Vec<String>>,
    ref_columns: Arc<RefColumns>,
    /// Referenced uuid -> (reference column id, referring row); uuids are unique across tables.
    referrers: HashMap<Uuid, Members<(u32, Uuid)>>,
}

/// The uuids a datum holds (set members, map keys and values).
fn uuids_of(d: &Datum) -> impl Iterator<Item = Uuid> + '_ {
    let pairs = d.pairs().flat_map(|(k, v)| [k, v]);
    d.atoms().chain(pairs).filter_map(Atom::as_uuid)
}

/// The `(key, value)` pairs of the row's `external_ids` whose key is indexed.
fn indexed_pairs<'a>(
    row: &'a Row,
    keys: &'a [String],
) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
    let pairs = row.get("external_ids").into_iter().flat_map(Datum::pairs);
    pairs.filter_map(move |(k, v)| {
        let k = k.as_str()?;
        keys.iter().any(|key| key == k).then_some((k, v.as_str()?))
    })
}

fn row_name(row: &Row) -> Option<&str> {
    row.get("name")
        .and_then(Datum::as_atom)
        .and_then(Atom::as_str)
}

impl Replica {
    /// An empty replica that indexes the given `external_ids` keys.
    pub fn new(schema: Arc<DatabaseSchema>, indexed_external_ids: Vec<String>) -> Replica {
        Replica {
            ref_columns: Arc::new(RefColumns::of(&schema)),
            schema,
            tables: HashMap::new(),
            indexed_keys: Arc::new(indexed_external_ids),
            referrers: HashMap::new(),
        }
    }

    /// An empty replica with the same schema and indexes.
    pub fn empty_like(&self) -> Replica {
        Replica {
            schema: self.schema.clone(),
            tables: HashMap::new(),
            indexed_keys: self.indexed_keys.clone(),
            ref_columns: self.ref_columns.clone(),
            referrers: HashMap::new(),
        }
    }

    /// True when `external_ids:key` is indexed (see [`Table::by_external_id`]).
    pub fn indexes_external_id(&self, key: &str) -> bool {
        self.indexed_keys.iter().any(|k| k == key)
    }

    /// The rows whose reference columns hold `uuid`.
    pub fn referrers(&self, uuid: &Uuid) -> impl Iterator<Item = Referrer<'_>> {
        self.referrers
            .get(uuid)
            .map(Members::as_slice)
            .into_iter()
            .flatten()
            .map(|(id, parent)| {
                let (table, column) = &self.ref_columns.list[*id as usize];
                Referrer {
                    table,
                    column,
                    parent: *parent,
                }
            })
    }

    /// Adds (or removes) the references `row` of `table` holds to the reverse index.
    fn index_references(&mut self, table: &str, uuid: Uuid, row: &Row, add: bool) {
        let Some(columns) = self.ref_columns.by_table.get(table) else {
            return;
        };
        for (id, column) in columns {
            for child in row.get(column).into_iter().flat_map(uuids_of) {
                let entry = (*id, uuid);
                if add {
                    add_member(&mut self.referrers, child, entry);
                } else {
                    remove_member(&mut self.referrers, &child, &entry);
                }
            }
        }
    }

    /// The schema the replica was built for.
    pub fn schema(&self) -> &DatabaseSchema {
        &self.schema
    }

    /// One table (empty tables may be absent).
    pub fn table(&self, name: &str) -> Option<&Table> {
        self.tables.get(name)
    }

    /// One row.
    pub fn get(&self, table: &str, uuid: &Uuid) -> Option<&Row> {
        self.tables.get(table).and_then(|t| t.get(uuid))
    }

    /// Total number of rows over all tables.
    pub fn row_count(&self) -> usize {
        self.tables.values().map(Table::len).sum()
    }

    fn unindex(&mut self, table: &str, uuid: Uuid) -> Option<Row> {
        let t = self.tables.get_mut(table)?;
        let row = t.rows.remove(&uuid)?;
        if let Some(n) = row_name(&row) {
            remove_member(&mut t.by_name, n, &uuid);
        }
        for (k, v) in indexed_pairs(&row, &self.indexed_keys) {
            if let Some(values) = t.by_external_id.get_mut(k) {
                remove_member(values, v, &uuid);
            }
        }
        self.index_references(table, uuid, &row, false);
        Some(row)
    }

    fn index(&mut self, table: &str, uuid: Uuid, row: Row) {
        if !self.tables.contains_key(table) {
            self.tables.insert(table.to_owned(), Table::default());
        }
        let t = self.tables.get_mut(table).expect("inserted above");
        if let Some(n) = row_name(&row) {
            add_member(&mut t.by_name, n.into(), uuid);
        }
        for (k, v) in indexed_pairs(&row, &self.indexed_keys) {
            let values = match t.by_external_id.get_mut(k) {
                Some(values) => values,
                None => t.by_external_id.entry(k.into()).or_default(),
            };
            add_member(values, v.into(), uuid);
        }
        self.index_references(table, uuid, &row, true);
        self.tables
            .get_mut(table)
            .expect("inserted above")
            .rows
            .insert(uuid, row);
    }

    /// Inserts or replaces a whole row.
    pub fn put(&mut self, table: &str, uuid: Uuid, row: Row) {
        self.unindex(table, uuid);
        self.index(table, uuid, row);
    }

    /// Removes a row.
    pub fn remove(&mut self, table: &str, uuid: Uuid) -> Option<Row> {
        self.unindex(table, uuid)
    }

    /// Applies a `<table-updates>` object of the `monitor` method (`old`/`new` whole rows).
    pub fn apply_update(&mut self, updates: &Value) -> Result<(), UpdateError> {
        let parsed = TableUpdates::deserialize(updates).map_err(malformed)?;
        self.apply_table_updates(parsed)
    }

    /// Applies a `<table-updates2>` object (`monitor_cond` / `monitor_cond_since`).
    pub fn apply_update2(&mut self, updates: &Value) -> Result<(), UpdateError> {
        let parsed = TableUpdates::deserialize(updates).map_err(malformed)?;
        self.apply_table_updates2(parsed)
    }

    /// Applies parsed `monitor` updates.
    pub fn apply_table_updates(
        &mut self,
        updates: TableUpdates<RowUpdate1>,
    ) -> Result<(), UpdateError> {
        for (table, rows) in updates.0 {
            for (uuid, change) in rows {
                match change.new {
                    Some(mut row) => {
                        // An `old` beside `new` means a modify: `new` then holds only the
                        // changed columns, the others keep their previous value.
                        if change.old.is_some() {
                            if let Some(prev) = self.get(&table, &uuid) {
                                for (k, v) in prev {
                                    row.get_or_insert_with(k, || v.clone());
                                }
                            }
                        }
                        self.put(&table, uuid, row);
                    }
                    None => {
                        self.remove(&table, uuid);
                    }
                }
            }
        }
        Ok(())
    }

    /// Applies parsed `monitor_cond*` updates.
    pub fn apply_table_updates2(
        &mut self,
        updates: TableUpdates<RowUpdate2>,
    ) -> Result<(), UpdateError> {
        for (table, rows) in updates.0 {
            for (uuid, change) in rows {
                match change {
                    RowUpdate2::Insert(row) => self.put(&table, uuid, row),
                    RowUpdate2::Modify(diff) => {
                        let mut row = self.remove(&table, uuid).ok_or_else(|| {
                            UpdateError::Malformed(format!("modify of unknown row {table} {uuid}"))
                        })?;
                        let columns = self.schema.table(&table).map(|t| &t.columns);
                        for (col, d) in diff {
                            let scalar = columns
                                .and_then(|c| c.get(col))
                                .is_some_and(|c| c.kind.is_scalar());
                            apply_diff(row.get_or_insert_with(col, Datum::default), d, scalar);
                        }
                        self.index(&table, uuid, row);
                    }
                    RowUpdate2::Delete => {
                        self.remove(&table, uuid);
                    }
                }
            }
        }
        Ok(())
    }
}

fn malformed(e: serde_json::Error) -> UpdateError {
    UpdateError::Malformed(e.to_string())
}

/// Applies an update2 column diff: scalars are replaced, sets toggle the given elements,
/// maps add new keys, delete keys given with their current value, and replace the others.
fn apply_diff(cur: &mut Datum, diff: Datum, scalar: bool) {
    if scalar {
        *cur = diff;
        return;
    }
    match (cur, diff) {
        (Datum::Set(cur), Datum::Set(d)) => *cur = std::mem::take(cur).symmetric_difference(d),
        (Datum::Map(cur), Datum::Map(d)) => *cur = std::mem::take(cur).apply_update2_diff(d),
        // An empty map may arrive as an empty set before we knew the column was a map.
        (cur @ Datum::Set(_), d @ Datum::Map(_)) if cur.is_empty() => *cur = d,
        (cur, d) => *cur = d,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Arc<DatabaseSchema> {
        Arc::new(
            DatabaseSchema::from_json_str(
                r#"{"name":"T","version":"1","tables":{"LB":{"columns":{
                "name":{"type":"string"},
                "protocol":{"type":{"key":"string","min":0,"max":1}},
                "vips":{"type":{"key":"string","value":"string","min":0,"max":"unlimited"}},
                "external_ids":{"type":{"key":"string","value":"string","min":0,"max":"unlimited"}}},
                "isRoot":true}}}"#,
            )
            .unwrap(),
        )
    }

    const U: &str = "6b2b6f3a-33ab-4e4b-9f0b-4a1d6e2c5a10";

    #[test]
    fn update2_insert_modify_delete() {
        let mut r = Replica::new(schema(), vec!["owner".into()]);
        r.apply_update2(
            &json!({"LB": {U: {"insert": {"name": "a", "protocol": "tcp",
            "vips": ["map", [["1.1.1.1:80", "2.2.2.2:80"]]],
            "external_ids": ["map", [["owner", "ns/x"]]]}}}}),
        )
        .unwrap();
        let u = Uuid::parse_str(U).unwrap();
        assert_eq!(r.table("LB").unwrap().by_name("a").collect::<Vec<_>>(), [u]);
        assert_eq!(
            r.table("LB")
                .unwrap()
                .by_external_id("owner", "ns/x")
                .count(),
            1
        );
        r.apply_update2(
            &json!({"LB": {U: {"modify": {"name": "b", "protocol": ["set", ["tcp", "udp"]],
            "vips": ["map", [["1.1.1.1:80", "2.2.2.2:80"], ["3.3.3.3:80", ""]]]}}}}),
        )
        .unwrap();
        let row = r.get("LB", &u).unwrap();
        assert_eq!(row["name"], Datum::scalar("b"));
        assert_eq!(row["protocol"], Datum::scalar("udp"));
        assert_eq!(row["vips"], Datum::map([("3.3.3.3:80", "")]));
        assert_eq!(r.table("LB").unwrap().by_name("a").count(), 0);
        assert_eq!(r.table("LB").unwrap().by_name("b").count(), 1);
        r.apply_update2(&json!({"LB": {U: {"delete": null}}}))
            .unwrap();
        assert!(r.get("LB", &u).is_none());
        assert_eq!(
            r.table("LB")
                .unwrap()
                .by_external_id("owner", "ns/x")
                .count(),
            0
        );
    }

    #[test]
    fn referrers_follow_inserts_modifies_and_deletes() {
        let schema = DatabaseSchema::from_json_str(
            r#"{"name":"T","version":"1","tables":{
            "S":{"columns":{"ports":{"type":{"key":{"type":"uuid","refTable":"P"},
                "min":0,"max":"unlimited"}}},"isRoot":true},
            "P":{"columns":{"name":{"type":"string"}}}}}"#,
        )
        .unwrap();
        let mut r = Replica::new(Arc::new(schema), vec![]);
        let (s1, s2, p) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let holding = |r: &Replica| {
            let mut v: Vec<Uuid> = r.referrers(&p).map(|x| x.parent).collect();
            v.sort();
            v
        };
        let ports = |members: Vec<Uuid>| json!({"ports": ["set", members.iter().map(|u| json!(["uuid", u.to_string()])).collect::<Vec<_>>()]});
        r.apply_update2(&json!({"P": {p.to_string(): {"insert": {"name": "p"}}},
            "S": {s1.to_string(): {"insert": ports(vec![p])}}}))
            .unwrap();
        let first = r.referrers(&p).next().unwrap();
        assert_eq!(
            (first.table, first.column, first.parent),
            ("S", "ports", s1)
        );
        r.apply_update2(&json!({"S": {s2.to_string(): {"insert": ports(vec![p])}}}))
            .unwrap();
        let mut both = vec![s1, s2];
        both.sort();
        assert_eq!(holding(&r), both);
        // update2 modify toggles the listed member out of s1.
        r.apply_update2(&json!({"S": {s1.to_string(): {"modify": ports(vec![p])}}}))
            .unwrap();
        assert_eq!(holding(&r), [s2]);
        r.apply_update2(&json!({"S": {s2.to_string(): {"delete": null}}}))
            .unwrap();
        assert!(holding(&r).is_empty());
    }

    #[test]
    fn shared_names_index_every_row() {
        let mut r = Replica::new(schema(), vec!["owner".into()]);
        let lb = |owner: &str| json!({"name": "same", "external_ids": ["map", [["owner", owner]]]});
        let mut uuids: Vec<Uuid> = (0..3).map(|_| Uuid::new_v4()).collect();
        for (u, owner) in uuids.iter().zip(["a", "b", "b"]) {
            r.apply_update2(&json!({"LB": {u.to_string(): {"insert": lb(owner)}}}))
                .unwrap();
        }
        uuids.sort();
        let t = r.table("LB").unwrap();
        assert_eq!(t.by_name("same").collect::<Vec<_>>(), uuids);
        assert_eq!(t.by_external_id("owner", "b").count(), 2);
        for (left, u) in [(2, uuids[0]), (1, uuids[2]), (0, uuids[1])] {
            r.remove("LB", u);
            let t = r.table("LB").unwrap();
            assert_eq!(t.by_name("same").count(), left);
            assert_eq!(t.names().count(), left.min(1));
        }
    }

    #[test]
    fn malformed_updates_are_errors() {
        let mut r = Replica::new(schema(), vec![]);
        assert!(r.apply_update2(&json!([])).is_err());
        assert!(r.apply_update2(&json!({"LB": {"nope": {}}})).is_err());
        assert!(r
            .apply_update2(&json!({"LB": {U: {"modify": {}}}}))
            .is_err());
        assert!(r.apply_update2(&json!({"LB": {U: {"what": {}}}})).is_err());
    }
}
