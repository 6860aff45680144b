//! The whole-cluster convenience: a snapshot of objects in, every desired row out.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use serde::Deserialize;
use serde_json::Value;

use crate::config::Config;
use crate::error::ObjectError;
use crate::model::Desired;
use crate::node::NodeInfo;
use crate::pod::{pod_rows, PodInfo};
use crate::services::{service_rows, ServiceInfo, SERVICE_NAME_LABEL};
use crate::topology::{cluster_rows, node_rows};

/// The Kubernetes objects the desired state is computed from.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Nodes.
    pub nodes: Vec<Node>,
    /// Pods.
    pub pods: Vec<Pod>,
    /// Services.
    pub services: Vec<Service>,
    /// EndpointSlices.
    pub endpoint_slices: Vec<EndpointSlice>,
}

/// A YAML text that is not a sequence of YAML documents.
#[derive(Debug, thiserror::Error)]
#[error("YAML document {index} is malformed: {source}")]
pub struct YamlError {
    /// 1-based position of the document.
    pub index: usize,
    /// The parser's error.
    pub source: serde_yaml::Error,
}

/// What [`Snapshot::from_objects`] and [`Snapshot::from_yaml`] return.
pub type Decoded = (Snapshot, BTreeMap<String, usize>, Vec<ObjectError>);

impl Snapshot {
    /// Reads multi-document YAML (`kubectl get -o yaml` output: a `kind: List` or documents
    /// separated by `---`), as [`Snapshot::from_objects`].
    pub fn from_yaml(text: &str) -> Result<Decoded, YamlError> {
        let mut docs = Vec::new();
        for (i, d) in serde_yaml::Deserializer::from_str(text).enumerate() {
            let v = Value::deserialize(d).map_err(|source| YamlError {
                index: i + 1,
                source,
            })?;
            if !v.is_null() {
                docs.push(v);
            }
        }
        Ok(Snapshot::from_objects(docs))
    }

    /// Sorts JSON objects by `kind`, unpacking `kind: List`. Objects of other kinds are
    /// counted in the returned map; objects that do not decode are errors naming them.
    pub fn from_objects(objects: impl IntoIterator<Item = Value>) -> Decoded {
        let mut s = Snapshot::default();
        let mut other = BTreeMap::new();
        let mut errors = Vec::new();
        let mut queue: Vec<Value> = objects.into_iter().collect();
        queue.reverse();
        while let Some(obj) = queue.pop() {
            let kind = obj
                .get("kind")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned();
            let name = obj
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or("<unnamed>")
                .to_owned();
            fn decode<T: serde::de::DeserializeOwned>(
                v: Value,
                out: &mut Vec<T>,
            ) -> Result<(), String> {
                out.push(serde_json::from_value(v).map_err(|e| e.to_string())?);
                Ok(())
            }
            let res = match kind.as_str() {
                "List" | "NodeList" | "PodList" | "ServiceList" | "EndpointSliceList" => {
                    let items = obj
                        .get("items")
                        .and_then(Value::as_array)
                        .cloned()
                        .unwrap_or_default();
                    queue.extend(items.into_iter().rev());
                    Ok(())
                }
                "Node" => decode(obj, &mut s.nodes),
                "Pod" => decode(obj, &mut s.pods),
                "Service" => decode(obj, &mut s.services),
                "EndpointSlice" => decode(obj, &mut s.endpoint_slices),
                _ => {
                    *other.entry(kind.clone()).or_insert(0) += 1;
                    Ok(())
                }
            };
            if let Err(reason) = res {
                let kind: &'static str = match kind.as_str() {
                    "Node" => "Node",
                    "Pod" => "Pod",
                    "Service" => "Service",
                    _ => "EndpointSlice",
                };
                errors.push(ObjectError::new(
                    kind,
                    name,
                    format!("does not decode: {reason}"),
                ));
            }
        }
        (s, other, errors)
    }
}

/// Every desired row of the cluster, and the objects that had to be skipped.
pub fn desired_cluster(config: &Config, snapshot: &Snapshot) -> (Desired, Vec<ObjectError>) {
    desired_objects(
        config,
        ClusterObjects {
            nodes: &snapshot.nodes.iter().collect::<Vec<_>>(),
            pods: &snapshot.pods.iter().collect::<Vec<_>>(),
            services: &snapshot.services.iter().collect::<Vec<_>>(),
            endpoint_slices: &snapshot.endpoint_slices.iter().collect::<Vec<_>>(),
        },
    )
}

/// The objects of a cluster by reference (a controller's stores hold them already).
#[derive(Debug, Clone, Copy)]
pub struct ClusterObjects<'a> {
    /// Nodes.
    pub nodes: &'a [&'a Node],
    /// Pods.
    pub pods: &'a [&'a Pod],
    /// Services.
    pub services: &'a [&'a Service],
    /// EndpointSlices.
    pub endpoint_slices: &'a [&'a EndpointSlice],
}

/// [`desired_cluster`] of objects held elsewhere.
pub fn desired_objects(
    config: &Config,
    snapshot: ClusterObjects<'_>,
) -> (Desired, Vec<ObjectError>) {
    let mut d = cluster_rows(config);
    let mut errors = Vec::new();
    let mut nodes = Vec::new();
    for n in snapshot.nodes {
        match NodeInfo::from_node(n, config) {
            Ok(info) => {
                d.extend(node_rows(config, &info));
                nodes.push(info);
            }
            Err(e) => errors.push(e),
        }
    }
    for p in snapshot.pods {
        let info = match PodInfo::from_pod(p) {
            Ok(Some(info)) => info,
            Ok(None) => continue,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        let Some(node) = nodes.iter().find(|n| n.name == info.node) else {
            errors.push(ObjectError::new(
                "Pod",
                format!("{}/{}", info.namespace, info.name),
                format!("its node {} is unknown or not ready", info.node),
            ));
            continue;
        };
        match pod_rows(config, &info, node) {
            Ok(rows) => d.extend(rows),
            Err(e) => errors.push(e),
        }
    }
    // Slices grouped by service once, so each service only looks at its own.
    let mut slices: BTreeMap<(&str, &str), Vec<EndpointSlice>> = BTreeMap::new();
    for s in snapshot.endpoint_slices {
        let ns = s.metadata.namespace.as_deref().unwrap_or("default");
        if let Some(svc) = s
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(SERVICE_NAME_LABEL))
        {
            slices
                .entry((ns, svc.as_str()))
                .or_default()
                .push((*s).clone());
        }
    }
    for svc in snapshot.services {
        let rows = ServiceInfo::from_service(svc).and_then(|info| match info {
            Some(info) => {
                let own = slices
                    .get(&(info.namespace.as_str(), info.name.as_str()))
                    .map_or(&[][..], Vec::as_slice);
                service_rows(config, &info, own, &nodes)
            }
            None => Ok(Desired::default()),
        });
        match rows {
            Ok(rows) => d.extend(rows),
            Err(e) => errors.push(e),
        }
    }
    (d, errors)
}
