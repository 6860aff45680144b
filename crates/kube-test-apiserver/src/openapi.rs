//! Minimal OpenAPI documents: enough for kubectl to see that the server validates fields
//! itself (`fieldValidation` on every PATCH operation), so it skips client-side validation.

use serde_json::{json, Map, Value};

use crate::resources::RESOURCES;

/// `GET /openapi/v2`: a valid, empty Swagger 2.0 document.
pub fn v2() -> Value {
    json!({
        "swagger": "2.0",
        "info": {"title": "Kubernetes", "version": "v1.33.0"},
        "paths": {},
        "definitions": {},
    })
}

fn group_version_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

/// `GET /openapi/v3`: where each group version's document lives.
pub fn v3_index() -> Value {
    let mut paths = Map::new();
    for r in RESOURCES {
        let gv = group_version_path(r.group, r.version);
        let url = format!("/openapi/v3/{gv}?hash=kube-test-apiserver");
        paths.insert(gv, json!({"serverRelativeURL": url}));
    }
    json!({"paths": paths})
}

/// `GET /openapi/v3/{api/v1 | apis/group/version}`: one PATCH operation per resource, tagged
/// with its group/version/kind and accepting `fieldValidation`.
pub fn v3_group_version(group: &str, version: &str) -> Option<Value> {
    let mut paths = Map::new();
    for r in RESOURCES
        .iter()
        .filter(|r| r.group == group && r.version == version)
    {
        let scope = if r.namespaced {
            "namespaces/{namespace}/"
        } else {
            ""
        };
        let path = format!(
            "/{}/{scope}{}/{{name}}",
            group_version_path(group, version),
            r.plural
        );
        let gvk = json!({"group": r.group, "version": r.version, "kind": r.kind});
        let operation = json!({
            "operationId": format!("patch{}", r.kind),
            "x-kubernetes-action": "patch",
            "x-kubernetes-group-version-kind": gvk,
            "parameters": [
                {"name": "fieldValidation", "in": "query", "schema": {"type": "string"}},
                {"name": "fieldManager", "in": "query", "schema": {"type": "string"}},
                {"name": "dryRun", "in": "query", "schema": {"type": "string"}},
            ],
            "responses": {"200": {"description": "OK"}},
        });
        paths.insert(path, json!({"patch": operation}));
    }
    (!paths.is_empty()).then(|| {
        json!({
            "openapi": "3.0.0",
            "info": {"title": "Kubernetes", "version": "v1.33.0"},
            "paths": paths,
            "components": {"schemas": {}},
        })
    })
}
