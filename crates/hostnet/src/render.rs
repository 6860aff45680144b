//! The review text of one node's host side, for `ovnkube-rs render`.

use crate::facts::NodeFacts;
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
