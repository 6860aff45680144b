//! Decoding of `application/vnd.kubernetes.protobuf` request bodies into JSON objects.
//!
//! kubectl's generator commands (`kubectl create namespace`, `kubectl create service ...`)
//! send protobuf; every other client sends JSON. Only the kinds those generators make for the
//! resources served here are decoded.

use std::collections::BTreeMap;

use k8s_pb::api::core::v1 as core;
use k8s_pb::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_pb::apimachinery::pkg::runtime::Unknown;
use k8s_pb::apimachinery::pkg::util::intstr::IntOrString;
use prost::Message;
use serde_json::{json, Map, Value};

use crate::error::ApiError;

/// The four bytes that start every Kubernetes protobuf envelope.
const MAGIC: &[u8] = b"k8s\0";

/// Decodes a protobuf envelope (`k8s\0` + runtime.Unknown) holding a Namespace or a Service.
pub fn decode(body: &[u8]) -> Result<Value, ApiError> {
    let envelope = body
        .strip_prefix(MAGIC)
        .ok_or_else(|| ApiError::bad_request("protobuf body lacks the k8s\\0 envelope prefix"))?;
    let unknown = Unknown::decode(envelope)
        .map_err(|e| ApiError::bad_request(format!("protobuf envelope: {e}")))?;
    let type_meta = unknown.type_meta.unwrap_or_default();
    let api_version = type_meta.api_version.unwrap_or_default();
    let kind = type_meta.kind.unwrap_or_default();
    let raw = unknown.raw.unwrap_or_default();
    let bad = |e: prost::DecodeError| ApiError::bad_request(format!("protobuf {kind}: {e}"));
    let mut object = match (api_version.as_str(), kind.as_str()) {
        ("v1", "Namespace") => namespace(core::Namespace::decode(raw.as_slice()).map_err(bad)?),
        ("v1", "Service") => service(core::Service::decode(raw.as_slice()).map_err(bad)?),
        _ => {
            return Err(ApiError::unsupported_media(format!(
                "protobuf bodies of {api_version} {kind} are not supported; send JSON"
            )))
        }
    };
    object["apiVersion"] = json!(api_version);
    object["kind"] = json!(kind);
    Ok(object)
}

/// Inserts `value` under `key` unless it is empty (protobuf cannot tell unset from empty).
fn put(map: &mut Map<String, Value>, key: &str, value: Value) {
    let empty = match &value {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    };
    if !empty {
        map.insert(key.to_string(), value);
    }
}

fn string_map(map: BTreeMap<String, String>) -> Value {
    json!(map)
}

fn metadata(meta: Option<ObjectMeta>) -> Value {
    let meta = meta.unwrap_or_default();
    let mut out = Map::new();
    put(&mut out, "name", json!(meta.name));
    put(&mut out, "generateName", json!(meta.generate_name));
    put(&mut out, "namespace", json!(meta.namespace));
    put(&mut out, "labels", string_map(meta.labels));
    put(&mut out, "annotations", string_map(meta.annotations));
    put(&mut out, "finalizers", json!(meta.finalizers));
    Value::Object(out)
}

fn namespace(ns: core::Namespace) -> Value {
    let mut out = Map::new();
    out.insert("metadata".into(), metadata(ns.metadata));
    if let Some(spec) = ns.spec {
        let mut s = Map::new();
        put(&mut s, "finalizers", json!(spec.finalizers));
        put(&mut out, "spec", Value::Object(s));
    }
    Value::Object(out)
}

fn int_or_string(value: Option<IntOrString>) -> Value {
    match value {
        Some(IntOrString {
            r#type: Some(1),
            str_val,
            ..
        }) => json!(str_val),
        Some(IntOrString { int_val, .. }) => json!(int_val),
        None => Value::Null,
    }
}

fn service(svc: core::Service) -> Value {
    let spec = svc.spec.unwrap_or_default();
    let ports: Vec<Value> = spec
        .ports
        .into_iter()
        .map(|p| {
            let mut port = Map::new();
            put(&mut port, "name", json!(p.name));
            put(&mut port, "protocol", json!(p.protocol));
            put(&mut port, "appProtocol", json!(p.app_protocol));
            put(&mut port, "port", json!(p.port));
            put(&mut port, "targetPort", int_or_string(p.target_port));
            if p.node_port.is_some_and(|n| n != 0) {
                put(&mut port, "nodePort", json!(p.node_port));
            }
            Value::Object(port)
        })
        .collect();
    let mut s = Map::new();
    put(&mut s, "ports", json!(ports));
    put(&mut s, "selector", string_map(spec.selector));
    put(&mut s, "clusterIP", json!(spec.cluster_ip));
    put(&mut s, "clusterIPs", json!(spec.cluster_ips));
    put(&mut s, "type", json!(spec.r#type));
    put(&mut s, "externalIPs", json!(spec.external_ips));
    put(&mut s, "externalName", json!(spec.external_name));
    put(&mut s, "sessionAffinity", json!(spec.session_affinity));
    put(
        &mut s,
        "externalTrafficPolicy",
        json!(spec.external_traffic_policy),
    );
    put(
        &mut s,
        "internalTrafficPolicy",
        json!(spec.internal_traffic_policy),
    );
    json!({"metadata": metadata(svc.metadata), "spec": s})
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_pb::apimachinery::pkg::runtime::TypeMeta;

    fn envelope(kind: &str, raw: Vec<u8>) -> Vec<u8> {
        let unknown = Unknown {
            type_meta: Some(TypeMeta {
                api_version: Some("v1".into()),
                kind: Some(kind.into()),
            }),
            raw: Some(raw),
            content_encoding: None,
            content_type: None,
        };
        [MAGIC.to_vec(), unknown.encode_to_vec()].concat()
    }

    #[test]
    fn decodes_a_namespace() {
        let ns = core::Namespace {
            metadata: Some(ObjectMeta {
                name: Some("team-a".into()),
                labels: BTreeMap::from([("env".into(), "dev".into())]),
                ..Default::default()
            }),
            ..Default::default()
        };
        let value = decode(&envelope("Namespace", ns.encode_to_vec())).unwrap();
        assert_eq!(
            value,
            json!({"apiVersion": "v1", "kind": "Namespace",
                   "metadata": {"name": "team-a", "labels": {"env": "dev"}}})
        );
    }

    #[test]
    fn decodes_a_node_port_service() {
        let svc = core::Service {
            metadata: Some(ObjectMeta {
                name: Some("web".into()),
                ..Default::default()
            }),
            spec: Some(core::ServiceSpec {
                r#type: Some("NodePort".into()),
                ports: vec![core::ServicePort {
                    name: Some("80-8080".into()),
                    protocol: Some("TCP".into()),
                    port: Some(80),
                    target_port: Some(IntOrString {
                        r#type: Some(0),
                        int_val: Some(8080),
                        str_val: None,
                    }),
                    ..Default::default()
                }],
                selector: BTreeMap::from([("app".into(), "web".into())]),
                ..Default::default()
            }),
            ..Default::default()
        };
        let value = decode(&envelope("Service", svc.encode_to_vec())).unwrap();
        assert_eq!(value["spec"]["type"], "NodePort");
        assert_eq!(
            value["spec"]["ports"],
            json!([{"name": "80-8080", "protocol": "TCP", "port": 80, "targetPort": 8080}])
        );
        assert_eq!(value["spec"]["selector"], json!({"app": "web"}));
    }

    #[test]
    fn rejects_other_kinds_and_bad_envelopes() {
        assert_eq!(decode(b"{}").unwrap_err().code, 400);
        assert_eq!(
            decode(&envelope("ConfigMap", vec![])).unwrap_err().code,
            415
        );
    }
}
