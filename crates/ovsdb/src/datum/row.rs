//! [`Row`]: the columns of one row, as a sorted vector keyed by interned column names.
//!
//! Column names come from schemas (and the code that writes them), so there are a few hundred
//! of them at most; interning them once for the process saves a string allocation per column
//! per row, and the vector saves the B-tree node a `BTreeMap` allocates even for a few columns.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::{Mutex, PoisonError};

use serde::de::{self, Deserialize, Deserializer, MapAccess, Visitor};
use serde::ser::{Serialize, Serializer};

use super::sets::sort_keep_last;
use super::Datum;

/// The one `&'static str` for a column name (leaked once per distinct name).
fn intern(name: &str) -> &'static str {
    static NAMES: Mutex<BTreeSet<&'static str>> = Mutex::new(BTreeSet::new());
    let mut names = NAMES.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(interned) = names.get(name) {
        return interned;
    }
    let interned: &'static str = Box::leak(name.into());
    names.insert(interned);
    interned
}

/// A row as a map from column name to datum (`_uuid` and `_version` are not columns), in
/// column-name order; it compares, orders and iterates like a `BTreeMap<String, Datum>`.
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Row(Vec<(&'static str, Datum)>);

impl Row {
    /// The row without columns.
    pub fn new() -> Row {
        Row::default()
    }

    fn find(&self, column: &str) -> Result<usize, usize> {
        self.0.binary_search_by(|(c, _)| (*c).cmp(column))
    }

    /// The value of `column`.
    pub fn get(&self, column: &str) -> Option<&Datum> {
        self.find(column).ok().map(|at| &self.0[at].1)
    }

    pub fn get_mut(&mut self, column: &str) -> Option<&mut Datum> {
        self.find(column).ok().map(|at| &mut self.0[at].1)
    }

    pub fn contains_key(&self, column: &str) -> bool {
        self.find(column).is_ok()
    }

    /// Sets `column` to `value`, returning the value it replaced.
    pub fn insert(&mut self, column: impl AsRef<str>, value: Datum) -> Option<Datum> {
        match self.find(column.as_ref()) {
            Ok(at) => Some(std::mem::replace(&mut self.0[at].1, value)),
            Err(at) => {
                // Exact growth: rows are built once and then kept, often for the process's life.
                self.0.reserve_exact(1);
                self.0.insert(at, (intern(column.as_ref()), value));
                None
            }
        }
    }

    /// The value of `column`, inserting `default()` first when the column is absent.
    pub fn get_or_insert_with(
        &mut self,
        column: impl AsRef<str>,
        default: impl FnOnce() -> Datum,
    ) -> &mut Datum {
        let at = match self.find(column.as_ref()) {
            Ok(at) => at,
            Err(at) => {
                self.0.reserve_exact(1);
                self.0.insert(at, (intern(column.as_ref()), default()));
                at
            }
        };
        &mut self.0[at].1
    }

    /// Removes `column`, returning its value.
    pub fn remove(&mut self, column: &str) -> Option<Datum> {
        let at = self.find(column).ok()?;
        Some(self.0.remove(at).1)
    }

    /// Keeps the columns for which `keep` is true.
    pub fn retain(&mut self, mut keep: impl FnMut(&str, &mut Datum) -> bool) {
        self.0.retain_mut(|(c, d)| keep(c, d));
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The columns and their values, in column-name order.
    pub fn iter(&self) -> Columns<'_> {
        self.0.iter().map(|(c, d)| (*c, d))
    }

    /// The column names, in order.
    pub fn keys(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.0.iter().map(|(c, _)| *c)
    }

    /// The values, in column-name order.
    pub fn values(&self) -> impl Iterator<Item = &Datum> {
        self.0.iter().map(|(_, d)| d)
    }
}

impl fmt::Debug for Row {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl std::ops::Index<&str> for Row {
    type Output = Datum;
    /// The value of a column that must be there.
    fn index(&self, column: &str) -> &Datum {
        self.get(column)
            .unwrap_or_else(|| panic!("row has no column {column:?}"))
    }
}

impl<C: AsRef<str>> FromIterator<(C, Datum)> for Row {
    /// Like collecting into a `BTreeMap`: a column given twice keeps its last value.
    fn from_iter<I: IntoIterator<Item = (C, Datum)>>(iter: I) -> Self {
        let mut columns: Vec<(&'static str, Datum)> = iter
            .into_iter()
            .map(|(c, d)| (intern(c.as_ref()), d))
            .collect();
        sort_keep_last(&mut columns, |(a, _), (b, _)| a.cmp(b));
        columns.shrink_to_fit();
        Row(columns)
    }
}

impl<C: AsRef<str>, const N: usize> From<[(C, Datum); N]> for Row {
    fn from(columns: [(C, Datum); N]) -> Self {
        columns.into_iter().collect()
    }
}

impl IntoIterator for Row {
    type Item = (&'static str, Datum);
    type IntoIter = std::vec::IntoIter<(&'static str, Datum)>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

/// A row's columns as `(name, &value)`, like iterating a `&BTreeMap`.
pub type Columns<'a> = std::iter::Map<
    std::slice::Iter<'a, (&'static str, Datum)>,
    fn(&'a (&'static str, Datum)) -> (&'static str, &'a Datum),
>;

impl<'a> IntoIterator for &'a Row {
    type Item = (&'static str, &'a Datum);
    type IntoIter = Columns<'a>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl Serialize for Row {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.iter())
    }
}

/// A column name read straight into its interned form (no `String` per column).
struct ColumnName(&'static str);

impl<'de> Deserialize<'de> for ColumnName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<ColumnName, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = ColumnName;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a column name")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<ColumnName, E> {
                Ok(ColumnName(intern(s)))
            }
        }
        d.deserialize_str(V)
    }
}

impl<'de> Deserialize<'de> for Row {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Row, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Row;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object of columns")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Row, A::Error> {
                let mut columns = Vec::with_capacity(map.size_hint().unwrap_or(0));
                while let Some((ColumnName(c), d)) = map.next_entry::<ColumnName, Datum>()? {
                    columns.push((c, d));
                }
                Ok(columns.into_iter().collect())
            }
        }
        d.deserialize_map(V)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn columns() -> Vec<(&'static str, Datum)> {
        vec![
            ("name", Datum::scalar("a")),
            ("type", Datum::scalar("")),
            ("external_ids", Datum::map([("k", "v")])),
            ("name", Datum::scalar("b")),
            ("addresses", Datum::set(["x", "y"])),
        ]
    }

    #[test]
    fn rows_collect_order_and_print_like_btreemap() {
        let tree: BTreeMap<String, Datum> = columns()
            .into_iter()
            .map(|(c, d)| (c.to_owned(), d))
            .collect();
        let row: Row = columns().into_iter().collect();
        assert!(row.iter().eq(tree.iter().map(|(c, d)| (c.as_str(), d))));
        assert_eq!(format!("{row:?}"), format!("{tree:?}"));
        assert_eq!(row["name"], Datum::scalar("b"));
        let mut shorter = row.clone();
        shorter.remove("type");
        assert_eq!(
            row.cmp(&shorter),
            tree.cmp(
                &tree
                    .clone()
                    .into_iter()
                    .filter(|(c, _)| c != "type")
                    .collect()
            )
        );
    }

    #[test]
    fn insert_replaces_and_interns() {
        let mut row = Row::new();
        assert_eq!(row.insert("options", Datum::empty_map()), None);
        assert_eq!(
            row.insert(String::from("options"), Datum::map([("a", "b")])),
            Some(Datum::empty_map())
        );
        row.get_or_insert_with("ports", Datum::empty_set);
        assert_eq!(row.keys().collect::<Vec<_>>(), ["options", "ports"]);
        let parsed: Row = serde_json::from_str(r#"{"options":["map",[["a","b"]]]}"#).unwrap();
        assert!(std::ptr::eq(
            parsed.keys().next().unwrap(),
            row.keys().next().unwrap()
        ));
    }
}
