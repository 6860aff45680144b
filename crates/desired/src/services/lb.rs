//! Load_Balancer rows of one service, named and attached as the seed shows.
//!
//! Per service port, as upstream's `buildServiceLBConfigs`: the NodePort VIPs (on the node's
//! l3-gateway addresses, as the seed shows: not on every host address) are always per node;
//! external/LoadBalancer IPs are per node with ETP=Local, else added to the cluster IPs; the
//! cluster IPs are cluster-wide (`Service_<ns>/<name>_<PROTO>_cluster` in `clusterLBGroup`)
//! unless ITP=Local or the port has a host-network endpoint (outside every cluster subnet),
//! which makes them per node. NodePorts are never templates here: the seed writes literal
//! node-IP VIPs, and ovn-trace cannot expand templates.
//!
//! Per node: switch rules keep all endpoints (local ones for ITP=Local); router rules keep
//! local ones for ETP=Local and reach an endpoint that *is* the node's gateway address through
//! 169.254.169.2 (the GR's masquerade route to the host). Equal switch and router rules give
//! one `_node_router+switch_<node>` LB on both; otherwise `_node_switch_`, `_node_router_` and
//! `_node_local_router_` (ETP=Local with local endpoints, `skip_snat=true`).
//!
//! The seed's `default/kubernetes` contradicts itself: `ls-lb-list` shows the backend
//! 192.168.122.14:6443 while `list load_balancer` shows 10.44.0.0:6443 for a `_node_switch_`
//! LB, and the GR shows a `_node_router+switch_` LB with 10.44.0.0:6443. These are two
//! snapshots. MicroShift's apiserver endpoint is 10.44.0.0 (a host address, not the gateway
//! address), so both rule sets are equal and one `_node_router+switch_` LB with 10.44.0.0:6443
//! serves switch and GR, exactly as the seed's GR listing. With the node IP as endpoint, the
//! same rules give the other snapshot: `_node_switch_` → 192.168.122.14:6443 (the seed's
//! `ls-lb-list`) and `_node_router_` → 169.254.169.2:6443. Both kinds are tested, and so is
//! MicroShift 4.14's layout, where 10.44.0.0 *is* the gateway address and the GR reaches the
//! apiserver through 169.254.169.2.
//!
//! Options: `event=false`, `reject=true`, `skip_snat`, plus `affinity_timeout` for ClientIP
//! affinity. The seed puts `hairpin_snat_ip` and `neighbor_responder=none` only on the GR copy
//! of the host-backed `kubernetes` service (not on `dns-default`'s), so those two go on the
//! router-attached LBs of services with a host-network endpoint.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use k8s_openapi::api::discovery::v1::EndpointSlice;
use ovsdb::Datum;

use super::endpoints::{port_endpoints, PortEndpoints, SERVICE_NAME_LABEL};
use super::{Protocol, ServiceInfo};
use crate::config::Config;
use crate::error::ObjectError;
use crate::model::{row, smap, text, Desired, NamedRef, OwnerKey, RowId};
use crate::names::*;
use crate::node::NodeInfo;

/// A VIP of a config: literal, or "every gateway address of the node" (NodePort).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Vip {
    Node,
    Ip(Ipv4Addr),
}

/// One abstract LB config of a service port.
#[derive(Debug, Clone)]
struct LbConfig {
    protocol: Protocol,
    vips: Vec<Vip>,
    port: u16,
    eps: PortEndpoints,
    etp_local: bool,
    itp_local: bool,
    node_port: bool,
}

/// VIP `ip:port` → comma-joined targets (empty string: no endpoints, reject).
type Rules = BTreeMap<String, String>;

fn targets<'a>(
    ips: impl Iterator<Item = &'a Ipv4Addr>,
    port: u16,
    rewrite: impl Fn(Ipv4Addr) -> Ipv4Addr,
) -> String {
    let mut v: Vec<Ipv4Addr> = ips.map(|ip| rewrite(*ip)).collect();
    v.sort();
    v.dedup();
    v.iter()
        .map(|ip| format!("{ip}:{port}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// The rows of one service: its load balancers and their attachments to `clusterLBGroup`,
/// node switches and gateway routers. `slices` may hold other services' slices; only this
/// service's are used. `nodes` are the nodes with valid annotations.
pub fn service_rows(
    config: &Config,
    svc: &ServiceInfo,
    slices: &[EndpointSlice],
    nodes: &[NodeInfo],
) -> Result<Desired, ObjectError> {
    let own: Vec<&EndpointSlice> = slices
        .iter()
        .filter(|s| {
            s.metadata.namespace.as_deref().unwrap_or("default") == svc.namespace
                && s.metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get(SERVICE_NAME_LABEL))
                    == Some(&svc.name)
        })
        .collect();
    let (cluster, per_node) = build_configs(config, svc, &own)?;
    let host_backed = cluster
        .iter()
        .chain(&per_node)
        .any(|c| c.eps.ips.iter().any(|ip| !config.in_cluster_subnets(*ip)));
    let owner = OwnerKey::Service(svc.namespace.as_str().into(), svc.name.as_str().into());
    let lbs = LbWriter {
        config,
        svc,
        owner: &owner,
        host_backed,
    };
    let mut d = Desired::default();
    for proto in [Protocol::Tcp, Protocol::Udp, Protocol::Sctp] {
        let mut rules = Rules::new();
        for c in cluster.iter().filter(|c| c.protocol == proto) {
            let t = targets(c.eps.ips.iter(), c.eps.target_port, |ip| ip);
            for v in &c.vips {
                if let Vip::Ip(ip) = v {
                    rules.insert(format!("{ip}:{}", c.port), t.clone());
                }
            }
        }
        if !rules.is_empty() {
            let name = lbs.add(&mut d, proto, "cluster", rules, false, false);
            d.link(
                &owner,
                NamedRef::new(LOAD_BALANCER_GROUP, CLUSTER_LB_GROUP),
                "load_balancer",
                name,
            );
        }
        let mut sorted_nodes: Vec<&NodeInfo> = nodes.iter().collect();
        sorted_nodes.sort_by(|a, b| a.name.cmp(&b.name));
        for node in sorted_nodes {
            let configs: Vec<&LbConfig> = per_node.iter().filter(|c| c.protocol == proto).collect();
            if !configs.is_empty() {
                lbs.add_node_lbs(&mut d, proto, node, &configs);
            }
        }
    }
    Ok(d)
}

fn build_configs(
    config: &Config,
    svc: &ServiceInfo,
    slices: &[&EndpointSlice],
) -> Result<(Vec<LbConfig>, Vec<LbConfig>), ObjectError> {
    let (mut cluster, mut per_node) = (Vec::new(), Vec::new());
    for p in &svc.ports {
        let eps = port_endpoints(svc, p, slices)?;
        let base = LbConfig {
            protocol: p.protocol,
            vips: Vec::new(),
            port: p.port,
            eps,
            etp_local: false,
            itp_local: false,
            node_port: false,
        };
        if let Some(np) = p.node_port {
            per_node.push(LbConfig {
                vips: vec![Vip::Node],
                port: np,
                etp_local: svc.etp_local,
                node_port: true,
                ..base.clone()
            });
        }
        let mut cluster_vips: Vec<Vip> = svc.cluster_ips.iter().copied().map(Vip::Ip).collect();
        if !svc.external_ips.is_empty() {
            let ext: Vec<Vip> = svc.external_ips.iter().copied().map(Vip::Ip).collect();
            if svc.etp_local {
                per_node.push(LbConfig {
                    vips: ext,
                    etp_local: true,
                    ..base.clone()
                });
            } else {
                cluster_vips.extend(ext);
            }
        }
        let host_eps = base
            .eps
            .ips
            .iter()
            .any(|ip| !config.in_cluster_subnets(*ip));
        let cfg = LbConfig {
            vips: cluster_vips,
            itp_local: svc.itp_local,
            ..base
        };
        if svc.itp_local || host_eps {
            per_node.push(cfg);
        } else {
            cluster.push(cfg);
        }
    }
    Ok((cluster, per_node))
}

struct LbWriter<'a> {
    config: &'a Config,
    svc: &'a ServiceInfo,
    owner: &'a OwnerKey,
    host_backed: bool,
}

impl LbWriter<'_> {
    /// Adds one LB row and returns its identity.
    fn add(
        &self,
        d: &mut Desired,
        proto: Protocol,
        scope: &str,
        rules: Rules,
        on_router: bool,
        skip_snat: bool,
    ) -> RowId {
        let name = format!(
            "Service_{}/{}_{}_{scope}",
            self.svc.namespace,
            self.svc.name,
            proto.upper()
        );
        let mut options = vec![
            ("event", "false".to_owned()),
            ("reject", "true".into()),
            ("skip_snat", skip_snat.to_string()),
        ];
        if let Some(t) = self.svc.affinity_timeout {
            options.push(("affinity_timeout", t.to_string()));
        }
        if on_router && self.host_backed {
            options.push((
                "hairpin_snat_ip",
                format!("{} fd69::5", self.config.hairpin_masquerade_ip()),
            ));
            options.push(("neighbor_responder", "none".into()));
        }
        d.named(
            self.owner,
            LOAD_BALANCER,
            &name,
            row([
                ("protocol", text(proto.lower())),
                (
                    "external_ids",
                    smap([
                        (LB_KIND_KEY, "Service".to_owned()),
                        (
                            LB_OWNER_KEY,
                            format!("{}/{}", self.svc.namespace, self.svc.name),
                        ),
                    ]),
                ),
                ("options", smap(options)),
                ("vips", Datum::map(rules)),
            ]),
        );
        RowId::Named(NamedRef::new(LOAD_BALANCER, name))
    }

    fn add_node_lbs(
        &self,
        d: &mut Desired,
        proto: Protocol,
        node: &NodeInfo,
        configs: &[&LbConfig],
    ) {
        let gw_ips = node.gateway_ips();
        let node_port_vips: Vec<Ipv4Addr> = match &node.gateway {
            Some(g) if g.node_port_enable => gw_ips.clone(),
            _ => Vec::new(),
        };
        let masq = self.config.host_masquerade_ip();
        let (mut switch, mut router, mut local_router) = (Rules::new(), Rules::new(), Rules::new());
        for c in configs {
            let local: Vec<&Ipv4Addr> = c.eps.ips.iter().filter(|ip| node.is_local(**ip)).collect();
            let switch_t = if c.itp_local {
                targets(local.iter().copied(), c.eps.target_port, |ip| ip)
            } else {
                targets(c.eps.ips.iter(), c.eps.target_port, |ip| ip)
            };
            let to_host = |ip: Ipv4Addr| if gw_ips.contains(&ip) { masq } else { ip };
            let router_t = if c.etp_local {
                targets(local.iter().copied(), c.eps.target_port, to_host)
            } else {
                targets(c.eps.ips.iter(), c.eps.target_port, to_host)
            };
            let vips: Vec<Ipv4Addr> = c
                .vips
                .iter()
                .flat_map(|v| match v {
                    Vip::Node => node_port_vips.clone(),
                    Vip::Ip(ip) => vec![*ip],
                })
                .collect();
            for vip in vips {
                let key = format!("{vip}:{}", c.port);
                switch.insert(key.clone(), switch_t.clone());
                if c.etp_local && !router_t.is_empty() {
                    local_router.insert(key, router_t.clone());
                } else {
                    router.insert(key, router_t.clone());
                }
            }
            if c.node_port && c.etp_local {
                let local_t = targets(local.iter().copied(), c.eps.target_port, |ip| ip);
                switch.insert(
                    format!("{}:{}", self.config.etp_local_masquerade_ip(), c.port),
                    local_t,
                );
            }
        }
        let n = &node.name;
        let switch_ref = NamedRef::new(LOGICAL_SWITCH, n.clone());
        let gr_ref = node
            .gateway_router()
            .map(|gr| NamedRef::new(LOGICAL_ROUTER, gr));
        match &gr_ref {
            Some(gr) if switch == router && local_router.is_empty() && !switch.is_empty() => {
                let id = self.add(
                    d,
                    proto,
                    &format!("node_router+switch_{n}"),
                    switch,
                    true,
                    false,
                );
                d.link(self.owner, switch_ref, "load_balancer", id.clone());
                d.link(self.owner, gr.clone(), "load_balancer", id);
            }
            _ => {
                if !switch.is_empty() {
                    let id = self.add(d, proto, &format!("node_switch_{n}"), switch, false, false);
                    d.link(self.owner, switch_ref, "load_balancer", id);
                }
                if let Some(gr) = gr_ref {
                    if !router.is_empty() {
                        let id =
                            self.add(d, proto, &format!("node_router_{n}"), router, true, false);
                        d.link(self.owner, gr.clone(), "load_balancer", id);
                    }
                    if !local_router.is_empty() {
                        let id = self.add(
                            d,
                            proto,
                            &format!("node_local_router_{n}"),
                            local_router,
                            true,
                            true,
                        );
                        d.link(self.owner, gr, "load_balancer", id);
                    }
                }
            }
        }
    }
}
