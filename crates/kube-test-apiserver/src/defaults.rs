//! The field defaults kube-apiserver fills in on every write, for the fields clients of
//! Services, Pods and Namespaces commonly read back.

use serde_json::{json, Value};

/// Sets `obj[field]` to `value` when it is absent or null.
fn default(obj: &mut Value, field: &str, value: Value) {
    if obj.get(field).is_none_or(Value::is_null) {
        obj[field] = value;
    }
}

fn service(svc: &mut Value) {
    if !svc["spec"].is_object() {
        svc["spec"] = json!({});
    }
    let spec = &mut svc["spec"];
    default(spec, "type", json!("ClusterIP"));
    let kind = spec["type"].as_str().unwrap_or_default().to_string();
    if kind != "ExternalName" {
        default(spec, "sessionAffinity", json!("None"));
        default(spec, "ipFamilies", json!(["IPv4"]));
        default(spec, "ipFamilyPolicy", json!("SingleStack"));
        default(spec, "internalTrafficPolicy", json!("Cluster"));
    }
    if kind == "NodePort" || kind == "LoadBalancer" {
        default(spec, "externalTrafficPolicy", json!("Cluster"));
    }
    for port in spec["ports"].as_array_mut().into_iter().flatten() {
        default(port, "protocol", json!("TCP"));
        let number = port["port"].clone();
        default(port, "targetPort", number);
    }
}

fn pod(pod: &mut Value) {
    if !pod["status"].is_object() {
        pod["status"] = json!({});
    }
    default(&mut pod["status"], "phase", json!("Pending"));
    for list in ["containers", "initContainers"] {
        for container in pod["spec"][list].as_array_mut().into_iter().flatten() {
            for port in container["ports"].as_array_mut().into_iter().flatten() {
                default(port, "protocol", json!("TCP"));
            }
        }
    }
}

fn namespace(ns: &mut Value) {
    ns["spec"]["finalizers"] = json!(["kubernetes"]);
    if !ns["status"].is_object() {
        ns["status"] = json!({});
    }
    default(&mut ns["status"], "phase", json!("Active"));
}

/// Fills in the defaults of a `kind` object being written; `obj` must be a JSON object.
pub fn apply(kind: &str, obj: &mut Value) {
    match kind {
        "Service" => service(obj),
        "Pod" if obj["spec"].is_object() => pod(obj),
        "Namespace" => namespace(obj),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_defaults_keep_given_values() {
        let mut svc = json!({"spec": {"type": "NodePort", "ports": [
            {"port": 80}, {"port": 53, "protocol": "UDP", "targetPort": "dns"}
        ]}});
        apply("Service", &mut svc);
        assert_eq!(
            svc["spec"]["ports"][0],
            json!({"port": 80, "protocol": "TCP", "targetPort": 80})
        );
        assert_eq!(
            svc["spec"]["ports"][1],
            json!({"port": 53, "protocol": "UDP", "targetPort": "dns"})
        );
        assert_eq!(svc["spec"]["externalTrafficPolicy"], "Cluster");
        assert_eq!(svc["spec"]["ipFamilies"], json!(["IPv4"]));
        let mut external = json!({"spec": {"type": "ExternalName", "externalName": "x.example"}});
        apply("Service", &mut external);
        assert!(external["spec"].get("ipFamilies").is_none());
    }

    #[test]
    fn pod_and_namespace_defaults() {
        let mut p =
            json!({"spec": {"containers": [{"name": "c", "ports": [{"containerPort": 80}]}]}});
        apply("Pod", &mut p);
        assert_eq!(p["status"]["phase"], "Pending");
        assert_eq!(p["spec"]["containers"][0]["ports"][0]["protocol"], "TCP");
        let mut running = json!({"spec": {}, "status": {"phase": "Running"}});
        apply("Pod", &mut running);
        assert_eq!(running["status"]["phase"], "Running");
        let mut ns = json!({"metadata": {"name": "x"}});
        apply("Namespace", &mut ns);
        assert_eq!(ns["status"]["phase"], "Active");
    }
}
