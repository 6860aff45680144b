//! An OVSDB (RFC 7047) client with no Kubernetes in it.
//!
//! Layers, bottom to top (the same split as Go's libovsdb):
//! - [`datum`]: atoms, sets and maps, with a canonical in-memory form and the JSON wire form;
//! - [`schema`]: the database schema as the server reports it (column types drive update2 semantics);
//! - [`ops`]: transaction operations, conditions, mutations and their results;
//! - [`replica`]: an in-memory copy of monitored tables, with indexes, fed by update notifications;
//! - [`framing`]: splits the byte stream into JSON messages (no delimiters on the wire);
//! - [`transport`]: `unix:`/`tcp:`/`ssl:` remotes and TLS (rustls, ring) with OVS's PEM files;
//! - [`connection`]: one pipelined JSON-RPC connection (reader + writer tasks, pending-request
//!   map, echo replies, inactivity probe, in-order notification handler);
//! - [`monitor`]: `monitor_cond_since` / `monitor_cond` / `monitor` requests, replies, updates;
//! - [`updates`]: typed table updates, parsed straight from JSON text into rows;
//! - `sanitize`: fits operations to the server's schema (unknown row columns are dropped);
//! - `session`: the background task of a [`Client`]: connect, RAFT leader check through
//!   `_Server`, monitor with fast resync, reconnect with backoff;
//! - [`client`]: the public [`Client`] (replica access, change notification, `transact`);
//! - [`metrics`]: counters for the controller's metrics;
//! - [`model`]: the bridge between generic rows and generated typed rows;
//! - [`nb`]: typed rows for the OVN Northbound tables, generated from `ovn-nb.ovsschema`.
//!
//! Guarantees the controller builds on:
//! - `transact` returns only after the server's update for that transaction was applied to the
//!   replica (ovsdb-server sends the update before the reply; one reader task handles both);
//! - a transaction is never resent: a connection lost with it in flight gives
//!   [`Error::OutcomeUnknown`] (retryable; guard creates with `wait` operations);
//! - after a reconnect `monitor_cond_since` resumes from the last txn id (on clustered
//!   databases the server answers found=true and sends only the changes); otherwise the new
//!   dump is built into a fresh [`replica::Replica`] and swapped in whole;
//! - with `leader_only` the client talks to the RAFT leader only and moves when `_Server`
//!   reports that leadership left its server.
//!
//! ```no_run
//! # async fn example() -> Result<(), ovsdb::Error> {
//! use ovsdb::ops::Operation;
//! use ovsdb::{Client, ClientConfig, Datum, Row};
//!
//! let remotes = vec!["unix:/var/run/ovn/ovnnb_db.sock".to_owned()];
//! let mut config = ClientConfig::new("OVN_Northbound", remotes);
//! config.indexed_external_ids = vec!["k8s.ovn.org/owner".into()];
//! let client = Client::connect(config).await?;
//! let owned: Vec<_> = client
//!     .replica()
//!     .table("Load_Balancer")
//!     .map(|t| t.by_external_id("k8s.ovn.org/owner", "ns/svc").collect())
//!     .unwrap_or_default();
//! let row = Row::from([("name".to_owned(), Datum::scalar("lb"))]);
//! let insert = Operation::Insert { table: "Load_Balancer".into(), row, uuid_name: None };
//! client.transact(vec![insert]).await?;
//! let mut changes = client.subscribe(); // wakes on every replica change
//! changes.changed().await.ok();
//! # let _ = owned;
//! # Ok(())
//! # }
//! ```

pub mod client;
pub mod connection;
pub mod datum;
pub mod error;
pub mod framing;
pub mod metrics;
pub mod model;
pub mod monitor;
pub mod nb;
pub mod ops;
pub mod replica;
mod sanitize;
pub mod schema;
mod session;
pub mod transport;
pub mod updates;

pub use client::{Backoff, Client, ClientConfig};
pub use datum::{Atom, Datum, Row};
pub use error::Error;
pub use metrics::MetricsSnapshot;
pub use monitor::{MonitorSpec, TableMonitor};
pub use transport::TlsFiles;
pub use uuid::Uuid;
