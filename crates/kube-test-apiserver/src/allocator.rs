//! Service ClusterIP and NodePort allocation, as kube-apiserver's service REST storage does it.

use std::collections::HashSet;
use std::net::Ipv4Addr;

use serde_json::{json, Value};

use crate::error::ApiError;

/// The NodePort range (the kube-apiserver default).
pub const NODE_PORT_RANGE: std::ops::RangeInclusive<u16> = 30000..=32767;

/// An IPv4 CIDR such as `10.43.0.0/16`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Cidr {
    network: u32,
    prefix: u8,
}

impl std::str::FromStr for Ipv4Cidr {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let (addr, prefix) = text
            .split_once('/')
            .ok_or_else(|| format!("CIDR {text:?} has no /prefix"))?;
        let addr: Ipv4Addr = addr
            .parse()
            .map_err(|e| format!("CIDR {text:?}: bad address: {e}"))?;
        let prefix: u8 = prefix
            .parse()
            .ok()
            .filter(|p| (8..=30).contains(p))
            .ok_or_else(|| format!("CIDR {text:?}: prefix must be 8..=30"))?;
        let mask = u32::MAX << (32 - prefix);
        Ok(Self {
            network: u32::from(addr) & mask,
            prefix,
        })
    }
}

impl Ipv4Cidr {
    fn contains(&self, ip: u32) -> bool {
        ip & (u32::MAX << (32 - self.prefix)) == self.network
    }

    /// The first usable address: `.1`, reserved for the `default/kubernetes` Service.
    pub fn first_host(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.network + 1)
    }

    fn last_host(&self) -> u32 {
        self.network + (1u32 << (32 - self.prefix)) - 2
    }
}

/// Which ClusterIPs and NodePorts are taken.
#[derive(Debug)]
pub struct ServiceAllocator {
    cidr: Ipv4Cidr,
    ips: HashSet<u32>,
    node_ports: HashSet<u16>,
}

fn cluster_ip(svc: &Value) -> Option<&str> {
    svc["spec"]["clusterIP"]
        .as_str()
        .filter(|ip| !ip.is_empty() && *ip != "None")
}

fn node_ports(svc: &Value) -> Vec<u16> {
    svc["spec"]["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["nodePort"].as_u64())
        .filter_map(|p| u16::try_from(p).ok())
        .collect()
}

fn wants_node_ports(svc: &Value) -> bool {
    matches!(
        svc["spec"]["type"].as_str(),
        Some("NodePort" | "LoadBalancer")
    )
}

fn service_name(svc: &Value) -> &str {
    svc["metadata"]["name"].as_str().unwrap_or_default()
}

impl ServiceAllocator {
    /// An allocator over `cidr` with nothing taken.
    pub fn new(cidr: Ipv4Cidr) -> Self {
        Self {
            cidr,
            ips: HashSet::new(),
            node_ports: HashSet::new(),
        }
    }

    /// Fills in `spec.clusterIP(s)` and the NodePorts of a Service being created
    /// (`old` = None) or updated, marking them taken; fails without side effect when a requested
    /// address or port is taken, outside its range, or an immutable ClusterIP changes.
    pub fn assign(&mut self, svc: &mut Value, old: Option<&Value>) -> Result<(), ApiError> {
        let name = service_name(svc).to_string();
        let invalid = |why: String| ApiError::invalid("Service", &name, why);
        if !svc["spec"].is_object() {
            svc["spec"] = json!({});
        }
        let old_ip = old.and_then(cluster_ip).map(str::to_string);
        let requested = svc["spec"]["clusterIP"].as_str().map(str::to_string);
        let ip = match (requested.as_deref(), old_ip.as_deref()) {
            (Some("None"), None) => None,
            (None | Some(""), Some(old)) => Some(old.to_string()),
            (Some(new), Some(old)) if new == old => Some(old.to_string()),
            (Some(_), Some(_)) => {
                return Err(invalid(
                    "spec.clusterIP: Invalid value: field is immutable".into(),
                ))
            }
            (None | Some(""), None) => {
                Some(self.free_ip().ok_or_else(|| {
                    invalid("spec.clusterIP: Internal error: range is full".into())
                })?)
            }
            (Some(new), None) => {
                let parsed: Ipv4Addr = new.parse().map_err(|_| {
                    invalid(format!(
                        "spec.clusterIP: Invalid value: {new:?}: not an IPv4 address"
                    ))
                })?;
                let raw = u32::from(parsed);
                if !self.cidr.contains(raw)
                    || raw == self.cidr.network
                    || raw > self.cidr.last_host()
                {
                    return Err(invalid(format!(
                        "spec.clusterIP: Invalid value: {new:?}: provided IP is not in the valid range"
                    )));
                }
                if self.ips.contains(&raw) {
                    return Err(invalid(format!(
                        "spec.clusterIP: Invalid value: {new:?}: provided IP is already allocated"
                    )));
                }
                Some(new.to_string())
            }
        };
        let old_ports: HashSet<u16> = old
            .map(node_ports)
            .unwrap_or_default()
            .into_iter()
            .collect();
        let ports = self
            .assign_node_ports(svc, old, &old_ports)
            .map_err(invalid)?;

        // Commit: release what the old object held, take what the new one holds.
        if let Some(old_ip) = old_ip.as_deref().and_then(|ip| ip.parse::<Ipv4Addr>().ok()) {
            self.ips.remove(&u32::from(old_ip));
        }
        for port in &old_ports {
            self.node_ports.remove(port);
        }
        match &ip {
            Some(ip) => {
                let parsed: Ipv4Addr = ip.parse().expect("validated above");
                self.ips.insert(u32::from(parsed));
                svc["spec"]["clusterIP"] = json!(ip);
                svc["spec"]["clusterIPs"] = json!([ip]);
            }
            None => {
                svc["spec"]["clusterIP"] = json!("None");
                svc["spec"]["clusterIPs"] = json!(["None"]);
            }
        }
        self.node_ports.extend(ports);
        Ok(())
    }

    /// Chooses the NodePort of every port of a NodePort/LoadBalancer Service (and strips them
    /// from other types), writing them into `svc`; returns the set chosen.
    fn assign_node_ports(
        &self,
        svc: &mut Value,
        old: Option<&Value>,
        old_ports: &HashSet<u16>,
    ) -> Result<Vec<u16>, String> {
        let wanted = wants_node_ports(svc);
        let Some(ports) = svc["spec"]["ports"].as_array_mut() else {
            return Ok(Vec::new());
        };
        let mut chosen = Vec::new();
        for port in ports.iter_mut() {
            if !wanted {
                if let Some(map) = port.as_object_mut() {
                    map.remove("nodePort");
                }
                continue;
            }
            let node_port = match port["nodePort"].as_u64() {
                Some(requested) => {
                    let requested = u16::try_from(requested)
                        .ok()
                        .filter(|p| NODE_PORT_RANGE.contains(p))
                        .ok_or_else(|| {
                            format!("spec.ports.nodePort: Invalid value: {requested}: provided port is not in the valid range")
                        })?;
                    let taken =
                        self.node_ports.contains(&requested) && !old_ports.contains(&requested);
                    if taken || chosen.contains(&requested) {
                        return Err(format!(
                            "spec.ports.nodePort: Invalid value: {requested}: provided port is already allocated"
                        ));
                    }
                    requested
                }
                None => match previous_node_port(old, port) {
                    Some(kept) if !chosen.contains(&kept) => kept,
                    _ => self
                        .free_port(&chosen)
                        .ok_or_else(|| "spec.ports.nodePort: range is full".to_string())?,
                },
            };
            port["nodePort"] = json!(node_port);
            chosen.push(node_port);
        }
        Ok(chosen)
    }

    /// The lowest free address after the reserved first host.
    fn free_ip(&self) -> Option<String> {
        (self.cidr.network + 2..=self.cidr.last_host())
            .find(|ip| !self.ips.contains(ip))
            .map(|ip| Ipv4Addr::from(ip).to_string())
    }

    /// The lowest free NodePort not already chosen for this Service.
    fn free_port(&self, chosen: &[u16]) -> Option<u16> {
        NODE_PORT_RANGE
            .clone()
            .find(|p| !self.node_ports.contains(p) && !chosen.contains(p))
    }

    /// Frees the ClusterIP and NodePorts a deleted Service held.
    pub fn release(&mut self, svc: &Value) {
        if let Some(ip) = cluster_ip(svc).and_then(|ip| ip.parse::<Ipv4Addr>().ok()) {
            self.ips.remove(&u32::from(ip));
        }
        for port in node_ports(svc) {
            self.node_ports.remove(&port);
        }
    }
}

/// The NodePort an update keeps for a port that no longer states it (as `kubectl apply` sends).
fn previous_node_port(old: Option<&Value>, port: &Value) -> Option<u16> {
    old?["spec"]["ports"]
        .as_array()?
        .iter()
        .find(|p| p["port"] == port["port"] && p["protocol"] == port["protocol"])
        .and_then(|p| p["nodePort"].as_u64())
        .and_then(|p| u16::try_from(p).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allocator() -> ServiceAllocator {
        ServiceAllocator::new("10.43.0.0/16".parse().unwrap())
    }

    #[test]
    fn allocates_ips_after_the_reserved_first_host_and_rejects_taken_ones() {
        let mut alloc = allocator();
        let mut kubernetes =
            json!({"metadata": {"name": "kubernetes"}, "spec": {"clusterIP": "10.43.0.1"}});
        alloc.assign(&mut kubernetes, None).unwrap();
        let mut svc = json!({"metadata": {"name": "a"}, "spec": {}});
        alloc.assign(&mut svc, None).unwrap();
        assert_eq!(svc["spec"]["clusterIP"], "10.43.0.2");
        assert_eq!(svc["spec"]["clusterIPs"], json!(["10.43.0.2"]));
        let mut dup = json!({"metadata": {"name": "b"}, "spec": {"clusterIP": "10.43.0.2"}});
        let err = alloc.assign(&mut dup, None).unwrap_err();
        assert_eq!(err.code, 422);
        assert!(err.message.contains("already allocated"), "{}", err.message);
        let mut outside = json!({"metadata": {"name": "c"}, "spec": {"clusterIP": "10.44.0.9"}});
        assert!(alloc.assign(&mut outside, None).is_err());
        alloc.release(&svc);
        let mut again = json!({"metadata": {"name": "d"}, "spec": {"clusterIP": "10.43.0.2"}});
        alloc.assign(&mut again, None).unwrap();
    }

    #[test]
    fn node_ports_are_allocated_kept_on_update_and_checked() {
        let mut alloc = allocator();
        let mut svc = json!({"metadata": {"name": "np"}, "spec": {"type": "NodePort", "ports": [
            {"port": 80, "protocol": "TCP"}, {"port": 443, "protocol": "TCP", "nodePort": 30443}
        ]}});
        alloc.assign(&mut svc, None).unwrap();
        assert_eq!(svc["spec"]["ports"][0]["nodePort"], 30000);
        assert_eq!(svc["spec"]["ports"][1]["nodePort"], 30443);
        let mut update = json!({"metadata": {"name": "np"}, "spec": {"type": "NodePort", "ports": [
            {"port": 80, "protocol": "TCP"}
        ]}});
        alloc.assign(&mut update, Some(&svc)).unwrap();
        assert_eq!(update["spec"]["ports"][0]["nodePort"], 30000);
        assert_eq!(update["spec"]["clusterIP"], svc["spec"]["clusterIP"]);
        let mut clash = json!({"metadata": {"name": "x"}, "spec": {"type": "NodePort", "ports": [
            {"port": 1, "nodePort": 30000}
        ]}});
        assert!(alloc
            .assign(&mut clash, None)
            .unwrap_err()
            .message
            .contains("already allocated"));
        let mut freed = json!({"metadata": {"name": "y"}, "spec": {"type": "NodePort", "ports": [
            {"port": 1, "nodePort": 30443}
        ]}});
        alloc.assign(&mut freed, None).unwrap();
    }

    #[test]
    fn cluster_ip_is_immutable_and_headless_stays_headless() {
        let mut alloc = allocator();
        let mut svc = json!({"metadata": {"name": "a"}, "spec": {}});
        alloc.assign(&mut svc, None).unwrap();
        let mut changed = json!({"metadata": {"name": "a"}, "spec": {"clusterIP": "10.43.9.9"}});
        assert!(alloc.assign(&mut changed, Some(&svc)).is_err());
        let mut headless = json!({"metadata": {"name": "h"}, "spec": {"clusterIP": "None"}});
        alloc.assign(&mut headless, None).unwrap();
        assert_eq!(headless["spec"]["clusterIPs"], json!(["None"]));
    }
}
