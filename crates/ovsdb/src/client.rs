//! The [`Client`]: a supervised, reconnecting connection to one database with a monitored replica.
//!
//! A background task (module `session`) connects to one of the remotes (the RAFT leader
//! when `leader_only`), monitors the database into the [`Replica`] and reconnects with
//! exponential backoff when the connection drops. Readers take [`Client::replica`] (a read guard,
//! no copy) and wait for changes with [`Client::subscribe`]. [`Client::transact`] never resends a
//! transaction whose outcome is unknown: it returns [`Error::OutcomeUnknown`] instead.

use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::sync::watch;

use crate::connection::{CallError, Connection};
use crate::error::Error;
use crate::metrics::{LatencyObserver, Metrics, MetricsSnapshot};
use crate::monitor::{MonitorMethod, MonitorSpec, TableMonitor};
use crate::ops::{parse_transact_reply, Condition, Operation, OperationResult};
use crate::replica::Replica;
use crate::schema::DatabaseSchema;
use crate::transport::{Remote, TlsFiles};
use crate::updates::Updates;

/// Exponential reconnect backoff.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(8),
        }
    }
}

/// How to connect and what to monitor.
#[derive(Clone)]
pub struct ClientConfig {
    /// `unix:PATH`, `tcp:IP:PORT` or `ssl:IP:PORT`, tried in turn.
    pub remotes: Vec<String>,
    /// E.g. `OVN_Northbound`.
    pub database: String,
    /// Connect only to the RAFT leader and reconnect when leadership moves.
    pub leader_only: bool,
    /// Required for `ssl:` remotes.
    pub tls: Option<TlsFiles>,
    /// Echo after this much silence, disconnect after twice as much (`None`: never).
    pub inactivity_probe: Option<Duration>,
    pub backoff: Backoff,
    /// Time allowed for one connection attempt (connect, leader check, schema, monitor).
    pub connect_timeout: Duration,
    /// How long [`Client::connect`] waits for the first monitor, and a call waits while
    /// disconnected, before giving up with [`Error::NotConnected`].
    pub request_wait: Duration,
    pub monitor: MonitorSpec,
    /// `external_ids` keys the replica indexes.
    pub indexed_external_ids: Vec<String>,
    /// Largest message accepted from the server.
    pub max_message: usize,
    /// Observes each transaction's latency.
    pub on_transaction_latency: Option<LatencyObserver>,
}

impl ClientConfig {
    /// Defaults for one database at the given remotes: whole database monitored, leader only,
    /// 30 s inactivity probe.
    pub fn new(database: &str, remotes: Vec<String>) -> ClientConfig {
        ClientConfig {
            remotes,
            database: database.to_owned(),
            leader_only: true,
            tls: None,
            inactivity_probe: Some(Duration::from_secs(30)),
            backoff: Backoff::default(),
            connect_timeout: Duration::from_secs(30),
            request_wait: Duration::from_secs(30),
            monitor: MonitorSpec::default(),
            indexed_external_ids: Vec::new(),
            max_message: crate::framing::DEFAULT_MAX_MESSAGE,
            on_transaction_latency: None,
        }
    }
}

/// Monitor bookkeeping shared by the session task and the notification handler.
pub(crate) struct SyncState {
    /// Bumped for every connection; updates from an older connection are dropped.
    pub epoch: u64,
    /// `Some` while a monitor request is pending: updates are queued and applied after the reply.
    pub deferred: Option<Vec<Updates>>,
    /// For `monitor_cond_since` after a reconnect (from the reply and from each `update3`).
    pub last_txn_id: Option<String>,
    /// The newest method the server accepted.
    pub method: MonitorMethod,
}

pub(crate) struct Inner {
    pub config: ClientConfig,
    /// What to monitor; starts as `config.monitor`, changed by [`Client::set_table_monitor`].
    pub monitor_spec: Mutex<MonitorSpec>,
    pub remotes: Vec<Remote>,
    pub tls: Option<Arc<rustls::ClientConfig>>,
    pub replica: RwLock<Replica>,
    pub schema: RwLock<Arc<DatabaseSchema>>,
    pub sync: Mutex<SyncState>,
    pub conn: watch::Sender<Option<Connection>>,
    pub generation: watch::Sender<u64>,
    /// Replica loads from a full dump (see [`Client::reloads`]).
    pub reloads: watch::Sender<u64>,
    pub last_error: Mutex<Option<String>>,
    pub last_disconnect: Mutex<Option<String>>,
    pub metrics: Metrics,
    pub shutdown: watch::Sender<bool>,
}

impl Inner {
    pub fn bump_generation(&self) {
        self.generation.send_modify(|g| *g += 1);
    }

    /// Applies a live update (or queues it while a monitor reply is pending).
    pub fn on_update(
        &self,
        epoch: u64,
        last_txn_id: Option<String>,
        updates: Updates,
    ) -> Result<(), String> {
        let mut sync = self.sync.lock().expect("sync lock");
        if sync.epoch != epoch {
            return Ok(());
        }
        if let Some(queue) = sync.deferred.as_mut() {
            queue.push(updates);
            if last_txn_id.is_some() {
                sync.last_txn_id = last_txn_id;
            }
            return Ok(());
        }
        let applied = updates.apply(&mut self.replica.write().expect("replica lock"));
        if let Err(e) = applied {
            // The replica diverged: forget the txn id so the next monitor is a full resync.
            sync.last_txn_id = None;
            return Err(format!("applying update to {}: {e}", self.config.database));
        }
        if last_txn_id.is_some() {
            sync.last_txn_id = last_txn_id;
        }
        drop(sync);
        self.bump_generation();
        Ok(())
    }
}

/// Stops the session task when the last [`Client`] clone is dropped.
struct ShutdownOnDrop(Arc<Inner>);

impl Drop for ShutdownOnDrop {
    fn drop(&mut self) {
        self.0.shutdown.send_replace(true);
    }
}

/// A client of one OVSDB database (cheap to clone).
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
    _guard: Arc<ShutdownOnDrop>,
}

impl Client {
    /// Starts the client and waits until the first monitor has filled the replica (or
    /// `config.request_wait` passes; the error then names the last failure).
    pub async fn connect(config: ClientConfig) -> Result<Client, Error> {
        let remotes = config
            .remotes
            .iter()
            .map(|r| Remote::parse(r))
            .collect::<Result<Vec<_>, _>>()?;
        if remotes.is_empty() {
            return Err(Error::InvalidRemote {
                remote: String::new(),
                reason: "no remotes given".into(),
            });
        }
        let tls = match &config.tls {
            Some(files) => Some(crate::transport::tls_config(files)?),
            None if remotes.iter().any(|r| matches!(r, Remote::Ssl(_))) => {
                return Err(Error::Tls("ssl: remote without TLS files".into()))
            }
            None => None,
        };
        let placeholder = Arc::new(DatabaseSchema {
            name: config.database.clone(),
            version: String::new(),
            cksum: None,
            tables: Default::default(),
        });
        let inner = Arc::new(Inner {
            monitor_spec: Mutex::new(config.monitor.clone()),
            replica: RwLock::new(Replica::new(
                placeholder.clone(),
                config.indexed_external_ids.clone(),
            )),
            schema: RwLock::new(placeholder),
            sync: Mutex::new(SyncState {
                epoch: 0,
                deferred: None,
                last_txn_id: None,
                method: MonitorMethod::CondSince,
            }),
            conn: watch::channel(None).0,
            generation: watch::channel(0).0,
            reloads: watch::channel(0).0,
            last_error: Mutex::new(None),
            last_disconnect: Mutex::new(None),
            metrics: Metrics::default(),
            shutdown: watch::channel(false).0,
            remotes,
            tls,
            config,
        });
        let client = Client {
            _guard: Arc::new(ShutdownOnDrop(inner.clone())),
            inner: inner.clone(),
        };
        tokio::spawn(crate::session::run(inner));
        client.wait_first_monitor().await?;
        Ok(client)
    }

    /// Waits for the first replica load (the generation leaves 0), even if that connection has
    /// dropped again by the time this task looks.
    async fn wait_first_monitor(&self) -> Result<(), Error> {
        let mut rx = self.inner.generation.subscribe();
        let loaded = tokio::time::timeout_at(self.deadline().into(), rx.wait_for(|g| *g > 0)).await;
        match loaded {
            Ok(_) => Ok(()),
            Err(_) => Err(self.not_connected()),
        }
    }

    fn not_connected(&self) -> Error {
        let last = self.inner.last_error.lock().expect("lock").clone();
        Error::NotConnected {
            database: self.inner.config.database.clone(),
            waited: self.inner.config.request_wait,
            last_failure: last.unwrap_or_else(|| "none".into()),
        }
    }

    fn deadline(&self) -> Instant {
        Instant::now() + self.inner.config.request_wait
    }

    /// The database this client serves.
    pub fn database(&self) -> &str {
        &self.inner.config.database
    }

    /// The monitored replica. Hold the guard briefly: updates wait for it.
    pub fn replica(&self) -> RwLockReadGuard<'_, Replica> {
        self.inner.replica.read().expect("replica lock")
    }

    /// A receiver whose value (a generation number) changes after every replica change.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.inner.generation.subscribe()
    }

    /// A receiver whose value counts the loads of the replica from a full dump: the first one,
    /// and each reconnection the server could not resume from our last txn id (a restarted
    /// standalone server, a recreated database), after which the replica may differ from before
    /// in any way, and a writer that keeps the database converged must compare it all again.
    pub fn reloads(&self) -> watch::Receiver<u64> {
        self.inner.reloads.subscribe()
    }

    /// The server's schema from the latest connection.
    pub fn schema(&self) -> Arc<DatabaseSchema> {
        self.inner.schema.read().expect("schema lock").clone()
    }

    /// True while a monitored connection is up.
    pub fn is_connected(&self) -> bool {
        self.inner.conn.borrow().is_some()
    }

    /// The remote of the current connection.
    pub fn current_remote(&self) -> Option<String> {
        self.inner
            .conn
            .borrow()
            .as_ref()
            .map(|c| c.remote().to_owned())
    }

    /// Why the latest connection ended (e.g. a leadership change seen through `_Server`).
    pub fn last_disconnect_reason(&self) -> Option<String> {
        self.inner.last_disconnect.lock().expect("lock").clone()
    }

    /// The client's counters.
    pub fn metrics(&self) -> MetricsSnapshot {
        self.inner.metrics.snapshot()
    }

    /// Drops the current connection (the client reconnects); for tests and leadership moves.
    pub fn disconnect(&self, reason: &str) {
        if let Some(c) = self.inner.conn.borrow().as_ref() {
            c.close(reason);
        }
    }

    async fn wait_connected(&self, deadline: Instant) -> Result<Connection, Error> {
        let mut rx = self.inner.conn.subscribe();
        let waited = tokio::time::timeout_at(deadline.into(), rx.wait_for(Option::is_some)).await;
        match waited {
            Ok(Ok(c)) => Ok(c.clone().expect("waited for Some")),
            Ok(Err(_)) => Err(Error::Closed {
                database: self.inner.config.database.clone(),
            }),
            Err(_) => Err(self.not_connected()),
        }
    }

    /// Waits until `conn` (found closed) is no longer the published connection.
    async fn wait_replaced(&self, conn: &Connection, deadline: Instant) -> Result<(), Error> {
        let mut rx = self.inner.conn.subscribe();
        let replaced = tokio::time::timeout_at(
            deadline.into(),
            rx.wait_for(|c| c.as_ref().is_none_or(|c| !c.same(conn))),
        )
        .await
        .map(|r| r.map(|_| ()));
        match replaced {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(Error::Closed {
                database: self.inner.config.database.clone(),
            }),
            Err(_) => Err(self.not_connected()),
        }
    }

    /// Sends any request on the current connection (waiting for one if disconnected).
    pub async fn call(&self, method: &str, params: Value) -> Result<Value, Error> {
        let deadline = self.deadline();
        loop {
            let conn = self.wait_connected(deadline).await?;
            match conn.call(method, params.clone()).await {
                Ok(v) => return Ok(v),
                Err(CallError::NotSent(_)) => self.wait_replaced(&conn, deadline).await?,
                Err(e) => return Err(Error::from_call(&conn, method, e)),
            }
        }
    }

    /// `list_dbs`.
    pub async fn list_dbs(&self) -> Result<Vec<String>, Error> {
        let v = self.call("list_dbs", Value::Array(vec![])).await?;
        serde_json::from_value(v).map_err(|e| Error::Protocol {
            remote: self.current_remote().unwrap_or_default(),
            reason: format!("list_dbs reply: {e}"),
        })
    }

    /// `get_schema` of any database on the server.
    pub async fn get_schema(&self, database: &str) -> Result<DatabaseSchema, Error> {
        let v = self
            .call("get_schema", Value::Array(vec![database.into()]))
            .await?;
        serde_json::from_value(v).map_err(|e| Error::Protocol {
            remote: self.current_remote().unwrap_or_default(),
            reason: format!("schema of {database}: {e}"),
        })
    }

    /// Changes what is monitored of one table, on the live connection and for reconnects.
    /// A change of conditions only uses `monitor_cond_change` (the server sends the rows that
    /// enter and leave the selection); a change of columns cancels the monitor
    /// (`monitor_cancel`) and monitors again with a full dump, swapped in whole.
    pub async fn set_table_monitor(&self, table: &str, wanted: TableMonitor) -> Result<(), Error> {
        let schema = self.schema();
        if schema.table(table).is_none() {
            return Err(Error::UnknownTable {
                database: self.inner.config.database.clone(),
                table: table.to_owned(),
            });
        }
        let columns_changed = {
            let mut spec = self.inner.monitor_spec.lock().expect("spec lock");
            let tables = spec.tables.get_or_insert_with(|| {
                schema
                    .tables
                    .keys()
                    .map(|t| (t.clone(), TableMonitor::default()))
                    .collect()
            });
            let old = tables.insert(table.to_owned(), wanted.clone());
            old.map(|o| o.columns) != Some(wanted.columns.clone())
        };
        // The replica as of the last txn id was selected by the old spec: a reconnect before
        // the change is applied must not resume from it.
        self.forget_txn_id();
        let conn = self.wait_connected(self.deadline()).await?;
        let method = self.inner.sync.lock().expect("sync lock").method;
        if columns_changed || method == MonitorMethod::Plain {
            let cancel = json!([crate::session::DB_COOKIE]);
            conn.call("monitor_cancel", cancel)
                .await
                .map_err(|e| Error::from_call(&conn, "monitor_cancel", e))?;
            return crate::session::remonitor(&self.inner, &conn).await;
        }
        let conditions: Vec<Value> = wanted.conditions.iter().map(Condition::to_json).collect();
        let cookie = crate::session::DB_COOKIE;
        let params = json!([cookie, cookie, {table: [{"where": conditions}]}]);
        conn.call("monitor_cond_change", params)
            .await
            .map_err(|e| Error::from_call(&conn, "monitor_cond_change", e))?;
        self.forget_txn_id();
        Ok(())
    }

    fn forget_txn_id(&self) {
        self.inner.sync.lock().expect("sync lock").last_txn_id = None;
    }

    /// Runs one transaction. Columns the server's schema lacks are dropped from rows and
    /// mutations; unknown tables, and unknown columns in conditions, are errors. When the
    /// connection drops with the transaction in flight the result is
    /// [`Error::OutcomeUnknown`]; it is never resent.
    pub async fn transact(&self, ops: Vec<Operation>) -> Result<Vec<OperationResult>, Error> {
        let schema = self.schema();
        let ops = crate::sanitize::sanitize(&schema, ops)?;
        // Serialized once, straight from the operations; each attempt only adds its id.
        let params = serde_json::to_vec(&TransactParams(&self.inner.config.database, &ops))
            .expect("operations serialize");
        let writes = ops.iter().filter(|o| o.is_write()).count();
        // Only the tables are needed to name a failed operation: a big transaction's operations
        // are not kept alive while the server works on it.
        let tables: Vec<String> = ops
            .iter()
            .map(|o| o.table().unwrap_or("(commit)").to_owned())
            .collect();
        drop(ops);
        let deadline = self.deadline();
        loop {
            let conn = self.wait_connected(deadline).await?;
            let id = conn.next_id();
            let mut bytes = Vec::with_capacity(params.len() + 48);
            bytes.extend_from_slice(
                format!("{{\"id\":{id},\"method\":\"transact\",\"params\":").as_bytes(),
            );
            bytes.extend_from_slice(&params);
            bytes.push(b'}');
            let started = Instant::now();
            let reply = conn.call_serialized(id, bytes).await;
            if !matches!(reply, Err(CallError::NotSent(_))) {
                self.inner.metrics.transaction_sent(writes);
            }
            match reply {
                Ok(raw) => {
                    let latency = started.elapsed();
                    self.inner.metrics.transaction_answered(latency);
                    if let Some(observe) = &self.inner.config.on_transaction_latency {
                        observe(latency);
                    }
                    // The text was validated as JSON when the message was framed.
                    let v: Value = serde_json::from_str(raw.get()).unwrap_or(Value::Null);
                    return parse_transact_reply(&v, tables.len()).map_err(|(index, error)| {
                        Error::Transact {
                            database: self.inner.config.database.clone(),
                            index,
                            table: tables
                                .get(index)
                                .map_or("(commit)", String::as_str)
                                .to_owned(),
                            error,
                        }
                    });
                }
                Err(CallError::NotSent(_)) => self.wait_replaced(&conn, deadline).await?,
                Err(e) => return Err(Error::from_call(&conn, "transact", e)),
            }
        }
    }
}

/// `[database, op, ...]`, the params of `transact`.
struct TransactParams<'a>(&'a str, &'a [Operation]);

impl serde::Serialize for TransactParams<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let mut seq = s.serialize_seq(Some(self.1.len() + 1))?;
        seq.serialize_element(self.0)?;
        for op in self.1 {
            seq.serialize_element(op)?;
        }
        seq.end()
    }
}
