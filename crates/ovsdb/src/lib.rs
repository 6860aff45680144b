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
