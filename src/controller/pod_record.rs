//! The controller's record of a pod: the few fields of a Pod that it reads, decoded straight
//! from the API server's JSON (list, watch and patch replies) without a full `Pod` ever being
//! built. The pod store holds one per pod of the cluster; a `Pod`, even with only these fields
//! set, is over 2 KB of mostly empty `PodSpec`/`PodStatus`, and even an `ObjectMeta` is some
//! 360 bytes of mostly empty options, so the record has neither (128 bytes and its strings).

use std::borrow::Cow;
use std::fmt;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::runtime::reflector::Lookup;
use kube::Resource;
use ovnkube_desired::annotations as ann;
use ovnkube_desired::{is_completed_phase, PodParts};
use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;

/// A pod as the controller keeps it (a reader of anything else must add it here and to the
/// decoding first: a field not kept reads as absent).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodRecord {
    /// `metadata.namespace` (`default` when the object has none).
    pub namespace: String,
    /// `metadata.name`.
    pub name: String,
    /// `metadata.uid` (empty when the object has none).
    pub uid: String,
    /// `spec.nodeName`.
    pub node_name: Option<String>,
    /// `spec.hostNetwork`.
    pub host_network: bool,
    /// `status.phase` is `Succeeded` or `Failed`.
    pub completed: bool,
    /// The `k8s.ovn.org/pod-networks` annotation (the pod's address, written by the controller).
    pub pod_networks: Option<String>,
}

impl PodRecord {
    /// The fields the desired-state layer and IPAM read.
    pub fn parts(&self) -> PodParts<'_> {
        PodParts {
            namespace: &self.namespace,
            name: &self.name,
            uid: &self.uid,
            node_name: self.node_name.as_deref(),
            host_network: self.host_network,
            completed: self.completed,
            pod_networks: self.pod_networks.as_deref(),
        }
    }
}

/// `kind`, `group`, `version` and `plural` of the API's Pod, for both traits that ask
/// (`Lookup` of the stored record, `Resource` of the decoded object).
macro_rules! pod_type_info {
    () => {
        fn kind(dt: &()) -> Cow<'_, str> {
            <Pod as Resource>::kind(dt)
        }
        fn group(dt: &()) -> Cow<'_, str> {
            <Pod as Resource>::group(dt)
        }
        fn version(dt: &()) -> Cow<'_, str> {
            <Pod as Resource>::version(dt)
        }
        fn plural(dt: &()) -> Cow<'_, str> {
            <Pod as Resource>::plural(dt)
        }
    };
}

/// What a reflector store needs of its objects. The resourceVersion is not kept: only the
/// watcher reads it, from the [`PodObject`] the record came in.
impl Lookup for PodRecord {
    type DynamicType = ();

    pod_type_info!();
    fn name(&self) -> Option<Cow<'_, str>> {
        Some(Cow::Borrowed(&self.name))
    }
    fn namespace(&self) -> Option<Cow<'_, str>> {
        Some(Cow::Borrowed(&self.namespace))
    }
    fn resource_version(&self) -> Option<Cow<'_, str>> {
        None
    }
    fn uid(&self) -> Option<Cow<'_, str>> {
        Some(Cow::Borrowed(self.uid.as_str())).filter(|u| !u.is_empty())
    }
}

/// A pod as the API serves it, decoded into its record: the type `Api` lists, watches and
/// patches (kube's `Resource`: `v1` `pods`, namespaced).
#[derive(Debug, Clone, Deserialize)]
#[serde(from = "WirePod")]
pub struct PodObject {
    /// Only the resourceVersion (where the watcher resumes).
    pub metadata: ObjectMeta,
    /// The rest of what is kept.
    pub record: PodRecord,
}

impl PodObject {
    /// What the store keeps of the object.
    pub fn into_record(self) -> PodRecord {
        self.record
    }
}

impl Resource for PodObject {
    type DynamicType = ();
    type Scope = <Pod as Resource>::Scope;

    pod_type_info!();
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

// The JSON shape of the fields kept; serde skips every other key, never building its value.

#[derive(Deserialize)]
struct WirePod {
    #[serde(default)]
    metadata: WireMeta,
    #[serde(default)]
    spec: Option<WireSpec>,
    #[serde(default)]
    status: Option<WireStatus>,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireMeta {
    name: Option<String>,
    namespace: Option<String>,
    uid: Option<String>,
    resource_version: Option<String>,
    annotations: Option<PodNetworksAnnotation>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireSpec {
    node_name: Option<String>,
    host_network: Option<bool>,
}

#[derive(Deserialize)]
struct WireStatus {
    phase: Option<String>,
}

/// The `pod-networks` value of an annotations map; the other annotations are skipped.
struct PodNetworksAnnotation(Option<String>);

impl<'de> Deserialize<'de> for PodNetworksAnnotation {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct PodNetworksOnly;
        impl<'de> Visitor<'de> for PodNetworksOnly {
            type Value = PodNetworksAnnotation;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a map of annotations")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut value = None;
                while let Some(key) = map.next_key::<String>()? {
                    if key == ann::POD_NETWORKS {
                        value = Some(map.next_value::<String>()?);
                    } else {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
                Ok(PodNetworksAnnotation(value))
            }
        }
        deserializer.deserialize_map(PodNetworksOnly)
    }
}

impl From<WirePod> for PodObject {
    fn from(pod: WirePod) -> Self {
        let WireMeta {
            name,
            namespace,
            uid,
            resource_version,
            annotations,
        } = pod.metadata;
        let spec = pod.spec;
        let record = PodRecord {
            namespace: namespace.unwrap_or_else(|| "default".into()),
            name: name.unwrap_or_default(),
            uid: uid.unwrap_or_default(),
            node_name: spec.as_ref().and_then(|s| s.node_name.clone()),
            host_network: spec.and_then(|s| s.host_network).unwrap_or(false),
            completed: is_completed_phase(pod.status.and_then(|s| s.phase).as_deref()),
            pod_networks: annotations.and_then(|a| a.0),
        };
        PodObject {
            metadata: ObjectMeta {
                resource_version,
                ..ObjectMeta::default()
            },
            record,
        }
    }
}
