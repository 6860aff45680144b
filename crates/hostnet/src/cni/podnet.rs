//! Where ADD gets the pod's `k8s.ovn.org/pod-networks` annotation from, and what it reads in it.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::thread::sleep;
use std::time::{Duration, Instant};

use ovnkube_desired::annotations::{decode_pod_networks, POD_NETWORKS};
use ovnkube_desired::net::{looks_ipv6, parse_ipv4};

use super::{CniArgs, CniError, ERR_DECODE, ERR_HOST, ERR_TRY_AGAIN};
use crate::net::{Ipv4Cidr, MacAddr};

/// How often ADD re-reads the pod while the controller has not annotated it yet (one GET on
/// the API each time: cheap, and it bounds the wait added to every pod start).
const POLL: Duration = Duration::from_millis(50);

/// The default network's entry of the annotation, validated (IPv4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodNetwork {
    /// Addresses with the node-subnet prefix (`10.42.0.12/24`).
    pub ips: Vec<Ipv4Cidr>,
    /// The pod MAC.
    pub mac: MacAddr,
    /// Gateways (default routes).
    pub gateways: Vec<Ipv4Addr>,
    /// Extra routes (destination, next hop).
    pub routes: Vec<(Ipv4Cidr, Ipv4Addr)>,
}

impl PodNetwork {
    /// Decodes the annotation value (`{"default": {...}}`), keeping the IPv4 parts.
    pub fn decode(value: &str) -> Result<PodNetwork, CniError> {
        let bad =
            |why: String| CniError::new(ERR_DECODE, format!("bad {POD_NETWORKS} annotation"), why);
        let raw = decode_pod_networks(value).map_err(|e| bad(e.reason))?;
        let or_legacy = |list: Vec<String>, single: String| {
            if list.is_empty() && !single.is_empty() {
                vec![single]
            } else {
                list
            }
        };
        let ips = or_legacy(raw.ip_addresses, raw.ip_address)
            .iter()
            .filter(|s| !looks_ipv6(s))
            .map(|s| s.parse::<Ipv4Cidr>().map_err(|e| bad(e.to_string())))
            .collect::<Result<Vec<_>, _>>()?;
        if ips.is_empty() {
            return Err(bad("no IPv4 address".into()));
        }
        let gateways = or_legacy(raw.gateway_ips, raw.gateway_ip)
            .iter()
            .filter(|s| !looks_ipv6(s))
            .map(|s| parse_ipv4(s).map_err(|e| bad(format!("gateway: {e}"))))
            .collect::<Result<Vec<_>, _>>()?;
        let routes = raw
            .routes
            .iter()
            .filter(|r| !looks_ipv6(&r.dest))
            .map(|r| {
                let dest = r
                    .dest
                    .parse::<Ipv4Cidr>()
                    .map_err(|e| bad(format!("route: {e}")))?;
                let nh =
                    parse_ipv4(&r.next_hop).map_err(|e| bad(format!("route next hop: {e}")))?;
                Ok((dest, nh))
            })
            .collect::<Result<Vec<_>, CniError>>()?;
        Ok(PodNetwork {
            ips,
            mac: raw
                .mac_address
                .parse()
                .map_err(|e: crate::Error| bad(e.to_string()))?,
            gateways,
            routes,
        })
    }
}

/// What the API says about a pod: its UID and the annotation value, if set yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodAnnotation {
    /// `metadata.uid`.
    pub uid: String,
    /// The `k8s.ovn.org/pod-networks` value.
    pub value: Option<String>,
}

/// Reads a pod through the Kubernetes API with the given kubeconfig (the binary provides it).
pub type FetchPod<'a> = &'a dyn Fn(&Path, &CniArgs) -> Result<PodAnnotation, CniError>;

/// Where the annotation is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnnotationSource {
    /// The Kubernetes API, with this kubeconfig.
    Kubeconfig(PathBuf),
    /// TEST SEAM: the file `<dir>/<namespace>_<name>` holds the annotation value.
    Dir(PathBuf),
}

impl AnnotationSource {
    /// Reads the annotation once: `Ok(None)` while it is not there yet.
    fn read(&self, pod: &CniArgs, fetch: FetchPod) -> Result<Option<String>, CniError> {
        match self {
            AnnotationSource::Dir(dir) => {
                Ok(std::fs::read_to_string(dir.join(pod.iface_id())).ok())
            }
            AnnotationSource::Kubeconfig(path) => {
                let found = fetch(path, pod)?;
                if let Some(want) = &pod.uid {
                    if *want != found.uid {
                        return Err(CniError::new(
                            ERR_HOST,
                            format!(
                                "pod {}/{} has UID {}, the runtime asked for {want}",
                                pod.namespace, pod.name, found.uid
                            ),
                            "",
                        ));
                    }
                }
                Ok(found.value)
            }
        }
    }

    /// Waits (polling every [`POLL`]) until the annotation is present, then decodes it.
    pub fn wait(
        &self,
        pod: &CniArgs,
        timeout: Duration,
        fetch: FetchPod,
    ) -> Result<PodNetwork, CniError> {
        let start = Instant::now();
        loop {
            if let Some(value) = self.read(pod, fetch)? {
                return PodNetwork::decode(&value);
            }
            if start.elapsed() >= timeout {
                return Err(CniError::new(
                    ERR_TRY_AGAIN,
                    format!(
                        "pod {}/{} has no {POD_NETWORKS} annotation",
                        pod.namespace, pod.name
                    ),
                    format!("waited {}s", timeout.as_secs()),
                ));
            }
            sleep(POLL);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_upstream_annotation_with_routes() {
        let v = r#"{"default":{"ip_addresses":["10.42.0.12/24"],"mac_address":"0a:58:0a:2a:00:0c","gateway_ips":["10.42.0.1"],"routes":[{"dest":"10.43.0.0/16","nextHop":"10.42.0.1"}],"ip_address":"10.42.0.12/24","gateway_ip":"10.42.0.1"}}"#;
        let n = PodNetwork::decode(v).unwrap();
        assert_eq!(n.ips[0].to_string(), "10.42.0.12/24");
        assert_eq!(n.mac.to_string(), "0a:58:0a:2a:00:0c");
        assert_eq!(n.gateways, [Ipv4Addr::new(10, 42, 0, 1)]);
        assert_eq!(n.routes[0].0.to_string(), "10.43.0.0/16");
        for bad in [
            "{",
            r#"{"other":{}}"#,
            r#"{"default":{"mac_address":"0a:58:0a:2a:00:0d"}}"#,
        ] {
            assert_eq!(
                PodNetwork::decode(bad).unwrap_err().code,
                ERR_DECODE,
                "{bad}"
            );
        }
    }
}
