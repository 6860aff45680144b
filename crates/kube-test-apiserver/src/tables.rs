//! Server-side printing: `meta.k8s.io/v1` Tables, which `kubectl get` asks for
//! (`Accept: application/json;as=Table;...`) to print the same columns as a real cluster.

use serde_json::{json, Value};

use crate::meta::age;
use crate::resources::ResourceType;

/// Whether an Accept header asks for a Table.
pub fn wants_table(accept: &str) -> bool {
    accept
        .split(',')
        .next()
        .is_some_and(|first| first.contains("as=Table"))
}

/// A column: its name and priority (1 = only with `-o wide`).
type Column = (&'static str, u8);

fn columns(kind: &str) -> &'static [Column] {
    match kind {
        "Pod" => &[
            ("Name", 0),
            ("Ready", 0),
            ("Status", 0),
            ("Restarts", 0),
            ("Age", 0),
            ("IP", 1),
            ("Node", 1),
        ],
        "Service" => &[
            ("Name", 0),
            ("Type", 0),
            ("Cluster-IP", 0),
            ("External-IP", 0),
            ("Port(s)", 0),
            ("Age", 0),
            ("Selector", 1),
        ],
        "Node" => &[
            ("Name", 0),
            ("Status", 0),
            ("Roles", 0),
            ("Age", 0),
            ("Version", 0),
            ("Internal-IP", 1),
        ],
        "Namespace" => &[("Name", 0), ("Status", 0), ("Age", 0)],
        "EndpointSlice" => &[
            ("Name", 0),
            ("AddressType", 0),
            ("Ports", 0),
            ("Endpoints", 0),
            ("Age", 0),
        ],
        "Endpoints" => &[("Name", 0), ("Endpoints", 0), ("Age", 0)],
        "Lease" => &[("Name", 0), ("Holder", 0), ("Age", 0)],
        "Event" => &[
            ("Last Seen", 0),
            ("Type", 0),
            ("Reason", 0),
            ("Object", 0),
            ("Message", 0),
        ],
        _ => &[("Name", 0), ("Age", 0)],
    }
}

fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn or_none(items: Vec<String>) -> String {
    if items.is_empty() {
        "<none>".to_string()
    } else {
        items.join(",")
    }
}

fn array(value: &Value) -> &[Value] {
    value.as_array().map_or(&[], Vec::as_slice)
}

fn service_ports(svc: &Value) -> String {
    let ports = array(&svc["spec"]["ports"])
        .iter()
        .map(|p| {
            let protocol = p["protocol"].as_str().unwrap_or("TCP");
            match p["nodePort"].as_u64() {
                Some(node_port) => format!("{}:{node_port}/{protocol}", text(&p["port"])),
                None => format!("{}/{protocol}", text(&p["port"])),
            }
        })
        .collect();
    or_none(ports)
}

fn external_ips(svc: &Value) -> String {
    let mut ips: Vec<String> = array(&svc["status"]["loadBalancer"]["ingress"])
        .iter()
        .map(|i| text(&i["ip"]))
        .collect();
    ips.extend(array(&svc["spec"]["externalIPs"]).iter().map(text));
    match svc["spec"]["type"].as_str() {
        Some("LoadBalancer") if ips.is_empty() => "<pending>".to_string(),
        Some("ExternalName") => text(&svc["spec"]["externalName"]),
        _ => or_none(ips),
    }
}

fn selector(map: &Value) -> String {
    let pairs = map
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", text(v)))
        .collect();
    or_none(pairs)
}

fn node_status(node: &Value) -> String {
    let ready = array(&node["status"]["conditions"])
        .iter()
        .find(|c| c["type"] == "Ready")
        .map(|c| c["status"].as_str().unwrap_or_default().to_string());
    match ready.as_deref() {
        Some("True") => "Ready".to_string(),
        Some("False") => "NotReady".to_string(),
        _ => "Unknown".to_string(),
    }
}

fn node_roles(node: &Value) -> String {
    let roles = node["metadata"]["labels"]
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(k, _)| k.strip_prefix("node-role.kubernetes.io/"))
        .map(str::to_string)
        .collect();
    or_none(roles)
}

fn node_address(node: &Value, kind: &str) -> String {
    array(&node["status"]["addresses"])
        .iter()
        .find(|a| a["type"] == kind)
        .map_or("<none>".to_string(), |a| text(&a["address"]))
}

fn pod_ready(pod: &Value) -> String {
    let total = array(&pod["spec"]["containers"]).len();
    let ready = array(&pod["status"]["containerStatuses"])
        .iter()
        .filter(|s| s["ready"] == true)
        .count();
    format!("{ready}/{total}")
}

fn pod_restarts(pod: &Value) -> i64 {
    array(&pod["status"]["containerStatuses"])
        .iter()
        .filter_map(|s| s["restartCount"].as_i64())
        .sum()
}

fn slice_endpoints(slice: &Value) -> String {
    let addresses: Vec<String> = array(&slice["endpoints"])
        .iter()
        .flat_map(|e| array(&e["addresses"]).iter().map(text))
        .collect();
    or_none(addresses)
}

fn endpoints_addresses(ep: &Value) -> String {
    let mut out = Vec::new();
    for subset in array(&ep["subsets"]) {
        for address in array(&subset["addresses"]) {
            for port in array(&subset["ports"]) {
                out.push(format!("{}:{}", text(&address["ip"]), text(&port["port"])));
            }
        }
    }
    or_none(out)
}

/// The cells of one object's row, in [`columns`] order.
fn cells(kind: &str, obj: &Value) -> Vec<Value> {
    let name = json!(obj["metadata"]["name"]);
    let created = age(obj["metadata"]["creationTimestamp"].as_str());
    let or_dash = |v: &Value| {
        if v.is_null() {
            json!("<none>")
        } else {
            json!(text(v))
        }
    };
    match kind {
        "Pod" => vec![
            name,
            json!(pod_ready(obj)),
            json!(obj["status"]["phase"].as_str().unwrap_or("Pending")),
            json!(pod_restarts(obj)),
            json!(created),
            or_dash(&obj["status"]["podIP"]),
            or_dash(&obj["spec"]["nodeName"]),
        ],
        "Service" => vec![
            name,
            json!(text(&obj["spec"]["type"])),
            or_dash(&obj["spec"]["clusterIP"]),
            json!(external_ips(obj)),
            json!(service_ports(obj)),
            json!(created),
            json!(selector(&obj["spec"]["selector"])),
        ],
        "Node" => vec![
            name,
            json!(node_status(obj)),
            json!(node_roles(obj)),
            json!(created),
            json!(text(&obj["status"]["nodeInfo"]["kubeletVersion"])),
            json!(node_address(obj, "InternalIP")),
        ],
        "Namespace" => vec![name, json!(text(&obj["status"]["phase"])), json!(created)],
        "EndpointSlice" => {
            let ports = array(&obj["ports"])
                .iter()
                .map(|p| text(&p["port"]))
                .collect();
            vec![
                name,
                json!(text(&obj["addressType"])),
                json!(or_none(ports)),
                json!(slice_endpoints(obj)),
                json!(created),
            ]
        }
        "Endpoints" => vec![name, json!(endpoints_addresses(obj)), json!(created)],
        "Lease" => vec![
            name,
            or_dash(&obj["spec"]["holderIdentity"]),
            json!(created),
        ],
        "Event" => {
            // core/v1 names it involvedObject, events.k8s.io/v1 regarding.
            let involved = if obj["regarding"].is_object() {
                &obj["regarding"]
            } else {
                &obj["involvedObject"]
            };
            vec![
                json!(age(obj["lastTimestamp"]
                    .as_str()
                    .or(obj["eventTime"].as_str()))),
                json!(text(&obj["type"])),
                json!(text(&obj["reason"])),
                json!(format!(
                    "{}/{}",
                    text(&involved["kind"]).to_lowercase(),
                    text(&involved["name"])
                )),
                json!(text(if obj["note"].is_string() {
                    &obj["note"]
                } else {
                    &obj["message"]
                })),
            ]
        }
        _ => vec![name, json!(created)],
    }
}

/// A Table of `objects` at collection resourceVersion `rv`.
pub fn table<'a>(
    resource: &ResourceType,
    objects: impl IntoIterator<Item = &'a Value>,
    rv: Option<u64>,
) -> Value {
    let definitions: Vec<Value> = columns(resource.kind)
        .iter()
        .map(|(name, priority)| {
            let format = if *name == "Name" { "name" } else { "" };
            json!({"name": name, "type": "string", "format": format, "description": "", "priority": priority})
        })
        .collect();
    let rows: Vec<Value> = objects
        .into_iter()
        .map(|obj| {
            json!({
                "cells": cells(resource.kind, obj),
                "object": {
                    "kind": "PartialObjectMetadata",
                    "apiVersion": "meta.k8s.io/v1",
                    "metadata": obj["metadata"],
                },
            })
        })
        .collect();
    let metadata = rv.map_or(json!({}), |rv| json!({"resourceVersion": rv.to_string()}));
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata,
        "columnDefinitions": definitions,
        "rows": rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::find;

    #[test]
    fn service_rows_show_ips_and_ports() {
        let svc = json!({
            "metadata": {"name": "web"},
            "spec": {"type": "NodePort", "clusterIP": "10.43.0.2", "selector": {"app": "web"},
                     "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"}, {"port": 53, "protocol": "UDP"}]},
        });
        let t = table(find("", "v1", "services").unwrap(), [&svc], Some(7));
        assert_eq!(t["metadata"]["resourceVersion"], "7");
        let row = &t["rows"][0]["cells"];
        assert_eq!(row[0], "web");
        assert_eq!(row[2], "10.43.0.2");
        assert_eq!(row[3], "<none>");
        assert_eq!(row[4], "80:30080/TCP,53/UDP");
        assert_eq!(row[6], "app=web");
        assert_eq!(
            t["columnDefinitions"].as_array().unwrap().len(),
            row.as_array().unwrap().len()
        );
    }

    #[test]
    fn node_and_pod_rows() {
        let node = json!({"metadata": {"name": "n", "labels": {"node-role.kubernetes.io/master": ""}},
                          "status": {"conditions": [{"type": "Ready", "status": "True"}],
                                     "addresses": [{"type": "InternalIP", "address": "192.168.1.1"}]}});
        let row = cells("Node", &node);
        assert_eq!(row[1..3], [json!("Ready"), json!("master")]);
        assert_eq!(row[5], "192.168.1.1");
        let pod = json!({"metadata": {"name": "p"}, "spec": {"containers": [{}, {}]},
                         "status": {"phase": "Running", "containerStatuses": [{"ready": true, "restartCount": 2}]}});
        let row = cells("Pod", &pod);
        assert_eq!(row[1..4], [json!("1/2"), json!("Running"), json!(2)]);
        assert!(wants_table(
            "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
        ));
        assert!(!wants_table("application/json"));
    }
}
