//! The node agent: one-time node setup, then `sync` rounds that render the host state from the
//! current facts and services and apply only the differences.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::Duration;

use crate::annotations::node_annotations;
use crate::apply::{sync_bridge_flows, sync_ip_state, sync_iptables};
use crate::facts::{NodeFacts, Uplink, MASQ_HOST_IP, MASQ_NEXT_HOP_IP, MASQ_PREFIX};
use crate::flows::bridge_flows;
use crate::host::Host;
use crate::ipstate::host_net_state;
use crate::iptables::host_rules;
use crate::net::{Ipv4Cidr, MacAddr};
use crate::ovs::{self, OvsSettings};
use crate::services::HostService;
use crate::Error;

/// How the node is configured (flags / `ovnkube.conf` / node annotations).
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// Kubernetes node name.
    pub node_name: String,
    /// The node's InternalIP (encap IP and source of the `169.254.169.1` route).
    pub node_ip: Ipv4Addr,
    /// Gateway bridge (`br-ex`).
    pub bridge: String,
    /// Service CIDRs.
    pub service_cidrs: Vec<Ipv4Cidr>,
    /// Cluster subnets.
    pub cluster_subnets: Vec<Ipv4Cidr>,
    /// The node subnet (`k8s.ovn.org/node-subnets`).
    pub node_subnet: Ipv4Cidr,
    /// MTU.
    pub mtu: u32,
    /// SB database remote for ovn-controller.
    pub sb_remote: String,
    /// Explicit gateway next hops (`[gateway] next-hop`); empty = derive.
    pub next_hops: Vec<Ipv4Addr>,
    /// How long to wait for ovn-controller to create the br-ex patch port.
    pub patch_port_timeout: Duration,
    /// Where to write the CNI config (written last, after the first sync).
    pub cni_conf_path: PathBuf,
    /// Extra keys for the CNI config (e.g. `ovsRunDir`), passed to the plugin.
    pub cni_conf_extra: serde_json::Map<String, serde_json::Value>,
}

/// What one sync changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyncReport {
    /// br-ex flows were replaced.
    pub flows: bool,
    /// iptables rules were written.
    pub iptables: bool,
    /// addresses/routes/neighbours/rules/sysctls were written.
    pub ip: bool,
}

impl SyncReport {
    /// Whether anything changed.
    pub fn changed(&self) -> bool {
        self.flows || self.iptables || self.ip
    }
}

/// A set-up node: its host handle, configuration and discovered facts.
#[derive(Debug)]
pub struct NodeAgent {
    host: Host,
    cfg: AgentConfig,
    facts: NodeFacts,
    mgmt_mac: MacAddr,
    chassis_id: String,
}

/// One `ip -o -4 addr show` entry: device and address.
fn host_addresses(host: &Host) -> Result<Vec<(String, Ipv4Cidr)>, Error> {
    let out = host.run("ip", &["-o", "-4", "addr", "show"])?;
    Ok(out
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let dev = f
                .get(1)?
                .trim_end_matches(':')
                .split('@')
                .next()?
                .to_string();
            let i = f.iter().position(|w| *w == "inet")?;
            Some((dev, f.get(i + 1)?.parse().ok()?))
        })
        .collect())
}

/// A host IP ovnk considers valid: not loopback, link-local or in the masquerade subnet.
fn valid_host_ip(ip: Ipv4Addr) -> bool {
    !ip.is_loopback()
        && !ip.is_link_local()
        && !Ipv4Cidr::new(MASQ_HOST_IP, MASQ_PREFIX).contains(ip)
}

impl NodeAgent {
    /// Sets the node up as upstream's `--init-node` does before it can publish its annotations:
    /// OVS keys for ovn-controller, br-int/br-ex checks, the management port, the gateway facts.
    /// The br-ex patch port appears only once the controller has seen the annotations; wait for
    /// it with [`NodeAgent::wait_for_gateway`] before the first [`NodeAgent::sync`].
    pub fn start(host: Host, cfg: AgentConfig) -> Result<NodeAgent, Error> {
        ovs::require_bridge(&host, "br-int")?;
        ovs::require_bridge(&host, &cfg.bridge)?;
        ovs::configure_open_vswitch(
            &host,
            &OvsSettings {
                sb_remote: cfg.sb_remote.clone(),
                encap_ip: cfg.node_ip.to_string(),
                hostname: cfg.node_name.clone(),
                bridge: cfg.bridge.clone(),
            },
        )?;
        let chassis_id = ovs::system_id(&host)?;
        let mgmt_mac = ovs::ensure_mgmt_port(&host, &cfg.node_name, cfg.mtu)?;
        let facts = discover(&host, &cfg, false)?;
        Ok(NodeAgent {
            host,
            cfg,
            facts,
            mgmt_mac,
            chassis_id,
        })
    }

    /// Waits until ovn-controller has created br-ex's patch port (it does once the controller
    /// has built `ext_<node>` from the published annotations and `ovn-bridge-mappings` is set).
    pub fn wait_for_gateway(&mut self) -> Result<(), Error> {
        let patch = self.facts.patch_port_name();
        ovs::wait_for_ofport(&self.host, &patch, self.cfg.patch_port_timeout)?;
        self.facts = discover(&self.host, &self.cfg, true)?;
        Ok(())
    }

    /// The facts of the last sync.
    pub fn facts(&self) -> &NodeFacts {
        &self.facts
    }

    /// The node annotations to publish.
    pub fn annotations(&self) -> BTreeMap<String, String> {
        node_annotations(&self.facts, &self.chassis_id, self.mgmt_mac)
    }

    /// Host addresses (for matching host-network endpoints).
    pub fn host_ips(&self) -> BTreeSet<Ipv4Addr> {
        std::iter::once(self.facts.gateway_ip.addr)
            .chain(self.facts.other_host_ips.iter().copied())
            .collect()
    }

    /// Re-reads the facts and brings flows, iptables and `ip` state to the rendering.
    pub fn sync(&mut self, services: &[HostService]) -> Result<SyncReport, Error> {
        self.facts = discover(&self.host, &self.cfg, true)?;
        let n = &self.facts;
        Ok(SyncReport {
            ip: sync_ip_state(&self.host, &host_net_state(n))?,
            iptables: sync_iptables(&self.host, &host_rules(n, services))?,
            flows: sync_bridge_flows(&self.host, &n.bridge, &bridge_flows(n))?,
        })
    }

    /// Writes the CNI config if its content differs (temp file + rename); MicroShift treats the
    /// file as the readiness signal, so call this after the first successful sync.
    pub fn write_cni_config(&self) -> Result<bool, Error> {
        let text = cni_config_text(&self.cfg.cni_conf_extra);
        let path = &self.cfg.cni_conf_path;
        if std::fs::read_to_string(path).ok().as_deref() == Some(text.as_str()) {
            return Ok(false);
        }
        let io = |e: std::io::Error| Error::Host {
            what: format!("CNI config {}", path.display()),
            reason: e.to_string(),
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, &text).map_err(io)?;
        std::fs::rename(&tmp, path).map_err(io)?;
        Ok(true)
    }
}

/// The CNI network config the agent writes (`ovn-kubernetes`, plugin `ovn-k8s-cni-overlay`).
pub fn cni_config_text(extra: &serde_json::Map<String, serde_json::Value>) -> String {
    let mut conf = serde_json::Map::new();
    conf.insert("cniVersion".into(), "1.0.0".into());
    conf.insert("name".into(), "ovn-kubernetes".into());
    conf.insert("type".into(), "ovn-k8s-cni-overlay".into());
    for (k, v) in extra {
        conf.insert(k.clone(), v.clone());
    }
    let mut text = serde_json::to_string(&conf).expect("JSON map serialises");
    text.push('\n');
    text
}

/// Reads the node facts from the host: bridge MAC, addresses, ofports and next hops. Without
/// `require_patch`, a missing patch port is recorded as ofport 0.
fn discover(host: &Host, cfg: &AgentConfig, require_patch: bool) -> Result<NodeFacts, Error> {
    let bridge = cfg.bridge.clone();
    let bridge_mac = ovs::interface_mac(host, &bridge)?;
    let addrs = host_addresses(host)?;
    let gateway_ip = addrs
        .iter()
        .find(|(dev, c)| *dev == bridge && valid_host_ip(c.addr))
        .map(|(_, c)| *c)
        .ok_or_else(|| Error::Host {
            what: format!("bridge {bridge}"),
            reason: "has no IPv4 address outside link-local and the masquerade subnet".into(),
        })?;
    let mgmt_ip = cfg.node_subnet.nth(2);
    let mut other_host_ips: Vec<Ipv4Addr> = addrs
        .iter()
        .map(|(_, c)| c.addr)
        .filter(|ip| valid_host_ip(*ip) && *ip != gateway_ip.addr && *ip != mgmt_ip)
        .collect();
    other_host_ips.sort();
    other_host_ips.dedup();
    let patch = format!("patch-{bridge}_{}-to-br-int", cfg.node_name);
    let patch_ofport = match ovs::ofport(host, &patch)? {
        Some(p) => p,
        None if !require_patch => 0,
        None => {
            return Err(Error::Host {
                what: format!("OVS interface {patch}"),
                reason: "has no ofport (ovn-controller has not created it)".into(),
            })
        }
    };
    let uplink = ovs::uplink(host, &bridge)?;
    let next_hops = if !cfg.next_hops.is_empty() {
        cfg.next_hops.clone()
    } else {
        let default_gw = host
            .run("ip", &["-4", "route", "show", "default", "dev", &bridge])?
            .split_whitespace()
            .skip_while(|w| *w != "via")
            .nth(1)
            .and_then(|w| w.parse().ok());
        match (uplink, default_gw) {
            (Uplink::Port(_), Some(gw)) => vec![gw],
            _ => vec![MASQ_NEXT_HOP_IP],
        }
    };
    Ok(NodeFacts {
        node_name: cfg.node_name.clone(),
        bridge,
        bridge_mac,
        gateway_ip,
        node_ip: cfg.node_ip,
        other_host_ips,
        patch_ofport,
        uplink,
        service_cidrs: cfg.service_cidrs.clone(),
        cluster_subnets: cfg.cluster_subnets.clone(),
        node_subnet: cfg.node_subnet,
        next_hops,
        mtu: cfg.mtu,
    })
}
