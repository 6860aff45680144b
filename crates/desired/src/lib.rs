//! The pure desired-state core of ovnkube-rs: Kubernetes objects and configuration in, OVN
//! Northbound rows out. No I/O, no async, deterministic (ordered collections everywhere).
//!
//! # Shape
//! - [`Config`]: the ovnkube configuration that changes rows (MicroShift's values by default).
//! - [`annotations`]: byte-compatible codecs of the `k8s.ovn.org/*` annotations.
//! - [`NodeInfo`], [`PodInfo`], [`ServiceInfo`]: objects validated into typed values; invalid
//!   input is an [`ObjectError`] naming the object, and only that object is skipped.
//! - Per-key functions, for a controller that batches many keys into one transaction:
//!   [`cluster_rows`], [`node_rows`], [`pod_rows`], [`service_rows`]; and the whole-cluster
//!   [`desired_cluster`] for `render` and `sync`.
//! - Output: a [`Desired`] set of [`DesiredRow`]s keyed by a stable [`RowId`] (the `name`
//!   column, or parent + identifying columns for routes, policies and NAT) plus [`Link`]s,
//!   the symbolic references "`parent.column` contains row X" that the reconciler resolves to
//!   uuids or named-uuids.
//!
//! # Ownership (what the reconciler may touch)
//! Every row and link carries the [`OwnerKey`] that produced it. Rows are ours by name
//! (`ovn_cluster_router`, `join`, `GR_<node>`, `ext_<node>`, node switches, the ports named by
//! the upstream scheme, `clusterLBGroup`, `clusterPortGroup`) or by `external_ids`
//! (`k8s.ovn.org/kind=Service` load balancers, `pod=true` switch ports). Reference sets that
//! several keys fill (`Logical_Switch.ports`, `.load_balancer`, `Logical_Router.nat` ...) are
//! changed member by member, never replaced.
//!
//! # Where the seed decides
//! The seed document (MicroShift's traffic flows) wins over upstream where they differ: the
//! 1004 policy match has no `/* node */` comment; NodePort VIPs are the l3-gateway addresses and
//! are never templates; per-node LB naming and options follow the seed (see [`services`]).
//! One row deviates from the seed's listing because the seed's flows need it: the GR join-IP
//! route on `ovn_cluster_router` (upstream's too), without which replies to load-balanced
//! traffic that the GR force-SNATs to its join IP leave through the management port.

pub mod annotations;
mod cluster;
mod config;
mod error;
mod model;
pub mod names;
pub mod net;
mod node;
mod pod;
pub mod services;
mod topology;

pub use cluster::{desired_cluster, desired_objects, ClusterObjects, Decoded, Snapshot, YamlError};
pub use config::{ClusterSubnet, Config, GatewayMode};
pub use error::ObjectError;
pub use model::{row, smap, sset, text, Desired, DesiredRow, Link, NamedRef, OwnerKey, RowId};
pub use node::{GatewayInfo, NodeInfo};
pub use pod::{is_completed_phase, pod_rows, PodInfo, PodParts};
pub use services::{service_rows, ServiceInfo};
pub use topology::{cluster_rows, node_rows};
