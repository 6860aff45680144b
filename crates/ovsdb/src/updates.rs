//! Typed `<table-updates>` (`monitor`) and `<table-updates2>` (`monitor_cond*`), deserialized
//! straight from the JSON text into [`Row`]s, without an intermediate `serde_json::Value` tree:
//! a monitor dump of 50k rows is parsed once, into its final form.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, Visitor};
use uuid::Uuid;

use crate::datum::Row;
use crate::replica::{Replica, UpdateError};

/// One row of a `<table-updates2>`.
#[derive(Debug, Clone, PartialEq)]
pub enum RowUpdate2 {
    /// `initial` (in a monitor reply) or `insert`: the whole row, default columns left out.
    Insert(Row),
    /// `modify`: per-column diffs.
    Modify(Row),
    Delete,
}

/// One row of a `<table-updates>`: the old and/or new row.
#[derive(Debug, Clone, PartialEq, Default, serde::Deserialize)]
pub struct RowUpdate1 {
    #[serde(default)]
    pub old: Option<Row>,
    #[serde(default)]
    pub new: Option<Row>,
}

/// Row updates grouped by table, in wire order.
#[derive(Debug, Clone, PartialEq)]
pub struct TableUpdates<T>(pub Vec<(String, Vec<(Uuid, T)>)>);

/// Table updates in either wire format.
#[derive(Debug, Clone, PartialEq)]
pub enum Updates {
    /// From `monitor`: whole `old`/`new` rows.
    V1(TableUpdates<RowUpdate1>),
    /// From `monitor_cond*`: `initial`/`insert`/`modify`/`delete`.
    V2(TableUpdates<RowUpdate2>),
}

impl Updates {
    /// Applies the updates to a replica.
    pub fn apply(self, replica: &mut Replica) -> Result<(), UpdateError> {
        match self {
            Updates::V1(u) => replica.apply_table_updates(u),
            Updates::V2(u) => replica.apply_table_updates2(u),
        }
    }
}

fn strip_meta(mut row: Row) -> Row {
    row.retain(|c, _| !c.starts_with('_'));
    row
}

impl<'de> Deserialize<'de> for RowUpdate2 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<RowUpdate2, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RowUpdate2;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a <row-update2> object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RowUpdate2, A::Error> {
                let mut out = None;
                while let Some(key) = map.next_key::<String>()? {
                    let update = match key.as_str() {
                        "initial" | "insert" => RowUpdate2::Insert(strip_meta(map.next_value()?)),
                        "modify" => RowUpdate2::Modify(strip_meta(map.next_value()?)),
                        "delete" => {
                            map.next_value::<IgnoredAny>()?;
                            RowUpdate2::Delete
                        }
                        other => {
                            return Err(de::Error::custom(format!(
                                "unknown row update kind {other:?}"
                            )))
                        }
                    };
                    if out.replace(update).is_some() {
                        return Err(de::Error::custom("row update with two kinds"));
                    }
                }
                out.ok_or_else(|| {
                    de::Error::custom("row update without initial/insert/modify/delete")
                })
            }
        }
        d.deserialize_map(V)
    }
}

/// `{uuid: T, ...}` kept in wire order.
struct Rows<T>(Vec<(Uuid, T)>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Rows<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Rows<T>, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = Rows<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object of row updates by uuid")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Rows<T>, A::Error> {
                let mut rows = Vec::with_capacity(map.size_hint().unwrap_or(0));
                while let Some(uuid) = map.next_key::<String>()? {
                    let uuid = Uuid::parse_str(&uuid)
                        .map_err(|_| de::Error::custom(format!("bad row uuid {uuid:?}")))?;
                    rows.push((uuid, map.next_value()?));
                }
                Ok(Rows(rows))
            }
        }
        d.deserialize_map(V(PhantomData))
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for TableUpdates<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<TableUpdates<T>, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = TableUpdates<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a <table-updates> object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<TableUpdates<T>, A::Error> {
                let mut tables = Vec::new();
                while let Some(table) = map.next_key::<String>()? {
                    let Rows(rows) = map.next_value()?;
                    tables.push((table, rows));
                }
                Ok(TableUpdates(tables))
            }
        }
        d.deserialize_map(V(PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datum::Datum;

    const U: &str = "6b2b6f3a-33ab-4e4b-9f0b-4a1d6e2c5a10";

    #[test]
    fn parses_update2_kinds() {
        let text = format!(
            r#"{{"LB": {{"{U}": {{"insert": {{"name": "a", "_uuid": ["uuid", "{U}"]}}}}}},
                 "LS": {{"{U}": {{"delete": null}}}}}}"#
        );
        let TableUpdates(tables) = serde_json::from_str::<TableUpdates<RowUpdate2>>(&text).unwrap();
        assert_eq!(tables.len(), 2);
        assert_eq!(
            tables[0].1[0].1,
            RowUpdate2::Insert(Row::from([("name", Datum::scalar("a"))]))
        );
        assert_eq!(tables[1].1[0].1, RowUpdate2::Delete);
        for bad in [
            "[]".to_owned(),
            r#"{"LB": {"nope": {"delete": null}}}"#.to_owned(),
            format!(r#"{{"LB": {{"{U}": {{}}}}}}"#),
            format!(r#"{{"LB": {{"{U}": {{"what": {{}}}}}}}}"#),
            format!(r#"{{"LB": {{"{U}": {{"insert": {{}}, "delete": null}}}}}}"#),
        ] {
            assert!(
                serde_json::from_str::<TableUpdates<RowUpdate2>>(&bad).is_err(),
                "{bad}"
            );
        }
    }
}
