//! Transaction operations (RFC 7047 §5.2), their results, and the errors a transaction can end in.

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::Value;
use uuid::Uuid;

use crate::datum::{Atom, Datum, Row};

/// A condition function (RFC 7047 §5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Function {
    Lt,
    Le,
    Eq,
    Ne,
    Ge,
    Gt,
    Includes,
    Excludes,
}

impl Function {
    fn as_str(self) -> &'static str {
        match self {
            Function::Lt => "<",
            Function::Le => "<=",
            Function::Eq => "==",
            Function::Ne => "!=",
            Function::Ge => ">=",
            Function::Gt => ">",
            Function::Includes => "includes",
            Function::Excludes => "excludes",
        }
    }
}

/// `[column, function, value]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    pub column: String,
    pub function: Function,
    pub value: Datum,
}

impl Condition {
    /// `column == value`.
    pub fn eq(column: &str, value: impl Into<Datum>) -> Condition {
        Condition {
            column: column.to_owned(),
            function: Function::Eq,
            value: value.into(),
        }
    }
    /// `_uuid == uuid`.
    pub fn uuid(u: Uuid) -> Condition {
        Condition::eq("_uuid", Datum::scalar(u))
    }
    /// `column includes value` (for sets and maps).
    pub fn includes(column: &str, value: impl Into<Datum>) -> Condition {
        Condition {
            column: column.to_owned(),
            function: Function::Includes,
            value: value.into(),
        }
    }
    /// The wire form `[column, function, value]`.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).expect("conditions serialize")
    }
}

impl Serialize for Condition {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        (&self.column, self.function.as_str(), &self.value).serialize(s)
    }
}

impl From<Atom> for Datum {
    fn from(a: Atom) -> Self {
        Datum::scalar(a)
    }
}

/// A mutator (RFC 7047 §5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mutator {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Insert,
    Delete,
}

impl Mutator {
    fn as_str(self) -> &'static str {
        match self {
            Mutator::Add => "+=",
            Mutator::Sub => "-=",
            Mutator::Mul => "*=",
            Mutator::Div => "/=",
            Mutator::Mod => "%=",
            Mutator::Insert => "insert",
            Mutator::Delete => "delete",
        }
    }
}

/// `[column, mutator, value]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Mutation {
    pub column: String,
    pub mutator: Mutator,
    pub value: Datum,
}

impl Mutation {
    /// Inserts elements into a set (or pairs into a map; existing keys are kept).
    pub fn insert(column: &str, value: Datum) -> Mutation {
        Mutation {
            column: column.to_owned(),
            mutator: Mutator::Insert,
            value,
        }
    }
    /// Deletes elements from a set (or, given a set of keys, keys from a map).
    pub fn delete(column: &str, value: Datum) -> Mutation {
        Mutation {
            column: column.to_owned(),
            mutator: Mutator::Delete,
            value,
        }
    }
}

impl Serialize for Mutation {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        (&self.column, self.mutator.as_str(), &self.value).serialize(s)
    }
}

/// One operation of a `transact` request.
#[derive(Debug, Clone, PartialEq)]
pub enum Operation {
    Insert {
        table: String,
        row: Row,
        uuid_name: Option<String>,
    },
    Select {
        table: String,
        conditions: Vec<Condition>,
        columns: Option<Vec<String>>,
    },
    Update {
        table: String,
        conditions: Vec<Condition>,
        row: Row,
    },
    Mutate {
        table: String,
        conditions: Vec<Condition>,
        mutations: Vec<Mutation>,
    },
    Delete {
        table: String,
        conditions: Vec<Condition>,
    },
    Wait {
        table: String,
        conditions: Vec<Condition>,
        columns: Vec<String>,
        /// `true` waits until the rows equal `rows` (`==`), `false` until they differ (`!=`).
        until_equal: bool,
        rows: Vec<Row>,
        timeout_ms: Option<u64>,
    },
    Commit {
        durable: bool,
    },
    Abort,
    Comment(String),
}

impl Serialize for Operation {
    /// The JSON object sent on the wire, written without building a `Value`.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        match self {
            Operation::Insert {
                table,
                row,
                uuid_name,
            } => {
                m.serialize_entry("op", "insert")?;
                m.serialize_entry("table", table)?;
                m.serialize_entry("row", row)?;
                if let Some(n) = uuid_name {
                    m.serialize_entry("uuid-name", n)?;
                }
            }
            Operation::Select {
                table,
                conditions,
                columns,
            } => {
                m.serialize_entry("op", "select")?;
                m.serialize_entry("table", table)?;
                m.serialize_entry("where", conditions)?;
                if let Some(c) = columns {
                    m.serialize_entry("columns", c)?;
                }
            }
            Operation::Update {
                table,
                conditions,
                row,
            } => {
                m.serialize_entry("op", "update")?;
                m.serialize_entry("table", table)?;
                m.serialize_entry("where", conditions)?;
                m.serialize_entry("row", row)?;
            }
            Operation::Mutate {
                table,
                conditions,
                mutations,
            } => {
                m.serialize_entry("op", "mutate")?;
                m.serialize_entry("table", table)?;
                m.serialize_entry("where", conditions)?;
                m.serialize_entry("mutations", mutations)?;
            }
            Operation::Delete { table, conditions } => {
                m.serialize_entry("op", "delete")?;
                m.serialize_entry("table", table)?;
                m.serialize_entry("where", conditions)?;
            }
            Operation::Wait {
                table,
                conditions,
                columns,
                until_equal,
                rows,
                timeout_ms,
            } => {
                m.serialize_entry("op", "wait")?;
                m.serialize_entry("table", table)?;
                m.serialize_entry("where", conditions)?;
                m.serialize_entry("columns", columns)?;
                m.serialize_entry("until", if *until_equal { "==" } else { "!=" })?;
                m.serialize_entry("rows", rows)?;
                if let Some(t) = timeout_ms {
                    m.serialize_entry("timeout", t)?;
                }
            }
            Operation::Commit { durable } => {
                m.serialize_entry("op", "commit")?;
                m.serialize_entry("durable", durable)?;
            }
            Operation::Abort => m.serialize_entry("op", "abort")?,
            Operation::Comment(c) => {
                m.serialize_entry("op", "comment")?;
                m.serialize_entry("comment", c)?;
            }
        }
        m.end()
    }
}

impl Operation {
    /// The JSON object sent on the wire.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).expect("operations serialize")
    }

    /// The table this operation touches, if any.
    pub fn table(&self) -> Option<&str> {
        match self {
            Operation::Insert { table, .. }
            | Operation::Select { table, .. }
            | Operation::Update { table, .. }
            | Operation::Mutate { table, .. }
            | Operation::Delete { table, .. }
            | Operation::Wait { table, .. } => Some(table),
            _ => None,
        }
    }

    /// True for operations that change the database (what "operations sent" counts).
    pub fn is_write(&self) -> bool {
        matches!(
            self,
            Operation::Insert { .. }
                | Operation::Update { .. }
                | Operation::Mutate { .. }
                | Operation::Delete { .. }
        )
    }
}

/// The successful result of one operation.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct OperationResult {
    /// The uuid of an inserted row.
    pub uuid: Option<Uuid>,
    /// Rows matched by update/mutate/delete.
    pub count: Option<u64>,
    /// Rows returned by select (with `_uuid` kept as a column when requested).
    pub rows: Option<Vec<Value>>,
}

/// Why a transaction failed, as the server reported it (RFC 7047 §4.1.3, §5.2).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransactError {
    #[error("constraint violation: {0}")]
    ConstraintViolation(String),
    #[error("referential integrity violation: {0}")]
    ReferentialIntegrity(String),
    #[error("resources exhausted: {0}")]
    ResourcesExhausted(String),
    #[error("I/O error on the server: {0}")]
    IoError(String),
    #[error("wait timed out: {0}")]
    TimedOut(String),
    #[error("transaction aborted")]
    Aborted,
    #[error("duplicate uuid-name: {0}")]
    DuplicateUuidName(String),
    #[error("domain error: {0}")]
    DomainError(String),
    #[error("range error: {0}")]
    RangeError(String),
    #[error("not supported: {0}")]
    NotSupported(String),
    #[error("not owner: {0}")]
    NotOwner(String),
    /// The server is not the RAFT leader or lost its cluster; retrying elsewhere may succeed.
    #[error("not leader / cluster unavailable: {0}")]
    NotLeader(String),
    #[error("{error}: {details}")]
    Other { error: String, details: String },
}

impl TransactError {
    /// Builds the typed error from the server's `error` and `details` strings.
    pub fn from_server(error: &str, details: &str) -> TransactError {
        let d = details.to_owned();
        match error {
            "constraint violation" => TransactError::ConstraintViolation(d),
            "referential integrity violation" => TransactError::ReferentialIntegrity(d),
            "resources exhausted" => TransactError::ResourcesExhausted(d),
            "I/O error" => TransactError::IoError(d),
            "timed out" => TransactError::TimedOut(d),
            "aborted" => TransactError::Aborted,
            "duplicate uuid-name" => TransactError::DuplicateUuidName(d),
            "domain error" => TransactError::DomainError(d),
            "range error" => TransactError::RangeError(d),
            "not supported" => TransactError::NotSupported(d),
            "not owner" => TransactError::NotOwner(d),
            "not leader" | "cluster error" | "unknown database" => TransactError::NotLeader(d),
            _ => TransactError::Other {
                error: error.to_owned(),
                details: d,
            },
        }
    }

    /// True when the same transaction may succeed if sent again (possibly to another server).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            TransactError::NotLeader(_) | TransactError::IoError(_)
        )
    }
}

/// Parses a `transact` reply: one result per operation (plus possibly one extra error for a
/// commit failure). Returns the per-operation results, or the first error with its index.
pub fn parse_transact_reply(
    reply: &Value,
    n_ops: usize,
) -> Result<Vec<OperationResult>, (usize, TransactError)> {
    let arr = match reply.as_array() {
        Some(a) => a,
        None => {
            return Err((
                0,
                TransactError::Other {
                    error: "malformed reply".into(),
                    details: reply.to_string(),
                },
            ))
        }
    };
    let mut out = Vec::with_capacity(arr.len());
    for (i, r) in arr.iter().enumerate() {
        if let Some(err) = r.get("error").and_then(Value::as_str) {
            let details = r.get("details").and_then(Value::as_str).unwrap_or("");
            return Err((i, TransactError::from_server(err, details)));
        }
        let uuid = r
            .get("uuid")
            .and_then(|u| Atom::from_json(u).ok())
            .and_then(|a| a.as_uuid());
        out.push(OperationResult {
            uuid,
            count: r.get("count").and_then(Value::as_u64),
            rows: r.get("rows").and_then(Value::as_array).cloned(),
        });
    }
    if out.len() < n_ops {
        return Err((
            out.len(),
            TransactError::Other {
                error: "short reply".into(),
                details: format!("{} results for {} operations", out.len(), n_ops),
            },
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn insert_serializes_with_uuid_name() {
        let op = Operation::Insert {
            table: "Load_Balancer".into(),
            row: Row::from([("name", Datum::scalar("lb"))]),
            uuid_name: Some("lb0".into()),
        };
        assert_eq!(
            op.to_json(),
            json!({"op":"insert","table":"Load_Balancer","row":{"name":"lb"},"uuid-name":"lb0"})
        );
    }

    #[test]
    fn reply_errors_are_typed() {
        let reply = json!([{"uuid":["uuid","6b2b6f3a-33ab-4e4b-9f0b-4a1d6e2c5a10"]},
                           {"error":"referential integrity violation","details":"x"}]);
        let e = parse_transact_reply(&reply, 2).unwrap_err();
        assert_eq!(e.0, 1);
        assert!(matches!(e.1, TransactError::ReferentialIntegrity(_)));
        let ok = parse_transact_reply(&json!([{"count":2}]), 1).unwrap();
        assert_eq!(ok[0].count, Some(2));
    }
}
