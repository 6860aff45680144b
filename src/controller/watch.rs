//! Reflectors: one watch per kind feeding a shared store, with each event turned into work keys.
//!
//! The store is updated before the event is passed on, so whoever handles the key reads at least
//! the state the event announced ("read the store, not the event"). A relist (after a watch
//! expired with 410 or a reconnect) does not report objects deleted meanwhile, so every relist but
//! the first is signalled, and the controller answers it with a full sync.

use std::fmt::Debug;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher::{self, watcher, Event};
use kube::runtime::WatchStreamExt;
use kube::{Api, Resource};
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
/// store has it. `slim` trims each object before it is stored (memory: pods carry large specs
/// the controller never reads).
pub fn spawn_reflector<K, F>(
    api: Api<K>,
    config: watcher::Config,
    slim: fn(&mut K),
    notify: F,
) -> Store<K>
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone,
    F: Fn(Notice<'_, K>) + Send + 'static,
{
    let (store, mut writer) = reflector::store();
    tokio::spawn(async move {
        let mut first = true;
        let mut stream = watcher(api, config).default_backoff().modify(slim).boxed();
        while let Some(event) = stream.next().await {
            match event {
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

/// Drops what the controller never reads from a pod: container specs and statuses.
pub fn slim_pod(pod: &mut Pod) {
    pod.metadata.managed_fields = None;
    if let Some(spec) = pod.spec.as_mut() {
        spec.containers.clear();
        spec.init_containers = None;
        spec.volumes = None;
        spec.ephemeral_containers = None;
    }
    if let Some(status) = pod.status.as_mut() {
        status.container_statuses = None;
        status.init_container_statuses = None;
        status.ephemeral_container_statuses = None;
        status.conditions = None;
    }
}

/// Drops managedFields, which nothing here reads.
pub fn slim_meta<K: Resource>(o: &mut K) {
    o.meta_mut().managed_fields = None;
}
