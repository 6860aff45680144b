//! URL paths and query strings as the Kubernetes API lays them out.

use std::collections::HashMap;

use crate::resources::{self, ResourceType};

/// A resource URL: a collection or one object, possibly its `/status` subresource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourcePath {
    /// The resource type addressed.
    pub resource: &'static ResourceType,
    /// The namespace in the path (`/namespaces/{ns}/...`), if any.
    pub namespace: Option<String>,
    /// The object name, absent for a collection.
    pub name: Option<String>,
    /// Whether the `/status` subresource is addressed.
    pub status: bool,
}

/// What a request path addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `/api`.
    CoreVersions,
    /// `/apis`.
    Groups,
    /// `/api/v1`, `/apis/{group}/{version}`.
    GroupVersion(String, String),
    /// `/version`.
    Version,
    /// `/openapi/v2`.
    OpenApiV2,
    /// `/openapi/v3`.
    OpenApiV3Index,
    /// `/openapi/v3/api/v1`, `/openapi/v3/apis/{group}/{version}`.
    OpenApiV3(String, String),
    /// `/healthz`, `/readyz`, `/livez`.
    Health,
    /// `/debug/requests`: the (user, verb, group, resource) seen.
    DebugRequests,
    /// `/debug/expire-watches`: drop the watch history, end watches with 410.
    DebugExpireWatches,
    /// `/debug/close-watches`: end every open watch stream.
    DebugCloseWatches,
    /// A resource collection or object.
    Resource(ResourcePath),
}

/// Splits `/api/v1/...` or `/apis/{group}/{version}/...` into (group, version, rest).
fn split_group_version(segments: &[String]) -> Option<(&str, &str, &[String])> {
    match segments {
        [api, version, rest @ ..] if api == "api" => Some(("", version, rest)),
        [apis, group, version, rest @ ..] if apis == "apis" => Some((group, version, rest)),
        _ => None,
    }
}

fn resource_path(group: &str, version: &str, rest: &[String]) -> Option<ResourcePath> {
    let lookup = |plural: &str| resources::find(group, version, plural);
    let (namespace, rest) = match rest {
        [ns_word, ns, plural, tail @ ..] if ns_word == "namespaces" && lookup(plural).is_some() => {
            (Some(ns.clone()), &rest[2..=2 + tail.len()])
        }
        _ => (None, rest),
    };
    let (plural, name, status) = match rest {
        [plural] => (plural, None, false),
        [plural, name] => (plural, Some(name.clone()), false),
        [plural, name, sub] if sub == "status" => (plural, Some(name.clone()), true),
        _ => return None,
    };
    let resource = lookup(plural)?;
    // A namespaced object is only addressed inside its namespace; a cluster-scoped one never is.
    let scoped_right = match (&namespace, &name) {
        (Some(_), _) => resource.namespaced,
        (None, Some(_)) => !resource.namespaced,
        (None, None) => true,
    };
    scoped_right.then_some(ResourcePath {
        resource,
        namespace,
        name,
        status,
    })
}

/// The route of a request path, or `None` when nothing is served there.
pub fn route(path: &str) -> Option<Route> {
    let segments: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(percent_decode)
        .collect();
    let words: Vec<&str> = segments.iter().map(String::as_str).collect();
    let fixed = match words.as_slice() {
        ["api"] => Some(Route::CoreVersions),
        ["apis"] => Some(Route::Groups),
        ["api", v] => Some(Route::GroupVersion(String::new(), v.to_string())),
        ["apis", g, v] => Some(Route::GroupVersion(g.to_string(), v.to_string())),
        ["version"] => Some(Route::Version),
        ["openapi", "v2"] => Some(Route::OpenApiV2),
        ["openapi", "v3"] => Some(Route::OpenApiV3Index),
        ["openapi", "v3", "api", v] => Some(Route::OpenApiV3(String::new(), v.to_string())),
        ["openapi", "v3", "apis", g, v] => Some(Route::OpenApiV3(g.to_string(), v.to_string())),
        ["healthz" | "readyz" | "livez"] => Some(Route::Health),
        ["debug", "requests"] => Some(Route::DebugRequests),
        ["debug", "expire-watches"] => Some(Route::DebugExpireWatches),
        ["debug", "close-watches"] => Some(Route::DebugCloseWatches),
        _ => None,
    };
    fixed.or_else(|| {
        let (group, version, rest) = split_group_version(&segments)?;
        resource_path(group, version, rest).map(Route::Resource)
    })
}

/// Decodes `%XX` escapes (and `+` as space when `plus_is_space`).
fn decode(text: &str, plus_is_space: bool) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = |b: u8| (b as char).to_digit(16);
                match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                    (Some(high), Some(low)) => {
                        out.push((high * 16 + low) as u8);
                        i += 3;
                        continue;
                    }
                    _ => out.push(b'%'),
                }
            }
            b'+' if plus_is_space => out.push(b' '),
            other => out.push(other),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn percent_decode(segment: &str) -> String {
    decode(segment, false)
}

/// Parses a query string into its parameters (the last value wins for repeated keys).
pub fn parse_query(query: &str) -> HashMap<String, String> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(key, true), decode(value, true))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resource(path: &str) -> ResourcePath {
        match route(path) {
            Some(Route::Resource(r)) => r,
            other => panic!("{path}: {other:?}"),
        }
    }

    #[test]
    fn resource_paths() {
        let pods = resource("/api/v1/namespaces/default/pods/web-1/status");
        assert_eq!(pods.resource.plural, "pods");
        assert_eq!(pods.namespace.as_deref(), Some("default"));
        assert_eq!(pods.name.as_deref(), Some("web-1"));
        assert!(pods.status);
        let all = resource("/api/v1/pods");
        assert_eq!((all.namespace, all.name), (None, None));
        let ns = resource("/api/v1/namespaces/kube-system");
        assert_eq!(ns.resource.kind, "Namespace");
        assert_eq!(ns.name.as_deref(), Some("kube-system"));
        let ns_status = resource("/api/v1/namespaces/kube-system/status");
        assert!(ns_status.status && ns_status.resource.kind == "Namespace");
        let lease = resource("/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/n1");
        assert_eq!(lease.resource.kind, "Lease");
        assert!(
            route("/api/v1/pods/web-1").is_none(),
            "namespaced object outside a namespace"
        );
        assert!(
            route("/api/v1/namespaces/x/nodes/n1").is_none(),
            "cluster object inside one"
        );
        assert!(route("/apis/apps/v1/deployments").is_none());
    }

    #[test]
    fn fixed_paths() {
        assert_eq!(route("/api"), Some(Route::CoreVersions));
        assert_eq!(route("/apis/"), Some(Route::Groups));
        assert_eq!(
            route("/apis/discovery.k8s.io/v1"),
            Some(Route::GroupVersion("discovery.k8s.io".into(), "v1".into()))
        );
        assert_eq!(
            route("/openapi/v3/api/v1"),
            Some(Route::OpenApiV3(String::new(), "v1".into()))
        );
    }

    #[test]
    fn query_decoding() {
        let q = parse_query("labelSelector=app%3Dweb%2Ctier+in+%28a%2Cb%29&watch=1&x");
        assert_eq!(q["labelSelector"], "app=web,tier in (a,b)");
        assert_eq!(q["watch"], "1");
        assert_eq!(q["x"], "");
        assert_eq!(decode("100%", false), "100%");
    }
}
