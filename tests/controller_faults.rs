//! `ovnkube-rs controller` under faults, as a process against real NB servers and the API test
//! server: the NB killed and restarted during churn, a RAFT leader killed during churn, the
//! controller itself SIGKILLed at random points, two replicas with leader election, and bad
//! input. Each ends with the same proof: every object of the API has exactly its rows (no
//! duplicates, nothing lost, nothing leaked) and `sync` with a dump of the API sends nothing.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use common::{wait_until, Cluster, Controller, NODE};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Event, Namespace, Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use ovn_testlab::{Lab, ServerId};
use ovsdb::replica::Replica;
use ovsdb::{Client, ClientConfig, Datum, Row};
use serde_json::json;

const NS: &str = "default";

/// Creates and deletes pods (on the seed's node, without addresses: the controller allocates
/// them) and Services with an EndpointSlice, through the API.
struct Churn {
    pods: Api<Pod>,
    services: Api<Service>,
    slices: Api<EndpointSlice>,
    /// Prefix of every name, so that several churns of one test never reuse a name.
    tag: String,
    step: usize,
    /// Objects created so far (numbers their names).
    created: usize,
    live_pods: Vec<String>,
    live_services: Vec<String>,
}

impl Churn {
    fn new(client: &kube::Client, tag: &str) -> Churn {
        Churn {
            pods: Api::namespaced(client.clone(), NS),
            services: Api::namespaced(client.clone(), NS),
            slices: Api::namespaced(client.clone(), NS),
            tag: tag.to_owned(),
            step: 0,
            created: 0,
            live_pods: Vec::new(),
            live_services: Vec::new(),
        }
    }

    fn next_name(&mut self, kind: &str) -> String {
        self.created += 1;
        format!("{}-{kind}{}", self.tag, self.created)
    }

    async fn create_pod(&mut self) {
        let name = self.next_name("p");
        let pod: Pod = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": NS, "labels": {"app": self.tag}},
            "spec": {"nodeName": NODE, "containers": [{"name": "c", "image": "x"}]}
        }))
        .unwrap();
        self.pods
            .create(&PostParams::default(), &pod)
            .await
            .unwrap();
        self.live_pods.push(name);
    }

    async fn create_service(&mut self) {
        let name = self.next_name("s");
        let svc: Service = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": NS},
            "spec": {"type": "ClusterIP", "selector": {"app": self.tag},
                     "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}]}
        }))
        .unwrap();
        self.services
            .create(&PostParams::default(), &svc)
            .await
            .unwrap();
        let backend = format!("10.42.0.{}", 100 + self.created % 100);
        let slice: EndpointSlice = serde_json::from_value(json!({
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": format!("{name}-1"), "namespace": NS,
                         "labels": {"kubernetes.io/service-name": name}},
            "addressType": "IPv4",
            "endpoints": [{"addresses": [backend], "conditions": {"ready": true}}],
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]
        }))
        .unwrap();
        self.slices
            .create(&PostParams::default(), &slice)
            .await
            .unwrap();
        self.live_services.push(name);
    }

    async fn delete_oldest_pod(&mut self) {
        if self.live_pods.len() > 1 {
            let name = self.live_pods.remove(0);
            self.pods
                .delete(&name, &DeleteParams::default())
                .await
                .unwrap();
        }
    }

    async fn delete_oldest_service(&mut self) {
        if self.live_services.len() > 1 {
            let name = self.live_services.remove(0);
            self.services
                .delete(&name, &DeleteParams::default())
                .await
                .unwrap();
            self.slices
                .delete(&format!("{name}-1"), &DeleteParams::default())
                .await
                .unwrap();
        }
    }

    /// One change; every six steps add a pod and a service net (and delete one of each).
    async fn step(&mut self) {
        match self.step % 6 {
            0 | 2 => self.create_pod().await,
            1 | 4 => self.create_service().await,
            3 => self.delete_oldest_pod().await,
            _ => self.delete_oldest_service().await,
        }
        self.step += 1;
    }

    /// `steps` changes, `pause` apart.
    async fn run(mut self, steps: usize, pause: Duration) -> Churn {
        for _ in 0..steps {
            self.step().await;
            tokio::time::sleep(pause).await;
        }
        self
    }
}

/// The rows the NB should hold for the API's objects, reduced to what identifies them.
#[derive(Debug, PartialEq, Eq)]
struct Programmed {
    /// Pod ports (`<namespace>_<name>`).
    pod_ports: BTreeSet<String>,
    /// Owners (`<namespace>/<name>`) of service load balancers.
    service_lbs: BTreeSet<String>,
}

/// True for pods that get an address and a port (scheduled, not host-network, not finished).
fn pod_needs_port(p: &Pod) -> bool {
    let spec = p.spec.as_ref();
    let phase = p.status.as_ref().and_then(|s| s.phase.as_deref());
    spec.and_then(|s| s.node_name.as_deref())
        .is_some_and(|n| !n.is_empty())
        && !spec.and_then(|s| s.host_network).unwrap_or(false)
        && !matches!(phase, Some("Succeeded" | "Failed"))
}

fn ns_name(meta: &kube::api::ObjectMeta, sep: &str) -> String {
    format!(
        "{}{sep}{}",
        meta.namespace.as_deref().unwrap_or(NS),
        meta.name.as_deref().unwrap_or_default()
    )
}

/// What the API's objects call for.
async fn wanted(client: &kube::Client) -> Programmed {
    let lp = ListParams::default();
    let pods = Api::<Pod>::all(client.clone()).list(&lp).await.unwrap();
    let services = Api::<Service>::all(client.clone()).list(&lp).await.unwrap();
    Programmed {
        pod_ports: pods
            .iter()
            .filter(|p| pod_needs_port(p))
            .map(|p| ns_name(&p.metadata, "_"))
            .collect(),
        service_lbs: services
            .iter()
            .filter(|s| {
                s.spec
                    .as_ref()
                    .and_then(|s| s.cluster_ip.as_deref())
                    .is_some_and(|ip| ip != "None" && !ip.is_empty())
            })
            .map(|s| ns_name(&s.metadata, "/"))
            .collect(),
    }
}

fn text<'a>(row: &'a Row, column: &str) -> Option<&'a str> {
    row.get(column)?.as_atom()?.as_str()
}

fn external_id<'a>(row: &'a Row, key: &str) -> Option<&'a str> {
    row.get("external_ids")?.get(key)?.as_str()
}

fn rows<'a>(r: &'a Replica, table: &str) -> impl Iterator<Item = &'a Row> {
    r.table(table)
        .into_iter()
        .flat_map(|t| t.rows().map(|(_, row)| row))
}

/// What the NB holds.
fn programmed(r: &Replica) -> Programmed {
    Programmed {
        pod_ports: rows(r, "Logical_Switch_Port")
            .filter(|row| external_id(row, "pod") == Some("true"))
            .filter_map(|row| text(row, "name").map(str::to_owned))
            .collect(),
        service_lbs: rows(r, "Load_Balancer")
            .filter(|row| external_id(row, "k8s.ovn.org/kind") == Some("Service"))
            .filter_map(|row| external_id(row, "k8s.ovn.org/owner").map(str::to_owned))
            .collect(),
    }
}

/// Rows that exist twice: same name in a table whose rows we name uniquely, or the same
/// content twice among one router's routes, NATs or policies.
fn duplicates(r: &Replica) -> Vec<String> {
    let mut found = Vec::new();
    for table in [
        "Load_Balancer",
        "Logical_Switch_Port",
        "Logical_Switch",
        "Logical_Router",
        "Logical_Router_Port",
        "Load_Balancer_Group",
    ] {
        let mut names: BTreeMap<&str, usize> = BTreeMap::new();
        for row in rows(r, table) {
            *names
                .entry(text(row, "name").unwrap_or_default())
                .or_default() += 1;
        }
        found.extend(
            names
                .into_iter()
                .filter(|(_, n)| *n > 1)
                .map(|(name, n)| format!("{table} {name:?} x{n}")),
        );
    }
    let children = [
        ("static_routes", "Logical_Router_Static_Route"),
        ("nat", "NAT"),
        ("policies", "Logical_Router_Policy"),
    ];
    for router in rows(r, "Logical_Router") {
        for (column, table) in children {
            let mut seen: BTreeMap<String, usize> = BTreeMap::new();
            let members = router.get(column).map(Datum::atoms).into_iter().flatten();
            for uuid in members.filter_map(|a| match a {
                ovsdb::Atom::Uuid(u) => Some(*u),
                _ => None,
            }) {
                if let Some(child) = r.get(table, &uuid) {
                    *seen.entry(format!("{child:?}")).or_default() += 1;
                }
            }
            found.extend(seen.into_iter().filter(|(_, n)| *n > 1).map(|(row, n)| {
                let name = text(router, "name").unwrap_or_default();
                format!("{table} of {name} x{n}: {row}")
            }));
        }
    }
    found
}

/// A client of the NB (every member of a cluster; it follows the RAFT leader).
async fn nb_client(nb: &str) -> Client {
    let remotes = nb.split(',').map(str::to_owned).collect();
    Client::connect(ClientConfig::new("OVN_Northbound", remotes))
        .await
        .expect("NB client connects")
}

/// The proof every fault test ends with: the NB reaches exactly the rows the API's objects call
/// for, holds no row twice, and `sync` with a dump of the API has nothing left to send.
async fn assert_converged(cluster: &Cluster, nb: &str, controller: &Controller) {
    let client = nb_client(nb).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let want = wanted(&cluster.client).await;
        let have = programmed(&client.replica());
        if want == have {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "NB does not match the API after 30 s; see {}\nwant {want:#?}\nhave {have:#?}",
            controller.log.display()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    controller.wait_quiet(Duration::from_secs(30)).await;
    let replica = client.replica().clone();
    assert_eq!(programmed(&replica), wanted(&cluster.client).await);
    let dups = duplicates(&replica);
    assert!(dups.is_empty(), "duplicate rows: {dups:#?}");
    assert_eq!(
        cluster.sync_against_api(nb).await,
        "0 operations",
        "the controller's NB differs from what sync writes; see {}",
        controller.log.display()
    );
    let log = controller.log_text();
    assert!(!log.contains("panicked"), "{log}");
}

/// The seed's cluster in the API test server and a controller (tagged `tag`) programming one
/// standalone NB: the cluster, the NB's id in the lab, its remote, the controller.
async fn seed_on_one_nb(tag: &str) -> (Cluster, ServerId, String, Controller) {
    let mut lab = Lab::new().unwrap();
    let nb_id = lab.start_nb().unwrap();
    let nb = lab.server(nb_id).unix_remote();
    let cluster = Cluster::with_seed(lab).await;
    let controller = cluster.start_controller(&nb, tag).await;
    (cluster, nb_id, nb, controller)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nb_killed_and_restarted_during_churn() {
    let (mut cluster, nb_id, nb, controller) = seed_on_one_nb("nb-restart").await;

    let churn =
        tokio::spawn(Churn::new(&cluster.client, "nbr").run(120, Duration::from_millis(15)));
    tokio::time::sleep(Duration::from_millis(600)).await;
    cluster.lab.kill(nb_id);
    // The controller keeps annotating pods while its transactions cannot reach the NB.
    tokio::time::sleep(Duration::from_millis(800)).await;
    cluster.lab.restart(nb_id).unwrap();
    let churn = churn.await.unwrap();
    assert!(churn.live_pods.len() > 10 && churn.live_services.len() > 10);

    assert_converged(&cluster, &nb, &controller).await;
    assert!(
        controller.metric("ovnkube_controller_nb_reconnects_total") >= 1.0,
        "the controller did not see the NB go away; see {}",
        controller.log.display()
    );
}

/// MicroShift recreating its NB container without its data: the running controller reconnects
/// to an empty NB, which no Kubernetes event announces, and programs everything again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nb_recreated_empty_under_a_running_controller() {
    let (mut cluster, nb_id, nb, controller) = seed_on_one_nb("nb-recreate").await;
    assert_converged(&cluster, &nb, &controller).await;
    let written = controller.nb_operations();

    cluster.lab.recreate(nb_id).unwrap();
    assert_converged(&cluster, &nb, &controller).await;
    assert!(
        controller.nb_operations() > written,
        "the controller wrote nothing after the NB was recreated; see {}",
        controller.log.display()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raft_leader_killed_during_churn() {
    let mut lab = Lab::new().unwrap();
    let members = lab.start_nb_cluster(3).unwrap();
    let nb = members
        .iter()
        .map(|&id| lab.server(id).unix_remote())
        .collect::<Vec<_>>()
        .join(",");
    let mut cluster = Cluster::with_seed(lab).await;
    let controller = cluster.start_controller(&nb, "raft").await;

    let churn =
        tokio::spawn(Churn::new(&cluster.client, "raft").run(120, Duration::from_millis(15)));
    tokio::time::sleep(Duration::from_millis(600)).await;
    let leader = cluster.lab.cluster_leader(&members).expect("a RAFT leader");
    cluster.lab.kill(leader);
    let churn = churn.await.unwrap();
    assert!(churn.live_pods.len() > 10 && churn.live_services.len() > 10);
    let new_leader = cluster.lab.wait_cluster_leader(&members).unwrap();
    assert_ne!(new_leader, leader);

    assert_converged(&cluster, &nb, &controller).await;
    assert!(controller.metric("ovnkube_controller_nb_reconnects_total") >= 1.0);
}

/// xorshift64*: reproducible choices from a seed printed by the test.
struct Rng(u64);

impl Rng {
    fn from_env_or_clock() -> Rng {
        let seed = std::env::var("CONTROLLER_KILL_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
            });
        println!("CONTROLLER_KILL_SEED={seed}");
        Rng(seed | 1)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

/// Every live pod's `pod-networks` address, which must be unique.
async fn assert_addresses_unique(client: &kube::Client) {
    let pods = Api::<Pod>::all(client.clone())
        .list(&ListParams::default())
        .await
        .unwrap();
    let mut owners: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for p in pods.iter().filter(|p| pod_needs_port(p)) {
        let annotation = p
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get("k8s.ovn.org/pod-networks"))
            .unwrap_or_else(|| panic!("pod {} has no address", ns_name(&p.metadata, "/")));
        let v: serde_json::Value = serde_json::from_str(annotation).unwrap();
        let ip = v["default"]["ip_address"].as_str().unwrap().to_owned();
        owners
            .entry(ip)
            .or_default()
            .push(ns_name(&p.metadata, "/"));
    }
    let twice: Vec<_> = owners.iter().filter(|(_, o)| o.len() > 1).collect();
    assert!(twice.is_empty(), "addresses given twice: {twice:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controller_killed_at_random_points_during_pod_churn() {
    let iterations: usize = std::env::var("CONTROLLER_KILL_ITERATIONS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let mut rng = Rng::from_env_or_clock();
    let mut lab = Lab::new().unwrap();
    let nb_id = lab.start_nb().unwrap();
    let nb = lab.server(nb_id).unix_remote();
    let cluster = Cluster::with_seed(lab).await;

    let mut churn = Churn::new(&cluster.client, "kill");
    for i in 0..iterations {
        let mut controller = cluster.spawn_controller(&nb, "kill", &["--leader-election=false"]);
        // Half of the kills land after start-up, in the loop that follows the API.
        if i % 2 == 1 {
            controller.wait_ready(Duration::from_secs(60)).await;
        }
        let changes = tokio::spawn(async move {
            for _ in 0..4 {
                churn.step().await;
            }
            churn
        });
        tokio::time::sleep(Duration::from_millis(rng.below(301))).await;
        controller.kill();
        churn = changes.await.unwrap();
    }

    let last = cluster.start_controller(&nb, "kill-last").await;
    assert_converged(&cluster, &nb, &last).await;
    assert_addresses_unique(&cluster.client).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_leader_writes_and_a_follower_takes_over() {
    const LEASE: Duration = Duration::from_secs(4);
    const RETRY: Duration = Duration::from_secs(1);
    const LEASE_NS: &str = "openshift-ovn-kubernetes";
    let mut lab = Lab::new().unwrap();
    let nb_id = lab.start_nb().unwrap();
    let nb = lab.server(nb_id).unix_remote();
    let cluster = Cluster::with_seed(lab).await;
    let namespace: Namespace =
        serde_json::from_value(json!({"metadata": {"name": LEASE_NS}})).unwrap();
    Api::<Namespace>::all(cluster.client.clone())
        .create(&PostParams::default(), &namespace)
        .await
        .unwrap();
    let replica = |identity: &str| {
        let flags = [
            "--leader-election=true".to_owned(),
            format!("--leader-identity={identity}"),
            format!("--ovn-config-namespace={LEASE_NS}"),
            format!("--lease-duration-seconds={}", LEASE.as_secs()),
            format!("--lease-retry-seconds={}", RETRY.as_secs()),
        ];
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        cluster.spawn_controller(&nb, identity, &flags)
    };
    let leases: Api<Lease> = Api::namespaced(cluster.client.clone(), LEASE_NS);
    let holder = |lease: &Lease| lease.spec.as_ref().and_then(|s| s.holder_identity.clone());

    let mut first = replica("replica-a");
    first.wait_ready(Duration::from_secs(60)).await;
    let second = replica("replica-b");
    wait_until(
        "the second replica to serve metrics",
        Duration::from_secs(20),
        || second.metric("ovnkube_controller_leader") == 0.0,
    )
    .await;

    // For longer than a lease, while the first renews: the second stays a follower that writes
    // nothing, and what changes is programmed by the first.
    let mut churn = Churn::new(&cluster.client, "lead");
    churn.create_pod().await;
    let watched_until = Instant::now() + LEASE + 2 * RETRY;
    while Instant::now() < watched_until {
        assert_eq!(second.metric("ovnkube_controller_leader"), 0.0);
        assert_eq!(second.readyz(), Some(503));
        assert_eq!(second.nb_operations(), 0.0);
        assert_eq!(first.metric("ovnkube_controller_leader"), 1.0);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let lease = leases.get("ovn-kubernetes-master").await.unwrap();
    assert_eq!(holder(&lease).as_deref(), Some("replica-a"));
    assert_converged(&cluster, &nb, &first).await;
    assert_eq!(second.nb_operations(), 0.0);

    // The leader dies without releasing the lease: the follower takes over once it expires.
    first.kill();
    let killed = Instant::now();
    wait_until(
        "the follower to take the lease",
        LEASE + 2 * RETRY + Duration::from_secs(2),
        || second.metric("ovnkube_controller_leader") == 1.0,
    )
    .await;
    println!("hand-over after {:?}", killed.elapsed());
    second.wait_ready(Duration::from_secs(30)).await;
    let lease = leases.get("ovn-kubernetes-master").await.unwrap();
    assert_eq!(holder(&lease).as_deref(), Some("replica-b"));
    assert!(lease.spec.unwrap().lease_transitions.unwrap_or(0) >= 1);
    churn.create_pod().await;
    churn.create_service().await;
    assert_converged(&cluster, &nb, &second).await;
    assert!(second.nb_operations() > 0.0);
}

/// Warning events about `kind` `name` (events about cluster-scoped objects go to `default`).
async fn events_about(client: &kube::Client, kind: &str, name: &str) -> Vec<Event> {
    Api::<Event>::all(client.clone())
        .list(&ListParams::default())
        .await
        .unwrap()
        .into_iter()
        .filter(|e| {
            e.involved_object.kind.as_deref() == Some(kind)
                && e.involved_object.name.as_deref() == Some(name)
                && e.type_.as_deref() == Some("Warning")
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_becomes_events_and_the_rest_is_programmed() {
    let mut lab = Lab::new().unwrap();
    let nb_id = lab.start_nb().unwrap();
    let nb = lab.server(nb_id).unix_remote();
    let cluster = Cluster::with_seed(lab).await;
    let controller = cluster.start_controller(&nb, "bad").await;
    let client = &cluster.client;

    // The API server validates clusterIP itself, so the invalid address the controller must
    // reject arrives the other way a Service carries addresses: an externalIP.
    let bad_service: Service = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "bad-ip", "namespace": NS},
        "spec": {"type": "ClusterIP", "externalIPs": ["300.1.2.3"],
                 "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}
    }))
    .unwrap();
    Api::<Service>::namespaced(client.clone(), NS)
        .create(&PostParams::default(), &bad_service)
        .await
        .unwrap();
    // A node whose gateway annotation is not JSON.
    let mut bad_node: Node = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": "bad-node", "annotations": {
            "k8s.ovn.org/l3-gateway-config": "{not json",
            "k8s.ovn.org/node-chassis-id": "0c7b6f1e-5a43-4b3c-9d5e-1f2a3b4c5d6e",
            "k8s.ovn.org/node-mgmt-port-mac-address": "76:3a:81:5a:05:d8",
            "k8s.ovn.org/host-addresses": "[\"192.168.122.15\"]"
        }},
        "status": {"addresses": [{"address": "192.168.122.15", "type": "InternalIP"}]}
    }))
    .unwrap();
    bad_node.spec = Some(Default::default());
    Api::<Node>::all(client.clone())
        .create(&PostParams::default(), &bad_node)
        .await
        .unwrap();
    // A pod bound to a node that does not exist, so it has no subnet to take an address from.
    let orphan: Pod = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "orphan", "namespace": NS},
        "spec": {"nodeName": "ghost-node", "containers": [{"name": "c", "image": "x"}]}
    }))
    .unwrap();
    let pods = Api::<Pod>::namespaced(client.clone(), NS);
    pods.create(&PostParams::default(), &orphan).await.unwrap();
    // Good objects after the bad ones.
    let mut good = Churn::new(client, "good");
    good.create_pod().await;
    good.create_service().await;

    for (kind, name) in [
        ("Service", "bad-ip"),
        ("Node", "bad-node"),
        ("Pod", "orphan"),
    ] {
        let deadline = Instant::now() + Duration::from_secs(20);
        while events_about(client, kind, name).await.is_empty() {
            assert!(
                Instant::now() < deadline,
                "no Warning event about {kind} {name}; see {}",
                controller.log.display()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let events = events_about(client, kind, name).await;
        println!("{kind} {name}: {:?}", events[0].message);
    }

    // The good ones are programmed; the bad ones have no rows (the orphan pod and the bad
    // service are expected by `wanted`, so they are compared apart).
    let nb_client = nb_client(&nb).await;
    let good_pod = format!("{NS}_{}", good.live_pods[0]);
    let good_service = format!("{NS}/{}", good.live_services[0]);
    wait_until("the good pod and service", Duration::from_secs(20), || {
        let have = programmed(&nb_client.replica());
        have.pod_ports.contains(&good_pod) && have.service_lbs.contains(&good_service)
    })
    .await;
    controller.wait_quiet(Duration::from_secs(30)).await;
    let have = programmed(&nb_client.replica());
    assert!(!have.pod_ports.contains(&format!("{NS}_orphan")));
    assert!(!have.service_lbs.contains(&format!("{NS}/bad-ip")));
    let switches = cluster.nbctl(&nb, &["ls-list"]);
    assert!(!switches.contains("bad-node"), "{switches}");
    assert!(duplicates(&nb_client.replica()).is_empty());
    // `sync` skips the same bad objects and agrees with the controller on everything else.
    assert_eq!(cluster.sync_against_api(&nb).await, "0 operations");
}
