//! The real kube-rs client (kube 5 / k8s-openapi 0.29) against the test server.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::{Stream, StreamExt};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Pod, Service};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::core::WatchEvent;
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Client, ResourceExt};
use kube_test_apiserver::{Config, TestApiServer};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(10);

async fn start(config: Config) -> (TestApiServer, Client) {
    let server = TestApiServer::start(config).await.expect("server starts");
    let kubeconfig = Kubeconfig::from_yaml(&server.kubeconfig()).expect("kubeconfig parses");
    let client_config =
        kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
            .await
            .expect("kubeconfig is usable");
    let client = Client::try_from(client_config).expect("client builds");
    (server, client)
}

fn pod(name: &str, app: &str, node: &str) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"app": app}},
        "spec": {"nodeName": node, "containers": [{"name": "c", "image": "busybox"}]},
    }))
    .expect("valid pod")
}

async fn next<S: Stream + Unpin>(stream: &mut S) -> S::Item {
    tokio::time::timeout(WAIT, stream.next())
        .await
        .expect("an event within the wait")
        .expect("the stream goes on")
}

/// The names a watcher's initial list delivers, up to its `InitDone`.
async fn initial_names<S>(events: &mut S) -> Vec<String>
where
    S: Stream<Item = watcher::Result<watcher::Event<Pod>>> + Unpin,
{
    let mut initial = Vec::new();
    loop {
        match next(events).await.unwrap() {
            watcher::Event::Init => {}
            watcher::Event::InitApply(p) => initial.push(p.name_any()),
            watcher::Event::InitDone => return initial,
            other => panic!("unexpected {other:?}"),
        }
    }
}

#[tokio::test]
async fn list_and_watch_pods_with_label_and_field_selectors() {
    let (server, client) = start(Config::default()).await;
    let pods: Api<Pod> = Api::namespaced(client, "apps");
    let pp = PostParams::default();
    for (name, app, node) in [("a", "web", "n1"), ("b", "web", "n2"), ("c", "db", "n1")] {
        pods.create(&pp, &pod(name, app, node)).await.unwrap();
    }
    let names = |list: kube::core::ObjectList<Pod>| -> Vec<String> {
        list.items.iter().map(|p| p.name_any()).collect()
    };
    let web_on_n1 = ListParams::default()
        .labels("app in (web),app!=db")
        .fields("spec.nodeName=n1");
    assert_eq!(names(pods.list(&web_on_n1).await.unwrap()), ["a"]);
    assert_eq!(
        names(
            pods.list(&ListParams::default().labels("!app"))
                .await
                .unwrap()
        ),
        Vec::<String>::new()
    );
    let list = pods.list(&ListParams::default()).await.unwrap();
    assert_eq!(names(list.clone()), ["a", "b", "c"]);
    let list_rv = list.metadata.resource_version.unwrap();
    assert_eq!(list_rv, server.resource_version().to_string());

    let watch_params = WatchParams::default()
        .labels("app=web")
        .fields("spec.nodeName=n1");
    let mut stream = pods.watch(&watch_params, &list_rv).await.unwrap().boxed();
    pods.create(&pp, &pod("d", "db", "n1")).await.unwrap();
    pods.create(&pp, &pod("e", "web", "n1")).await.unwrap();
    let relabel = Patch::Merge(json!({"metadata": {"labels": {"app": "db"}}}));
    pods.patch("a", &PatchParams::default(), &relabel)
        .await
        .unwrap();
    pods.delete("e", &DeleteParams::default()).await.unwrap();
    let mut seen = Vec::new();
    while seen.len() < 3 {
        match next(&mut stream).await.unwrap() {
            WatchEvent::Added(p) => seen.push(format!("ADDED {}", p.name_any())),
            WatchEvent::Modified(p) => seen.push(format!("MODIFIED {}", p.name_any())),
            WatchEvent::Deleted(p) => seen.push(format!("DELETED {}", p.name_any())),
            other => panic!("unexpected {other:?}"),
        }
    }
    // "d" never matches; "a" stops matching, which a selector watch reports as a deletion.
    assert_eq!(seen, ["ADDED e", "DELETED a", "DELETED e"]);
}

#[tokio::test]
async fn watcher_follows_changes_and_relists_after_forced_expiry() {
    let (server, client) = start(Config::default()).await;
    let pods: Api<Pod> = Api::namespaced(client, "w");
    let pp = PostParams::default();
    pods.create(&pp, &pod("before", "web", "n1")).await.unwrap();
    let mut events = watcher(pods.clone(), watcher::Config::default())
        .default_backoff()
        .boxed();
    let initial = initial_names(&mut events).await;
    assert_eq!(initial, ["before"]);

    pods.create(&pp, &pod("p1", "web", "n1")).await.unwrap();
    let patch = Patch::Merge(json!({"metadata": {"annotations": {"k": "v"}}}));
    pods.patch("p1", &PatchParams::default(), &patch)
        .await
        .unwrap();
    pods.delete("p1", &DeleteParams::default()).await.unwrap();
    let mut changes = Vec::new();
    while changes.len() < 3 {
        match next(&mut events).await.unwrap() {
            watcher::Event::Apply(p) => changes.push(format!(
                "apply {} {:?}",
                p.name_any(),
                p.annotations().get("k")
            )),
            watcher::Event::Delete(p) => changes.push(format!("delete {}", p.name_any())),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(
        changes,
        ["apply p1 None", "apply p1 Some(\"v\")", "delete p1"]
    );

    let lists_before = pod_requests(&server, "list");
    server.expire_watches();
    pods.create(&pp, &pod("after", "web", "n1")).await.unwrap();
    // The stream ends with 410 Gone; the watcher reports it, backs off, relists and converges.
    let mut saw_gone = false;
    let mut relisted = Vec::new();
    loop {
        match next(&mut events).await {
            Err(err) => {
                assert!(
                    err.to_string().contains("410") || err.to_string().contains("too old"),
                    "{err}"
                );
                saw_gone = true;
            }
            Ok(watcher::Event::Init) => relisted.clear(),
            Ok(watcher::Event::InitApply(p)) => relisted.push(p.name_any()),
            Ok(watcher::Event::InitDone) => break,
            Ok(other) => panic!("unexpected {other:?}"),
        }
    }
    assert!(saw_gone, "the expired watch surfaced as an error");
    assert_eq!(relisted, ["after", "before"]);
    assert!(
        pod_requests(&server, "list") > lists_before,
        "the watcher listed again"
    );
}

#[tokio::test]
async fn watcher_resumes_without_relisting_after_streams_are_closed() {
    let (server, client) = start(Config::default()).await;
    let pods: Api<Pod> = Api::namespaced(client, "c");
    let mut events = watcher(pods.clone(), watcher::Config::default())
        .default_backoff()
        .boxed();
    while !matches!(next(&mut events).await.unwrap(), watcher::Event::InitDone) {}
    let watches_before = pod_requests(&server, "watch");
    server.close_watches();
    pods.create(&PostParams::default(), &pod("late", "web", "n1"))
        .await
        .unwrap();
    match next(&mut events).await.unwrap() {
        watcher::Event::Apply(p) => assert_eq!(p.name_any(), "late"),
        other => panic!("expected the change made while reconnecting, got {other:?}"),
    }
    assert_eq!(
        pod_requests(&server, "list"),
        1,
        "resumed from its resourceVersion, no relist"
    );
    let watches_after = pod_requests(&server, "watch");
    assert!(watches_after > watches_before, "a new watch was opened");
}

/// How many `verb` requests on core Pods the server has seen.
fn pod_requests(server: &TestApiServer, verb: &str) -> u64 {
    server
        .requests()
        .iter()
        .find(|r| r.verb == verb && r.group.is_empty() && r.resource == "pods")
        .map_or(0, |r| r.count)
}

#[tokio::test]
async fn patches_conflicts_status_and_request_records() {
    let (server, client) = start(Config::default()).await;
    let pods: Api<Pod> = Api::namespaced(client, "default");
    let created = pods
        .create(&PostParams::default(), &pod("p", "web", "n1"))
        .await
        .unwrap();
    let merge = Patch::Merge(json!({"metadata": {"annotations": {"one": "1", "two": "2"}}}));
    let merged = pods
        .patch("p", &PatchParams::default(), &merge)
        .await
        .unwrap();
    let strategic = Patch::Strategic(json!({"metadata": {"annotations": {"one": null}}}));
    let patched = pods
        .patch("p", &PatchParams::default(), &strategic)
        .await
        .unwrap();
    assert_eq!(
        patched.annotations(),
        &BTreeMap::from([("two".to_string(), "2".to_string())])
    );
    let rv = |p: &Pod| p.resource_version().unwrap().parse::<u64>().unwrap();
    assert!(rv(&created) < rv(&merged) && rv(&merged) < rv(&patched));

    let mut stale = created.clone();
    stale.labels_mut().insert("stale".into(), "yes".into());
    let err = pods
        .replace("p", &PostParams::default(), &stale)
        .await
        .unwrap_err();
    match err {
        kube::Error::Api(status) => {
            assert_eq!((status.code, status.reason.as_str()), (409, "Conflict"))
        }
        other => panic!("expected a conflict, got {other}"),
    }
    let mut fresh = pods.get("p").await.unwrap();
    fresh.labels_mut().insert("fresh".into(), "yes".into());
    let replaced = pods
        .replace("p", &PostParams::default(), &fresh)
        .await
        .unwrap();
    assert_eq!(
        replaced.labels().get("fresh").map(String::as_str),
        Some("yes")
    );

    let status = Patch::Merge(json!({"status": {"phase": "Running", "podIP": "10.42.0.5"}}));
    let running = pods
        .patch_status("p", &PatchParams::default(), &status)
        .await
        .unwrap();
    assert_eq!(running.status.unwrap().pod_ip.as_deref(), Some("10.42.0.5"));

    let records = server.requests();
    let has = |verb: &str, resource: &str| {
        records
            .iter()
            .any(|r| r.verb == verb && r.group.is_empty() && r.resource == resource)
    };
    assert!(has("create", "pods") && has("patch", "pods") && has("update", "pods"));
    assert!(has("patch", "pods/status") && has("get", "pods"));
    assert!(!has("delete", "pods"));
}

#[tokio::test]
async fn lease_create_and_update() {
    let (_server, client) = start(Config::default()).await;
    let leases: Api<Lease> = Api::namespaced(client, "kube-node-lease");
    let lease: Lease = serde_json::from_value(json!({
        "metadata": {"name": "node-a"},
        "spec": {"holderIdentity": "node-a", "leaseDurationSeconds": 40},
    }))
    .unwrap();
    let created = leases.create(&PostParams::default(), &lease).await.unwrap();
    let mut renewed = created.clone();
    renewed.spec.as_mut().unwrap().lease_duration_seconds = Some(10);
    let updated = leases
        .replace("node-a", &PostParams::default(), &renewed)
        .await
        .unwrap();
    assert_eq!(updated.spec.unwrap().lease_duration_seconds, Some(10));
    assert_eq!(updated.metadata.uid, created.metadata.uid);
    assert_ne!(
        updated.metadata.resource_version,
        created.metadata.resource_version
    );

    // Server-side apply is approximated as create-or-merge, enough for leader-election helpers.
    let apply = PatchParams::apply("test-manager");
    let applied = |holder: &str| {
        Patch::Apply(json!({
            "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": "leader"},
            "spec": {"holderIdentity": holder},
        }))
    };
    let first = leases.patch("leader", &apply, &applied("a")).await.unwrap();
    let second = leases.patch("leader", &apply, &applied("b")).await.unwrap();
    assert_eq!(first.metadata.uid, second.metadata.uid);
    assert_eq!(second.spec.unwrap().holder_identity.as_deref(), Some("b"));
}

#[tokio::test]
async fn services_get_cluster_ips_and_node_ports() {
    let (_server, client) = start(Config {
        service_cidr: "10.96.0.0/24".parse().unwrap(),
        ..Config::default()
    })
    .await;
    let services: Api<Service> = Api::namespaced(client, "default");
    let kubernetes = services.get("kubernetes").await.unwrap();
    assert_eq!(
        kubernetes.spec.unwrap().cluster_ip.as_deref(),
        Some("10.96.0.1")
    );
    let node_port = |name: &str, port: Option<i32>| -> Service {
        serde_json::from_value(json!({
            "metadata": {"name": name},
            "spec": {"type": "NodePort", "ports": [{"port": 80, "nodePort": port}]},
        }))
        .unwrap()
    };
    let svc = services
        .create(&PostParams::default(), &node_port("np", None))
        .await
        .unwrap();
    let spec = svc.spec.unwrap();
    assert_eq!(spec.cluster_ip.as_deref(), Some("10.96.0.2"));
    let allocated = spec.ports.unwrap()[0].node_port.unwrap();
    assert!((30000..=32767).contains(&allocated));
    let err = services
        .create(&PostParams::default(), &node_port("clash", Some(allocated)))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, kube::Error::Api(s) if s.code == 422 && s.message.contains("already allocated")),
        "{err}"
    );
}

#[tokio::test]
async fn streaming_list_watcher_gets_initial_events_then_changes() {
    let (_server, client) = start(Config::default()).await;
    let pods: Api<Pod> = Api::namespaced(client, "s");
    pods.create(&PostParams::default(), &pod("first", "web", "n1"))
        .await
        .unwrap();
    let mut events = watcher(pods.clone(), watcher::Config::default().streaming_lists()).boxed();
    let initial = initial_names(&mut events).await;
    assert_eq!(initial, ["first"]);
    pods.create(&PostParams::default(), &pod("second", "web", "n1"))
        .await
        .unwrap();
    match next(&mut events).await.unwrap() {
        watcher::Event::Apply(p) => assert_eq!(p.name_any(), "second"),
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn watch_sends_bookmarks_and_honours_timeout() {
    let (_server, client) = start(Config {
        bookmark_interval: Duration::from_millis(100),
        ..Config::default()
    })
    .await;
    let pods: Api<Pod> = Api::namespaced(client, "default");
    let params = WatchParams::default().timeout(1);
    let mut stream = pods.watch(&params, "0").await.unwrap().boxed();
    match next(&mut stream).await.unwrap() {
        WatchEvent::Bookmark(b) => assert!(!b.metadata.resource_version.is_empty()),
        other => panic!("expected a bookmark, got {other:?}"),
    }
    let ended = tokio::time::timeout(WAIT, async {
        while let Some(event) = stream.next().await {
            assert!(matches!(event, Ok(WatchEvent::Bookmark(_))), "{event:?}");
        }
    })
    .await;
    assert!(
        ended.is_ok(),
        "the server ends the watch after timeoutSeconds"
    );
}

#[tokio::test]
async fn records_the_bearer_token_as_the_user() {
    let server = TestApiServer::start(Config::default()).await.unwrap();
    let sa = "system:serviceaccount:ns:sa";
    let text = server
        .kubeconfig()
        .replace("user: {}", &format!("user: {{token: \"{sa}\"}}"));
    let kubeconfig = Kubeconfig::from_yaml(&text).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .unwrap();
    let nodes: Api<k8s_openapi::api::core::v1::Node> = Api::all(Client::try_from(config).unwrap());
    nodes.list(&ListParams::default()).await.unwrap();
    let records = server.requests();
    assert!(
        records
            .iter()
            .any(|r| r.user == sa && r.verb == "list" && r.resource == "nodes"),
        "{records:?}"
    );
    assert!(records.iter().all(|r| r.user == sa), "{records:?}");
}
