//! Database schemas (RFC 7047 §3.2), as `get_schema` returns them and as `.ovsschema` files hold them.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use crate::datum::{Atom, Datum};

/// A database schema.
#[derive(Debug, Clone, Deserialize)]
pub struct DatabaseSchema {
    pub name: String,
    pub version: String,
    #[serde(default)]
    pub cksum: Option<String>,
    pub tables: BTreeMap<String, TableSchema>,
}

/// One table of a schema.
#[derive(Debug, Clone, Deserialize)]
pub struct TableSchema {
    pub columns: BTreeMap<String, ColumnSchema>,
    #[serde(rename = "isRoot", default)]
    pub is_root: bool,
    #[serde(default)]
    pub indexes: Vec<Vec<String>>,
    #[serde(rename = "maxRows", default)]
    pub max_rows: Option<u64>,
}

/// One column of a table.
#[derive(Debug, Clone, Deserialize)]
pub struct ColumnSchema {
    #[serde(rename = "type", deserialize_with = "de_column_type")]
    pub kind: ColumnType,
    #[serde(default)]
    pub ephemeral: bool,
    #[serde(default = "yes")]
    pub mutable: bool,
}

fn yes() -> bool {
    true
}

/// The type of a column: key (and value for maps) with cardinality bounds.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnType {
    pub key: BaseType,
    pub value: Option<BaseType>,
    pub min: u64,
    /// `None` means "unlimited".
    pub max: Option<u64>,
}

impl ColumnType {
    /// Exactly one value: updates replace it, and the typed model holds it bare.
    pub fn is_scalar(&self) -> bool {
        self.value.is_none() && self.min == 1 && self.max == Some(1)
    }
    /// Zero or one value.
    pub fn is_optional(&self) -> bool {
        self.value.is_none() && self.min == 0 && self.max == Some(1)
    }
    /// A map column.
    pub fn is_map(&self) -> bool {
        self.value.is_some()
    }
    /// The value a column holds when nobody set it (RFC 7047 §5.1): empty when zero values are
    /// allowed, else the key type's default atom. The server leaves such columns out of
    /// `initial`/`insert` updates.
    pub fn default_datum(&self) -> Datum {
        if self.is_map() {
            return Datum::empty_map();
        }
        if self.min == 0 {
            return Datum::empty_set();
        }
        Datum::scalar(match self.key.atomic {
            AtomicType::Integer => Atom::Integer(0),
            AtomicType::Real => Atom::Real(0.0),
            AtomicType::Boolean => Atom::Boolean(false),
            AtomicType::String => Atom::String(Default::default()),
            AtomicType::Uuid => Atom::Uuid(uuid::Uuid::nil()),
        })
    }
}

/// An atomic type, with the constraints the schema puts on it.
#[derive(Debug, Clone, PartialEq)]
pub struct BaseType {
    pub atomic: AtomicType,
    /// Allowed values (`"enum"`), as JSON atoms.
    pub enumeration: Option<Vec<Value>>,
    pub ref_table: Option<String>,
    /// `true` for strong references (the default), `false` for weak ones.
    pub ref_strong: bool,
    pub min_integer: Option<i64>,
    pub max_integer: Option<i64>,
}

/// The five atomic types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AtomicType {
    Integer,
    Real,
    Boolean,
    String,
    Uuid,
}

impl AtomicType {
    fn parse(s: &str) -> Option<AtomicType> {
        Some(match s {
            "integer" => AtomicType::Integer,
            "real" => AtomicType::Real,
            "boolean" => AtomicType::Boolean,
            "string" => AtomicType::String,
            "uuid" => AtomicType::Uuid,
            _ => return None,
        })
    }
}

fn parse_base(v: &Value) -> Result<BaseType, String> {
    match v {
        Value::String(s) => Ok(BaseType {
            atomic: AtomicType::parse(s).ok_or_else(|| format!("unknown atomic type {s}"))?,
            enumeration: None,
            ref_table: None,
            ref_strong: true,
            min_integer: None,
            max_integer: None,
        }),
        Value::Object(o) => {
            let t = o
                .get("type")
                .and_then(Value::as_str)
                .ok_or("base type without \"type\"")?;
            let enumeration = match o.get("enum") {
                None => None,
                Some(Value::Array(a)) if a.len() == 2 && a[0] == "set" => {
                    Some(a[1].as_array().cloned().unwrap_or_default())
                }
                Some(other) => Some(vec![other.clone()]),
            };
            Ok(BaseType {
                atomic: AtomicType::parse(t).ok_or_else(|| format!("unknown atomic type {t}"))?,
                enumeration,
                ref_table: o.get("refTable").and_then(Value::as_str).map(str::to_owned),
                ref_strong: o.get("refType").and_then(Value::as_str) != Some("weak"),
                min_integer: o.get("minInteger").and_then(Value::as_i64),
                max_integer: o.get("maxInteger").and_then(Value::as_i64),
            })
        }
        _ => Err(format!("malformed base type {v}")),
    }
}

fn parse_column_type(v: &Value) -> Result<ColumnType, String> {
    match v {
        Value::String(_) => Ok(ColumnType {
            key: parse_base(v)?,
            value: None,
            min: 1,
            max: Some(1),
        }),
        Value::Object(o) => {
            let key = parse_base(o.get("key").ok_or("column type without key")?)?;
            let value = o.get("value").map(parse_base).transpose()?;
            let min = o.get("min").and_then(Value::as_u64).unwrap_or(1);
            let max = match o.get("max") {
                None => Some(1),
                Some(Value::String(s)) if s == "unlimited" => None,
                Some(m) => Some(m.as_u64().ok_or("bad max")?),
            };
            Ok(ColumnType {
                key,
                value,
                min,
                max,
            })
        }
        _ => Err(format!("malformed column type {v}")),
    }
}

fn de_column_type<'de, D: serde::Deserializer<'de>>(d: D) -> Result<ColumnType, D::Error> {
    let v = Value::deserialize(d)?;
    parse_column_type(&v).map_err(serde::de::Error::custom)
}

impl DatabaseSchema {
    /// Parses a schema from its JSON text.
    pub fn from_json_str(text: &str) -> Result<DatabaseSchema, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// The schema of one table.
    pub fn table(&self, name: &str) -> Option<&TableSchema> {
        self.tables.get(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCHEMA: &str = r#"{"name":"T","version":"1.0.0","tables":{
        "A":{"columns":{
            "name":{"type":"string"},
            "kids":{"type":{"key":{"type":"uuid","refTable":"B","refType":"weak"},"min":0,"max":"unlimited"}},
            "opts":{"type":{"key":"string","value":"string","min":0,"max":"unlimited"}},
            "proto":{"type":{"key":{"type":"string","enum":["set",["tcp","udp"]]},"min":0,"max":1}}},
         "isRoot":true,"indexes":[["name"]]}}}"#;

    #[test]
    fn parses_types() {
        let s = DatabaseSchema::from_json_str(SCHEMA).unwrap();
        let a = s.table("A").unwrap();
        assert!(a.is_root);
        assert_eq!(a.indexes, vec![vec!["name".to_string()]]);
        assert!(a.columns["name"].kind.is_scalar());
        let kids = &a.columns["kids"].kind;
        assert_eq!(kids.max, None);
        assert_eq!(kids.key.ref_table.as_deref(), Some("B"));
        assert!(!kids.key.ref_strong);
        assert!(a.columns["opts"].kind.is_map());
        let proto = &a.columns["proto"].kind;
        assert!(proto.is_optional());
        assert_eq!(proto.key.enumeration.as_ref().unwrap().len(), 2);
    }
}
