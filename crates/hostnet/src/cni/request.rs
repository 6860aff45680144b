//! Parsing a CNI invocation: the `CNI_*` environment and the network config on stdin.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::{
    CniError, ERR_DECODE, ERR_INCOMPATIBLE_VERSION, ERR_INVALID_CONFIG, ERR_INVALID_ENV,
    SUPPORTED_VERSIONS,
};
use crate::host::DEFAULT_OVS_RUNDIR;

/// `CNI_COMMAND`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CniCommand {
    /// Attach the pod.
    Add,
    /// Detach the pod (idempotent).
    Del,
    /// Verify the attachment.
    Check,
    /// Report supported versions.
    Version,
}

/// Reads `CNI_COMMAND`.
pub(super) fn command(env: &BTreeMap<String, String>) -> Result<CniCommand, CniError> {
    match env.get("CNI_COMMAND").map(String::as_str) {
        Some("ADD") => Ok(CniCommand::Add),
        Some("DEL") => Ok(CniCommand::Del),
        Some("CHECK") => Ok(CniCommand::Check),
        Some("VERSION") => Ok(CniCommand::Version),
        Some(other) => Err(CniError::new(
            ERR_INVALID_ENV,
            "unknown CNI_COMMAND",
            format!("{other:?}"),
        )),
        None => Err(CniError::new(ERR_INVALID_ENV, "CNI_COMMAND is not set", "")),
    }
}

/// The pod identity from `CNI_ARGS` (`K8S_POD_NAMESPACE=..;K8S_POD_NAME=..;K8S_POD_UID=..`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CniArgs {
    /// Pod namespace.
    pub namespace: String,
    /// Pod name.
    pub name: String,
    /// Pod UID, if the runtime passed it.
    pub uid: Option<String>,
}

impl CniArgs {
    /// Parses `CNI_ARGS`.
    pub fn parse(s: &str) -> Result<CniArgs, CniError> {
        let kv: BTreeMap<&str, &str> = s.split(';').filter_map(|p| p.split_once('=')).collect();
        let get = |k: &str| kv.get(k).map(|v| v.to_string()).filter(|v| !v.is_empty());
        let missing = |k: &str| {
            CniError::new(
                ERR_INVALID_ENV,
                format!("CNI_ARGS has no {k}"),
                format!("CNI_ARGS={s:?}"),
            )
        };
        Ok(CniArgs {
            namespace: get("K8S_POD_NAMESPACE").ok_or_else(|| missing("K8S_POD_NAMESPACE"))?,
            name: get("K8S_POD_NAME").ok_or_else(|| missing("K8S_POD_NAME"))?,
            uid: get("K8S_POD_UID"),
        })
    }

    /// The OVN logical port name, `<namespace>_<name>`.
    pub fn iface_id(&self) -> String {
        format!("{}_{}", self.namespace, self.name)
    }
}

/// One invocation's environment, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CniRequest {
    /// The command.
    pub command: CniCommand,
    /// `CNI_CONTAINERID` (the sandbox id).
    pub container_id: String,
    /// `CNI_NETNS`, the pod's network namespace path (may be empty on DEL).
    pub netns: String,
    /// `CNI_IFNAME`, the interface inside the pod.
    pub ifname: String,
    /// The pod.
    pub pod: CniArgs,
}

impl CniRequest {
    /// Validates the `CNI_*` variables for `command`.
    pub fn from_env(
        command: CniCommand,
        env: &BTreeMap<String, String>,
    ) -> Result<CniRequest, CniError> {
        let get = |k: &str| env.get(k).cloned().unwrap_or_default();
        let required = |k: &str| {
            let v = get(k);
            if v.is_empty() {
                Err(CniError::new(
                    ERR_INVALID_ENV,
                    format!("{k} is not set"),
                    "",
                ))
            } else {
                Ok(v)
            }
        };
        let container_id = required("CNI_CONTAINERID")?;
        let ifname = required("CNI_IFNAME")?;
        let netns = if command == CniCommand::Del {
            get("CNI_NETNS")
        } else {
            required("CNI_NETNS")?
        };
        Ok(CniRequest {
            command,
            container_id,
            netns,
            ifname,
            pod: CniArgs::parse(&required("CNI_ARGS")?)?,
        })
    }

    /// The host-side veth name: the first 15 characters of the sandbox id (as upstream).
    pub fn host_ifname(&self) -> String {
        self.container_id.chars().take(15).collect()
    }
}

/// The network config (stdin). Keys beyond the spec's are set by the node agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetConf {
    /// `cniVersion`; the result is written in this version's format.
    pub cni_version: String,
    /// `name` of the network.
    pub name: String,
    /// `ovsRunDir`: where `db.sock` is (default `/var/run/openvswitch`).
    pub ovs_run_dir: PathBuf,
    /// `mtu` of the pod interface (default 1400, upstream's default).
    pub mtu: u32,
    /// `kubeconfig`: how to read the pod annotation from the API.
    pub kubeconfig: Option<PathBuf>,
    /// `podNetworksDir`: TEST SEAM. Read the annotation value from `<dir>/<namespace>_<name>`
    /// instead of the API. Meant for tests without an API server; never written by the agent.
    pub pod_networks_dir: Option<PathBuf>,
    /// `annotationTimeoutSeconds`: how long to wait for the pod annotation.
    pub annotation_timeout: Duration,
    /// `readinessTimeoutSeconds`: how long to wait for `ovn-installed`.
    pub readiness_timeout: Duration,
    /// `prevResult` (CHECK): the IPs attached before, as `a.b.c.d/len`.
    pub prev_ips: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawNetConf {
    cni_version: String,
    name: String,
    #[serde(rename = "type")]
    _type: String,
    ovs_run_dir: Option<PathBuf>,
    mtu: Option<u32>,
    kubeconfig: Option<PathBuf>,
    pod_networks_dir: Option<PathBuf>,
    annotation_timeout_seconds: Option<u64>,
    readiness_timeout_seconds: Option<u64>,
    prev_result: Option<PrevResult>,
}

#[derive(Deserialize)]
struct PrevResult {
    #[serde(default)]
    ips: Vec<PrevIp>,
}

#[derive(Deserialize)]
struct PrevIp {
    address: String,
}

/// Upstream's CNI request timeout (2 minutes) bounds both waits by default.
const DEFAULT_WAIT: Duration = Duration::from_secs(120);

impl NetConf {
    /// Parses and validates the config.
    pub fn parse(stdin: &str) -> Result<NetConf, CniError> {
        let raw: RawNetConf = serde_json::from_str(stdin).map_err(|e| {
            CniError::new(
                ERR_DECODE,
                "cannot decode the network config",
                e.to_string(),
            )
        })?;
        if !SUPPORTED_VERSIONS.contains(&raw.cni_version.as_str()) {
            return Err(CniError::new(
                ERR_INCOMPATIBLE_VERSION,
                format!("cniVersion {} is not supported", raw.cni_version),
                format!("supported: {}", SUPPORTED_VERSIONS.join(", ")),
            ));
        }
        if raw.mtu == Some(0) {
            return Err(CniError::new(
                ERR_INVALID_CONFIG,
                "mtu must be positive",
                "",
            ));
        }
        Ok(NetConf {
            cni_version: raw.cni_version,
            name: raw.name,
            ovs_run_dir: raw.ovs_run_dir.unwrap_or_else(|| DEFAULT_OVS_RUNDIR.into()),
            mtu: raw.mtu.unwrap_or(1400),
            kubeconfig: raw.kubeconfig,
            pod_networks_dir: raw.pod_networks_dir,
            annotation_timeout: raw
                .annotation_timeout_seconds
                .map_or(DEFAULT_WAIT, Duration::from_secs),
            readiness_timeout: raw
                .readiness_timeout_seconds
                .map_or(DEFAULT_WAIT, Duration::from_secs),
            prev_ips: raw
                .prev_result
                .map(|p| p.ips.into_iter().map(|i| i.address).collect())
                .unwrap_or_default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn request_needs_the_cni_variables() {
        let full = env(&[
            ("CNI_COMMAND", "ADD"),
            ("CNI_CONTAINERID", "0123456789abcdef0123"),
            ("CNI_NETNS", "/var/run/netns/p"),
            ("CNI_IFNAME", "eth0"),
            (
                "CNI_ARGS",
                "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=pod-1;K8S_POD_UID=u1",
            ),
        ]);
        let r = CniRequest::from_env(command(&full).unwrap(), &full).unwrap();
        assert_eq!(r.host_ifname(), "0123456789abcde");
        assert_eq!(r.pod.iface_id(), "default_pod-1");
        assert_eq!(r.pod.uid.as_deref(), Some("u1"));
        for drop in ["CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_ARGS"] {
            let mut e = full.clone();
            e.remove(drop);
            let err = CniRequest::from_env(CniCommand::Add, &e).unwrap_err();
            assert_eq!(err.code, ERR_INVALID_ENV, "{drop}");
            assert!(err.msg.contains(drop), "{err}");
        }
        let mut no_name = full.clone();
        no_name.insert("CNI_ARGS".into(), "K8S_POD_NAMESPACE=default".into());
        assert!(CniRequest::from_env(CniCommand::Add, &no_name)
            .unwrap_err()
            .msg
            .contains("K8S_POD_NAME"));
        // DEL may come without a netns (the sandbox is already gone).
        let mut del = full;
        del.remove("CNI_NETNS");
        assert!(CniRequest::from_env(CniCommand::Del, &del).is_ok());
        assert_eq!(
            command(&env(&[("CNI_COMMAND", "FOO")])).unwrap_err().code,
            ERR_INVALID_ENV
        );
    }

    #[test]
    fn netconf_defaults_and_errors() {
        let c = NetConf::parse(
            r#"{"cniVersion":"1.0.0","name":"ovn-kubernetes","type":"ovn-k8s-cni-overlay"}"#,
        )
        .unwrap();
        assert_eq!(c.mtu, 1400);
        assert_eq!(c.ovs_run_dir, PathBuf::from("/var/run/openvswitch"));
        assert_eq!(NetConf::parse("{").unwrap_err().code, ERR_DECODE);
        let old = NetConf::parse(r#"{"cniVersion":"0.2.0","name":"n","type":"t"}"#).unwrap_err();
        assert_eq!(old.code, ERR_INCOMPATIBLE_VERSION);
        let prev = NetConf::parse(
            r#"{"cniVersion":"1.0.0","name":"n","type":"t","prevResult":{"ips":[{"address":"10.42.0.12/24"}]}}"#,
        )
        .unwrap();
        assert_eq!(prev.prev_ips, ["10.42.0.12/24"]);
    }
}
