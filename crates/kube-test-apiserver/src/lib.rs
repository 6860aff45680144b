//! An in-memory Kubernetes API server for tests, benchmarks and demos (not part of the product).
//!
//! It serves discovery, list/watch with resourceVersion semantics, create/update/patch/delete and
//! the status subresource for Nodes, Pods, Services, Namespaces, Events, Endpoints,
//! EndpointSlices and Leases, over plain HTTP on 127.0.0.1, so that kube-rs and kubectl run
//! against it unchanged.
//!
//! In a test: `let server = TestApiServer::start(Config::default()).await?;` then point a client
//! at `server.kubeconfig()` (or `server.url()`); `server.expire_watches()` makes resuming
//! watches get 410 Gone, `server.close_watches()` ends streams, `server.requests()` lists the
//! (user, verb, group, resource) seen, the user being the client's bearer token. From a shell:
//! `kube-test-apiserver --port 0 --load objects.yaml --kubeconfig-out kubeconfig` prints
//! `listening on http://127.0.0.1:PORT`; `POST /debug/expire-watches`,
//! `POST /debug/close-watches` and `GET /debug/requests` do the same over HTTP.

mod allocator;
mod defaults;
mod error;
mod handlers;
mod loader;
mod meta;
mod openapi;
mod patch;
mod protobuf;
mod resources;
mod routes;
mod selectors;
mod store;
mod tables;
mod watch;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub use allocator::Ipv4Cidr;
pub use error::ApiError;
pub use loader::{load_objects, LoadError};

use handlers::ServerState;
use store::Store;

/// How to start a server.
#[derive(Debug, Clone)]
pub struct Config {
    /// TCP port on 127.0.0.1; 0 picks an ephemeral one.
    pub port: u16,
    /// How many events the watch history keeps; a watch resuming from an older
    /// resourceVersion gets 410 Gone.
    pub event_window: usize,
    /// The CIDR Service ClusterIPs come from; its first host is `default/kubernetes`.
    pub service_cidr: Ipv4Cidr,
    /// Objects created at start, after the built-in namespaces and `default/kubernetes`.
    pub objects: Vec<Value>,
    /// How often watches that allow bookmarks receive one.
    pub bookmark_interval: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            port: 0,
            event_window: 10_000,
            service_cidr: "10.43.0.0/16".parse().expect("valid default CIDR"),
            objects: Vec::new(),
            bookmark_interval: Duration::from_secs(5),
        }
    }
}

/// One (user, verb, group, resource) the server was asked for, and how often.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RequestRecord {
    /// The client's bearer token, taken as its user name ("" without one).
    #[serde(default)]
    pub user: String,
    /// Kubernetes verb: get, list, watch, create, update, patch, delete, deletecollection.
    pub verb: String,
    /// API group, empty for core.
    pub group: String,
    /// Resource plural, with `/status` for the subresource.
    pub resource: String,
    /// Number of requests.
    pub count: u64,
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The listening socket could not be bound.
    #[error("binding 127.0.0.1:{port}: {source}")]
    Bind {
        /// The requested port.
        port: u16,
        /// The OS error.
        source: std::io::Error,
    },
    /// An initial object was rejected.
    #[error("initial object {kind} {name:?}: {source}")]
    Object {
        /// Its kind.
        kind: String,
        /// Its name.
        name: String,
        /// The API error.
        source: Box<ApiError>,
    },
    /// An initial object has a kind this server does not serve.
    #[error("initial object {name:?}: {api_version} {kind} is not served")]
    UnknownKind {
        /// Its apiVersion.
        api_version: String,
        /// Its kind.
        kind: String,
        /// Its name.
        name: String,
    },
}

/// A running server; dropping it stops accepting connections and ends open watches.
pub struct TestApiServer {
    addr: SocketAddr,
    state: Arc<ServerState>,
    accept: JoinHandle<()>,
}

fn seed(store: &Store, config: &Config) -> Result<(), StartError> {
    let kubernetes = json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "kubernetes", "namespace": "default",
                     "labels": {"component": "apiserver", "provider": "kubernetes"}},
        "spec": {"clusterIP": config.service_cidr.first_host().to_string(), "type": "ClusterIP",
                 "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 6443}]},
    });
    let namespaces = ["default", "kube-system", "kube-public", "kube-node-lease"]
        .map(|name| json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}));
    // A built-in object the loaded ones also define (e.g. a cluster dump's own
    // default/kubernetes Service) is taken from the loaded objects.
    let identity = |o: &Value| {
        (
            o["kind"].clone(),
            o["metadata"]["namespace"].clone(),
            o["metadata"]["name"].clone(),
        )
    };
    let loaded: std::collections::HashSet<_> = config.objects.iter().map(identity).collect();
    let builtins = namespaces
        .iter()
        .chain([&kubernetes])
        .filter(|o| !loaded.contains(&identity(o)));
    for object in builtins.chain(&config.objects) {
        let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
        let (api_version, kind) = (text(&object["apiVersion"]), text(&object["kind"]));
        let name = text(&object["metadata"]["name"]);
        let resource =
            resources::by_kind(&api_version, &kind).ok_or_else(|| StartError::UnknownKind {
                api_version,
                kind: kind.clone(),
                name: name.clone(),
            })?;
        store
            .create(resource, None, object.clone())
            .map_err(|err| StartError::Object {
                kind,
                name,
                source: Box::new(err),
            })?;
    }
    Ok(())
}

impl TestApiServer {
    /// Binds 127.0.0.1:`config.port`, loads the initial objects and starts serving on the
    /// current tokio runtime.
    pub async fn start(config: Config) -> Result<Self, StartError> {
        let store = Arc::new(Store::new(
            config.event_window,
            allocator::ServiceAllocator::new(config.service_cidr),
        ));
        seed(&store, &config)?;
        let listener = TcpListener::bind(("127.0.0.1", config.port))
            .await
            .map_err(|source| StartError::Bind {
                port: config.port,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| StartError::Bind {
            port: config.port,
            source,
        })?;
        let state = Arc::new(ServerState {
            store,
            requests: Mutex::new(Default::default()),
            address: addr.to_string(),
            bookmark_interval: config.bookmark_interval,
        });
        let accept = tokio::spawn(accept_loop(listener, Arc::clone(&state)));
        Ok(Self {
            addr,
            state,
            accept,
        })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The base URL, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A kubeconfig (YAML) whose current context points at this server, namespace `default`.
    pub fn kubeconfig(&self) -> String {
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: kube-test-apiserver\n  cluster:\n    \
             server: {}\ncontexts:\n- name: kube-test-apiserver\n  context:\n    cluster: \
             kube-test-apiserver\n    user: test\n    namespace: default\ncurrent-context: \
             kube-test-apiserver\nusers:\n- name: test\n  user: {{}}\n",
            self.url()
        )
    }

    /// Writes [`Self::kubeconfig`] to `path`.
    pub fn write_kubeconfig(&self, path: &Path) -> std::io::Result<()> {
        std::fs::write(path, self.kubeconfig())
    }

    /// Drops the watch history and ends open watches with a 410 ERROR event, so clients that
    /// resume from their last resourceVersion get 410 Gone and must relist.
    pub fn expire_watches(&self) {
        self.state.store.expire_history();
    }

    /// Ends every open watch stream; clients resume from their last resourceVersion.
    pub fn close_watches(&self) {
        self.state.store.close_watches();
    }

    /// The (user, verb, group, resource) requested so far, with counts.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.state.request_records()
    }

    /// The newest resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.state.store.current_rv()
    }
}

impl Drop for TestApiServer {
    fn drop(&mut self) {
        self.accept.abort();
        self.state.store.close_watches();
    }
}

async fn accept_loop(listener: TcpListener, state: Arc<ServerState>) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(err) => {
                tracing::warn!(%err, "accept failed");
                continue;
            }
        };
        // Small request/response exchanges must not wait for Nagle's algorithm.
        if let Err(err) = stream.set_nodelay(true) {
            tracing::warn!(%err, %peer, "setting TCP_NODELAY failed");
        }
        let state = Arc::clone(&state);
        tokio::spawn(async move {
            let service = service_fn(move |req| handlers::handle(Arc::clone(&state), req));
            if let Err(err) = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(%err, %peer, "connection ended with an error");
            }
        });
    }
}
