//! The node side of ovnkube-rs: what one host must look like (br-ex flows, iptables chains,
//! routes, neighbours, addresses, sysctls, node annotations), rendered as pure functions, and
//! the appliers that make a host (or a network namespace standing in for one) match it.

pub mod annotations;
pub mod facts;
pub mod flows;
pub mod ipstate;
pub mod iptables;
pub mod net;
mod render;
pub mod services;

pub use render::render_node_text;

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
}
