//! Reading Kubernetes objects from YAML (multi-document, or `kind: List`).

use serde::Deserialize;
use serde_json::Value;

/// A YAML document that could not be read as objects.
#[derive(Debug, thiserror::Error)]
#[error("{source_name}: document {index}: {reason}")]
pub struct LoadError {
    source_name: String,
    index: usize,
    reason: String,
}

/// Parses every object in `text` (named `source_name` in errors): documents separated by
/// `---`, `kind: List` documents expanded into their items, empty documents skipped.
pub fn load_objects(source_name: &str, text: &str) -> Result<Vec<Value>, LoadError> {
    let mut objects = Vec::new();
    for (index, document) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let error = |reason: String| LoadError {
            source_name: source_name.to_string(),
            index,
            reason,
        };
        let value = Value::deserialize(document).map_err(|e| error(e.to_string()))?;
        match value {
            Value::Null => {}
            Value::Object(_) if value["kind"] == "List" => match &value["items"] {
                Value::Array(items) => objects.extend(items.iter().cloned()),
                Value::Null => {}
                _ => return Err(error("a List's items must be an array".into())),
            },
            Value::Object(_) => objects.push(value),
            _ => return Err(error("not an object".into())),
        }
    }
    Ok(objects)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multi_document_and_lists() {
        let text = "apiVersion: v1\nkind: Node\nmetadata: {name: n1}\n---\n---\n\
                    apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: Pod, metadata: {name: p}}\n\
                    - {apiVersion: v1, kind: Pod, metadata: {name: q}}\n";
        let objects = load_objects("test.yaml", text).unwrap();
        let names: Vec<&str> = objects
            .iter()
            .map(|o| o["metadata"]["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["n1", "p", "q"]);
        let err = load_objects("bad.yaml", "a: 1\n---\n- x\n").unwrap_err();
        assert_eq!(err.to_string(), "bad.yaml: document 1: not an object");
    }
}
