//! OVSDB values: atoms, and the set/map datums every column holds.
//!
//! In memory every column is a [`Datum`]: a set (scalars and optional values are sets of at most
//! one atom) or a map. Sets and maps are ordered so that two datums compare equal exactly when
//! the server would consider them equal, which is what the reconciler's diff relies on.
//! On the wire (RFC 7047 §5.1) a one-atom set may be a bare atom; [`Datum::from_json`] accepts
//! every form and [`Datum::to_json`] writes the shortest form the server accepts.

use std::cmp::Ordering;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, SeqAccess, Visitor};
use serde::ser::{Serialize, Serializer};
use serde_json::Value;
use uuid::Uuid;

mod row;
mod sets;
mod text;

pub use row::{Columns, Row};
pub use sets::{AtomMap, AtomSet, Pairs};
pub use text::Text;

/// One OVSDB atom (24 bytes: short strings inline, longer ones boxed).
#[derive(Debug, Clone)]
pub enum Atom {
    Integer(i64),
    Real(f64),
    Boolean(bool),
    String(Text),
    Uuid(Uuid),
    /// A reference to a row inserted earlier in the same transaction (`["named-uuid", name]`).
    NamedUuid(Box<str>),
}

impl Atom {
    fn rank(&self) -> u8 {
        match self {
            Atom::Integer(_) => 0,
            Atom::Real(_) => 1,
            Atom::Boolean(_) => 2,
            Atom::String(_) => 3,
            Atom::Uuid(_) => 4,
            Atom::NamedUuid(_) => 5,
        }
    }

    /// The string inside a string atom.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Atom::String(s) => Some(s),
            _ => None,
        }
    }

    /// The uuid inside a uuid atom.
    pub fn as_uuid(&self) -> Option<Uuid> {
        match self {
            Atom::Uuid(u) => Some(*u),
            _ => None,
        }
    }

    /// The value of an integer atom.
    pub fn as_integer(&self) -> Option<i64> {
        match self {
            Atom::Integer(i) => Some(*i),
            _ => None,
        }
    }

    /// The value of a boolean atom.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Atom::Boolean(b) => Some(*b),
            _ => None,
        }
    }

    /// The value of a real atom (integers widen).
    pub fn as_real(&self) -> Option<f64> {
        match self {
            Atom::Real(r) => Some(*r),
            Atom::Integer(i) => Some(*i as f64),
            _ => None,
        }
    }

    /// Parses an atom from its JSON form.
    pub fn from_json(v: &Value) -> Result<Atom, DatumError> {
        Atom::from_value(v.clone())
    }

    /// Parses an atom from its JSON form, moving strings out of it instead of copying.
    pub fn from_value(v: Value) -> Result<Atom, DatumError> {
        match v {
            Value::String(s) => Ok(Atom::String(s.into())),
            Value::Bool(b) => Ok(Atom::Boolean(b)),
            Value::Number(ref n) => {
                if let Some(i) = n.as_i64() {
                    Ok(Atom::Integer(i))
                } else if let Some(f) = n.as_f64() {
                    Ok(Atom::Real(f))
                } else {
                    Err(DatumError::new("number out of range", &v))
                }
            }
            Value::Array(ref a) if a.len() == 2 => match (a[0].as_str(), &a[1]) {
                (Some("uuid"), Value::String(u)) => Uuid::parse_str(u)
                    .map(Atom::Uuid)
                    .map_err(|_| DatumError::new("malformed uuid", &v)),
                (Some("named-uuid"), Value::String(n)) => Ok(Atom::NamedUuid(n.as_str().into())),
                _ => Err(DatumError::new("not an atom", &v)),
            },
            _ => Err(DatumError::new("not an atom", &v)),
        }
    }

    /// The JSON form of this atom.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).expect("atoms serialize")
    }
}

impl PartialEq for Atom {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Atom {}
impl PartialOrd for Atom {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Atom {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (Atom::Integer(a), Atom::Integer(b)) => a.cmp(b),
            (Atom::Real(a), Atom::Real(b)) => a.total_cmp(b),
            (Atom::Boolean(a), Atom::Boolean(b)) => a.cmp(b),
            (Atom::String(a), Atom::String(b)) => a.cmp(b),
            (Atom::Uuid(a), Atom::Uuid(b)) => a.cmp(b),
            (Atom::NamedUuid(a), Atom::NamedUuid(b)) => a.cmp(b),
            _ => self.rank().cmp(&other.rank()),
        }
    }
}

impl fmt::Display for Atom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Atom::Integer(i) => write!(f, "{i}"),
            Atom::Real(r) => write!(f, "{r}"),
            Atom::Boolean(b) => write!(f, "{b}"),
            Atom::String(s) => write!(f, "{s}"),
            Atom::Uuid(u) => write!(f, "{u}"),
            Atom::NamedUuid(n) => write!(f, "@{n}"),
        }
    }
}

impl From<&str> for Atom {
    fn from(s: &str) -> Self {
        Atom::String(s.into())
    }
}
impl From<String> for Atom {
    fn from(s: String) -> Self {
        Atom::String(s.into())
    }
}
impl From<i64> for Atom {
    fn from(i: i64) -> Self {
        Atom::Integer(i)
    }
}
impl From<bool> for Atom {
    fn from(b: bool) -> Self {
        Atom::Boolean(b)
    }
}
impl From<Uuid> for Atom {
    fn from(u: Uuid) -> Self {
        Atom::Uuid(u)
    }
}

/// The value of one column: a set of atoms or a map between atoms.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Datum {
    Set(AtomSet),
    Map(AtomMap),
}

impl Default for Datum {
    fn default() -> Self {
        Datum::Set(AtomSet::new())
    }
}

impl Datum {
    /// A set holding exactly one atom (the form of every scalar column).
    pub fn scalar(a: impl Into<Atom>) -> Datum {
        Datum::Set(AtomSet::one(a.into()))
    }

    /// The empty set (an absent optional value).
    pub fn empty_set() -> Datum {
        Datum::Set(AtomSet::new())
    }

    /// The empty map.
    pub fn empty_map() -> Datum {
        Datum::Map(AtomMap::new())
    }

    /// A set of the given atoms.
    pub fn set<A: Into<Atom>>(atoms: impl IntoIterator<Item = A>) -> Datum {
        Datum::Set(atoms.into_iter().map(Into::into).collect())
    }

    /// A map of the given pairs.
    pub fn map<K: Into<Atom>, V: Into<Atom>>(pairs: impl IntoIterator<Item = (K, V)>) -> Datum {
        Datum::Map(
            pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }

    /// An optional value: the empty set for `None`.
    pub fn optional(a: Option<impl Into<Atom>>) -> Datum {
        Datum::Set(a.into_iter().map(Into::into).collect())
    }

    /// True for an empty set or an empty map (a column's default when it allows zero values).
    pub fn is_empty(&self) -> bool {
        match self {
            Datum::Set(s) => s.is_empty(),
            Datum::Map(m) => m.is_empty(),
        }
    }

    /// The single atom of a one-element set.
    pub fn as_atom(&self) -> Option<&Atom> {
        match self {
            Datum::Set(s) => match s.as_slice() {
                [atom] => Some(atom),
                _ => None,
            },
            Datum::Map(_) => None,
        }
    }

    /// The atoms of a set (empty for a map).
    pub fn atoms(&self) -> impl Iterator<Item = &Atom> {
        let set = match self {
            Datum::Set(s) => Some(s.iter()),
            Datum::Map(_) => None,
        };
        set.into_iter().flatten()
    }

    /// The pairs of a map (empty for a set).
    pub fn pairs(&self) -> impl Iterator<Item = (&Atom, &Atom)> {
        let map = match self {
            Datum::Map(m) => Some(m.iter()),
            Datum::Set(_) => None,
        };
        map.into_iter().flatten()
    }

    /// Looks a string key up in a map datum.
    pub fn get(&self, key: &str) -> Option<&Atom> {
        match self {
            Datum::Map(m) => m.get_str(key),
            Datum::Set(_) => None,
        }
    }

    /// Parses any wire form: a bare atom, `["set", [...]]` or `["map", [[k, v], ...]]`.
    pub fn from_json(v: &Value) -> Result<Datum, DatumError> {
        Datum::from_value(v.clone())
    }

    /// Like [`Datum::from_json`], moving strings out of the value instead of copying them
    /// (what the replica uses for monitor dumps).
    pub fn from_value(mut v: Value) -> Result<Datum, DatumError> {
        let mut tagged = None;
        if let Value::Array(a) = &mut v {
            if let [tag, Value::Array(items)] = a.as_mut_slice() {
                if let Some(tag @ ("set" | "map")) = tag.as_str() {
                    tagged = Some((tag == "set", std::mem::take(items)));
                }
            }
        }
        let Some((is_set, items)) = tagged else {
            return Atom::from_value(v).map(Datum::scalar);
        };
        if is_set {
            return items
                .into_iter()
                .map(Atom::from_value)
                .collect::<Result<_, _>>()
                .map(Datum::Set);
        }
        let mut pairs = Vec::with_capacity(items.len());
        for p in items {
            match p {
                Value::Array(kv) if kv.len() == 2 => {
                    let mut kv = kv.into_iter();
                    let k = Atom::from_value(kv.next().unwrap_or_default())?;
                    pairs.push((k, Atom::from_value(kv.next().unwrap_or_default())?));
                }
                _ => return Err(DatumError::new("malformed map pair", &p)),
            }
        }
        Ok(Datum::Map(pairs.into_iter().collect()))
    }

    /// The wire form: a bare atom for one-element sets, otherwise `set`/`map`.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).expect("datums serialize")
    }
}

impl fmt::Display for Datum {
    /// ovn-nbctl-like text: `a`, `[a, b]`, `{k=v, k2=v2}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Datum::Set(s) if s.len() == 1 => write!(f, "{}", s.as_slice()[0]),
            Datum::Set(s) => {
                let items: Vec<String> = s.iter().map(|a| a.to_string()).collect();
                write!(f, "[{}]", items.join(", "))
            }
            Datum::Map(m) => {
                let items: Vec<String> = m.iter().map(|(k, v)| format!("{k}={v}")).collect();
                write!(f, "{{{}}}", items.join(", "))
            }
        }
    }
}

/// A JSON value that is not a valid OVSDB atom or datum.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{what}: {value}")]
pub struct DatumError {
    pub what: &'static str,
    pub value: String,
}

impl DatumError {
    fn new(what: &'static str, v: &Value) -> Self {
        let mut value = v.to_string();
        value.truncate(200);
        DatumError { what, value }
    }
}

/// Parses a JSON object of columns (as in `insert` rows or update `new`) into a [`Row`].
pub fn row_from_json(v: &Value) -> Result<Row, DatumError> {
    row_from_value(v.clone())
}

/// Like [`row_from_json`], moving the column names and strings out of the value.
pub fn row_from_value(v: Value) -> Result<Row, DatumError> {
    let Value::Object(obj) = v else {
        return Err(DatumError::new("row is not an object", &v));
    };
    obj.into_iter()
        .filter(|(k, _)| !k.starts_with('_'))
        .map(|(k, v)| Ok((k, Datum::from_value(v)?)))
        .collect()
}

/// The JSON object form of a row.
pub fn row_to_json(row: &Row) -> Value {
    serde_json::to_value(row).expect("rows serialize")
}

// Direct serialization (no intermediate `Value`), used to write transactions.

impl Serialize for Atom {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Atom::Integer(i) => s.serialize_i64(*i),
            Atom::Real(r) => s.serialize_f64(*r),
            Atom::Boolean(b) => s.serialize_bool(*b),
            Atom::String(v) => s.serialize_str(v),
            Atom::Uuid(u) => ("uuid", u.hyphenated()).serialize(s),
            Atom::NamedUuid(n) => ("named-uuid", n).serialize(s),
        }
    }
}

/// A datum's elements or pairs, as the JSON array inside `["set", ...]` / `["map", ...]`.
struct Elements<'a>(&'a Datum);

impl Serialize for Elements<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Datum::Set(set) => s.collect_seq(set),
            Datum::Map(map) => s.collect_seq(map.iter()),
        }
    }
}

impl Serialize for Datum {
    /// The wire form: a bare atom for one-element sets, otherwise `set`/`map`.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Datum::Set(set) if set.len() == 1 => set.as_slice()[0].serialize(s),
            Datum::Set(_) => ("set", Elements(self)).serialize(s),
            Datum::Map(_) => ("map", Elements(self)).serialize(s),
        }
    }
}

// Direct deserialization (no intermediate `Value`), used for monitor replies and updates.

struct AtomVisitor;

impl<'de> Visitor<'de> for AtomVisitor {
    type Value = Atom;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an OVSDB atom")
    }
    fn visit_bool<E: de::Error>(self, b: bool) -> Result<Atom, E> {
        Ok(Atom::Boolean(b))
    }
    fn visit_i64<E: de::Error>(self, i: i64) -> Result<Atom, E> {
        Ok(Atom::Integer(i))
    }
    fn visit_u64<E: de::Error>(self, u: u64) -> Result<Atom, E> {
        Ok(i64::try_from(u).map_or(Atom::Real(u as f64), Atom::Integer))
    }
    fn visit_f64<E: de::Error>(self, r: f64) -> Result<Atom, E> {
        Ok(Atom::Real(r))
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<Atom, E> {
        Ok(Atom::String(s.into()))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Atom, A::Error> {
        let tag: String = seq
            .next_element()?
            .ok_or_else(|| de::Error::custom("empty array is not an atom"))?;
        tagged_atom(&tag, &mut seq)
    }
}

/// The atom of `["uuid", "..."]` / `["named-uuid", "..."]` after its tag was read.
fn tagged_atom<'de, A: SeqAccess<'de>>(tag: &str, seq: &mut A) -> Result<Atom, A::Error> {
    let value: String = seq
        .next_element()?
        .ok_or_else(|| de::Error::custom(format!("[\"{tag}\"] without a value")))?;
    no_more(seq)?;
    match tag {
        "uuid" => Uuid::parse_str(&value)
            .map(Atom::Uuid)
            .map_err(|_| de::Error::custom(format!("malformed uuid {value:?}"))),
        "named-uuid" => Ok(Atom::NamedUuid(value.into())),
        _ => Err(de::Error::custom(format!("not an atom: [{tag:?}, ...]"))),
    }
}

fn no_more<'de, A: SeqAccess<'de>>(seq: &mut A) -> Result<(), A::Error> {
    match seq.next_element::<de::IgnoredAny>()? {
        None => Ok(()),
        Some(_) => Err(de::Error::custom("array has more than 2 elements")),
    }
}

impl<'de> Deserialize<'de> for Atom {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Atom, D::Error> {
        d.deserialize_any(AtomVisitor)
    }
}

struct DatumVisitor;

/// `[key, value]` of a map datum.
struct Pair(Atom, Atom);

impl<'de> Deserialize<'de> for Pair {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Pair, D::Error> {
        let (k, v) = <(Atom, Atom)>::deserialize(d)?;
        Ok(Pair(k, v))
    }
}

impl<'de> Visitor<'de> for DatumVisitor {
    type Value = Datum;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an OVSDB datum")
    }
    fn visit_bool<E: de::Error>(self, b: bool) -> Result<Datum, E> {
        Ok(Datum::scalar(b))
    }
    fn visit_i64<E: de::Error>(self, i: i64) -> Result<Datum, E> {
        Ok(Datum::scalar(i))
    }
    fn visit_u64<E: de::Error>(self, u: u64) -> Result<Datum, E> {
        AtomVisitor.visit_u64(u).map(Datum::scalar)
    }
    fn visit_f64<E: de::Error>(self, r: f64) -> Result<Datum, E> {
        Ok(Datum::scalar(Atom::Real(r)))
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<Datum, E> {
        Ok(Datum::scalar(s))
    }
    fn visit_string<E: de::Error>(self, s: String) -> Result<Datum, E> {
        Ok(Datum::scalar(s))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Datum, A::Error> {
        let tag: String = seq
            .next_element()?
            .ok_or_else(|| de::Error::custom("empty array is not a datum"))?;
        let datum = match tag.as_str() {
            "set" => Datum::Set(
                seq.next_element::<Vec<Atom>>()?
                    .ok_or_else(|| de::Error::custom("[\"set\"] without elements"))?
                    .into_iter()
                    .collect(),
            ),
            "map" => Datum::Map(
                seq.next_element::<Vec<Pair>>()?
                    .ok_or_else(|| de::Error::custom("[\"map\"] without pairs"))?
                    .into_iter()
                    .map(|Pair(k, v)| (k, v))
                    .collect(),
            ),
            _ => return tagged_atom(&tag, &mut seq).map(Datum::scalar),
        };
        no_more(&mut seq)?;
        Ok(datum)
    }
}

impl<'de> Deserialize<'de> for Datum {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Datum, D::Error> {
        d.deserialize_any(DatumVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn wire_forms_round_trip() {
        let cases = [
            json!("x"),
            json!(5),
            json!(true),
            json!(["uuid", "6b2b6f3a-33ab-4e4b-9f0b-4a1d6e2c5a10"]),
            json!(["named-uuid", "row1"]),
            json!(["set", []]),
            json!(["set", ["a", "b"]]),
            json!(["map", [["k", "v"], ["k2", "v2"]]]),
        ];
        for c in cases {
            let d = Datum::from_json(&c).unwrap();
            assert_eq!(Datum::from_json(&d.to_json()).unwrap(), d, "{c}");
        }
    }

    #[test]
    fn direct_deserialization_matches_from_json() {
        let cases = [
            json!("x"),
            json!(-5),
            json!(2.5),
            json!(true),
            json!(["uuid", "6b2b6f3a-33ab-4e4b-9f0b-4a1d6e2c5a10"]),
            json!(["named-uuid", "row1"]),
            json!(["set", []]),
            json!(["set", ["b", "a"]]),
            json!([
                "map",
                [
                    ["k", "v"],
                    ["k2", ["uuid", "6b2b6f3a-33ab-4e4b-9f0b-4a1d6e2c5a10"]]
                ]
            ]),
        ];
        for c in cases {
            let direct: Datum = serde_json::from_str(&c.to_string()).unwrap();
            assert_eq!(direct, Datum::from_json(&c).unwrap(), "{c}");
        }
        for bad in [
            "null",
            r#"{"a":1}"#,
            r#"["uuid","nope"]"#,
            r#"["map",[["k"]]]"#,
            r#"["set",[null]]"#,
            r#"["set",[],1]"#,
            "[]",
        ] {
            assert!(serde_json::from_str::<Datum>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn values_stay_small() {
        // Every column of every row holds one datum; a scalar's atom is inline in it.
        assert_eq!(std::mem::size_of::<Atom>(), 24);
        assert_eq!(std::mem::size_of::<Datum>(), 24);
    }

    #[test]
    fn bare_atom_equals_one_element_set() {
        assert_eq!(
            Datum::from_json(&json!("a")).unwrap(),
            Datum::from_json(&json!(["set", ["a"]])).unwrap()
        );
    }

    #[test]
    fn malformed_values_are_errors() {
        for bad in [
            json!(null),
            json!({"a": 1}),
            json!(["uuid", "nope"]),
            json!(["map", [["k"]]]),
            json!(["set", [null]]),
        ] {
            assert!(Datum::from_json(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn display_is_nbctl_like() {
        let m = Datum::map([("event", "false"), ("reject", "true")]);
        assert_eq!(m.to_string(), "{event=false, reject=true}");
        assert_eq!(Datum::set(["b", "a"]).to_string(), "[a, b]");
    }
}
