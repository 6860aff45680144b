//! Reflectors: one watch per kind feeding a shared store, with each event turned into work keys.
//!
//! The store is updated before the event is passed on, so whoever handles the key reads at least
//! the state the event announced ("read the store, not the event"). A relist (after a watch
//! expired with 410 or a reconnect) does not report objects deleted meanwhile, so every relist but
//! the first is signalled, and the controller answers it with a full sync.

use std::fmt::Debug;

use std::collections::BTreeMap;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{
    LoadBalancerIngress, LoadBalancerStatus, Node, Service, ServicePort, ServiceSpec, ServiceStatus,
};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::runtime::reflector::{self, Lookup, Store};
use kube::runtime::watcher::{self, watcher, Event};
use kube::runtime::WatchStreamExt;
use kube::{Api, Resource};
use ovnkube_desired::services::SERVICE_NAME_LABEL;
use serde::de::DeserializeOwned;
use tracing::warn;

/// What a reflector tells its owner.
pub enum Notice<'a, K> {
    /// An object was created or changed (or listed).
    Applied(&'a K),
    /// An object was deleted.
    Deleted(&'a K),
    /// A list finished; `first` is false for every relist after the initial one.
    Listed { first: bool },
}

/// Starts a reflector for `api` (with `config`), passing every change to `notify` after the
/// store has it. `keep` turns each object into what is stored (memory: the stores hold every
/// object of the cluster, and most of each object is never read; see the `slim_*` functions
/// and `PodObject::into_record`).
pub fn spawn_reflector<K, S, F>(
    api: Api<K>,
    config: watcher::Config,
    keep: fn(K) -> S,
    notify: F,
) -> Store<S>
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + 'static,
    K::DynamicType: Default,
    S: Lookup + Clone + Send + Sync + 'static,
    S::DynamicType: Default + Eq + std::hash::Hash + Clone + Send + Sync,
    F: Fn(Notice<'_, S>) + Send + 'static,
{
    let (store, mut writer) = reflector::store();
    tokio::spawn(async move {
        let mut first = true;
        let mut stream = watcher(api, config).default_backoff().boxed();
        while let Some(event) = stream.next().await {
            match event.map(|event| kept(event, keep)) {
                Ok(event) => {
                    writer.apply_watcher_event(&event);
                    match &event {
                        Event::Apply(o) | Event::InitApply(o) => notify(Notice::Applied(o)),
                        Event::Delete(o) => notify(Notice::Deleted(o)),
                        Event::InitDone => {
                            notify(Notice::Listed { first });
                            first = false;
                        }
                        Event::Init => {}
                    }
                }
                Err(e) => {
                    warn!(kind = %K::kind(&Default::default()), error = %e, "watch failed; retrying with backoff")
                }
            }
        }
    });
    store
}

/// `event` with its object as the store keeps it.
fn kept<K, S>(event: Event<K>, keep: fn(K) -> S) -> Event<S> {
    match event {
        Event::Apply(o) => Event::Apply(keep(o)),
        Event::Delete(o) => Event::Delete(keep(o)),
        Event::Init => Event::Init,
        Event::InitApply(o) => Event::InitApply(keep(o)),
        Event::InitDone => Event::InitDone,
    }
}

// What the stores keep of each kind is exactly what their readers use (the desired-state layer,
// IPAM, the work-key mapping in `state.rs`, Events, and the node agent's `host_services`):
// - Node, Service, EndpointSlice: name, namespace, uid, resourceVersion, deletionTimestamp;
// - Node: the `k8s.ovn.org/` annotations (NodeInfo, IPAM, the node fingerprint);
// - Pod: a `PodRecord` (`pod_record.rs`; decoded straight from the JSON, no `Pod` is built):
//   namespace, name, uid, the pod-networks annotation, spec.nodeName, spec.hostNetwork and
//   whether status.phase is Succeeded or Failed;
// - Service: type, clusterIP(s), ports (name, protocol, port, nodePort, targetPort),
//   externalIPs, external/internalTrafficPolicy, sessionAffinity(Config),
//   publishNotReadyAddresses, status.loadBalancer.ingress[].ip;
// - EndpointSlice: the `kubernetes.io/service-name` label, addressType, ports, and each
//   endpoint's addresses and conditions.
// A reader of anything else must add it here first: a dropped field reads as absent.

/// Trims `meta` to what every store keeps, with the annotations and labels `keep_annotation` and
/// `keep_label` accept.
fn slim_metadata(
    meta: &mut ObjectMeta,
    keep_annotation: fn(&str) -> bool,
    keep_label: fn(&str) -> bool,
) {
    let retain = |map: Option<BTreeMap<String, String>>, keep: fn(&str) -> bool| {
        map.map(|mut m| {
            m.retain(|k, _| keep(k));
            m
        })
        .filter(|m| !m.is_empty())
    };
    *meta = ObjectMeta {
        name: meta.name.take(),
        namespace: meta.namespace.take(),
        uid: meta.uid.take(),
        resource_version: meta.resource_version.take(),
        deletion_timestamp: meta.deletion_timestamp.take(),
        annotations: retain(meta.annotations.take(), keep_annotation),
        labels: retain(meta.labels.take(), keep_label),
        ..ObjectMeta::default()
    };
}

/// The prefix of the annotations ovn-kubernetes components write.
const OVN_ANNOTATION_PREFIX: &str = "k8s.ovn.org/";

fn is_ovn_annotation(key: &str) -> bool {
    key.starts_with(OVN_ANNOTATION_PREFIX)
}

fn is_service_name_label(key: &str) -> bool {
    key == SERVICE_NAME_LABEL
}

fn keep_none(_: &str) -> bool {
    false
}

/// Keeps of a node its identity and `k8s.ovn.org/` annotations: nothing reads its labels,
/// spec or status (images, conditions, capacity, nodeInfo) from the store.
pub fn slim_node(mut node: Node) -> Node {
    slim_metadata(&mut node.metadata, is_ovn_annotation, keep_none);
    node.spec = None;
    node.status = None;
    node
}

/// Keeps of a service what its load balancers and the node agent's host rules are built from
/// (not the selector: endpoints come from EndpointSlices).
pub fn slim_service(mut svc: Service) -> Service {
    slim_metadata(&mut svc.metadata, keep_none, keep_none);
    svc.spec = svc.spec.take().map(|spec| ServiceSpec {
        type_: spec.type_,
        cluster_ip: spec.cluster_ip,
        cluster_ips: spec.cluster_ips,
        ports: spec.ports.map(|ports| {
            ports
                .into_iter()
                .map(|p| ServicePort {
                    name: p.name,
                    protocol: p.protocol,
                    port: p.port,
                    node_port: p.node_port,
                    target_port: p.target_port,
                    ..ServicePort::default()
                })
                .collect()
        }),
        external_ips: spec.external_ips,
        external_traffic_policy: spec.external_traffic_policy,
        internal_traffic_policy: spec.internal_traffic_policy,
        session_affinity: spec.session_affinity,
        session_affinity_config: spec.session_affinity_config,
        publish_not_ready_addresses: spec.publish_not_ready_addresses,
        ..ServiceSpec::default()
    });
    svc.status = svc.status.take().map(|status| ServiceStatus {
        load_balancer: status.load_balancer.map(|lb| LoadBalancerStatus {
            ingress: lb.ingress.map(|ingress| {
                ingress
                    .into_iter()
                    .map(|i| LoadBalancerIngress {
                        ip: i.ip,
                        ..LoadBalancerIngress::default()
                    })
                    .collect()
            }),
        }),
        ..ServiceStatus::default()
    });
    svc
}

/// Keeps of a slice its service label, address type, ports and endpoints' addresses and
/// conditions. Endpoints left with the same conditions are merged into one holding all their
/// addresses: every reader takes an endpoint's addresses together under its conditions, and an
/// `Endpoint` is 352 bytes however little it holds (a slice of ready endpoints keeps one).
pub fn slim_endpoint_slice(mut slice: EndpointSlice) -> EndpointSlice {
    slim_metadata(&mut slice.metadata, keep_none, is_service_name_label);
    let mut merged: Vec<Endpoint> = Vec::new();
    for ep in std::mem::take(&mut slice.endpoints) {
        match merged.iter_mut().find(|m| m.conditions == ep.conditions) {
            Some(m) => m.addresses.extend(ep.addresses),
            None => merged.push(Endpoint {
                addresses: ep.addresses,
                conditions: ep.conditions,
                ..Endpoint::default()
            }),
        }
    }
    slice.endpoints = merged;
    slice
}

#[cfg(test)]
mod tests;
