//! Fits operations to the server's schema before sending them.
//!
//! A client built against a newer schema may set columns an older server lacks: those are dropped
//! from inserted/updated rows and from mutations (the write then does what the older server can).
//! A condition or a selected/waited column the server lacks would change what the operation
//! means, so it is an error, as is an unknown table.

use crate::error::Error;
use crate::ops::{Condition, Operation};
use crate::schema::{DatabaseSchema, TableSchema};

fn table<'a>(schema: &'a DatabaseSchema, name: &str) -> Result<&'a TableSchema, Error> {
    schema.table(name).ok_or_else(|| Error::UnknownTable {
        database: schema.name.clone(),
        table: name.to_owned(),
    })
}

fn known(ts: &TableSchema, column: &str) -> bool {
    column == "_uuid" || column == "_version" || ts.columns.contains_key(column)
}

fn check_columns<'a>(
    schema: &DatabaseSchema,
    table: &str,
    ts: &TableSchema,
    columns: impl IntoIterator<Item = &'a str>,
) -> Result<(), Error> {
    for c in columns {
        if !known(ts, c) {
            return Err(Error::UnknownColumn {
                database: schema.name.clone(),
                table: table.to_owned(),
                column: c.to_owned(),
            });
        }
    }
    Ok(())
}

fn check_conditions(
    schema: &DatabaseSchema,
    table: &str,
    ts: &TableSchema,
    conditions: &[Condition],
) -> Result<(), Error> {
    check_columns(
        schema,
        table,
        ts,
        conditions.iter().map(|c| c.column.as_str()),
    )
}

/// Checks and trims `ops` against `schema`.
pub fn sanitize(schema: &DatabaseSchema, mut ops: Vec<Operation>) -> Result<Vec<Operation>, Error> {
    for op in &mut ops {
        match op {
            Operation::Insert { table: t, row, .. } => {
                let ts = table(schema, t)?;
                row.retain(|c, _| ts.columns.contains_key(c));
            }
            Operation::Update {
                table: t,
                conditions,
                row,
            } => {
                let ts = table(schema, t)?;
                check_conditions(schema, t, ts, conditions)?;
                row.retain(|c, _| ts.columns.contains_key(c));
            }
            Operation::Mutate {
                table: t,
                conditions,
                mutations,
            } => {
                let ts = table(schema, t)?;
                check_conditions(schema, t, ts, conditions)?;
                mutations.retain(|m| ts.columns.contains_key(&m.column));
            }
            Operation::Select {
                table: t,
                conditions,
                columns,
            } => {
                let ts = table(schema, t)?;
                check_conditions(schema, t, ts, conditions)?;
                check_columns(schema, t, ts, columns.iter().flatten().map(String::as_str))?;
            }
            Operation::Delete {
                table: t,
                conditions,
            } => {
                let ts = table(schema, t)?;
                check_conditions(schema, t, ts, conditions)?;
            }
            Operation::Wait {
                table: t,
                conditions,
                columns,
                rows,
                ..
            } => {
                let ts = table(schema, t)?;
                check_conditions(schema, t, ts, conditions)?;
                check_columns(schema, t, ts, columns.iter().map(String::as_str))?;
                check_columns(schema, t, ts, rows.iter().flat_map(|r| r.keys()))?;
            }
            Operation::Commit { .. } | Operation::Abort | Operation::Comment(_) => {}
        }
    }
    Ok(ops)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datum::{Datum, Row};

    fn schema() -> DatabaseSchema {
        DatabaseSchema::from_json_str(
            r#"{"name":"T","version":"1","tables":{"A":{"columns":{"name":{"type":"string"}}}}}"#,
        )
        .unwrap()
    }

    #[test]
    fn drops_unknown_row_columns_and_rejects_unknown_conditions() {
        let insert = Operation::Insert {
            table: "A".into(),
            row: Row::from([("name", Datum::scalar("a")), ("newer", Datum::scalar(1))]),
            uuid_name: None,
        };
        let out = sanitize(&schema(), vec![insert]).unwrap();
        let Operation::Insert { row, .. } = &out[0] else {
            unreachable!()
        };
        assert_eq!(row.keys().collect::<Vec<_>>(), ["name"]);
        let delete = Operation::Delete {
            table: "A".into(),
            conditions: vec![Condition::eq("newer", Datum::scalar(1))],
        };
        assert!(matches!(
            sanitize(&schema(), vec![delete]),
            Err(Error::UnknownColumn { .. })
        ));
        let other = Operation::Delete {
            table: "B".into(),
            conditions: vec![],
        };
        assert!(matches!(
            sanitize(&schema(), vec![other]),
            Err(Error::UnknownTable { .. })
        ));
    }
}
