//! Kubernetes Events for objects the controller cannot program (bad input, exhausted subnets),
//! so users see why on `kubectl describe`. The same message for the same object is posted once:
//! retries of a broken object must not flood the API.

use std::collections::HashSet;
use std::sync::Mutex;

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, PostParams};
use kube::Client;
use tracing::{debug, warn};

/// The object an event is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Regarding {
    pub kind: &'static str,
    pub api_version: &'static str,
    /// Empty for cluster-scoped objects (events about them go to `default`).
    pub namespace: String,
    pub name: String,
    pub uid: Option<String>,
}

/// Posts warning Events, each distinct one once.
pub struct EventRecorder {
    client: Client,
    component: String,
    sent: Mutex<HashSet<(Regarding, String, String)>>,
}

const MAX_REMEMBERED: usize = 10_000;

impl EventRecorder {
    /// A recorder that signs events as `component`.
    pub fn new(client: Client, component: &str) -> Self {
        EventRecorder {
            client,
            component: component.to_owned(),
            sent: Mutex::new(HashSet::new()),
        }
    }

    /// Posts a Warning event `reason`/`message` about `regarding` (failures are logged, never
    /// returned: an event is a courtesy, not part of reconciliation).
    pub async fn warn(&self, regarding: &Regarding, reason: &str, message: &str) {
        {
            let mut sent = self.sent.lock().unwrap_or_else(|p| p.into_inner());
            if sent.len() >= MAX_REMEMBERED {
                sent.clear();
            }
            if !sent.insert((regarding.clone(), reason.to_owned(), message.to_owned())) {
                return;
            }
        }
        let ns = if regarding.namespace.is_empty() {
            "default"
        } else {
            regarding.namespace.as_str()
        };
        let now = Time(Timestamp::now());
        let event = Event {
            metadata: ObjectMeta {
                generate_name: Some(format!("{}.", regarding.name)),
                namespace: Some(ns.to_owned()),
                ..ObjectMeta::default()
            },
            involved_object: ObjectReference {
                kind: Some(regarding.kind.to_owned()),
                api_version: Some(regarding.api_version.to_owned()),
                namespace: (!regarding.namespace.is_empty()).then(|| regarding.namespace.clone()),
                name: Some(regarding.name.clone()),
                uid: regarding.uid.clone(),
                ..ObjectReference::default()
            },
            reason: Some(reason.to_owned()),
            message: Some(message.to_owned()),
            type_: Some("Warning".to_owned()),
            source: Some(EventSource {
                component: Some(self.component.clone()),
                host: None,
            }),
            reporting_component: Some(self.component.clone()),
            first_timestamp: Some(now.clone()),
            last_timestamp: Some(now),
            count: Some(1),
            ..Event::default()
        };
        let api: Api<Event> = Api::namespaced(self.client.clone(), ns);
        match api.create(&PostParams::default(), &event).await {
            Ok(_) => debug!(object = %regarding.name, reason, "event posted"),
            Err(e) => warn!(object = %regarding.name, reason, error = %e, "could not post event"),
        }
    }
}
