//! The object store: objects as JSON keyed by (resource, namespace, name), one global
//! resourceVersion counter, and a bounded event log indexed by resourceVersion for watches.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use serde_json::{json, Value};
use tokio::sync::watch;

use crate::allocator::ServiceAllocator;
use crate::defaults;
use crate::error::ApiError;
use crate::meta;
use crate::patch::{self, PatchKind};
use crate::resources::ResourceType;
use crate::selectors::Selectors;

/// What happened to an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    /// Created.
    Added,
    /// Changed.
    Modified,
    /// Deleted.
    Deleted,
}

impl EventType {
    /// The watch event `type` string.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Added => "ADDED",
            Self::Modified => "MODIFIED",
            Self::Deleted => "DELETED",
        }
    }
}

/// One change in the event log.
#[derive(Debug)]
pub struct WatchEvent {
    /// The type of the changed object.
    pub resource: &'static ResourceType,
    /// What happened.
    pub kind: EventType,
    /// The object after the change (its last state for a deletion).
    pub object: Arc<Value>,
    /// The object before a modification, so selector watches can turn it into ADDED/DELETED.
    pub previous: Option<Arc<Value>>,
    /// `{"type":...,"object":...}\n`, serialized once for every watcher.
    pub line: Bytes,
}

/// What watchers are woken with: the newest resourceVersion and fault-injection counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Signal {
    /// The newest resourceVersion.
    pub rv: u64,
    /// Bumped to end every open watch stream.
    pub closes: u64,
    /// Bumped when the history was dropped: open watches end with a 410 ERROR event.
    pub expiries: u64,
}

type Key = (String, String);

struct State {
    rv: u64,
    /// Objects per (group, plural).
    objects: HashMap<(&'static str, &'static str), BTreeMap<Key, Arc<Value>>>,
    log: VecDeque<Arc<WatchEvent>>,
    /// resourceVersion of `log[0]` (`rv + 1` when the log is empty).
    first_rv: u64,
    window: usize,
    services: ServiceAllocator,
}

/// The whole cluster state, shared by every connection.
pub struct Store {
    state: Mutex<State>,
    signal: watch::Sender<Signal>,
}

/// Serializes a watch event line: `{"type":"ADDED","object":{...}}\n`.
pub fn event_line(kind: &str, object: &Value) -> Bytes {
    let mut line = serde_json::to_vec(&json!({"type": kind, "object": object}))
        .expect("JSON values always serialize");
    line.push(b'\n');
    Bytes::from(line)
}

fn name_of(obj: &Value) -> &str {
    obj["metadata"]["name"].as_str().unwrap_or_default()
}

/// Copies `field` of `from` into `to`, or removes it from `to` when `from` lacks it.
fn copy_field(to: &mut Value, from: &Value, field: &str) {
    match from.get(field) {
        Some(v) => to[field] = v.clone(),
        None => {
            if let Some(map) = to.as_object_mut() {
                map.remove(field);
            }
        }
    }
}

impl Store {
    /// An empty store keeping the last `window` events, allocating Services with `services`.
    pub fn new(window: usize, services: ServiceAllocator) -> Self {
        Self {
            state: Mutex::new(State {
                rv: 0,
                objects: HashMap::new(),
                log: VecDeque::new(),
                first_rv: 1,
                window: window.max(1),
                services,
            }),
            signal: watch::Sender::new(Signal::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A receiver woken on every change and fault injection.
    pub fn subscribe(&self) -> watch::Receiver<Signal> {
        self.signal.subscribe()
    }

    /// The newest resourceVersion.
    pub fn current_rv(&self) -> u64 {
        self.lock().rv
    }

    /// Drops the event history so that any watch resuming from an older resourceVersion gets
    /// 410 Gone, and ends open watch streams with a 410 ERROR event.
    pub fn expire_history(&self) {
        {
            let mut st = self.lock();
            st.log.clear();
            st.first_rv = st.rv + 1;
        }
        self.signal.send_modify(|s| s.expiries += 1);
    }

    /// Ends every open watch stream (clients resume from their last resourceVersion).
    pub fn close_watches(&self) {
        self.signal.send_modify(|s| s.closes += 1);
    }

    fn retained(st: &State, rv: u64) -> Result<(), ApiError> {
        if rv + 1 < st.first_rv {
            return Err(ApiError::gone(format!(
                "too old resource version: {rv} ({})",
                st.first_rv - 1
            )));
        }
        Ok(())
    }

    /// The events of `resource` after resourceVersion `after`, and the resourceVersion they
    /// bring a watcher to; costs time proportional to the new events only.
    pub fn events_since(
        &self,
        resource: &'static ResourceType,
        after: u64,
    ) -> Result<(Vec<Arc<WatchEvent>>, u64), ApiError> {
        let st = self.lock();
        Self::retained(&st, after)?;
        let start = ((after + 1).saturating_sub(st.first_rv) as usize).min(st.log.len());
        let events = st
            .log
            .range(start..)
            .filter(|e| std::ptr::eq(e.resource, resource))
            .cloned()
            .collect();
        Ok((events, st.rv.max(after)))
    }

    /// The objects of `resource` (in `namespace`, or all) matching `selectors`, sorted by
    /// namespace and name, with the collection's resourceVersion.
    pub fn list(
        &self,
        resource: &'static ResourceType,
        namespace: Option<&str>,
        selectors: &Selectors,
    ) -> (Vec<Arc<Value>>, u64) {
        let st = self.lock();
        let items = st
            .objects
            .get(&(resource.group, resource.plural))
            .into_iter()
            .flat_map(|objects| objects.iter())
            .filter(|((ns, _), _)| namespace.is_none_or(|want| ns == want))
            .filter(|(_, obj)| selectors.matches(obj))
            .map(|(_, obj)| Arc::clone(obj))
            .collect();
        (items, st.rv)
    }

    /// One object.
    pub fn get(
        &self,
        resource: &'static ResourceType,
        namespace: &str,
        name: &str,
    ) -> Result<Arc<Value>, ApiError> {
        let st = self.lock();
        Self::find(&st, resource, namespace, name).map(Arc::clone)
    }

    fn find<'a>(
        st: &'a State,
        resource: &'static ResourceType,
        namespace: &str,
        name: &str,
    ) -> Result<&'a Arc<Value>, ApiError> {
        st.objects
            .get(&(resource.group, resource.plural))
            .and_then(|objects| objects.get(&(namespace.to_string(), name.to_string())))
            .ok_or_else(|| ApiError::not_found(resource.plural, name))
    }

    /// Records a change: bumps the resourceVersion, stores the object (unless deleted),
    /// appends to the event log and wakes the watchers.
    fn commit(
        &self,
        mut st: MutexGuard<'_, State>,
        resource: &'static ResourceType,
        kind: EventType,
        mut object: Value,
        previous: Option<Arc<Value>>,
    ) -> Arc<Value> {
        st.rv += 1;
        let rv = st.rv;
        object["metadata"]["resourceVersion"] = json!(rv.to_string());
        let object = Arc::new(object);
        let key = (
            object["metadata"]["namespace"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            name_of(&object).to_string(),
        );
        let objects = st
            .objects
            .entry((resource.group, resource.plural))
            .or_default();
        if kind == EventType::Deleted {
            objects.remove(&key);
        } else {
            objects.insert(key, Arc::clone(&object));
        }
        let event = WatchEvent {
            resource,
            kind,
            line: event_line(kind.as_str(), &object),
            object: Arc::clone(&object),
            previous,
        };
        if st.log.is_empty() {
            st.first_rv = rv;
        }
        st.log.push_back(Arc::new(event));
        if st.log.len() > st.window {
            st.log.pop_front();
            st.first_rv += 1;
        }
        drop(st);
        self.signal.send_modify(|s| s.rv = rv);
        object
    }

    /// Creates an object, assigning uid, creationTimestamp, generation, a generated name,
    /// and for Services a ClusterIP and NodePorts.
    pub fn create(
        &self,
        resource: &'static ResourceType,
        path_namespace: Option<&str>,
        mut obj: Value,
    ) -> Result<Arc<Value>, ApiError> {
        if !obj.is_object() {
            return Err(ApiError::bad_request(format!(
                "the body of a {} create must be a JSON object",
                resource.kind
            )));
        }
        obj["apiVersion"] = json!(resource.api_version());
        obj["kind"] = json!(resource.kind);
        if !obj["metadata"].is_object() {
            obj["metadata"] = json!({});
        }
        let meta = &mut obj["metadata"];
        if meta["name"].as_str().is_none_or(str::is_empty) {
            match meta["generateName"].as_str() {
                Some(prefix) if !prefix.is_empty() => {
                    meta["name"] = json!(format!("{prefix}{}", meta::name_suffix()))
                }
                _ => {
                    return Err(ApiError::invalid(
                        resource.kind,
                        "",
                        "metadata.name: Required value: name or generateName is required",
                    ))
                }
            }
        }
        let name = meta["name"].as_str().unwrap_or_default().to_string();
        let namespace = if resource.namespaced {
            let body_ns = meta["namespace"].as_str().filter(|ns| !ns.is_empty());
            match (path_namespace, body_ns) {
                (Some(path), Some(body)) if path != body => {
                    return Err(ApiError::bad_request(format!(
                        "the namespace of the provided object ({body}) does not match the \
                         namespace sent on the request ({path}) for {} {name:?}",
                        resource.kind
                    )))
                }
                (Some(ns), _) | (None, Some(ns)) => ns.to_string(),
                (None, None) => "default".to_string(),
            }
        } else {
            String::new()
        };
        if let Some(meta) = meta.as_object_mut() {
            meta.remove("resourceVersion");
            if namespace.is_empty() {
                meta.remove("namespace");
            } else {
                meta.insert("namespace".into(), json!(namespace));
            }
            meta.insert("uid".into(), json!(meta::new_uid()));
            meta.insert("creationTimestamp".into(), json!(meta::now_rfc3339()));
            meta.insert("generation".into(), json!(1));
        }
        defaults::apply(resource.kind, &mut obj);
        let mut st = self.lock();
        if Self::find(&st, resource, &namespace, &name).is_ok() {
            return Err(ApiError::already_exists(resource.plural, &name));
        }
        if resource.kind == "Service" {
            st.services.assign(&mut obj, None)?;
        }
        Ok(self.commit(st, resource, EventType::Added, obj, None))
    }

    /// Replaces an object (PUT), or only its status when `status_only` (PUT .../status).
    pub fn update(
        &self,
        resource: &'static ResourceType,
        namespace: &str,
        name: &str,
        obj: Value,
        status_only: bool,
    ) -> Result<Arc<Value>, ApiError> {
        let body_name = name_of(&obj);
        if !body_name.is_empty() && body_name != name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
        let st = self.lock();
        let old = Arc::clone(Self::find(&st, resource, namespace, name)?);
        self.write(st, resource, old, obj, status_only)
    }

    /// Patches an object (PATCH), or only its status when `status_only`.
    pub fn patch(
        &self,
        resource: &'static ResourceType,
        namespace: &str,
        name: &str,
        kind: PatchKind,
        patch: &Value,
        status_only: bool,
    ) -> Result<Arc<Value>, ApiError> {
        let st = self.lock();
        let old = Arc::clone(Self::find(&st, resource, namespace, name)?);
        let mut new = (*old).clone();
        patch::apply(kind, &mut new, patch).map_err(|e| {
            ApiError::invalid(resource.kind, name, format!("cannot apply patch: {e}"))
        })?;
        self.write(st, resource, old, new, status_only)
    }

    /// The shared tail of update and patch: optimistic concurrency, server-owned fields,
    /// status subresource rules, Service allocation, generation, no-op detection.
    fn write(
        &self,
        mut st: MutexGuard<'_, State>,
        resource: &'static ResourceType,
        old: Arc<Value>,
        mut new: Value,
        status_only: bool,
    ) -> Result<Arc<Value>, ApiError> {
        let name = name_of(&old).to_string();
        let old_rv = &old["metadata"]["resourceVersion"];
        match new["metadata"]["resourceVersion"].as_str() {
            Some(rv) if !rv.is_empty() && Some(rv) != old_rv.as_str() => {
                return Err(ApiError::conflict(resource.plural, &name))
            }
            _ => {}
        }
        if !new.is_object() || !new["metadata"].is_object() && !status_only {
            return Err(ApiError::bad_request(format!(
                "the new state of {} {name:?} must be an object with metadata",
                resource.kind
            )));
        }
        if status_only {
            let mut whole = (*old).clone();
            copy_field(&mut whole, &new, "status");
            new = whole;
        } else if resource.has_status {
            copy_field(&mut new, &old, "status");
        }
        for field in ["apiVersion", "kind"] {
            copy_field(&mut new, &old, field);
        }
        for field in [
            "name",
            "namespace",
            "uid",
            "creationTimestamp",
            "generation",
            "resourceVersion",
        ] {
            copy_field(&mut new["metadata"], &old["metadata"], field);
        }
        if !status_only {
            defaults::apply(resource.kind, &mut new);
        }
        if resource.kind == "Service" && !status_only {
            st.services.assign(&mut new, Some(&old))?;
        }
        if new == *old {
            return Ok(old);
        }
        if new.get("spec") != old.get("spec") {
            let generation = old["metadata"]["generation"].as_i64().unwrap_or(0) + 1;
            new["metadata"]["generation"] = json!(generation);
        }
        Ok(self.commit(st, resource, EventType::Modified, new, Some(old)))
    }

    /// Deletes an object and returns its last state; deleting a Namespace deletes its contents.
    pub fn delete(
        &self,
        resource: &'static ResourceType,
        namespace: &str,
        name: &str,
    ) -> Result<Arc<Value>, ApiError> {
        if resource.kind == "Namespace" {
            self.delete_namespace_contents(name);
        }
        let mut st = self.lock();
        let old = Arc::clone(Self::find(&st, resource, namespace, name)?);
        if resource.kind == "Service" {
            st.services.release(&old);
        }
        Ok(self.commit(st, resource, EventType::Deleted, (*old).clone(), None))
    }

    fn delete_namespace_contents(&self, namespace: &str) {
        for resource in crate::resources::RESOURCES.iter().filter(|r| r.namespaced) {
            let (items, _) = self.list(resource, Some(namespace), &Selectors::default());
            for item in items {
                // Already gone when a concurrent delete won: nothing left to do for it.
                let _ = self.delete(resource, namespace, name_of(&item));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::find;

    fn store(window: usize) -> Store {
        Store::new(
            window,
            ServiceAllocator::new("10.43.0.0/16".parse().unwrap()),
        )
    }

    fn pods() -> &'static ResourceType {
        find("", "v1", "pods").unwrap()
    }

    fn pod(name: &str) -> Value {
        json!({"metadata": {"name": name, "labels": {"app": "web"}}, "spec": {"nodeName": "n1"}})
    }

    #[test]
    fn create_assigns_metadata_and_versions_increase() {
        let s = store(100);
        let a = s.create(pods(), Some("default"), pod("a")).unwrap();
        let b = s.create(pods(), Some("default"), pod("b")).unwrap();
        assert_eq!(a["metadata"]["resourceVersion"], "1");
        assert_eq!(b["metadata"]["resourceVersion"], "2");
        assert_eq!(a["metadata"]["namespace"], "default");
        assert_eq!(a["kind"], "Pod");
        assert_eq!(a["status"]["phase"], "Pending");
        assert!(a["metadata"]["uid"].as_str().is_some_and(|u| u.len() == 36));
        let err = s.create(pods(), Some("default"), pod("a")).unwrap_err();
        assert_eq!((err.code, err.reason), (409, "AlreadyExists"));
        let generated = s
            .create(
                pods(),
                Some("x"),
                json!({"metadata": {"generateName": "web-"}}),
            )
            .unwrap();
        assert!(name_of(&generated).starts_with("web-") && name_of(&generated).len() == 9);
    }

    #[test]
    fn stale_update_conflicts_and_noop_keeps_version() {
        let s = store(100);
        let created = s.create(pods(), Some("default"), pod("a")).unwrap();
        let mut changed = (*created).clone();
        changed["spec"]["nodeName"] = json!("n2");
        let updated = s
            .update(pods(), "default", "a", changed.clone(), false)
            .unwrap();
        assert_eq!(updated["metadata"]["generation"], 2);
        let err = s
            .update(pods(), "default", "a", changed, false)
            .unwrap_err();
        assert_eq!(err.code, 409);
        let same = s
            .patch(
                pods(),
                "default",
                "a",
                PatchKind::Merge,
                &json!({"spec": {"nodeName": "n2"}}),
                false,
            )
            .unwrap();
        assert_eq!(
            same["metadata"]["resourceVersion"],
            updated["metadata"]["resourceVersion"]
        );
    }

    #[test]
    fn status_subresource_is_separate_from_the_main_resource() {
        let s = store(100);
        s.create(pods(), Some("default"), pod("a")).unwrap();
        let main = s
            .patch(
                pods(),
                "default",
                "a",
                PatchKind::Merge,
                &json!({"status": {"phase": "Running"}}),
                false,
            )
            .unwrap();
        assert_eq!(main["status"]["phase"], "Pending");
        let status = s
            .patch(
                pods(),
                "default",
                "a",
                PatchKind::Merge,
                &json!({"status": {"phase": "Running"}, "metadata": {"labels": {"x": "y"}}}),
                true,
            )
            .unwrap();
        assert_eq!(status["status"]["phase"], "Running");
        assert!(status["metadata"]["labels"].get("x").is_none());
    }

    #[test]
    fn event_log_window_and_expiry() {
        let s = store(3);
        for name in ["a", "b", "c", "d"] {
            s.create(pods(), Some("default"), pod(name)).unwrap();
        }
        let (events, upto) = s.events_since(pods(), 1).unwrap();
        let names: Vec<&str> = events.iter().map(|e| name_of(&e.object)).collect();
        assert_eq!(names, ["b", "c", "d"]);
        assert_eq!(upto, 4);
        assert_eq!(s.events_since(pods(), 0).unwrap_err().code, 410);
        s.expire_history();
        assert_eq!(s.events_since(pods(), 3).unwrap_err().code, 410);
        assert!(s.events_since(pods(), 4).unwrap().0.is_empty());
        let deleted = s.delete(pods(), "default", "a").unwrap();
        assert_eq!(deleted["metadata"]["resourceVersion"], "5");
        let (events, _) = s.events_since(pods(), 4).unwrap();
        assert_eq!(events[0].kind, EventType::Deleted);
        let line: Value = serde_json::from_slice(&events[0].line).unwrap();
        assert_eq!(line["type"], "DELETED");
        assert_eq!(line["object"]["metadata"]["name"], "a");
    }
}
