//! Monitor requests (`monitor_cond_since`, `monitor_cond`, `monitor`), their replies and the
//! `update`/`update2`/`update3` notifications.

use std::collections::BTreeMap;

use serde_json::value::RawValue;
use serde_json::{json, Map, Value};

use crate::connection::Notification;
use crate::ops::Condition;
use crate::schema::DatabaseSchema;
use crate::updates::{RowUpdate1, RowUpdate2, TableUpdates, Updates};

/// The txn id that asks `monitor_cond_since` for a full dump.
pub const ZERO_TXN_ID: &str = "00000000-0000-0000-0000-000000000000";

/// Which rows and columns of one table to monitor.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TableMonitor {
    /// `None` monitors every column the server has.
    pub columns: Option<Vec<String>>,
    /// Rows matching all these conditions (empty: all rows). Ignored by plain `monitor`.
    pub conditions: Vec<Condition>,
}

/// What the client monitors.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MonitorSpec {
    /// `None` monitors every table of the server's schema.
    pub tables: Option<BTreeMap<String, TableMonitor>>,
}

/// The monitor methods, newest first; each falls back to the next on "unknown method".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MonitorMethod {
    CondSince,
    Cond,
    Plain,
}

impl MonitorMethod {
    /// The JSON-RPC method name.
    pub fn name(self) -> &'static str {
        match self {
            MonitorMethod::CondSince => "monitor_cond_since",
            MonitorMethod::Cond => "monitor_cond",
            MonitorMethod::Plain => "monitor",
        }
    }

    /// The older method to try when the server does not know this one.
    pub fn fallback(self) -> Option<MonitorMethod> {
        match self {
            MonitorMethod::CondSince => Some(MonitorMethod::Cond),
            MonitorMethod::Cond => Some(MonitorMethod::Plain),
            MonitorMethod::Plain => None,
        }
    }
}

/// The `<monitor-requests>` object for `spec` against the server's schema. Tables and columns
/// the server lacks are left out, so a client built for a newer schema still monitors an older one.
pub fn monitor_requests(
    spec: &MonitorSpec,
    schema: &DatabaseSchema,
    method: MonitorMethod,
) -> Value {
    let mut out = Map::new();
    for (table, ts) in &schema.tables {
        let wanted = match &spec.tables {
            None => None,
            Some(tables) => match tables.get(table) {
                Some(t) => Some(t),
                None => continue,
            },
        };
        let columns: Vec<&String> = match wanted.and_then(|t| t.columns.as_ref()) {
            Some(cols) => cols
                .iter()
                .filter(|c| ts.columns.contains_key(*c))
                .collect(),
            None => ts.columns.keys().collect(),
        };
        let mut req = Map::new();
        req.insert("columns".into(), json!(columns));
        let conditions = wanted.map(|t| t.conditions.as_slice()).unwrap_or_default();
        let request = if method == MonitorMethod::Plain {
            Value::Object(req)
        } else {
            if !conditions.is_empty() {
                let w = conditions.iter().map(Condition::to_json).collect();
                req.insert("where".into(), Value::Array(w));
            }
            json!([Value::Object(req)])
        };
        out.insert(table.clone(), request);
    }
    Value::Object(out)
}

/// The params of a monitor request.
pub fn monitor_params(
    method: MonitorMethod,
    database: &str,
    cookie: &str,
    requests: Value,
    last_txn_id: Option<&str>,
) -> Value {
    match method {
        MonitorMethod::CondSince => json!([
            database,
            cookie,
            requests,
            last_txn_id.unwrap_or(ZERO_TXN_ID)
        ]),
        MonitorMethod::Cond | MonitorMethod::Plain => json!([database, cookie, requests]),
    }
}

/// A parsed monitor reply.
#[derive(Debug)]
pub struct MonitorReply {
    /// `monitor_cond_since` found our last txn id: the updates are a diff against our replica.
    pub found: bool,
    pub last_txn_id: Option<String>,
    pub updates: Updates,
}

/// Parses the result of a monitor request.
pub fn parse_reply(method: MonitorMethod, result: &RawValue) -> Result<MonitorReply, String> {
    let text = result.get();
    let bad = |e: serde_json::Error| format!("{} reply: {e}", method.name());
    Ok(match method {
        MonitorMethod::CondSince => {
            let (found, last, updates): (bool, String, TableUpdates<RowUpdate2>) =
                serde_json::from_str(text).map_err(bad)?;
            MonitorReply {
                found,
                last_txn_id: Some(last),
                updates: Updates::V2(updates),
            }
        }
        MonitorMethod::Cond => MonitorReply {
            found: false,
            last_txn_id: None,
            updates: Updates::V2(serde_json::from_str(text).map_err(bad)?),
        },
        MonitorMethod::Plain => MonitorReply {
            found: false,
            last_txn_id: None,
            updates: Updates::V1(serde_json::from_str(text).map_err(bad)?),
        },
    })
}

/// A monitor notification: which monitor it is for, the new txn id (`update3`), the updates.
#[derive(Debug)]
pub struct UpdateNotification {
    pub cookie: Value,
    pub last_txn_id: Option<String>,
    pub updates: Updates,
}

/// Parses `update`/`update2`/`update3`; other methods give `Ok(None)`.
pub fn parse_notification(n: &Notification) -> Result<Option<UpdateNotification>, String> {
    let text = n.params.get();
    let bad = |e: serde_json::Error| format!("{} params: {e}", n.method);
    let parsed = match n.method.as_str() {
        "update" => {
            let (cookie, u): (Value, TableUpdates<RowUpdate1>) =
                serde_json::from_str(text).map_err(bad)?;
            (cookie, None, Updates::V1(u))
        }
        "update2" => {
            let (cookie, u): (Value, TableUpdates<RowUpdate2>) =
                serde_json::from_str(text).map_err(bad)?;
            (cookie, None, Updates::V2(u))
        }
        "update3" => {
            let (cookie, id, u): (Value, String, TableUpdates<RowUpdate2>) =
                serde_json::from_str(text).map_err(bad)?;
            (cookie, Some(id), Updates::V2(u))
        }
        _ => return Ok(None),
    };
    let (cookie, last_txn_id, updates) = parsed;
    Ok(Some(UpdateNotification {
        cookie,
        last_txn_id,
        updates,
    }))
}

/// True for the server's answer to a method it does not implement.
pub fn is_unknown_method(error: &Value) -> bool {
    let text = error
        .as_str()
        .or_else(|| error.get("error").and_then(Value::as_str));
    text == Some("unknown method")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datum::Datum;

    fn schema() -> DatabaseSchema {
        DatabaseSchema::from_json_str(
            r#"{"name":"T","version":"1","tables":{
            "A":{"columns":{"name":{"type":"string"},"x":{"type":"integer"}}},
            "B":{"columns":{"name":{"type":"string"}}}}}"#,
        )
        .unwrap()
    }

    #[test]
    fn requests_follow_spec_and_server_schema() {
        let all = monitor_requests(&MonitorSpec::default(), &schema(), MonitorMethod::Cond);
        assert_eq!(
            all,
            json!({"A":[{"columns":["name","x"]}],"B":[{"columns":["name"]}]})
        );
        let spec = MonitorSpec {
            tables: Some(BTreeMap::from([(
                "A".to_owned(),
                TableMonitor {
                    columns: Some(vec!["name".into(), "newer_column".into()]),
                    conditions: vec![Condition::eq("name", Datum::scalar("a"))],
                },
            )])),
        };
        assert_eq!(
            monitor_requests(&spec, &schema(), MonitorMethod::CondSince),
            json!({"A":[{"columns":["name"],"where":[["name","==","a"]]}]})
        );
        assert_eq!(
            monitor_requests(&spec, &schema(), MonitorMethod::Plain),
            json!({"A":{"columns":["name"]}})
        );
    }

    #[test]
    fn parses_replies_and_notifications() {
        let raw = |v: Value| serde_json::value::to_raw_value(&v).unwrap();
        let r = parse_reply(
            MonitorMethod::CondSince,
            &raw(json!([true, "6b2b6f3a-33ab-4e4b-9f0b-4a1d6e2c5a10", {}])),
        )
        .unwrap();
        assert!(r.found);
        assert!(parse_reply(MonitorMethod::CondSince, &raw(json!([true, {}]))).is_err());
        let n = parse_notification(&Notification {
            method: "update3".into(),
            params: raw(json!(["c", "id", {"A": {}}])),
        })
        .unwrap()
        .unwrap();
        assert_eq!(n.cookie, json!("c"));
        assert_eq!(n.last_txn_id.as_deref(), Some("id"));
        assert!(parse_notification(&Notification {
            method: "update2".into(),
            params: raw(json!(["c"])),
        })
        .is_err());
        assert!(is_unknown_method(&json!("unknown method")));
    }
}
