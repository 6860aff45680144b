//! The client's background task: connect, check leadership, monitor, and reconnect.
//!
//! Each round tries the remotes in turn, starting after the one last used; when every remote
//! failed it sleeps (exponential backoff, capped) and tries again. After a connection drops the
//! next `monitor_cond_since` carries the last txn id, so an unchanged replica is kept
//! (`found=true`); otherwise the new dump is loaded into a fresh [`Replica`] that replaces the
//! old one in a single swap.

use std::sync::{Arc, Weak};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::sync::watch;

use crate::client::Inner;
use crate::connection::{CallError, Connection, ConnectionOptions, Notification};
use crate::datum::{row_from_json, Row};
use crate::error::Error;
use crate::monitor;
use crate::replica::Replica;
use crate::schema::DatabaseSchema;
use crate::transport::{self, Remote};
use crate::updates::{TableUpdates, Updates};

/// Monitor cookie of the database's own monitor.
pub(crate) const DB_COOKIE: &str = "db";
/// Monitor cookie of the `_Server` leadership watch.
const SERVER_COOKIE: &str = "_Server";
const SERVER_COLUMNS: [&str; 4] = ["name", "model", "connected", "leader"];
/// A connection that ends sooner than this does not reset the reconnect backoff.
const FLAPPING: Duration = Duration::from_secs(1);

pub(crate) async fn run(inner: Arc<Inner>) {
    let mut shutdown = inner.shutdown.subscribe();
    let n = inner.remotes.len();
    let mut next = 0;
    let mut backoff = inner.config.backoff.initial;
    let mut connected_before = false;
    'rounds: loop {
        for k in 0..n {
            if *shutdown.borrow() {
                break 'rounds;
            }
            let idx = (next + k) % n;
            let remote = &inner.remotes[idx];
            let attempt =
                tokio::time::timeout(inner.config.connect_timeout, establish(&inner, remote));
            let conn = match attempt.await {
                Ok(Ok(conn)) => conn,
                Ok(Err(e)) => {
                    tracing::debug!(%remote, error = %e, "connection attempt failed");
                    *inner.last_error.lock().expect("lock") = Some(e.to_string());
                    continue;
                }
                Err(_) => {
                    *inner.last_error.lock().expect("lock") =
                        Some(format!("{remote}: connection attempt timed out"));
                    continue;
                }
            };
            if connected_before {
                inner.metrics.reconnected();
            }
            connected_before = true;
            *inner.last_error.lock().expect("lock") = None;
            inner.conn.send_replace(Some(conn.clone()));
            // After publishing: whoever sees the new replica also finds the connection up.
            inner.bump_generation();
            tracing::info!(%remote, database = %inner.config.database, "connected");
            let connected_at = tokio::time::Instant::now();
            let reason = tokio::select! {
                r = conn.closed() => r,
                _ = shutdown.wait_for(|s| *s) => "client shut down".to_owned(),
            };
            conn.close(&reason);
            inner.conn.send_replace(None);
            *inner.last_disconnect.lock().expect("lock") = Some(reason.clone());
            tracing::info!(%remote, %reason, "disconnected");
            // Move on so that a member that lost leadership (or died) is tried last.
            next = idx + 1;
            // Connections that drop at once (e.g. leadership flapping) still back off.
            if connected_at.elapsed() >= FLAPPING {
                backoff = inner.config.backoff.initial;
            } else if sleep_or_shutdown(&mut shutdown, backoff).await {
                break 'rounds;
            } else {
                backoff = (backoff * 2).min(inner.config.backoff.max);
            }
            continue 'rounds;
        }
        if sleep_or_shutdown(&mut shutdown, backoff).await {
            break;
        }
        backoff = (backoff * 2).min(inner.config.backoff.max);
    }
}

/// Sleeps; true if the client was shut down meanwhile.
async fn sleep_or_shutdown(shutdown: &mut watch::Receiver<bool>, time: Duration) -> bool {
    tokio::time::timeout(time, shutdown.wait_for(|s| *s))
        .await
        .is_ok()
}

/// Opens a connection and brings the replica up to date on it.
async fn establish(inner: &Arc<Inner>, remote: &Remote) -> Result<Connection, Error> {
    let (read, write) = transport::open(remote, inner.tls.as_ref()).await?;
    let epoch = {
        let mut sync = inner.sync.lock().expect("sync lock");
        sync.epoch += 1;
        sync.deferred = None;
        sync.epoch
    };
    let conn = Connection::start(
        remote.to_string(),
        read,
        write,
        ConnectionOptions {
            inactivity_probe: inner.config.inactivity_probe,
            max_message: inner.config.max_message,
        },
        notification_handler(Arc::downgrade(inner), epoch),
    );
    let result = prepare(inner, &conn, epoch).await;
    if let Err(e) = &result {
        conn.close(&e.to_string());
    }
    result.map(|()| conn)
}

async fn prepare(inner: &Arc<Inner>, conn: &Connection, epoch: u64) -> Result<(), Error> {
    let db = inner.config.database.as_str();
    if inner.config.leader_only {
        let rows = call(
            conn,
            "transact",
            json!(["_Server", {"op": "select", "table": "Database",
                   "where": [["name", "==", db]], "columns": SERVER_COLUMNS}]),
        )
        .await?;
        let row = rows
            .get(0)
            .and_then(|r| r.get("rows"))
            .and_then(|r| r.get(0))
            .ok_or_else(|| protocol(conn, format!("database {db} is not served here")))?;
        let row = row_from_json(row).map_err(|e| protocol(conn, format!("_Server row: {e}")))?;
        if let Some(reason) = not_leader(&row) {
            return Err(protocol(conn, reason));
        }
        // Leadership moves are watched on this same connection (see `notification_handler`).
        call(
            conn,
            "monitor",
            json!(["_Server", SERVER_COOKIE, {"Database": {"columns": SERVER_COLUMNS}}]),
        )
        .await?;
    }
    let schema: DatabaseSchema =
        serde_json::from_value(call(conn, "get_schema", json!([db])).await?)
            .map_err(|e| protocol(conn, format!("schema of {db}: {e}")))?;
    monitor(inner, conn, epoch, Arc::new(schema)).await
}

/// Monitors again on the current connection (after `monitor_cancel`).
pub(crate) async fn remonitor(inner: &Arc<Inner>, conn: &Connection) -> Result<(), Error> {
    let epoch = inner.sync.lock().expect("sync lock").epoch;
    let schema = inner.schema.read().expect("schema lock").clone();
    monitor(inner, conn, epoch, schema).await?;
    inner.bump_generation();
    Ok(())
}

async fn monitor(
    inner: &Arc<Inner>,
    conn: &Connection,
    epoch: u64,
    schema: Arc<DatabaseSchema>,
) -> Result<(), Error> {
    let db = inner.config.database.as_str();
    let (mut method, last_txn_id) = {
        let mut sync = inner.sync.lock().expect("sync lock");
        sync.deferred = Some(Vec::new());
        // Taken so that the id of this reply (or a newer update3) replaces it.
        (sync.method, sync.last_txn_id.take())
    };
    let result = loop {
        let spec = inner.monitor_spec.lock().expect("spec lock").clone();
        let requests = monitor::monitor_requests(&spec, &schema, method);
        let params =
            monitor::monitor_params(method, db, DB_COOKIE, requests, last_txn_id.as_deref());
        match conn.call_raw(method.name(), params).await {
            Ok(v) => break v,
            Err(CallError::Server(e)) if monitor::is_unknown_method(&e) => {
                method = method
                    .fallback()
                    .ok_or_else(|| protocol(conn, "server knows no monitor method".to_owned()))?;
                inner.sync.lock().expect("sync lock").method = method;
            }
            Err(e) => {
                let mut sync = inner.sync.lock().expect("sync lock");
                if sync.epoch == epoch && sync.last_txn_id.is_none() {
                    sync.last_txn_id = last_txn_id;
                }
                return Err(Error::from_call(conn, method.name(), e));
            }
        }
    };
    let reply = monitor::parse_reply(method, &result).map_err(|e| protocol(conn, e))?;
    let apply_err = |e: crate::replica::UpdateError| protocol(conn, format!("monitor reply: {e}"));
    let (found, reply_txn_id) = (reply.found, reply.last_txn_id);
    if found {
        let mut sync = inner.sync.lock().expect("sync lock");
        let deferred = sync.deferred.take().unwrap_or_default();
        let mut replica = inner.replica.write().expect("replica lock");
        let applied = std::iter::once(reply.updates)
            .chain(deferred)
            .try_for_each(|u| u.apply(&mut replica));
        drop(replica);
        finish_monitor(&mut sync, reply_txn_id, applied.is_ok());
        applied.map_err(apply_err)?;
    } else {
        // Build the new replica without holding any lock, then swap it in whole.
        let mut fresh = Replica::new(schema.clone(), inner.config.indexed_external_ids.clone());
        reply.updates.apply(&mut fresh).map_err(apply_err)?;
        let mut sync = inner.sync.lock().expect("sync lock");
        let deferred = sync.deferred.take().unwrap_or_default();
        let applied = deferred.into_iter().try_for_each(|u| u.apply(&mut fresh));
        if applied.is_ok() {
            let old = std::mem::replace(&mut *inner.replica.write().expect("replica lock"), fresh);
            // Freeing a large replica takes long (many small allocations): not under the
            // lock, and not on an async worker.
            tokio::task::spawn_blocking(move || drop(old));
            inner.reloads.send_modify(|n| *n += 1);
        }
        finish_monitor(&mut sync, reply_txn_id, applied.is_ok());
        applied.map_err(apply_err)?;
    }
    inner.metrics.monitored(found);
    *inner.schema.write().expect("schema lock") = schema;
    Ok(())
}

/// Records the txn id to resume from: an `update3` queued behind the reply is newer than the
/// reply's own id; a failed apply means the replica is not at any txn id.
fn finish_monitor(sync: &mut crate::client::SyncState, reply_txn_id: Option<String>, ok: bool) {
    if !ok {
        sync.last_txn_id = None;
    } else if sync.last_txn_id.is_none() {
        sync.last_txn_id = reply_txn_id;
    }
}

fn notification_handler(inner: Weak<Inner>, epoch: u64) -> crate::connection::NotificationHandler {
    Box::new(move |n: Notification| {
        let Some(inner) = inner.upgrade() else {
            return Err("client dropped".into());
        };
        let Some(update) = monitor::parse_notification(&n)? else {
            return Ok(());
        };
        match update.cookie.as_str() {
            Some(DB_COOKIE) => inner.on_update(epoch, update.last_txn_id, update.updates),
            Some(SERVER_COOKIE) => check_server_update(&inner.config.database, &update.updates),
            _ => Ok(()),
        }
    })
}

/// A `_Server.Database` update: an error (closing the connection) when our database lost its
/// leader or its cluster.
fn check_server_update(db: &str, updates: &Updates) -> Result<(), String> {
    let Updates::V1(TableUpdates(tables)) = updates else {
        return Ok(());
    };
    let is_ours = |row: &Row| str_column(row, "name") == Some(db);
    let changes = tables.iter().filter(|(t, _)| t == "Database");
    for (_, change) in changes.flat_map(|(_, rows)| rows) {
        match (&change.old, &change.new) {
            (_, Some(new)) if is_ours(new) => {
                if let Some(reason) = not_leader(new) {
                    return Err(reason);
                }
            }
            (Some(old), None) if is_ours(old) => {
                return Err(format!("database {db} removed from the server"))
            }
            _ => {}
        }
    }
    Ok(())
}

fn str_column<'a>(row: &'a Row, column: &str) -> Option<&'a str> {
    row.get(column)?.as_atom()?.as_str()
}

fn bool_column(row: &Row, column: &str) -> Option<bool> {
    row.get(column)?.as_atom()?.as_bool()
}

/// Why a `_Server.Database` row is not a usable leader (`None` if it is).
fn not_leader(row: &Row) -> Option<String> {
    if str_column(row, "model") != Some("clustered") {
        return None;
    }
    if bool_column(row, "connected") != Some(true) {
        return Some("server is not connected to its cluster".into());
    }
    if bool_column(row, "leader") != Some(true) {
        return Some("server is not the cluster leader".into());
    }
    None
}

async fn call(conn: &Connection, method: &str, params: Value) -> Result<Value, Error> {
    conn.call(method, params)
        .await
        .map_err(|e| Error::from_call(conn, method, e))
}

fn protocol(conn: &Connection, reason: String) -> Error {
    Error::Protocol {
        remote: conn.remote().to_owned(),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::datum::Datum;
    use crate::updates::RowUpdate1;
    use uuid::Uuid;

    #[test]
    fn leadership_from_server_rows() {
        let row = |model: &str, connected: bool, leader: bool| {
            Row::from([
                ("name", Datum::scalar("NB")),
                ("model", Datum::scalar(model)),
                ("connected", Datum::scalar(connected)),
                ("leader", Datum::scalar(leader)),
            ])
        };
        assert_eq!(not_leader(&row("standalone", false, false)), None);
        assert_eq!(not_leader(&row("clustered", true, true)), None);
        assert!(not_leader(&row("clustered", true, false)).is_some());
        assert!(not_leader(&row("clustered", false, true)).is_some());
        let change = |old: Option<Row>, new: Option<Row>| {
            Updates::V1(TableUpdates(vec![(
                "Database".into(),
                vec![(Uuid::nil(), RowUpdate1 { old, new })],
            )]))
        };
        let lost = change(None, Some(row("clustered", true, false)));
        assert!(check_server_update("NB", &lost).is_err());
        assert!(check_server_update("SB", &lost).is_ok());
        let removed = change(Some(row("clustered", true, true)), None);
        assert!(check_server_update("NB", &removed).is_err());
    }
}
