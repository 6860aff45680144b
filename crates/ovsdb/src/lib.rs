//! An OVSDB (RFC 7047) client with no Kubernetes in it.
//!
//! Layers, bottom to top (the same four-way split as Go's libovsdb):
//! - [`datum`]: atoms, sets and maps, with a canonical in-memory form and the JSON wire form;
//! - [`schema`]: the database schema as the server reports it (column types drive update2 semantics);
//! - [`ops`]: transaction operations, conditions, mutations and their results;
//! - [`replica`]: an in-memory copy of monitored tables, with indexes, fed by update notifications;
//! - [`nb`]: typed rows for the OVN Northbound tables, generated from `ovn-nb.ovsschema`.

pub mod datum;
pub mod model;
pub mod nb;
pub mod ops;
pub mod replica;
pub mod schema;

pub use datum::{Atom, Datum, Row};
pub use uuid::Uuid;
