//! Request dispatch: discovery documents, resource verbs and the debug endpoints.

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::{HeaderMap, ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::error::ApiError;
use crate::patch::PatchKind;
use crate::resources::{self, ResourceType};
use crate::routes::{self, parse_query, ResourcePath, Route};
use crate::selectors::{FieldSelector, LabelSelector, Selectors};
use crate::store::Store;
use crate::watch::{self, Body, WatchRequest, WatchStart};
use crate::{openapi, tables, RequestRecord};

/// Everything a request handler needs, shared by all connections.
pub struct ServerState {
    /// The objects.
    pub store: Arc<Store>,
    /// Count of requests per (user, verb, group, resource).
    pub requests: Mutex<BTreeMap<(String, String, String, String), u64>>,
    /// `host:port` the server is reachable at, for `/api`'s serverAddressByClientCIDRs.
    pub address: String,
    /// How often watches with `allowWatchBookmarks=true` receive a BOOKMARK.
    pub bookmark_interval: Duration,
}

impl ServerState {
    fn record(&self, user: &str, verb: &str, group: &str, resource: String) {
        let mut requests = self.requests.lock().unwrap_or_else(|p| p.into_inner());
        *requests
            .entry((
                user.to_string(),
                verb.to_string(),
                group.to_string(),
                resource,
            ))
            .or_default() += 1;
    }

    /// The (user, verb, group, resource) seen so far, with counts.
    pub fn request_records(&self) -> Vec<RequestRecord> {
        let requests = self.requests.lock().unwrap_or_else(|p| p.into_inner());
        requests
            .iter()
            .map(|((user, verb, group, resource), count)| RequestRecord {
                user: user.clone(),
                verb: verb.clone(),
                group: group.clone(),
                resource: resource.clone(),
                count: *count,
            })
            .collect()
    }
}

fn json_response(status: StatusCode, body: Bytes) -> Response<Body> {
    Response::builder()
        .status(status)
        .header(CONTENT_TYPE, "application/json")
        .body(Body::Full(Some(body)))
        .expect("static headers are valid")
}

fn value_response(status: StatusCode, value: &Value) -> Response<Body> {
    json_response(
        status,
        Bytes::from(serde_json::to_vec(value).expect("JSON values always serialize")),
    )
}

fn error_response(err: &ApiError) -> Response<Body> {
    let status = StatusCode::from_u16(err.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    value_response(status, &err.status())
}

/// Serves one request and logs it (method, path, query, status, latency).
pub async fn handle(
    state: Arc<ServerState>,
    req: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let started = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or_default().to_string();
    let response = dispatch(&state, req, &path, &query)
        .await
        .unwrap_or_else(|err| error_response(&err));
    tracing::info!(
        %method,
        %path,
        %query,
        status = response.status().as_u16(),
        latency_us = started.elapsed().as_micros() as u64,
        "request"
    );
    Ok(response)
}

async fn dispatch(
    state: &ServerState,
    req: Request<Incoming>,
    path: &str,
    query: &str,
) -> Result<Response<Body>, ApiError> {
    let route = routes::route(path).ok_or_else(|| ApiError::no_route(path))?;
    let ok = |value: Value| Ok(value_response(StatusCode::OK, &value));
    let method = req.method().clone();
    if !matches!(route, Route::Resource(_)) && method != Method::GET && method != Method::POST {
        return Err(ApiError::method_not_allowed(method.as_str(), path));
    }
    match route {
        Route::CoreVersions => ok(resources::core_versions(&state.address)),
        Route::Groups => ok(resources::group_list()),
        Route::GroupVersion(group, version) => resources::resource_list(&group, &version)
            .map_or_else(|| Err(ApiError::no_route(path)), ok),
        Route::Version => ok(resources::version_info()),
        Route::OpenApiV2 => ok(openapi::v2()),
        Route::OpenApiV3Index => ok(openapi::v3_index()),
        Route::OpenApiV3(group, version) => openapi::v3_group_version(&group, &version)
            .map_or_else(|| Err(ApiError::no_route(path)), ok),
        Route::Health => Ok(Response::new(Body::Full(Some(Bytes::from_static(b"ok"))))),
        Route::DebugRequests => ok(json!(state.request_records())),
        Route::DebugExpireWatches => {
            state.store.expire_history();
            ok(json!({"expired": true, "resourceVersion": state.store.current_rv().to_string()}))
        }
        Route::DebugCloseWatches => {
            state.store.close_watches();
            ok(json!({"closed": true}))
        }
        Route::Resource(target) => {
            let headers = req.headers().clone();
            let body = req
                .into_body()
                .collect()
                .await
                .map_err(|e| ApiError::bad_request(format!("reading the request body: {e}")))?
                .to_bytes();
            serve_resource(state, &method, target, &parse_query(query), &headers, &body)
        }
    }
}

/// The Kubernetes verb of a request on a resource path.
fn verb_of(
    method: &Method,
    target: &ResourcePath,
    query: &HashMap<String, String>,
) -> Option<&'static str> {
    let watch = query.get("watch").is_some_and(|w| w == "true" || w == "1");
    let verb = match (method.as_str(), target.name.is_some()) {
        ("GET", false) if watch => "watch",
        ("GET", false) => "list",
        ("GET", true) => "get",
        ("POST", false) => "create",
        ("PUT", true) => "update",
        ("PATCH", true) => "patch",
        ("DELETE", true) => "delete",
        ("DELETE", false) => "deletecollection",
        _ => return None,
    };
    let status_verb = matches!(verb, "get" | "update" | "patch");
    (!target.status || (status_verb && target.resource.has_status)).then_some(verb)
}

/// Who sent a request: its bearer token, taken as the user name (a test gives each client a
/// token naming it, e.g. a ServiceAccount's user), or "" without one. Nothing is authenticated.
fn user_of(headers: &HeaderMap) -> &str {
    headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default()
}

fn content_type(headers: &HeaderMap) -> &str {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json")
}

/// Decodes a JSON, YAML or Kubernetes-protobuf request body.
fn decode_body(headers: &HeaderMap, body: &[u8]) -> Result<Value, ApiError> {
    let kind = content_type(headers);
    if kind.starts_with("application/vnd.kubernetes.protobuf") {
        return crate::protobuf::decode(body);
    }
    if kind.contains("yaml") {
        return serde_yaml::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("request body is not valid YAML: {e}")));
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("request body is not valid JSON: {e}")))
}

fn selectors_from(query: &HashMap<String, String>) -> Result<Selectors, ApiError> {
    let parse_err = |e: crate::selectors::SelectorError| ApiError::bad_request(e.to_string());
    Ok(Selectors {
        labels: LabelSelector::parse(query.get("labelSelector").map_or("", String::as_str))
            .map_err(parse_err)?,
        fields: FieldSelector::parse(query.get("fieldSelector").map_or("", String::as_str))
            .map_err(parse_err)?,
    })
}

fn list_body(resource: &ResourceType, items: &[Arc<Value>], rv: u64) -> Bytes {
    let mut out = Vec::with_capacity(256 + items.len() * 512);
    write!(
        out,
        r#"{{"kind":"{}List","apiVersion":"{}","metadata":{{"resourceVersion":"{rv}"}},"items":["#,
        resource.kind,
        resource.api_version()
    )
    .expect("writing to a Vec cannot fail");
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        serde_json::to_writer(&mut out, &**item).expect("JSON values always serialize");
    }
    out.extend_from_slice(b"]}");
    Bytes::from(out)
}

fn parse_rv(text: &str) -> Result<u64, ApiError> {
    text.parse()
        .map_err(|_| ApiError::bad_request(format!("resourceVersion {text:?} is not a number")))
}

fn serve_resource(
    state: &ServerState,
    method: &Method,
    target: ResourcePath,
    query: &HashMap<String, String>,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response<Body>, ApiError> {
    let resource = target.resource;
    let verb = verb_of(method, &target, query)
        .ok_or_else(|| ApiError::method_not_allowed(method.as_str(), resource.plural))?;
    let recorded = if target.status {
        format!("{}/status", resource.plural)
    } else {
        resource.plural.to_string()
    };
    state.record(user_of(headers), verb, resource.group, recorded);
    if query.contains_key("dryRun") && !matches!(verb, "get" | "list" | "watch") {
        // Persisting a dry run would be worse than refusing it.
        return Err(ApiError::bad_request(format!(
            "dryRun is not supported by kube-test-apiserver ({verb} {})",
            resource.plural
        )));
    }
    let store = &state.store;
    let namespace = target.namespace.clone().unwrap_or_default();
    let name = target.name.clone().unwrap_or_default();
    let as_table = tables::wants_table(
        headers
            .get(ACCEPT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default(),
    );
    let ok = |obj: Arc<Value>| value_response(StatusCode::OK, &obj);
    match verb {
        "list" => {
            let selectors = selectors_from(query)?;
            if query.get("resourceVersionMatch").map(String::as_str) == Some("Exact") {
                let wanted = parse_rv(query.get("resourceVersion").map_or("", String::as_str))?;
                if wanted != store.current_rv() {
                    return Err(ApiError::gone(format!(
                        "too old resource version: {wanted} ({})",
                        store.current_rv()
                    )));
                }
            }
            let (items, rv) = store.list(resource, target.namespace.as_deref(), &selectors);
            if as_table {
                let table = tables::table(resource, items.iter().map(|i| &**i), Some(rv));
                return Ok(value_response(StatusCode::OK, &table));
            }
            Ok(json_response(
                StatusCode::OK,
                list_body(resource, &items, rv),
            ))
        }
        "watch" => start_watch(state, target, query, as_table),
        "get" if as_table => {
            let obj = store.get(resource, &namespace, &name)?;
            Ok(value_response(
                StatusCode::OK,
                &tables::table(resource, [&*obj], None),
            ))
        }
        "get" => store.get(resource, &namespace, &name).map(ok),
        "create" => {
            let obj = decode_body(headers, body)?;
            let created = store.create(resource, target.namespace.as_deref(), obj)?;
            Ok(value_response(StatusCode::CREATED, &created))
        }
        "update" => {
            let obj = decode_body(headers, body)?;
            store
                .update(resource, &namespace, &name, obj, target.status)
                .map(ok)
        }
        "patch" => patch(state, &target, headers, body).map(ok),
        "delete" => store.delete(resource, &namespace, &name).map(ok),
        _ => {
            let selectors = selectors_from(query)?;
            let (items, _) = store.list(resource, target.namespace.as_deref(), &selectors);
            let deleted: Vec<Arc<Value>> = items
                .iter()
                .filter_map(|item| {
                    let meta = &item["metadata"];
                    let ns = meta["namespace"].as_str().unwrap_or_default();
                    store
                        .delete(resource, ns, meta["name"].as_str().unwrap_or_default())
                        .ok()
                })
                .collect();
            Ok(json_response(
                StatusCode::OK,
                list_body(resource, &deleted, store.current_rv()),
            ))
        }
    }
}

/// PATCH in any of the three flavours, plus server-side apply approximated as a merge patch
/// that creates the object when it is missing.
fn patch(
    state: &ServerState,
    target: &ResourcePath,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Arc<Value>, ApiError> {
    let (resource, namespace, name) = (
        target.resource,
        target.namespace.as_deref().unwrap_or_default(),
        target.name.as_deref().unwrap_or_default(),
    );
    let content = content_type(headers);
    let apply = content.starts_with("application/apply-patch");
    let kind = if apply {
        PatchKind::Merge
    } else {
        PatchKind::from_content_type(content).ok_or_else(|| {
            ApiError::unsupported_media(format!(
                "the patch Content-Type {content:?} for {} {name:?} is not supported",
                resource.kind
            ))
        })?
    };
    let patch_body: Value = if apply {
        serde_yaml::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("apply body: {e}")))?
    } else {
        serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("patch body is not valid JSON: {e}")))?
    };
    match state
        .store
        .patch(resource, namespace, name, kind, &patch_body, target.status)
    {
        Err(err) if err.code == 404 && apply && !target.status => {
            state
                .store
                .create(resource, target.namespace.as_deref(), patch_body)
        }
        other => other,
    }
}

fn start_watch(
    state: &ServerState,
    target: ResourcePath,
    query: &HashMap<String, String>,
    as_table: bool,
) -> Result<Response<Body>, ApiError> {
    let flag = |key: &str| query.get(key).is_some_and(|v| v == "true" || v == "1");
    let bookmarks = flag("allowWatchBookmarks");
    let start = match query.get("resourceVersion").map(String::as_str) {
        _ if flag("sendInitialEvents") => WatchStart::Snapshot {
            end_bookmark: bookmarks,
        },
        None | Some("") | Some("0") => WatchStart::Snapshot {
            end_bookmark: false,
        },
        Some(rv) => WatchStart::After(parse_rv(rv)?),
    };
    let timeout = match query.get("timeoutSeconds") {
        Some(secs) => Some(Duration::from_secs(secs.parse().map_err(|_| {
            ApiError::bad_request(format!("timeoutSeconds {secs:?} is not a number"))
        })?)),
        None => None,
    };
    let request = WatchRequest {
        resource: target.resource,
        namespace: target.namespace,
        selectors: selectors_from(query)?,
        start,
        bookmarks,
        timeout,
        as_table,
    };
    let (tx, rx) = mpsc::channel(256);
    tokio::spawn(watch::run(
        Arc::clone(&state.store),
        request,
        tx,
        state.bookmark_interval,
    ));
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header(CONTENT_TYPE, "application/json")
        .body(Body::Stream(rx))
        .expect("static headers are valid"))
}
