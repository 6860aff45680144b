//! The bridge between generic [`Row`]s and generated typed rows (see [`crate::nb`]).
//!
//! A column missing from a row (not monitored, or absent from an older server's schema) reads as
//! its default; columns a newer server adds are simply not read. A column whose datum has the
//! wrong type is an error naming the table and column.

use std::collections::{BTreeMap, BTreeSet};

use uuid::Uuid;

use crate::datum::{Atom, Datum, Row};

/// A typed row of one table.
pub trait Model: Sized {
    /// The table's name in the schema.
    const TABLE: &'static str;
    /// The table's columns, in schema order.
    const COLUMNS: &'static [&'static str];
    /// Reads a typed row from a generic one.
    fn from_row(uuid: Uuid, row: &Row) -> Result<Self, ModelError>;
    /// Writes every column into a generic row.
    fn to_row(&self) -> Row;
    /// The row's uuid (nil for a row not yet inserted).
    fn uuid(&self) -> Uuid;
}

/// A column whose datum does not fit the typed field.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{table}.{column}: expected {expected}, found {found}")]
pub struct ModelError {
    pub table: &'static str,
    pub column: &'static str,
    pub expected: &'static str,
    pub found: String,
}

/// An atom type a typed field can hold.
pub trait AtomValue: Sized {
    /// The type's name, for errors.
    const NAME: &'static str;
    /// Converts from an atom of the right type.
    fn from_atom(a: &Atom) -> Option<Self>;
    /// Converts into an atom.
    fn to_atom(&self) -> Atom;
}

impl AtomValue for i64 {
    const NAME: &'static str = "integer";
    fn from_atom(a: &Atom) -> Option<Self> {
        a.as_integer()
    }
    fn to_atom(&self) -> Atom {
        Atom::Integer(*self)
    }
}
impl AtomValue for f64 {
    const NAME: &'static str = "real";
    fn from_atom(a: &Atom) -> Option<Self> {
        a.as_real()
    }
    fn to_atom(&self) -> Atom {
        Atom::Real(*self)
    }
}
impl AtomValue for bool {
    const NAME: &'static str = "boolean";
    fn from_atom(a: &Atom) -> Option<Self> {
        a.as_bool()
    }
    fn to_atom(&self) -> Atom {
        Atom::Boolean(*self)
    }
}
impl AtomValue for String {
    const NAME: &'static str = "string";
    fn from_atom(a: &Atom) -> Option<Self> {
        a.as_str().map(str::to_owned)
    }
    fn to_atom(&self) -> Atom {
        Atom::from(self.as_str())
    }
}
impl AtomValue for Uuid {
    const NAME: &'static str = "uuid";
    fn from_atom(a: &Atom) -> Option<Self> {
        a.as_uuid()
    }
    fn to_atom(&self) -> Atom {
        Atom::Uuid(*self)
    }
}

/// Where a column is being read, for error messages.
#[derive(Clone, Copy)]
pub struct ColumnRef<'a> {
    pub table: &'static str,
    pub column: &'static str,
    pub row: &'a Row,
}

impl ColumnRef<'_> {
    fn error(&self, expected: &'static str, found: &Datum) -> ModelError {
        ModelError {
            table: self.table,
            column: self.column,
            expected,
            found: found.to_string(),
        }
    }

    fn datum(&self) -> Option<&Datum> {
        self.row.get(self.column)
    }

    fn atoms<T: AtomValue>(&self) -> Result<Vec<T>, ModelError> {
        match self.datum() {
            None => Ok(Vec::new()),
            Some(d @ Datum::Map(m)) if !m.is_empty() => Err(self.error(T::NAME, d)),
            Some(d) => d
                .atoms()
                .map(|a| T::from_atom(a).ok_or_else(|| self.error(T::NAME, d)))
                .collect(),
        }
    }

    /// A column with exactly one value (missing reads as the default).
    pub fn scalar<T: AtomValue + Default>(&self) -> Result<T, ModelError> {
        Ok(self.atoms()?.into_iter().next().unwrap_or_default())
    }

    /// A column with zero or one value.
    pub fn optional<T: AtomValue>(&self) -> Result<Option<T>, ModelError> {
        Ok(self.atoms()?.into_iter().next())
    }

    /// A set column.
    pub fn set<T: AtomValue + Ord>(&self) -> Result<BTreeSet<T>, ModelError> {
        Ok(self.atoms()?.into_iter().collect())
    }

    /// A set of reals (reals are not `Ord`).
    pub fn real_set(&self) -> Result<Vec<f64>, ModelError> {
        self.atoms()
    }

    /// A map column.
    pub fn map<K: AtomValue + Ord, V: AtomValue>(&self) -> Result<BTreeMap<K, V>, ModelError> {
        let d = match self.datum() {
            None => return Ok(BTreeMap::new()),
            Some(d) => d,
        };
        match d {
            Datum::Set(s) if s.is_empty() => Ok(BTreeMap::new()),
            Datum::Set(_) => Err(self.error("map", d)),
            Datum::Map(m) => m
                .iter()
                .map(|(k, v)| match (K::from_atom(k), V::from_atom(v)) {
                    (Some(k), Some(v)) => Ok((k, v)),
                    _ => Err(self.error("map", d)),
                })
                .collect(),
        }
    }
}

/// A typed field that converts into a column datum.
pub trait ToDatum {
    /// The column's datum.
    fn to_datum(&self) -> Datum;
}

macro_rules! atom_to_datum {
    ($($t:ty),*) => {$(
        impl ToDatum for $t {
            fn to_datum(&self) -> Datum {
                Datum::scalar(self.to_atom())
            }
        }
        impl ToDatum for Option<$t> {
            fn to_datum(&self) -> Datum {
                Datum::Set(self.iter().map(AtomValue::to_atom).collect())
            }
        }
    )*};
}
atom_to_datum!(i64, f64, bool, String, Uuid);

impl<T: AtomValue> ToDatum for BTreeSet<T> {
    fn to_datum(&self) -> Datum {
        Datum::Set(self.iter().map(AtomValue::to_atom).collect())
    }
}

impl ToDatum for Vec<f64> {
    fn to_datum(&self) -> Datum {
        Datum::Set(self.iter().map(AtomValue::to_atom).collect())
    }
}

impl<K: AtomValue, V: AtomValue> ToDatum for BTreeMap<K, V> {
    fn to_datum(&self) -> Datum {
        Datum::Map(
            self.iter()
                .map(|(k, v)| (k.to_atom(), v.to_atom()))
                .collect(),
        )
    }
}

/// Declares a typed row: the struct and its [`Model`] impl. Used by the generated [`crate::nb`].
/// Each column names the [`ColumnRef`] reader that fits its type (`scalar`, `optional`, `set`,
/// `real_set`, `map`).
#[macro_export]
macro_rules! ovsdb_table {
    ($(#[$doc:meta])* $ty:ident = $table:literal {
        $( $(#[$fdoc:meta])* $field:ident : $fty:ty = $col:literal => $read:ident ),* $(,)?
    }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Default)]
        pub struct $ty {
            /// The row's `_uuid` (nil until inserted).
            pub uuid: $crate::Uuid,
            $( $(#[$fdoc])* pub $field: $fty, )*
        }

        impl $crate::model::Model for $ty {
            const TABLE: &'static str = $table;
            const COLUMNS: &'static [&'static str] = &[$($col),*];

            fn from_row(
                uuid: $crate::Uuid,
                row: &$crate::Row,
            ) -> Result<Self, $crate::model::ModelError> {
                Ok($ty {
                    uuid,
                    $( $field: $crate::model::ColumnRef { table: $table, column: $col, row }.$read()?, )*
                })
            }

            fn to_row(&self) -> $crate::Row {
                let mut row = $crate::Row::new();
                $( row.insert($col.to_owned(), $crate::model::ToDatum::to_datum(&self.$field)); )*
                row
            }

            fn uuid(&self) -> $crate::Uuid {
                self.uuid
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nb;
    use crate::schema::DatabaseSchema;

    fn columns_of<M: Model>(schema: &DatabaseSchema) -> (Vec<&'static str>, Vec<String>) {
        let t = schema.table(M::TABLE).expect("table in schema");
        (M::COLUMNS.to_vec(), t.columns.keys().cloned().collect())
    }

    #[test]
    fn generated_models_cover_the_embedded_schema() {
        let schema = DatabaseSchema::from_json_str(nb::SCHEMA_JSON).unwrap();
        assert_eq!(schema.version, nb::SCHEMA_VERSION);
        let checks = [
            columns_of::<nb::NbGlobal>(&schema),
            columns_of::<nb::LogicalSwitch>(&schema),
            columns_of::<nb::LogicalSwitchPort>(&schema),
            columns_of::<nb::LogicalRouter>(&schema),
            columns_of::<nb::LogicalRouterPort>(&schema),
            columns_of::<nb::LogicalRouterStaticRoute>(&schema),
            columns_of::<nb::LogicalRouterPolicy>(&schema),
            columns_of::<nb::Nat>(&schema),
            columns_of::<nb::LoadBalancer>(&schema),
            columns_of::<nb::LoadBalancerGroup>(&schema),
            columns_of::<nb::GatewayChassis>(&schema),
            columns_of::<nb::PortGroup>(&schema),
            columns_of::<nb::Acl>(&schema),
            columns_of::<nb::AddressSet>(&schema),
            columns_of::<nb::Meter>(&schema),
            columns_of::<nb::MeterBand>(&schema),
            columns_of::<nb::Copp>(&schema),
        ];
        for (model, schema_cols) in checks {
            assert_eq!(model, schema_cols);
        }
    }

    #[test]
    fn committed_models_match_the_installed_schema() {
        // Debian's ovn-common ships the schema the models must match; skip where it is absent.
        let Ok(installed) = std::fs::read_to_string("/usr/share/ovn/ovn-nb.ovsschema") else {
            return;
        };
        assert_eq!(
            installed,
            nb::SCHEMA_JSON,
            "run hack/gen-nb-models.sh to regenerate crates/ovsdb/src/nb"
        );
    }

    #[test]
    fn typed_rows_round_trip_and_tolerate_unknown_columns() {
        let lb = nb::LoadBalancer {
            name: "Service_default/kubernetes_TCP_node_switch_n1".into(),
            protocol: Some("tcp".into()),
            vips: [("10.43.0.1:443".to_string(), "10.44.0.0:6443".to_string())].into(),
            options: [("reject".to_string(), "true".to_string())].into(),
            ..Default::default()
        };
        let mut row = lb.to_row();
        assert_eq!(row["protocol"], Datum::scalar("tcp"));
        row.insert("column_from_a_newer_schema", Datum::scalar(1));
        let back = nb::LoadBalancer::from_row(lb.uuid, &row).unwrap();
        assert_eq!(back, lb);
    }

    #[test]
    fn wrong_types_name_the_column() {
        let row = Row::from([("priority".to_string(), Datum::scalar("high"))]);
        let e = nb::LogicalRouterPolicy::from_row(Uuid::nil(), &row).unwrap_err();
        assert_eq!(e.column, "priority");
        assert_eq!(e.table, "Logical_Router_Policy");
    }
}
