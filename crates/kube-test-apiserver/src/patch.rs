//! The three PATCH flavours: JSON merge patch, strategic merge patch and JSON patch.

use serde_json::{Map, Value};

/// A patch that cannot be applied; the message says which operation failed and why.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct PatchError(String);

/// The patch flavour named by the request's Content-Type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchKind {
    /// `application/merge-patch+json` (RFC 7386).
    Merge,
    /// `application/strategic-merge-patch+json`.
    Strategic,
    /// `application/json-patch+json` (RFC 6902).
    Json,
}

impl PatchKind {
    /// The flavour for a Content-Type, or `None` when it is not a patch type served here.
    pub fn from_content_type(content_type: &str) -> Option<Self> {
        match content_type.split(';').next().unwrap_or_default().trim() {
            "application/merge-patch+json" => Some(Self::Merge),
            "application/strategic-merge-patch+json" => Some(Self::Strategic),
            "application/json-patch+json" => Some(Self::Json),
            _ => None,
        }
    }
}

/// Applies `patch` of the given flavour to `target`.
pub fn apply(kind: PatchKind, target: &mut Value, patch: &Value) -> Result<(), PatchError> {
    match kind {
        PatchKind::Merge => {
            merge_patch(target, patch);
            Ok(())
        }
        PatchKind::Strategic => {
            strategic_merge(target, patch);
            Ok(())
        }
        PatchKind::Json => json_patch(target, patch),
    }
}

/// RFC 7386: objects merge recursively, `null` deletes, anything else replaces.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch_map) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let target_map = target.as_object_mut().expect("made an object above");
    for (key, value) in patch_map {
        if value.is_null() {
            target_map.remove(key);
        } else {
            merge_patch(target_map.entry(key.clone()).or_insert(Value::Null), value);
        }
    }
}

/// The merge key of a list field that Kubernetes merges element by element
/// (its `patchMergeKey`); lists of other fields are replaced whole.
fn merge_key(field: &str, items: &[Value]) -> Option<&'static str> {
    match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "volumes"
        | "env"
        | "imagePullSecrets"
        | "containerStatuses"
        | "initContainerStatuses" => Some("name"),
        "volumeMounts" => Some("mountPath"),
        "conditions" | "addresses" => Some("type"),
        "ownerReferences" => Some("uid"),
        "ports" if items.iter().any(|i| i.get("containerPort").is_some()) => Some("containerPort"),
        "ports" => Some("port"),
        _ => None,
    }
}

/// List fields of scalars that Kubernetes merges as sets.
fn is_merged_scalar_list(field: &str) -> bool {
    field == "finalizers"
}

/// Strategic merge patch: merge-patch semantics for maps, plus element-wise merge of the
/// keyed lists Kubernetes declares, `$patch: replace|delete` and the `$deleteFromPrimitiveList`
/// directive; ordering directives (`$setElementOrder`, `$retainKeys`) are accepted and ignored.
pub fn strategic_merge(target: &mut Value, patch: &Value) {
    let Value::Object(patch_map) = patch else {
        *target = patch.clone();
        return;
    };
    match patch_map.get("$patch").and_then(Value::as_str) {
        Some("replace") => {
            let mut replacement = patch_map.clone();
            replacement.remove("$patch");
            *target = Value::Object(replacement);
            return;
        }
        Some("delete") => {
            *target = Value::Null;
            return;
        }
        _ => {}
    }
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let target_map = target.as_object_mut().expect("made an object above");
    for (key, value) in patch_map {
        if key.starts_with("$setElementOrder/") || key == "$retainKeys" || key == "$patch" {
            continue;
        }
        if let Some(field) = key.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(Value::Array(list)), Value::Array(gone)) =
                (target_map.get_mut(field), value)
            {
                list.retain(|item| !gone.contains(item));
            }
            continue;
        }
        if value.is_null() {
            target_map.remove(key);
            continue;
        }
        let slot = target_map.entry(key.clone()).or_insert(Value::Null);
        match (slot, value) {
            (Value::Array(current), Value::Array(items)) => merge_list(key, current, items),
            (slot, value) => strategic_merge(slot, value),
        }
        if target_map.get(key).is_some_and(Value::is_null) {
            target_map.remove(key);
        }
    }
}

fn merge_list(field: &str, current: &mut Vec<Value>, items: &[Value]) {
    if is_merged_scalar_list(field) {
        for item in items {
            if !current.contains(item) {
                current.push(item.clone());
            }
        }
        return;
    }
    let Some(key) = merge_key(field, items) else {
        *current = items.to_vec();
        return;
    };
    if items
        .iter()
        .any(|i| i.get("$patch").and_then(Value::as_str) == Some("replace"))
    {
        *current = items
            .iter()
            .filter(|i| i.get("$patch").is_none())
            .cloned()
            .collect();
        return;
    }
    for item in items {
        let position = item
            .get(key)
            .and_then(|k| current.iter().position(|c| c.get(key) == Some(k)));
        let deleting = item.get("$patch").and_then(Value::as_str) == Some("delete");
        match (position, deleting) {
            (Some(i), true) => {
                current.remove(i);
            }
            (None, true) => {}
            (Some(i), false) => strategic_merge(&mut current[i], item),
            (None, false) => {
                let mut added = Value::Null;
                strategic_merge(&mut added, item);
                current.push(added);
            }
        }
    }
}

/// Decodes one JSON pointer token (`~1` is `/`, `~0` is `~`).
fn unescape(token: &str) -> String {
    token.replace("~1", "/").replace("~0", "~")
}

/// Splits a JSON pointer into its parent pointer and last token.
fn split_pointer(path: &str) -> Result<(&str, String), PatchError> {
    let at = path
        .rfind('/')
        .ok_or_else(|| PatchError(format!("json patch path {path:?} does not start with /")))?;
    Ok((&path[..at], unescape(&path[at + 1..])))
}

fn remove_at(target: &mut Value, path: &str) -> Result<Value, PatchError> {
    let (parent, last) = split_pointer(path)?;
    let missing = || PatchError(format!("json patch path {path:?} does not exist"));
    match target.pointer_mut(parent).ok_or_else(missing)? {
        Value::Object(map) => map.remove(&last).ok_or_else(missing),
        Value::Array(list) => {
            let index: usize = last.parse().map_err(|_| missing())?;
            (index < list.len())
                .then(|| list.remove(index))
                .ok_or_else(missing)
        }
        _ => Err(missing()),
    }
}

fn add_at(target: &mut Value, path: &str, value: Value) -> Result<(), PatchError> {
    if path.is_empty() {
        *target = value;
        return Ok(());
    }
    let (parent, last) = split_pointer(path)?;
    let missing = || PatchError(format!("json patch path {path:?}: parent does not exist"));
    match target.pointer_mut(parent).ok_or_else(missing)? {
        Value::Object(map) => {
            map.insert(last, value);
            Ok(())
        }
        Value::Array(list) if last == "-" => {
            list.push(value);
            Ok(())
        }
        Value::Array(list) => match last.parse::<usize>() {
            Ok(index) if index <= list.len() => {
                list.insert(index, value);
                Ok(())
            }
            _ => Err(PatchError(format!(
                "json patch index {path:?} out of range"
            ))),
        },
        _ => Err(missing()),
    }
}

/// RFC 6902: add, remove, replace, move, copy, test.
pub fn json_patch(target: &mut Value, patch: &Value) -> Result<(), PatchError> {
    let ops = patch
        .as_array()
        .ok_or_else(|| PatchError("json patch must be an array of operations".into()))?;
    for op in ops {
        let name = op["op"].as_str().unwrap_or_default();
        let path = op["path"].as_str().unwrap_or_default();
        let from = op["from"].as_str().unwrap_or_default();
        match name {
            "add" => add_at(target, path, op["value"].clone())?,
            "remove" => {
                remove_at(target, path)?;
            }
            "replace" => {
                remove_at(target, path)?;
                add_at(target, path, op["value"].clone())?;
            }
            "move" => {
                let value = remove_at(target, from)?;
                add_at(target, path, value)?;
            }
            "copy" => {
                let value = target.pointer(from).cloned().ok_or_else(|| {
                    PatchError(format!("json patch from {from:?} does not exist"))
                })?;
                add_at(target, path, value)?;
            }
            "test" => {
                if target.pointer(path) != Some(&op["value"]) {
                    return Err(PatchError(format!("json patch test failed at {path:?}")));
                }
            }
            other => return Err(PatchError(format!("unknown json patch op {other:?}"))),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patch_merges_deletes_and_replaces() {
        let mut obj =
            json!({"metadata": {"annotations": {"a": "1", "b": "2"}}, "spec": {"x": [1, 2]}});
        merge_patch(
            &mut obj,
            &json!({"metadata": {"annotations": {"a": null, "c": "3"}}, "spec": {"x": [3]}}),
        );
        assert_eq!(
            obj,
            json!({"metadata": {"annotations": {"b": "2", "c": "3"}}, "spec": {"x": [3]}})
        );
    }

    #[test]
    fn strategic_merge_merges_keyed_lists() {
        let mut pod = json!({"spec": {"containers": [
            {"name": "a", "image": "a:1"}, {"name": "b", "image": "b:1"}
        ]}, "metadata": {"finalizers": ["x"]}});
        strategic_merge(
            &mut pod,
            &json!({
                "$setElementOrder/containers": [{"name": "a"}, {"name": "b"}],
                "spec": {"containers": [{"name": "b", "image": "b:2"}, {"name": "c", "image": "c:1"},
                                         {"name": "a", "$patch": "delete"}]},
                "metadata": {"finalizers": ["y"]},
            }),
        );
        assert_eq!(
            pod,
            json!({"spec": {"containers": [
                {"name": "b", "image": "b:2"}, {"name": "c", "image": "c:1"}
            ]}, "metadata": {"finalizers": ["x", "y"]}})
        );
    }

    #[test]
    fn strategic_merge_replaces_unkeyed_lists_and_honours_replace() {
        let mut node =
            json!({"spec": {"taints": [{"key": "a"}]}, "status": {"capacity": {"cpu": "1"}}});
        strategic_merge(
            &mut node,
            &json!({"spec": {"taints": [{"key": "b"}]}, "status": {"capacity": {"$patch": "replace", "mem": "1Gi"}}}),
        );
        assert_eq!(
            node,
            json!({"spec": {"taints": [{"key": "b"}]}, "status": {"capacity": {"mem": "1Gi"}}})
        );
    }

    #[test]
    fn json_patch_operations() {
        let mut obj = json!({"metadata": {"labels": {"a/b": "1"}}, "list": [1, 2]});
        json_patch(
            &mut obj,
            &json!([
                {"op": "add", "path": "/list/-", "value": 3},
                {"op": "remove", "path": "/metadata/labels/a~1b"},
                {"op": "add", "path": "/metadata/labels/c", "value": "2"},
                {"op": "replace", "path": "/list/0", "value": 9},
                {"op": "copy", "from": "/list/0", "path": "/copied"},
                {"op": "test", "path": "/copied", "value": 9},
            ]),
        )
        .unwrap();
        assert_eq!(
            obj,
            json!({"metadata": {"labels": {"c": "2"}}, "list": [9, 2, 3], "copied": 9})
        );
        let failed = json_patch(
            &mut obj,
            &json!([{"op": "test", "path": "/copied", "value": 1}]),
        );
        assert!(failed.unwrap_err().to_string().contains("/copied"));
    }
}
