//! The review text of one node's host side, for `ovnkube-rs render`.

use k8s_openapi::api::core::v1::Node;
use ovnkube_desired::{Config, NodeInfo, ObjectError};

use crate::facts::{NodeFacts, Uplink, MASQ_NEXT_HOP_IP};
use crate::flows::{bridge_flows, render_flows};
use crate::ipstate::host_net_state;
use crate::iptables::host_rules;
use crate::services::HostService;

/// Everything the node agent would program on this node, as text: the owned iptables chains and
/// jumps (`iptables-save` style), the br-ex flows (`ovs-ofctl dump-flows` style), then routes,
/// neighbours, addresses, rules and sysctls.
pub fn render_node_text(n: &NodeFacts, services: &[HostService]) -> String {
    format!(
        "# node {node}: iptables (owned chains and the rules kept in built-in chains)\n{ipt}\
         # node {node}: ovs-ofctl dump-flows {br}\n{flows}\
         # node {node}: addresses, routes, neighbours, rules, sysctls\n{ip}",
        node = n.node_name,
        br = n.bridge,
        ipt = host_rules(n, services).save_text(),
        flows = render_flows(&bridge_flows(n)),
        ip = host_net_state(n).text(),
    )
}

/// Node facts for offline rendering, from a Node's annotations and the cluster configuration.
///
/// OpenFlow port numbers are not in the API: the rendering uses the seed's (`patch=2`, uplink
/// `1`) when the gateway's next hop is a real router (4.13 layout, NIC in br-ex) and `patch=1`
/// without an uplink when the next hop is the dummy `169.254.169.4` (4.14 layout). The node IP
/// is the Node's first `InternalIP`, else its first gateway address. `Ok(None)` when the node
/// has no gateway.
pub fn render_facts(node: &Node, cfg: &Config) -> Result<Option<NodeFacts>, ObjectError> {
    let info = NodeInfo::from_node(node, cfg)?;
    let Some(gw) = &info.gateway else {
        return Ok(None);
    };
    let bad = |reason: String| ObjectError::new("Node", info.name.clone(), reason);
    let gateway_ip = *gw
        .ips
        .first()
        .ok_or_else(|| bad("l3-gateway-config has no address".into()))?;
    let bridge_mac = gw
        .mac
        .parse()
        .map_err(|e: crate::Error| bad(e.to_string()))?;
    let node_ip = node
        .status
        .iter()
        .flat_map(|s| s.addresses.iter().flatten())
        .filter(|a| a.type_ == "InternalIP")
        .find_map(|a| a.address.parse().ok())
        .unwrap_or(gateway_ip.addr);
    let (patch_ofport, uplink) = if gw.next_hops == [MASQ_NEXT_HOP_IP] {
        (1, Uplink::None)
    } else {
        (2, Uplink::Port(1))
    };
    Ok(Some(NodeFacts {
        node_name: info.name.clone(),
        bridge: cfg.gateway_interface.clone(),
        bridge_mac,
        gateway_ip,
        node_ip,
        other_host_ips: info
            .host_addresses
            .iter()
            .copied()
            .filter(|ip| *ip != gateway_ip.addr)
            .collect(),
        patch_ofport,
        uplink,
        service_cidrs: cfg.service_cidrs.clone(),
        cluster_subnets: cfg.cluster_subnets.iter().map(|c| c.cidr).collect(),
        node_subnet: info.subnet,
        next_hops: gw.next_hops.clone(),
        mtu: cfg.mtu,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The seed node's full host side; the golden file is the review note placed next to the
    /// seed's own `iptables-save`, `dump-flows` and `ip route` excerpts.
    #[test]
    fn seed_node_renders_the_golden_host_side() {
        let nodeport = HostService::seed_nodeport();
        let text = render_node_text(&NodeFacts::seed(), &[nodeport]);
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/seed-node.txt");
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            std::fs::write(path, &text).unwrap();
        }
        let golden = std::fs::read_to_string(path).unwrap();
        assert_eq!(
            text, golden,
            "rendering changed; regenerate on purpose with UPDATE_GOLDEN=1"
        );
    }

    #[test]
    fn facts_from_a_seed_like_node_object() {
        let node: Node = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "microshift-dev", "annotations": {
                "k8s.ovn.org/node-subnets": "{\"default\":[\"10.42.0.0/24\"]}",
                "k8s.ovn.org/node-chassis-id": "275588ee-e349-4824-9d80-106bd275228f",
                "k8s.ovn.org/node-mgmt-port-mac-address": "76:3a:81:5a:05:d7",
                "k8s.ovn.org/node-gateway-router-lrp-ifaddr": "{\"ipv4\":\"100.64.0.2/16\"}",
                "k8s.ovn.org/host-addresses": "[\"10.44.0.0\",\"192.168.122.14\"]",
                "k8s.ovn.org/l3-gateway-config": "{\"default\":{\"mode\":\"local\",\"interface-id\":\"br-ex_microshift-dev\",\"mac-address\":\"0a:59:00:00:00:01\",\"ip-addresses\":[\"192.168.122.14/24\"],\"ip-address\":\"192.168.122.14/24\",\"next-hops\":[\"192.168.122.1\"],\"next-hop\":\"192.168.122.1\",\"node-port-enable\":\"true\",\"vlan-id\":\"0\"}}"
            }},
            "status": {"addresses": [{"type": "InternalIP", "address": "192.168.122.14"}]}
        }))
        .unwrap();
        let cfg = Config {
            mtu: 1500,
            ..Config::default()
        };
        assert_eq!(render_facts(&node, &cfg).unwrap(), Some(NodeFacts::seed()));
    }
}
