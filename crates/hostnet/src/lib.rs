//! The node side of ovnkube-rs: what one host must look like (br-ex flows, iptables chains,
//! routes, neighbours, addresses, sysctls, node annotations), rendered as pure functions, and
//! the appliers that make a host (or a network namespace standing in for one) match it.

pub mod agent;
pub mod annotations;
pub mod apply;
pub mod cni;
pub mod facts;
pub mod flows;
pub mod host;
pub mod ipstate;
pub mod iptables;
pub mod net;
pub mod nodelab;
pub mod ovs;
mod render;
pub mod services;

pub use render::{render_facts, render_node_text};

/// Errors of this crate; each names the object and the reason.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A value could not be parsed.
    #[error("invalid {what}: {input:?}")]
    Parse {
        /// What was being parsed.
        what: &'static str,
        /// The offending input.
        input: String,
    },
    /// A host tool could not be started or fed.
    #[error("cannot run `{command}`: {source}")]
    Spawn {
        /// The command line.
        command: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A host tool failed.
    #[error("`{command}` failed (exit {status}): {stderr}")]
    Command {
        /// The command line.
        command: String,
        /// Exit status.
        status: i32,
        /// Its stderr.
        stderr: String,
    },
    /// Something did not become ready in time.
    #[error("timed out after {seconds}s waiting for {what}")]
    Timeout {
        /// What was awaited.
        what: String,
        /// How long.
        seconds: u64,
    },
    /// The host is not in the shape the node agent needs.
    #[error("{what}: {reason}")]
    Host {
        /// The object.
        what: String,
        /// Why it is wrong.
        reason: String,
    },
}
