//! Typed rows for the OVN Northbound tables (generated; see crates/ovsdb-codegen).
