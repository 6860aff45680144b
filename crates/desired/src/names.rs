//! NB table names and the upstream naming scheme of ovn-kubernetes rows.

/// `Logical_Switch`.
pub const LOGICAL_SWITCH: &str = "Logical_Switch";
/// `Logical_Switch_Port`.
pub const LOGICAL_SWITCH_PORT: &str = "Logical_Switch_Port";
/// `Logical_Router`.
pub const LOGICAL_ROUTER: &str = "Logical_Router";
/// `Logical_Router_Port`.
pub const LOGICAL_ROUTER_PORT: &str = "Logical_Router_Port";
/// `Logical_Router_Static_Route`.
pub const STATIC_ROUTE: &str = "Logical_Router_Static_Route";
/// `Logical_Router_Policy`.
pub const POLICY: &str = "Logical_Router_Policy";
/// `NAT`.
pub const NAT: &str = "NAT";
/// `Gateway_Chassis`.
pub const GATEWAY_CHASSIS: &str = "Gateway_Chassis";
/// `Load_Balancer`.
pub const LOAD_BALANCER: &str = "Load_Balancer";
/// `Load_Balancer_Group`.
pub const LOAD_BALANCER_GROUP: &str = "Load_Balancer_Group";
/// `Port_Group`.
pub const PORT_GROUP: &str = "Port_Group";
/// `Meter`.
pub const METER: &str = "Meter";
/// `Meter_Band`.
pub const METER_BAND: &str = "Meter_Band";
/// `Copp`.
pub const COPP: &str = "Copp";

/// The distributed cluster router.
pub const CLUSTER_ROUTER: &str = "ovn_cluster_router";
/// The join switch.
pub const JOIN_SWITCH: &str = "join";
/// The load balancer group of cluster-wide service load balancers.
pub const CLUSTER_LB_GROUP: &str = "clusterLBGroup";
/// The port group of all management ports.
pub const CLUSTER_PORT_GROUP: &str = "clusterPortGroup";
/// The control-plane protection row of every router.
pub const COPP_NAME: &str = "ovnkube-default";
/// The meter every ACL names.
pub const ACL_LOGGING_METER: &str = "acl-logging";
/// The punted-packet kinds of the COPP, each with a `<kind>-rate-limiter` meter.
pub const COPP_PROTOCOLS: &[&str] = &[
    "arp",
    "arp-resolve",
    "bfd",
    "event-elb",
    "icmp4-error",
    "icmp6-error",
    "reject",
    "tcp-reset",
];
/// `external_ids` key marking service load balancers.
pub const LB_KIND_KEY: &str = "k8s.ovn.org/kind";
/// `external_ids` key naming the owning service (`<ns>/<name>`).
pub const LB_OWNER_KEY: &str = "k8s.ovn.org/owner";
/// Priority of the policies rerouting pod→own-node-host traffic to the management port.
pub const NODE_REROUTE_PRIORITY: i64 = 1004;

/// `<kind>-rate-limiter`: the COPP meter of one punted-packet kind.
pub fn rate_limiter(kind: &str) -> String {
    format!("{kind}-rate-limiter")
}
/// `GR_<node>`.
pub fn gateway_router(node: &str) -> String {
    format!("GR_{node}")
}
/// `ext_<node>`.
pub fn external_switch(node: &str) -> String {
    format!("ext_{node}")
}
/// `rtos-<node>`.
pub fn router_to_switch(node: &str) -> String {
    format!("rtos-{node}")
}
/// `stor-<node>`.
pub fn switch_to_router(node: &str) -> String {
    format!("stor-{node}")
}
/// `k8s-<node>` (the management port; upstream lower-cases the node name).
pub fn management_port(node: &str) -> String {
    format!("k8s-{}", node.to_lowercase())
}
/// `rtoj-<router>`.
pub fn router_to_join(router: &str) -> String {
    format!("rtoj-{router}")
}
/// `jtor-<router>`.
pub fn join_to_router(router: &str) -> String {
    format!("jtor-{router}")
}
/// `rtoe-GR_<node>`.
pub fn router_to_external(node: &str) -> String {
    format!("rtoe-{}", gateway_router(node))
}
/// `etor-GR_<node>`.
pub fn external_to_router(node: &str) -> String {
    format!("etor-{}", gateway_router(node))
}
/// `<namespace>_<pod>`: the pod's switch port (and OVS iface-id).
pub fn pod_port(namespace: &str, pod: &str) -> String {
    format!("{namespace}_{pod}")
}
/// The match of the 1004 reroute policy for one host address (no `/* node */` comment, as the seed).
pub fn node_reroute_match(node: &str, host_ip: std::net::Ipv4Addr) -> String {
    format!(
        "inport == \"{}\" && ip4.dst == {host_ip}",
        router_to_switch(node)
    )
}
/// The node a 1004 policy match belongs to (`inport == "rtos-<node>" && ...`).
pub fn node_of_reroute_match(m: &str) -> Option<&str> {
    m.strip_prefix("inport == \"rtos-")?
        .split_once('"')
        .map(|(n, _)| n)
}
