//! The CNI plugin (spec 1.0.0; results also for 0.3.x/0.4.0 configs): ADD wires a pod's veth
//! into br-int from its `k8s.ovn.org/pod-networks` annotation and waits until ovn-controller
//! reports the port installed; DEL removes it (idempotent); CHECK verifies; VERSION reports.
//!
//! Every failure is a [`CniError`] carrying a spec error code, printed as the CNI error JSON.

mod podnet;
mod request;
mod wire;

use std::collections::BTreeMap;

use serde_json::json;

use crate::host::Host;
pub use podnet::{AnnotationSource, FetchPod, PodAnnotation, PodNetwork};
pub use request::{CniArgs, CniCommand, CniRequest, NetConf};

/// The CNI versions whose result format this plugin writes.
pub const SUPPORTED_VERSIONS: [&str; 4] = ["0.3.0", "0.3.1", "0.4.0", "1.0.0"];

/// Spec error code: incompatible CNI version.
pub const ERR_INCOMPATIBLE_VERSION: u32 = 1;
/// Spec error code: a necessary environment variable is missing or invalid.
pub const ERR_INVALID_ENV: u32 = 4;
/// Spec error code: I/O failure.
pub const ERR_IO: u32 = 5;
/// Spec error code: failed to decode content.
pub const ERR_DECODE: u32 = 6;
/// Spec error code: invalid network config.
pub const ERR_INVALID_CONFIG: u32 = 7;
/// Spec error code: try again later (annotation or port readiness timed out).
pub const ERR_TRY_AGAIN: u32 = 11;
/// Plugin-specific: a host tool (ip, ovs-vsctl) failed.
pub const ERR_HOST: u32 = 100;

/// A CNI error result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("CNI error {code}: {msg}{}", if details.is_empty() { String::new() } else { format!(": {details}") })]
pub struct CniError {
    /// Spec error code.
    pub code: u32,
    /// Short message.
    pub msg: String,
    /// Longer explanation.
    pub details: String,
}

impl CniError {
    /// Builds an error.
    pub fn new(code: u32, msg: impl Into<String>, details: impl Into<String>) -> CniError {
        CniError {
            code,
            msg: msg.into(),
            details: details.into(),
        }
    }

    /// The error JSON the runtime reads on stdout.
    pub fn to_json(&self, cni_version: &str) -> String {
        json!({"cniVersion": cni_version, "code": self.code, "msg": self.msg, "details": self.details}).to_string()
    }
}

impl From<crate::Error> for CniError {
    fn from(e: crate::Error) -> CniError {
        let code = match e {
            crate::Error::Timeout { .. } => ERR_TRY_AGAIN,
            crate::Error::Spawn { .. } => ERR_IO,
            _ => ERR_HOST,
        };
        CniError::new(code, "host operation failed", e.to_string())
    }
}

/// Runs one CNI invocation: `env` is the process environment, `stdin` the network config.
/// Returns what goes to stdout on success (empty for DEL). `host` is where the node's OVS and
/// host-side veth live (`None`: this process's namespace with the config's `ovsRunDir`);
/// `fetch` reads the pod through the API when the config names a kubeconfig.
pub fn run(
    env: &BTreeMap<String, String>,
    stdin: &str,
    host: Option<Host>,
    fetch: FetchPod,
) -> Result<String, CniError> {
    let command = request::command(env)?;
    if command == CniCommand::Version {
        return Ok(
            json!({"cniVersion": "1.0.0", "supportedVersions": SUPPORTED_VERSIONS}).to_string(),
        );
    }
    let conf = NetConf::parse(stdin)?;
    let req = CniRequest::from_env(command, env)?;
    let host = host.unwrap_or_else(|| Host::current(&conf.ovs_run_dir));
    match command {
        CniCommand::Add => wire::add(&host, &conf, &req, fetch),
        CniCommand::Del => wire::del(&host, &req).map(|()| String::new()),
        CniCommand::Check => wire::check(&host, &conf, &req).map(|()| String::new()),
        CniCommand::Version => unreachable!("handled above"),
    }
}
