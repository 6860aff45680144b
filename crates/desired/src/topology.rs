//! Cluster-wide and per-node topology rows.

use ovsdb::Datum;

use crate::config::{Config, GatewayMode};
use crate::model::{row, smap, sset, text, Desired, NamedRef, OwnerKey, RowId};
use crate::names::*;
use crate::net::mac_from_ipv4;
use crate::node::NodeInfo;

fn named(table: &'static str, name: &str) -> RowId {
    RowId::Named(NamedRef::new(table, name))
}

/// The rows every cluster has once: `ovn_cluster_router` with its join port, the `join` switch,
/// the cluster LB group and the management port group.
///
/// Also the control-plane protection upstream gives every router: one `<kind>-rate-limiter`
/// meter per punted-packet kind (drop above 25 pps) gathered in the Copp `ovnkube-default`,
/// and the `acl-logging` meter. Upstream shares one Meter_Band among the rate limiters; here
/// each meter has its own identical band (a shared one is matched too, so taking over an
/// upstream NB changes nothing).
///
/// Not produced (documented gaps): the ACLs upstream hangs on the port group
/// (hairpin/multicast), and NB_Global options, of which upstream only writes the e2e timestamp
/// heartbeat (a runtime metric, not desired state).
pub fn cluster_rows(config: &Config) -> Desired {
    let owner = OwnerKey::Cluster;
    let mut d = Desired::default();
    let options = if config.enable_multicast {
        // Upstream replaces the whole map when multicast is on.
        smap([("mcast_relay", "true")])
    } else {
        smap([("always_learn_from_arp_request", "false")])
    };
    d.named(
        &owner,
        LOGICAL_ROUTER,
        CLUSTER_ROUTER,
        row([
            ("options", options),
            (
                "external_ids",
                smap([("k8s-cluster-router", "yes"), ("k8s-ovn-topo-version", "5")]),
            ),
        ]),
    );
    let join_ip = config.cluster_router_join_ip();
    let rtoj = router_to_join(CLUSTER_ROUTER);
    d.named(
        &owner,
        LOGICAL_ROUTER_PORT,
        &rtoj,
        row([
            ("mac", text(mac_from_ipv4(join_ip))),
            (
                "networks",
                sset([format!("{join_ip}/{}", config.join_subnet.len)]),
            ),
        ]),
    );
    d.link(
        &owner,
        NamedRef::new(LOGICAL_ROUTER, CLUSTER_ROUTER),
        "ports",
        named(LOGICAL_ROUTER_PORT, &rtoj),
    );
    d.named(&owner, LOGICAL_SWITCH, JOIN_SWITCH, row([]));
    router_type_port(
        &mut d,
        &owner,
        JOIN_SWITCH,
        &join_to_router(CLUSTER_ROUTER),
        &rtoj,
        "router",
    );
    d.named(&owner, LOAD_BALANCER_GROUP, CLUSTER_LB_GROUP, row([]));
    copp_rows(&mut d, &owner, config);
    d.link(
        &owner,
        NamedRef::new(LOGICAL_ROUTER, CLUSTER_ROUTER),
        "copp",
        named(COPP, COPP_NAME),
    );
    d.named(
        &owner,
        PORT_GROUP,
        CLUSTER_PORT_GROUP,
        row([("external_ids", smap([("name", CLUSTER_PORT_GROUP)]))]),
    );
    d
}

/// Adds a meter dropping above `rate` packets per second, with its band.
fn meter(d: &mut Desired, owner: &OwnerKey, name: &str, rate: u32) {
    d.named(
        owner,
        METER,
        name,
        row([("fair", Datum::scalar(true)), ("unit", text("pktps"))]),
    );
    d.child(
        owner,
        METER_BAND,
        NamedRef::new(METER, name),
        "bands",
        &["action", "rate"],
        row([
            ("action", text("drop")),
            ("rate", Datum::scalar(i64::from(rate))),
        ]),
    );
}

/// The COPP meters, the Copp row naming them, and the ACL logging meter.
fn copp_rows(d: &mut Desired, owner: &OwnerKey, config: &Config) {
    let mut meters = Vec::new();
    for kind in COPP_PROTOCOLS {
        let name = rate_limiter(kind);
        meter(d, owner, &name, 25);
        meters.push(((*kind).to_owned(), name));
    }
    d.named(owner, COPP, COPP_NAME, row([("meters", smap(meters))]));
    meter(d, owner, ACL_LOGGING_METER, config.acl_logging_rate_limit);
}

/// Adds a `type=router` switch port pointing at `router_port`, on `switch`.
fn router_type_port(
    d: &mut Desired,
    owner: &OwnerKey,
    switch: &str,
    port: &str,
    router_port: &str,
    addresses: &str,
) {
    d.named(
        owner,
        LOGICAL_SWITCH_PORT,
        port,
        row([
            ("type", text("router")),
            ("addresses", sset([addresses])),
            ("options", smap([("router-port", router_port)])),
        ]),
    );
    d.link(
        owner,
        NamedRef::new(LOGICAL_SWITCH, switch),
        "ports",
        named(LOGICAL_SWITCH_PORT, port),
    );
}

/// Adds a static route of `router`.
fn route(
    d: &mut Desired,
    owner: &OwnerKey,
    router: &str,
    prefix: &str,
    nexthop: &str,
    policy: Option<&str>,
    output_port: Option<&str>,
) {
    d.child(
        owner,
        STATIC_ROUTE,
        NamedRef::new(LOGICAL_ROUTER, router),
        "static_routes",
        &["ip_prefix", "nexthop", "policy", "output_port"],
        row([
            ("ip_prefix", text(prefix)),
            ("nexthop", text(nexthop)),
            ("policy", Datum::optional(policy)),
            ("output_port", Datum::optional(output_port)),
        ]),
    );
}

/// Adds an SNAT row of `router` (`options:stateless=false`, as upstream's BuildSNAT).
pub(crate) fn snat(
    d: &mut Desired,
    owner: &OwnerKey,
    router: &str,
    external_ip: &str,
    logical_ip: &str,
) {
    d.child(
        owner,
        NAT,
        NamedRef::new(LOGICAL_ROUTER, router),
        "nat",
        &["type", "external_ip", "logical_ip"],
        row([
            ("type", text("snat")),
            ("external_ip", text(external_ip)),
            ("logical_ip", text(logical_ip)),
            ("options", smap([("stateless", "false")])),
        ]),
    );
}

/// The rows of one node: its switch with `stor-`/`k8s-` ports, `rtos-` on the cluster router,
/// the routes and 1004 policies of the node on the cluster router, and (unless the node's
/// gateway is disabled) `GR_<node>`, its join and external ports, `ext_<node>` and the GR's
/// routes and NAT.
pub fn node_rows(config: &Config, node: &NodeInfo) -> Desired {
    let owner = OwnerKey::Node(node.name.as_str().into());
    let n = node.name.as_str();
    let mut d = Desired::default();
    let gw_ip = node.gateway_ip();
    let mgmt_ip = node.mgmt_ip();
    let rtos_mac = mac_from_ipv4(gw_ip);

    // The node switch. `exclude_ips` is absent in upstream's steady state (the k8s- port exists).
    let mut other_config = vec![("subnet".to_owned(), node.subnet.to_string())];
    if config.enable_multicast {
        other_config.extend([
            ("mcast_snoop".into(), "true".into()),
            ("mcast_querier".into(), "true".into()),
            ("mcast_eth_src".into(), rtos_mac.clone()),
            ("mcast_ip4_src".into(), gw_ip.to_string()),
        ]);
    }
    d.named(
        &owner,
        LOGICAL_SWITCH,
        n,
        row([("other_config", smap(other_config))]),
    );
    d.link(
        &owner,
        NamedRef::new(LOGICAL_SWITCH, n),
        "load_balancer_group",
        named(LOAD_BALANCER_GROUP, CLUSTER_LB_GROUP),
    );
    let rtos = router_to_switch(n);
    router_type_port(&mut d, &owner, n, &switch_to_router(n), &rtos, "router");
    let mgmt = management_port(n);
    d.named(
        &owner,
        LOGICAL_SWITCH_PORT,
        &mgmt,
        row([("addresses", sset([format!("{} {mgmt_ip}", node.mgmt_mac)]))]),
    );
    d.link(
        &owner,
        NamedRef::new(LOGICAL_SWITCH, n),
        "ports",
        named(LOGICAL_SWITCH_PORT, &mgmt),
    );
    d.link(
        &owner,
        NamedRef::new(PORT_GROUP, CLUSTER_PORT_GROUP),
        "ports",
        named(LOGICAL_SWITCH_PORT, &mgmt),
    );

    // rtos-<node>, pinned to the node's chassis like upstream (avoids flood-fill).
    d.named(
        &owner,
        LOGICAL_ROUTER_PORT,
        &rtos,
        row([
            ("mac", text(rtos_mac)),
            ("networks", sset([node.subnet.nth_with_len(1).to_string()])),
        ]),
    );
    d.link(
        &owner,
        NamedRef::new(LOGICAL_ROUTER, CLUSTER_ROUTER),
        "ports",
        named(LOGICAL_ROUTER_PORT, &rtos),
    );
    let gc = format!("{rtos}-{}", node.chassis_id);
    d.named(
        &owner,
        GATEWAY_CHASSIS,
        &gc,
        row([
            ("chassis_name", text(node.chassis_id.clone())),
            ("priority", Datum::scalar(1i64)),
        ]),
    );
    d.link(
        &owner,
        NamedRef::new(LOGICAL_ROUTER_PORT, rtos.clone()),
        "gateway_chassis",
        named(GATEWAY_CHASSIS, &gc),
    );

    // Pod egress: via the management port in local mode, via the GR in shared mode.
    let join_ip = node.join_ip.addr.to_string();
    let egress_next_hop = match config.gateway_mode {
        GatewayMode::Local => mgmt_ip.to_string(),
        GatewayMode::Shared => join_ip.clone(),
    };
    route(
        &mut d,
        &owner,
        CLUSTER_ROUTER,
        &node.subnet.to_string(),
        &egress_next_hop,
        Some("src-ip"),
        None,
    );
    // Replies to the GR's join IP (the GR force-SNATs load-balanced traffic to it) must go
    // back to the GR: without this /32 the node subnet's src-ip /24 outranks the join switch's
    // connected /16 and, in local mode, sends them out the management port, where the switch
    // drops TCP as ct.inv. Upstream writes it in both modes; the seed's listing lacks it.
    route(
        &mut d,
        &owner,
        CLUSTER_ROUTER,
        &join_ip,
        &join_ip,
        None,
        None,
    );
    // Pod → own host goes to the management port: the l3-gateway addresses, plus every host
    // address in shared mode (upstream parses host-addresses only there).
    let mut reroute_ips = node.gateway_ips();
    if config.gateway_mode == GatewayMode::Shared {
        reroute_ips.extend(node.host_addresses.iter().copied());
    }
    reroute_ips.sort();
    reroute_ips.dedup();
    for ip in reroute_ips {
        d.child(
            &owner,
            POLICY,
            NamedRef::new(LOGICAL_ROUTER, CLUSTER_ROUTER),
            "policies",
            &["priority", "match"],
            row([
                ("priority", Datum::scalar(NODE_REROUTE_PRIORITY)),
                ("match", text(node_reroute_match(n, ip))),
                ("action", text("reroute")),
                ("nexthops", sset([mgmt_ip.to_string()])),
            ]),
        );
    }

    if let Some(gw) = &node.gateway {
        gateway_rows(&mut d, config, node, gw, &owner);
    }
    d
}

fn gateway_rows(
    d: &mut Desired,
    config: &Config,
    node: &NodeInfo,
    gw: &crate::node::GatewayInfo,
    owner: &OwnerKey,
) {
    let n = node.name.as_str();
    let gr = gateway_router(n);
    let node_ip = gw.ips[0].addr.to_string();
    let physical_ips: Vec<String> = gw.ips.iter().map(|c| c.addr.to_string()).collect();
    d.named(
        owner,
        LOGICAL_ROUTER,
        &gr,
        row([
            (
                "options",
                smap([
                    ("always_learn_from_arp_request", "false".to_owned()),
                    ("chassis", node.chassis_id.clone()),
                    ("dynamic_neigh_routers", "true".into()),
                    ("lb_force_snat_ip", "router_ip".into()),
                    ("snat-ct-zone", "0".into()),
                ]),
            ),
            (
                "external_ids",
                smap([
                    ("physical_ip", node_ip.clone()),
                    ("physical_ips", physical_ips.join(",")),
                ]),
            ),
        ]),
    );
    d.link(
        owner,
        NamedRef::new(LOGICAL_ROUTER, gr.clone()),
        "load_balancer_group",
        named(LOAD_BALANCER_GROUP, CLUSTER_LB_GROUP),
    );
    d.link(
        owner,
        NamedRef::new(LOGICAL_ROUTER, gr.clone()),
        "copp",
        named(COPP, COPP_NAME),
    );

    // Join side.
    let rtoj = router_to_join(&gr);
    d.named(
        owner,
        LOGICAL_ROUTER_PORT,
        &rtoj,
        row([
            ("mac", text(mac_from_ipv4(node.join_ip.addr))),
            ("networks", sset([node.join_ip.to_string()])),
            ("options", smap([("gateway_mtu", config.mtu.to_string())])),
        ]),
    );
    d.link(
        owner,
        NamedRef::new(LOGICAL_ROUTER, gr.clone()),
        "ports",
        named(LOGICAL_ROUTER_PORT, &rtoj),
    );
    router_type_port(d, owner, JOIN_SWITCH, &join_to_router(&gr), &rtoj, "router");

    // External side.
    let rtoe = router_to_external(n);
    d.named(
        owner,
        LOGICAL_ROUTER_PORT,
        &rtoe,
        row([
            ("mac", text(gw.mac.clone())),
            ("networks", sset(gw.ips.iter().map(ToString::to_string))),
            ("external_ids", smap([("gateway-physical-ip", "yes")])),
        ]),
    );
    d.link(
        owner,
        NamedRef::new(LOGICAL_ROUTER, gr.clone()),
        "ports",
        named(LOGICAL_ROUTER_PORT, &rtoe),
    );
    let ext = external_switch(n);
    d.named(owner, LOGICAL_SWITCH, &ext, row([]));
    let mut localnet = row([
        ("type", text("localnet")),
        ("addresses", sset(["unknown"])),
        ("options", smap([("network_name", "physnet")])),
    ]);
    localnet.insert("tag_request", Datum::optional(gw.vlan.map(i64::from)));
    d.named(owner, LOGICAL_SWITCH_PORT, &gw.interface_id, localnet);
    d.link(
        owner,
        NamedRef::new(LOGICAL_SWITCH, ext.clone()),
        "ports",
        named(LOGICAL_SWITCH_PORT, &gw.interface_id),
    );
    router_type_port(d, owner, &ext, &external_to_router(n), &rtoe, &gw.mac);

    // GR routes: return path to pods, masquerade return path to the host, default route.
    for cs in &config.cluster_subnets {
        route(
            d,
            owner,
            &gr,
            &cs.cidr.to_string(),
            &config.cluster_router_join_ip().to_string(),
            None,
            None,
        );
    }
    route(
        d,
        owner,
        &gr,
        &config.masquerade_subnet.to_string(),
        &config.dummy_next_hop_ip().to_string(),
        None,
        Some(&rtoe),
    );
    for hop in &gw.next_hops {
        route(
            d,
            owner,
            &gr,
            "0.0.0.0/0",
            &hop.to_string(),
            None,
            Some(&rtoe),
        );
    }

    // One SNAT per cluster CIDR, unless per-pod SNATs are wanted (--disable-snat-multiple-gws).
    if !config.disable_snat_multiple_gws {
        for cs in &config.cluster_subnets {
            snat(d, owner, &gr, &node_ip, &cs.cidr.to_string());
        }
    }
}
