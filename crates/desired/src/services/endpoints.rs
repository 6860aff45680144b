//! Endpoint selection from EndpointSlices, as upstream's 2023 `GetLbEndpoints`.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use k8s_openapi::api::discovery::v1::EndpointSlice;

use super::{PortInfo, Protocol, ServiceInfo};
use crate::error::ObjectError;
use crate::net::parse_ipv4;

/// The label linking an EndpointSlice to its service.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// The eligible backends of one service port.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PortEndpoints {
    /// The target port (the last matching slice port wins, as upstream).
    pub target_port: u16,
    /// Eligible addresses, de-duplicated and sorted.
    pub ips: BTreeSet<Ipv4Addr>,
}

/// Selects the backends of `port` from the service's IPv4 slices.
///
/// An endpoint is eligible when the service publishes not-ready addresses, or when it is
/// serving (`serving` absent: when `ready` is not false). Terminating-but-serving endpoints
/// are used together with ready ones: upstream 2023 has no "terminating only as fallback".
pub fn port_endpoints(
    svc: &ServiceInfo,
    port: &PortInfo,
    slices: &[&EndpointSlice],
) -> Result<PortEndpoints, ObjectError> {
    let mut out = PortEndpoints::default();
    for slice in slices {
        if slice.address_type != "IPv4" {
            continue; // FQDN and IPv6 slices carry nothing for an IPv4 cluster
        }
        let slice_name = || {
            format!(
                "{}/{}",
                slice.metadata.namespace.as_deref().unwrap_or("default"),
                slice.metadata.name.as_deref().unwrap_or("")
            )
        };
        let mut target = None;
        for sp in slice.ports.iter().flatten() {
            let same_name = sp.name.as_deref().unwrap_or("") == port.name;
            let same_proto = Protocol::parse(sp.protocol.as_deref()) == Some(port.protocol);
            if same_name && same_proto {
                target = sp
                    .port
                    .and_then(|p| u16::try_from(p).ok())
                    .filter(|&p| p != 0);
            }
        }
        let Some(target) = target else { continue };
        out.target_port = target;
        for ep in &slice.endpoints {
            let c = ep.conditions.as_ref();
            let ready = c.and_then(|c| c.ready);
            let serving = c.and_then(|c| c.serving);
            let eligible = svc.publish_not_ready || serving.unwrap_or(ready != Some(false));
            if !eligible {
                continue;
            }
            for a in &ep.addresses {
                let ip = parse_ipv4(a).map_err(|_| {
                    ObjectError::new(
                        "EndpointSlice",
                        slice_name(),
                        format!("endpoint address {a:?} is not an IPv4 address"),
                    )
                })?;
                out.ips.insert(ip);
            }
        }
    }
    Ok(out)
}
