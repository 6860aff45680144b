//! The slim functions against realistic objects: everything computed from a slim object equals
//! what the full object gives, the big fields are gone, and what a store spends per object.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::collections::BTreeSet;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::net::Ipv4Addr;
use std::sync::Arc;

use kube::runtime::reflector::{Lookup, ObjectRef};
use ovnkube_desired::{desired_cluster, Config, NodeInfo, PodInfo, ServiceInfo, Snapshot};
use ovnkube_hostnet::services::host_services;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

use k8s_openapi::api::core::v1::Pod;
use ovnkube_desired::PodParts;

use super::*;
use crate::controller::allocate::needs_address;
use crate::controller::pod_record::{PodObject, PodRecord};

/// The benchmark's generator, so the objects here are the ones ctlbench serves.
#[path = "../../../crates/ctlbench/src/cluster.rs"]
#[allow(dead_code)] // what the churn uses of it is not used here
mod bench_cluster;

use bench_cluster::{generate, Size};

/// `base` with `patch` merged in: objects key by key, anything else (arrays too) replaced.
fn merged(mut base: Value, patch: Value) -> Value {
    match (&mut base, patch) {
        (Value::Object(b), Value::Object(p)) => {
            for (k, v) in p {
                let old = b.remove(&k).unwrap_or(Value::Null);
                b.insert(k, merged(old, v));
            }
            base
        }
        (_, p) => p,
    }
}

fn decode<K: DeserializeOwned>(v: Value) -> K {
    serde_json::from_value(v).expect("fixture decodes")
}

fn slimmed<K: Clone>(objects: &[K], slim: fn(K) -> K) -> Vec<K> {
    objects.iter().cloned().map(slim).collect()
}

/// The generated objects of `kind`, in order.
fn of_kind(objects: &[Value], kind: &str) -> Vec<Value> {
    objects
        .iter()
        .filter(|o| o["kind"] == kind)
        .cloned()
        .collect()
}

/// A stable uid for the object `name` of `kind`.
fn uid(kind: &str, name: &str) -> String {
    let mut h = DefaultHasher::new();
    (kind, name).hash(&mut h);
    let h = h.finish();
    format!(
        "{:08x}-{:04x}-4000-8000-{:012x}",
        h >> 32,
        h & 0xffff,
        h >> 16
    )
}

fn text(v: &Value) -> &str {
    v.as_str().unwrap_or_default()
}

/// `bench` as a real API server serves it: uid, resourceVersion, creationTimestamp and one
/// `managedFields` entry per writer (`(manager, fields written)`).
fn served(bench: Value, writers: &[(&str, Value)], extras: Value) -> Value {
    let kind = text(&bench["kind"]).to_owned();
    let name = text(&bench["metadata"]["name"]).to_owned();
    let managed: Vec<Value> = writers
        .iter()
        .map(|(manager, fields)| {
            json!({"manager": manager, "operation": "Update", "apiVersion": "v1",
                   "time": "2026-11-20T10:00:00Z", "fieldsType": "FieldsV1", "fieldsV1": fields})
        })
        .collect();
    let server = json!({"metadata": {"uid": uid(&kind, &name), "resourceVersion": "123456",
                                     "creationTimestamp": "2026-11-20T10:00:00Z",
                                     "managedFields": managed}});
    merged(merged(bench, server), extras)
}

// Real objects add what other components write: labels, annotations, owner references, full
// pod specs and statuses, node images and conditions, endpoint topology.

fn real_node(bench: Value) -> Value {
    let condition = |t: &str, status: &str| {
        json!({"type": t, "status": status, "reason": format!("Kubelet{t}"),
               "message": format!("kubelet reports {t} {status}"),
               "lastHeartbeatTime": "2026-11-20T10:00:00Z",
               "lastTransitionTime": "2026-11-20T09:00:00Z"})
    };
    let conditions = ["MemoryPressure", "DiskPressure", "PIDPressure"]
        .map(|t| condition(t, "False"))
        .into_iter()
        .chain([condition("Ready", "True")])
        .collect::<Vec<_>>();
    let images: Vec<Value> = (0..20)
        .map(|n| {
            json!({"names": [format!("quay.io/openshift/image-{n}@sha256:{n:064x}"),
                                  format!("quay.io/openshift/image-{n}:4.18")],
                        "sizeBytes": 100_000_000 + n})
        })
        .collect();
    let resources = json!({"cpu": "8", "memory": "32827232Ki", "pods": "250",
                           "ephemeral-storage": "101430960Ki", "hugepages-2Mi": "0"});
    let name = text(&bench["metadata"]["name"]).to_owned();
    served(
        bench,
        &[
            (
                "kubelet",
                json!({"f:status": {"f:conditions": {}, "f:images": {}, "f:nodeInfo": {}}}),
            ),
            (
                "ovnkube",
                json!({"f:metadata": {"f:annotations": {"f:k8s.ovn.org/node-subnets": {}}}}),
            ),
        ],
        json!({
            "metadata": {
                "labels": {"beta.kubernetes.io/arch": "amd64", "beta.kubernetes.io/os": "linux",
                           "kubernetes.io/arch": "amd64", "kubernetes.io/os": "linux",
                           "node-role.kubernetes.io/control-plane": "", "node-role.kubernetes.io/worker": ""},
                "annotations": {"node.alpha.kubernetes.io/ttl": "0",
                                "volumes.kubernetes.io/controller-managed-attach-detach": "true"}
            },
            "spec": {"providerID": format!("kvm://{name}")},
            "status": {
                "allocatable": resources, "capacity": resources, "conditions": conditions,
                "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
                "images": images,
                "nodeInfo": {"architecture": "amd64", "bootID": uid("boot", &name),
                             "containerRuntimeVersion": "cri-o://1.31.0",
                             "kernelVersion": "5.14.0-427.el9.x86_64", "kubeProxyVersion": "v1.31.0",
                             "kubeletVersion": "v1.31.0", "machineID": uid("machine", &name),
                             "operatingSystem": "linux", "osImage": "Red Hat Enterprise Linux 9.4",
                             "systemUUID": uid("system", &name)}
            }
        }),
    )
}

fn real_pod(bench: Value) -> Value {
    let condition = |t: &str| {
        json!({"type": t, "status": "True", "lastProbeTime": null,
               "lastTransitionTime": "2026-11-20T10:00:05Z"})
    };
    let conditions = [
        "PodReadyToStartContainers",
        "Initialized",
        "Ready",
        "ContainersReady",
        "PodScheduled",
    ]
    .map(condition);
    let app = text(&bench["metadata"]["labels"]["app"]).to_owned();
    let owner = format!("{app}-5d8f7c9b4");
    let name = text(&bench["metadata"]["name"]).to_owned();
    served(
        bench,
        &[
            (
                "kube-controller-manager",
                json!({"f:metadata": {"f:generateName": {}, "f:labels": {}, "f:ownerReferences": {}}, "f:spec": {"f:containers": {}}}),
            ),
            (
                "ovnkube",
                json!({"f:metadata": {"f:annotations": {".": {}, "f:k8s.ovn.org/pod-networks": {}}}}),
            ),
            (
                "kubelet",
                json!({"f:status": {"f:conditions": {}, "f:containerStatuses": {}, "f:podIPs": {}}}),
            ),
        ],
        json!({
            "metadata": {
                "generateName": format!("{owner}-"),
                "labels": {"pod-template-hash": "5d8f7c9b4"},
                "annotations": {"openshift.io/scc": "restricted-v2",
                                "seccomp.security.alpha.kubernetes.io/pod": "runtime/default"},
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": owner,
                                     "uid": uid("ReplicaSet", &owner), "controller": true, "blockOwnerDeletion": true}]
            },
            "spec": {
                "containers": [{
                    "name": "app", "image": "quay.io/example/app:1.2.3", "imagePullPolicy": "IfNotPresent",
                    "args": ["--port=8080", "--log-level=info"],
                    "env": [{"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
                    "ports": [{"containerPort": 8080, "name": "http", "protocol": "TCP"}],
                    "resources": {"requests": {"cpu": "10m", "memory": "50Mi"}},
                    "readinessProbe": {"httpGet": {"path": "/healthz", "port": 8080, "scheme": "HTTP"},
                                       "periodSeconds": 10, "timeoutSeconds": 1},
                    "securityContext": {"allowPrivilegeEscalation": false, "runAsNonRoot": true,
                                        "capabilities": {"drop": ["ALL"]}},
                    "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File",
                    "volumeMounts": [{"mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
                                      "name": "kube-api-access", "readOnly": true}]
                }],
                "volumes": [{"name": "kube-api-access", "projected": {"defaultMode": 420, "sources": [
                    {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                    {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                    {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}
                ]}}],
                "dnsPolicy": "ClusterFirst", "restartPolicy": "Always", "schedulerName": "default-scheduler",
                "serviceAccount": "default", "serviceAccountName": "default",
                "terminationGracePeriodSeconds": 30, "enableServiceLinks": true,
                "preemptionPolicy": "PreemptLowerPriority", "priority": 0,
                "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
                "tolerations": [
                    {"effect": "NoExecute", "key": "node.kubernetes.io/not-ready", "operator": "Exists", "tolerationSeconds": 300},
                    {"effect": "NoExecute", "key": "node.kubernetes.io/unreachable", "operator": "Exists", "tolerationSeconds": 300}
                ]
            },
            "status": {
                "conditions": conditions,
                "hostIP": "172.20.0.2", "hostIPs": [{"ip": "172.20.0.2"}],
                "startTime": "2026-11-20T10:00:01Z", "qosClass": "Burstable",
                "containerStatuses": [{
                    "name": "app", "ready": true, "restartCount": 0, "started": true,
                    "image": "quay.io/example/app:1.2.3",
                    "imageID": format!("quay.io/example/app@sha256:{:0>64}", uid("image", &app).replace('-', "")),
                    "containerID": format!("cri-o://{:0>64}", uid("container", &name).replace('-', "")),
                    "state": {"running": {"startedAt": "2026-11-20T10:00:04Z"}},
                    "lastState": {}
                }]
            }
        }),
    )
}

fn real_service(bench: Value) -> Value {
    let last_applied = bench.to_string();
    let app = text(&bench["spec"]["selector"]["app"]).to_owned();
    let cluster_ip = bench["spec"]["clusterIP"].clone();
    served(
        bench,
        &[(
            "kubectl-client-side-apply",
            json!({"f:metadata": {"f:annotations": {}}, "f:spec": {"f:ports": {}, "f:selector": {}}}),
        )],
        json!({
            "metadata": {"labels": {"app": app},
                         "annotations": {"kubectl.kubernetes.io/last-applied-configuration": last_applied}},
            "spec": {"clusterIPs": [cluster_ip], "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack",
                     "sessionAffinity": "None", "internalTrafficPolicy": "Cluster"},
            "status": {"loadBalancer": {}}
        }),
    )
}

/// Each endpoint as the EndpointSlice controller writes it: with its pod, node and zone.
fn real_slice(mut bench: Value) -> Value {
    let service = text(&bench["metadata"]["labels"][SERVICE_NAME_LABEL]).to_owned();
    let namespace = text(&bench["metadata"]["namespace"]).to_owned();
    for ep in bench["endpoints"].as_array_mut().into_iter().flatten() {
        let ip = text(&ep["addresses"][0]).to_owned();
        // The generator's pod addresses are 10.42.<node>.<n>.
        let node: u8 = ip
            .split('.')
            .nth(2)
            .and_then(|o| o.parse().ok())
            .unwrap_or(0);
        let pod = format!("pod-{}", ip.replace('.', "-"));
        *ep = merged(
            ep.take(),
            json!({"conditions": {"ready": true, "serving": true, "terminating": false},
                   "nodeName": format!("node-{node:03}"), "zone": "zone-a",
                   "hints": {"forZones": [{"name": "zone-a"}]},
                   "targetRef": {"kind": "Pod", "name": pod, "namespace": namespace, "uid": uid("Pod", &pod)}}),
        );
    }
    served(
        bench,
        &[(
            "kube-controller-manager",
            json!({"f:addressType": {}, "f:endpoints": {}, "f:metadata": {"f:labels": {}}, "f:ports": {}}),
        )],
        json!({
            "metadata": {
                "generateName": format!("{service}-"),
                "labels": {"endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"},
                "annotations": {"endpoints.kubernetes.io/last-change-trigger-time": "2026-11-20T10:00:06Z"},
                "ownerReferences": [{"apiVersion": "v1", "kind": "Service", "name": service,
                                     "uid": uid("Service", &service), "controller": true, "blockOwnerDeletion": true}]
            }
        }),
    )
}

/// node-000's address in the generated cluster.
const NODE_0_IP: &str = "172.20.0.2";

/// The generated cluster's objects.
fn generated(nodes: usize, pods: usize, services: usize) -> Vec<Value> {
    let size = Size {
        nodes,
        pods,
        services,
        endpoints_per_service: 5,
    };
    generate(size).expect("a valid size").objects
}

/// The generated cluster's pods as served, with every case the readers tell apart.
fn fixture_pods(objects: &[Value]) -> Vec<Value> {
    let mut pods: Vec<Value> = of_kind(objects, "Pod").into_iter().map(real_pod).collect();
    let no_address = |pod: &mut Value| {
        pod["metadata"]["annotations"] = json!({"openshift.io/scc": "hostnetwork-v2"});
    };
    // Host network, with the host's address.
    no_address(&mut pods[4]);
    pods[4] = merged(
        pods[4].take(),
        json!({"spec": {"hostNetwork": true}, "status": {"podIP": NODE_0_IP, "podIPs": [{"ip": NODE_0_IP}]}}),
    );
    // Not scheduled yet.
    no_address(&mut pods[5]);
    pods[5] = merged(
        pods[5].take(),
        json!({"spec": {"nodeName": null}, "status": {"phase": "Pending", "podIP": null, "podIPs": null}}),
    );
    pods[6]["status"]["phase"] = json!("Succeeded");
    // Running without its address: an error.
    no_address(&mut pods[9]);
    pods[11]["metadata"]["deletionTimestamp"] = json!("2026-11-20T11:00:00Z");
    pods
}

/// The objects of a small generated cluster.
fn fixture_objects() -> Vec<Value> {
    generated(4, 12, 5)
}

/// A small generated cluster, as served, with every case the readers tell apart.
fn fixture() -> Snapshot {
    let objects = fixture_objects();
    // Pod k runs on node k % 4; node-003 is not ready (no k8s.ovn.org annotations yet), so
    // pods 3, 7 and 11 wait for it.
    let mut nodes: Vec<Value> = of_kind(&objects, "Node")
        .into_iter()
        .map(real_node)
        .collect();
    nodes[3]["metadata"]["annotations"] = json!({"node.alpha.kubernetes.io/ttl": "0"});
    let pods = fixture_pods(&objects);

    let mut services: Vec<Value> = of_kind(&objects, "Service")
        .into_iter()
        .map(real_service)
        .collect();
    services[1] = merged(
        services[1].take(),
        json!({"spec": {"type": "NodePort", "externalTrafficPolicy": "Local",
                        "ports": [{"name": "http", "port": 80, "nodePort": 30080, "targetPort": 8080, "protocol": "TCP"}]}}),
    );
    services[2] = merged(
        services[2].take(),
        json!({"spec": {"type": "LoadBalancer", "externalIPs": ["192.0.2.10"],
                        "internalTrafficPolicy": "Local", "publishNotReadyAddresses": true,
                        "sessionAffinity": "ClientIP", "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 600}},
                        "healthCheckNodePort": 31999, "allocateLoadBalancerNodePorts": true,
                        "ports": [{"name": "http", "port": 80, "nodePort": 30081, "targetPort": "http", "protocol": "TCP"},
                                  {"name": "dns", "port": 53, "nodePort": 30053, "targetPort": 5353, "protocol": "UDP"}]},
               "status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.20", "ipMode": "VIP", "hostname": "lb.example.com"}]}}}),
    );
    services[3] = merged(
        services[3].take(),
        json!({"spec": {"clusterIP": "None", "clusterIPs": ["None"]}}),
    );
    services[4] = merged(
        services[4].take(),
        json!({"spec": {"type": "ExternalName", "externalName": "example.com", "clusterIP": null, "clusterIPs": null}}),
    );

    let mut slices: Vec<Value> = of_kind(&objects, "EndpointSlice")
        .into_iter()
        .map(real_slice)
        .collect();
    let svc0 = &mut slices[0]["endpoints"];
    svc0[2]["conditions"] = json!({"ready": false, "serving": false, "terminating": false});
    svc0[3]["conditions"] = json!({"ready": false, "serving": true, "terminating": true});
    // The NodePort service's first endpoint is a host-network pod on node-000.
    slices[1]["endpoints"][0]["addresses"] = json!([NODE_0_IP]);
    slices[1]["endpoints"][0]["hostname"] = json!("node-000");
    let svc2 = &mut slices[2];
    svc2["endpoints"][1]["conditions"] = json!({"ready": false});
    svc2["endpoints"][2]["conditions"] = json!({});
    svc2["ports"] = json!([{"name": "http", "port": 8080, "protocol": "TCP"},
                           {"name": "dns", "port": 5353, "protocol": "UDP"}]);
    // An IPv6 slice of svc-0: every reader ignores it.
    let v6 = merged(
        slices[0].clone(),
        json!({"metadata": {"name": "svc-0-v6"}, "addressType": "IPv6",
               "endpoints": [{"addresses": ["fd00::5"], "conditions": {"ready": true}}]}),
    );
    slices.push(v6);

    Snapshot {
        nodes: nodes.into_iter().map(decode).collect(),
        pods: pods.into_iter().map(decode).collect(),
        services: services.into_iter().map(decode).collect(),
        endpoint_slices: slices.into_iter().map(decode).collect(),
    }
}

fn slim(full: &Snapshot) -> Snapshot {
    Snapshot {
        nodes: slimmed(&full.nodes, slim_node),
        // The pod store keeps records instead (`pod_records_give_what_full_pods_give`).
        pods: full.pods.clone(),
        services: slimmed(&full.services, slim_service),
        endpoint_slices: slimmed(&full.endpoint_slices, slim_endpoint_slice),
    }
}

/// The metadata of every slimmed kind's objects, kind by kind.
fn metas(objects: &Snapshot) -> Vec<&ObjectMeta> {
    let nodes = objects.nodes.iter().map(|o| &o.metadata);
    let services = objects.services.iter().map(|o| &o.metadata);
    let slices = objects.endpoint_slices.iter().map(|o| &o.metadata);
    nodes.chain(services).chain(slices).collect()
}

#[test]
fn the_desired_state_of_slim_objects_is_the_same() {
    let full = fixture();
    let slim = slim(&full);
    for config in [Config::default(), Config::microshift()] {
        for (f, s) in full.nodes.iter().zip(&slim.nodes) {
            assert_eq!(
                NodeInfo::from_node(f, &config),
                NodeInfo::from_node(s, &config)
            );
        }
        let (want, want_errors) = desired_cluster(&config, &full);
        let (got, got_errors) = desired_cluster(&config, &slim);
        assert_eq!(got_errors, want_errors);
        assert_eq!(got, want);
        // The fixture reaches every kind's rows, and the expected errors only.
        let owners: BTreeSet<String> = want
            .rows
            .values()
            .map(|r| format!("{:?}", r.owner))
            .collect();
        for owner in [
            r#"Node("node-002")"#,
            r#"Pod("ns8", "pod-8")"#,
            r#"Service("ns2", "svc-2")"#,
        ] {
            assert!(owners.contains(owner), "{owner} missing in {owners:?}");
        }
        let failed: Vec<&str> = want_errors.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(
            failed,
            [
                "node-003",
                "ns3/pod-3",
                "ns7/pod-7",
                "ns9/pod-9",
                "ns11/pod-11"
            ]
        );
    }
    for (f, s) in full.services.iter().zip(&slim.services) {
        assert_eq!(ServiceInfo::from_service(f), ServiceInfo::from_service(s));
    }
}

/// What the pod store keeps of a pod as served.
fn pod_record(served: Value) -> PodRecord {
    decode::<PodObject>(served).into_record()
}

/// What a pod's rows and address depend on is the same read from a record decoded from the
/// served JSON (managedFields, containers, statuses, labels and all) as from the full pod.
#[test]
fn pod_records_give_what_full_pods_give() {
    let served = fixture_pods(&fixture_objects());
    let pods: Vec<Pod> = served.iter().cloned().map(decode).collect();
    let objects: Vec<PodObject> = served.into_iter().map(decode).collect();
    let records: Vec<PodRecord> = objects
        .iter()
        .cloned()
        .map(PodObject::into_record)
        .collect();
    for ((pod, object), record) in pods.iter().zip(&objects).zip(&records) {
        assert_eq!(record.parts(), PodParts::of_pod(pod));
        assert_eq!(PodInfo::from_parts(&record.parts()), PodInfo::from_pod(pod));
        assert_eq!(needs_address(record), PodParts::of_pod(pod).gets_address());
        let meta = &pod.metadata;
        assert_eq!(Some(&record.uid), meta.uid.as_ref());
        // The watcher resumes from the resourceVersion; the store does not keep it.
        let resume = ObjectMeta {
            resource_version: meta.resource_version.clone(),
            ..ObjectMeta::default()
        };
        assert!(resume.resource_version.is_some());
        assert_eq!(object.metadata, resume);
    }
    let infos: Vec<_> = records
        .iter()
        .map(|r| PodInfo::from_parts(&r.parts()))
        .collect();
    assert!(matches!(&infos[8], Ok(Some(i)) if i.node == "node-000" && i.name == "pod-8"));
    assert!(records[8].pod_networks.is_some() && !records[8].completed);
    // Host network, not scheduled, completed: no address and no port.
    assert!(records[4].host_network && matches!(infos[4], Ok(None)));
    assert!(records[5].node_name.is_none() && matches!(infos[5], Ok(None)));
    assert!(records[6].completed && matches!(infos[6], Ok(None)));
    // Running without its address: an error naming it.
    assert!(records[9].pod_networks.is_none());
    assert!(matches!(&infos[9], Err(e) if e.name == "ns9/pod-9"));
    // Nulls and absent sections read as absent.
    let bare = pod_record(json!({"metadata": {"name": "p", "annotations": null},
                                 "spec": null, "status": {"phase": null}}));
    assert_eq!(bare.parts().name, "p");
    assert_eq!(bare.parts().namespace, "default");
    assert!(!bare.parts().gets_address() && bare.pod_networks.is_none());
}

#[test]
fn the_node_agent_sees_the_same_services() {
    let full = fixture();
    let slim = slim(&full);
    for host in [NODE_0_IP, "172.20.0.3"] {
        let host_ips = BTreeSet::from([host.parse::<Ipv4Addr>().unwrap()]);
        let want = host_services(&full.services, &full.endpoint_slices, &host_ips);
        assert_eq!(
            host_services(&slim.services, &slim.endpoint_slices, &host_ips),
            want
        );
        let keys: Vec<&str> = want.iter().map(|s| s.key.as_str()).collect();
        assert_eq!(keys, ["ns0/svc-0", "ns1/svc-1", "ns2/svc-2"]);
        // node-000 hosts the NodePort (ETP=Local) service's host-network endpoint.
        assert!(want[1].etp_local);
        assert_eq!(want[1].has_local_host_endpoint, host == NODE_0_IP);
    }
}

#[test]
fn slim_objects_keep_identity_and_ovn_annotations() {
    let full = fixture();
    let slim = slim(&full);
    for (f, s) in metas(&full).into_iter().zip(metas(&slim)) {
        assert_eq!(s.name, f.name);
        assert_eq!(s.namespace, f.namespace);
        assert!(s.uid.is_some());
        assert_eq!(s.uid, f.uid);
        assert_eq!(s.resource_version, f.resource_version);
        assert_eq!(s.deletion_timestamp, f.deletion_timestamp);
    }
    let ovn = |o: &ObjectMeta| -> BTreeMap<String, String> {
        let mut a = o.annotations.clone().unwrap_or_default();
        a.retain(|k, _| k.starts_with("k8s.ovn.org/"));
        a
    };
    for (f, s) in full.nodes.iter().zip(&slim.nodes) {
        assert_eq!(ovn(&s.metadata), ovn(&f.metadata));
    }
    assert_eq!(ovn(&slim.nodes[0].metadata).len(), 9);
    for s in &slim.endpoint_slices {
        let labels = s.metadata.labels.clone().unwrap_or_default();
        assert_eq!(labels.keys().collect::<Vec<_>>(), [SERVICE_NAME_LABEL]);
    }
}

#[test]
fn slimming_drops_the_big_fields() {
    let slim = slim(&fixture());
    for meta in metas(&slim) {
        assert!(meta.managed_fields.is_none() && meta.owner_references.is_none());
        assert!(meta.generate_name.is_none() && meta.creation_timestamp.is_none());
        let mut annotations = meta.annotations.iter().flatten();
        assert!(annotations.all(|(k, _)| k.starts_with("k8s.ovn.org/")));
    }
    for n in &slim.nodes {
        assert!(n.metadata.labels.is_none() && n.spec.is_none() && n.status.is_none());
    }
    for s in &slim.services {
        let spec = s.spec.as_ref().unwrap();
        assert!(spec.selector.is_none() && spec.ip_families.is_none());
        assert!(spec.health_check_node_port.is_none());
    }
    let lb = slim.services[2]
        .status
        .as_ref()
        .unwrap()
        .load_balancer
        .as_ref();
    let ingress = &lb.unwrap().ingress.as_ref().unwrap()[0];
    assert!(ingress.ip.is_some() && ingress.hostname.is_none() && ingress.ip_mode.is_none());
    for ep in slim.endpoint_slices.iter().flat_map(|s| &s.endpoints) {
        assert!(ep.target_ref.is_none() && ep.node_name.is_none() && ep.hostname.is_none());
        assert!(ep.zone.is_none() && ep.hints.is_none());
    }
    // svc-0's five endpoints have three distinct conditions.
    let merged: Vec<usize> = slim.endpoint_slices[0]
        .endpoints
        .iter()
        .map(|e| e.addresses.len())
        .collect();
    assert_eq!(merged, [3, 1, 1]);
}

// What a store spends per object, counted by an allocator that tracks each thread's live bytes
// (tests run on threads of their own).

thread_local! {
    /// Live bytes and blocks allocated by this thread.
    static LIVE: Cell<(isize, isize)> = const { Cell::new((0, 0)) };
}

fn count(bytes: isize, blocks: isize) {
    // `try_with`: an allocation during thread teardown must not panic.
    let _ = LIVE.try_with(|live| {
        let (b, n) = live.get();
        live.set((b + bytes, n + blocks));
    });
}

struct ThreadCounting;

// SAFETY: every call is forwarded to `System` unchanged; counting touches no allocation.
unsafe impl GlobalAlloc for ThreadCounting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size() as isize, 1);
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(layout.size() as isize, 1);
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count(-(layout.size() as isize), -1);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size as isize - layout.size() as isize, 0);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: ThreadCounting = ThreadCounting;

/// Heap bytes and blocks per object of what a store keeps: its `Arc<K>` (the store clones the
/// event's object into one) and everything that owns; and of its key in the store's map.
fn stored_per_object<K>(objects: &[K]) -> ((isize, isize), (isize, isize))
where
    K: Clone + Lookup<DynamicType = ()>,
{
    let mut stored: Vec<(ObjectRef<K>, Arc<K>)> = Vec::with_capacity(objects.len());
    let (mut object, mut key) = ((0, 0), (0, 0));
    for o in objects {
        let before = LIVE.with(Cell::get);
        let arc = Arc::new(o.clone());
        let between = LIVE.with(Cell::get);
        let r = o.to_object_ref(());
        let after = LIVE.with(Cell::get);
        object = (
            object.0 + between.0 - before.0,
            object.1 + between.1 - before.1,
        );
        key = (key.0 + after.0 - between.0, key.1 + after.1 - between.1);
        stored.push((r, arc));
    }
    let n = objects.len().max(1) as isize;
    ((object.0 / n, object.1 / n), (key.0 / n, key.1 / n))
}

/// Prints and returns the stored bytes per object of `bench` objects of one kind, and of the
/// same objects as served (`real`), as decoded into a `K` and as a store keeps them (`stored`,
/// from the JSON).
fn footprint<K, S>(
    bench: Vec<Value>,
    real: fn(Value) -> Value,
    stored: impl Fn(Value) -> S,
) -> [(isize, isize); 2]
where
    K: Clone + DeserializeOwned + Lookup<DynamicType = ()>,
    S: Clone + Lookup<DynamicType = ()>,
{
    let kind = K::kind(&()).into_owned();
    let served: Vec<Value> = bench.iter().cloned().map(real).collect();
    [("bench", bench), ("real", served)].map(|(shape, values)| {
        let objects: Vec<K> = values.iter().cloned().map(decode).collect();
        let kept: Vec<S> = values.into_iter().map(&stored).collect();
        let ((before, before_blocks), _) = stored_per_object(&objects);
        let ((after, after_blocks), (key, key_blocks)) = stored_per_object(&kept);
        println!(
            "{kind:<13} {shape:<5} size_of {:>5}  stored {before:>6} B in {before_blocks:>3} blocks \
             -> size_of {:>5}  stored {after:>5} B in {after_blocks:>3} blocks  (+ its key {key} B in {key_blocks} blocks)",
            std::mem::size_of::<K>(),
            std::mem::size_of::<S>()
        );
        (before, after)
    })
}

/// Prints what each kind costs a store per object, as decoded and as slimmed, for the
/// benchmark's objects and for the same objects as a real cluster serves them
/// (`cargo test -p ovnkube-rs --bin ovnkube-rs store_footprint -- --nocapture`).
#[test]
fn store_footprint_per_object() {
    let objects = generated(100, 1000, 500);
    let figures = [
        footprint::<Node, _>(of_kind(&objects, "Node"), real_node, |v| {
            slim_node(decode(v))
        }),
        footprint::<Pod, _>(of_kind(&objects, "Pod"), real_pod, pod_record),
        footprint::<Service, _>(of_kind(&objects, "Service"), real_service, |v| {
            slim_service(decode(v))
        }),
        footprint::<EndpointSlice, _>(of_kind(&objects, "EndpointSlice"), real_slice, |v| {
            slim_endpoint_slice(decode(v))
        }),
    ];
    for (before, after) in figures.into_iter().flatten() {
        assert!(
            after < before,
            "slimming saved nothing: {before} -> {after}"
        );
    }
}
