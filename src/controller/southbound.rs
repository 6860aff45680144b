//! The one thing ovn-kubernetes writes to the Southbound DB: a MAC_Binding per gateway router for
//! the dummy next hop 169.254.169.4 (`0a:58:a9:fe:a9:04`). The GR routes the masquerade subnet
//! and (MicroShift 4.13+) its default route through that address, which nothing answers ARP
//! for, so without the binding host→service return traffic would stop at an ARP request.
//!
//! ovn-northd creates the GR's Datapath_Binding some time after the NB rows appear, so the
//! binding is retried until the datapath exists (upstream fails its first node add on exactly
//! this race and retries 30 s later; here the SB replica wakes the task the moment it appears).

use std::collections::BTreeMap;
use std::time::Duration;

use ovnkube_desired::net::mac_from_ipv4;
use ovnkube_desired::{Config, NodeInfo};
use ovsdb::client::{Client, ClientConfig};
use ovsdb::monitor::{MonitorSpec, TableMonitor};
use ovsdb::ops::{Condition, Operation};
use ovsdb::{Atom, Datum, Row, Uuid};
use tracing::{debug, info, warn};

use super::state::ClusterView;

const DATAPATH: &str = "Datapath_Binding";
const MAC_BINDING: &str = "MAC_Binding";

/// The SB operations that make every gateway router's dummy next-hop binding right.
fn plan(sb: &ovsdb::replica::Replica, config: &Config, nodes: &[NodeInfo]) -> Vec<Operation> {
    let ip = config.dummy_next_hop_ip().to_string();
    let mac = mac_from_ipv4(config.dummy_next_hop_ip());
    let datapaths: BTreeMap<&str, Uuid> = sb
        .table(DATAPATH)
        .into_iter()
        .flat_map(|t| t.rows())
        .filter_map(|(u, r)| {
            let name = r.get("external_ids")?.get("name")?.as_str()?;
            Some((name, *u))
        })
        .collect();
    let mut ops = Vec::new();
    for node in nodes {
        let Some(gr) = node.gateway_router() else {
            continue;
        };
        let Some(datapath) = datapaths.get(gr.as_str()) else {
            continue; // northd has not created it yet
        };
        let port = format!("rtoe-{gr}");
        let existing = sb
            .table(MAC_BINDING)
            .into_iter()
            .flat_map(|t| t.rows())
            .find(|(_, r)| {
                r.get("logical_port")
                    .and_then(Datum::as_atom)
                    .and_then(Atom::as_str)
                    == Some(&port)
                    && r.get("ip").and_then(Datum::as_atom).and_then(Atom::as_str) == Some(&ip)
            });
        let want = Row::from([
            ("logical_port".to_owned(), Datum::scalar(port.as_str())),
            ("ip".to_owned(), Datum::scalar(ip.as_str())),
            ("mac".to_owned(), Datum::scalar(mac.as_str())),
            ("datapath".to_owned(), Datum::scalar(*datapath)),
        ]);
        match existing {
            None => ops.push(Operation::Insert {
                table: MAC_BINDING.into(),
                row: want,
                uuid_name: None,
            }),
            Some((u, cur)) => {
                let changed: Row = want
                    .into_iter()
                    .filter(|(c, v)| cur.get(c) != Some(v))
                    .collect();
                if !changed.is_empty() {
                    ops.push(Operation::Update {
                        table: MAC_BINDING.into(),
                        conditions: vec![Condition::uuid(*u)],
                        row: changed,
                    });
                }
            }
        }
    }
    ops
}

fn monitor_spec() -> MonitorSpec {
    let table = |cols: &[&str]| TableMonitor {
        columns: Some(cols.iter().map(|c| (*c).to_owned()).collect()),
        conditions: Vec::new(),
    };
    MonitorSpec {
        tables: Some(BTreeMap::from([
            (DATAPATH.to_owned(), table(&["external_ids"])),
            (
                MAC_BINDING.to_owned(),
                table(&["logical_port", "ip", "mac", "datapath"]),
            ),
        ])),
    }
}

/// Keeps the bindings right for as long as the process runs: on every SB change and every few
/// seconds (node changes are picked up on the next tick).
pub async fn run(mut sb_config: ClientConfig, config: Config, view: ClusterView) {
    sb_config.monitor = monitor_spec();
    let remotes = sb_config.remotes.join(",");
    let sb = loop {
        match Client::connect(sb_config.clone()).await {
            Ok(c) => break c,
            Err(e) => {
                warn!(%remotes, error = %e, "cannot reach the SB yet; retrying");
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
        }
    };
    info!(%remotes, "SB connected (gateway router next-hop bindings)");
    let mut changes = sb.subscribe();
    loop {
        let nodes: Vec<NodeInfo> = view
            .nodes
            .state()
            .iter()
            .filter_map(|n| NodeInfo::from_node(n, &config).ok())
            .collect();
        let ops = plan(&sb.replica(), &config, &nodes);
        if !ops.is_empty() {
            match sb.transact(ops).await {
                Ok(_) => debug!("SB next-hop bindings written"),
                Err(e) => warn!(error = %e, "writing SB next-hop bindings failed; retrying"),
            }
        }
        let _ = tokio::time::timeout(Duration::from_secs(3), changes.changed()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn sb_schema() -> Arc<ovsdb::schema::DatabaseSchema> {
        Arc::new(
            ovsdb::schema::DatabaseSchema::from_json_str(
                r#"{"name":"OVN_Southbound","version":"1","tables":{
                "Datapath_Binding":{"columns":{"external_ids":{"type":{"key":"string","value":"string","min":0,"max":"unlimited"}}},"isRoot":true},
                "MAC_Binding":{"columns":{"logical_port":{"type":"string"},"ip":{"type":"string"},"mac":{"type":"string"},
                  "datapath":{"type":{"key":{"type":"uuid","refTable":"Datapath_Binding"}}}},"isRoot":true}}}"#,
            )
            .unwrap(),
        )
    }

    fn node() -> NodeInfo {
        let yaml = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures/seed/cluster.yaml"
        ))
        .unwrap();
        let (snapshot, _, _) = ovnkube_desired::Snapshot::from_yaml(&yaml).unwrap();
        NodeInfo::from_node(&snapshot.nodes[0], &Config::default()).unwrap()
    }

    #[test]
    fn binding_waits_for_the_datapath_then_is_written_once() {
        let config = Config::default();
        let mut sb = ovsdb::replica::Replica::new(sb_schema(), vec![]);
        assert!(plan(&sb, &config, &[node()]).is_empty());
        let dp = Uuid::new_v4();
        sb.put(
            DATAPATH,
            dp,
            Row::from([(
                "external_ids".to_owned(),
                Datum::map([("name", "GR_microshift-dev")]),
            )]),
        );
        let ops = plan(&sb, &config, &[node()]);
        let [Operation::Insert { row, .. }] = ops.as_slice() else {
            panic!("{ops:?}");
        };
        assert_eq!(row["mac"], Datum::scalar("0a:58:a9:fe:a9:04"));
        assert_eq!(row["logical_port"], Datum::scalar("rtoe-GR_microshift-dev"));
        assert_eq!(row["ip"], Datum::scalar("169.254.169.4"));
        sb.put(MAC_BINDING, Uuid::new_v4(), row.clone());
        assert!(plan(&sb, &config, &[node()]).is_empty());
    }
}
