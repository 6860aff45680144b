//! Wiring a pod: the veth pair, the pod-side addresses and routes, the OVS port on br-int, and
//! the wait for ovn-controller's `ovn-installed`.

use std::path::Path;
use std::time::Duration;

use serde_json::json;

use super::{
    AnnotationSource, CniError, CniRequest, FetchPod, NetConf, PodNetwork, ERR_HOST,
    ERR_INVALID_CONFIG, ERR_INVALID_ENV, ERR_TRY_AGAIN,
};
use crate::host::Host;
use crate::Error;

const INTEGRATION_BRIDGE: &str = "br-int";

/// Runs `ip` inside the pod's namespace.
fn pod_ip(host: &Host, netns: &str, args: &[&str], input: Option<&str>) -> Result<String, Error> {
    let net = format!("--net={netns}");
    let mut all = vec![net.as_str(), "ip"];
    all.extend_from_slice(args);
    host.run_with_input("nsenter", &all, input)
}

fn annotation_source(conf: &NetConf) -> Result<AnnotationSource, CniError> {
    match (&conf.pod_networks_dir, &conf.kubeconfig) {
        (Some(dir), _) => Ok(AnnotationSource::Dir(dir.clone())),
        (None, Some(k)) => Ok(AnnotationSource::Kubeconfig(k.clone())),
        (None, None) => Err(CniError::new(
            ERR_INVALID_CONFIG,
            "the network config names no kubeconfig",
            "set \"kubeconfig\" (the node agent writes it)",
        )),
    }
}

fn link_mac(host: &Host, ifname: &str) -> Result<String, Error> {
    let out = host.run("ip", &["-o", "link", "show", "dev", ifname])?;
    Ok(out
        .split_whitespace()
        .skip_while(|w| *w != "link/ether")
        .nth(1)
        .unwrap_or_default()
        .to_string())
}

/// ADD: returns the CNI result JSON.
pub(super) fn add(
    host: &Host,
    conf: &NetConf,
    req: &CniRequest,
    fetch: FetchPod,
) -> Result<String, CniError> {
    if !Path::new(&req.netns).exists() {
        return Err(CniError::new(
            ERR_INVALID_ENV,
            "CNI_NETNS does not exist",
            req.netns.clone(),
        ));
    }
    let net = annotation_source(conf)?.wait(&req.pod, conf.annotation_timeout, fetch)?;
    let host_if = req.host_ifname();
    // A retried ADD starts from scratch.
    if host.run("ip", &["link", "show", "dev", &host_if]).is_ok() {
        host.run("ip", &["link", "del", &host_if])?;
    }
    let mtu = conf.mtu.to_string();
    let host_ns = host.netns_path();
    pod_ip(
        host,
        &req.netns,
        &[
            "link",
            "add",
            &req.ifname,
            "mtu",
            &mtu,
            "address",
            &net.mac.to_string(),
            "type",
            "veth",
            "peer",
            "name",
            &host_if,
            "mtu",
            &mtu,
            "netns",
            &host_ns,
        ],
        None,
    )?;
    pod_ip(
        host,
        &req.netns,
        &["-batch", "-"],
        Some(&pod_batch(&req.ifname, &net)),
    )?;
    host.run("ip", &["link", "set", "dev", &host_if, "up"])?;
    attach_to_br_int(host, req, &host_if, &net)?;
    wait_for_ovn_installed(host, &host_if, conf.readiness_timeout)?;
    let host_mac = link_mac(host, &host_if)?;
    Ok(result_json(conf, req, &host_if, &host_mac, &net))
}

/// The pod-side `ip -batch` script: address, link up, default and annotation routes.
fn pod_batch(ifname: &str, net: &PodNetwork) -> String {
    let mut b = String::from("link set dev lo up\n");
    for ip in &net.ips {
        b.push_str(&format!("addr add {ip} dev {ifname}\n"));
    }
    b.push_str(&format!("link set dev {ifname} up\n"));
    for gw in &net.gateways {
        b.push_str(&format!("route add default via {gw} dev {ifname}\n"));
    }
    for (dst, nh) in &net.routes {
        b.push_str(&format!(
            "route add {} via {nh} dev {ifname}\n",
            dst.trunc()
        ));
    }
    b
}

/// Adds the host end to br-int with the ids ovn-controller binds on, after removing any stale
/// port that claims the same logical port.
fn attach_to_br_int(
    host: &Host,
    req: &CniRequest,
    host_if: &str,
    net: &PodNetwork,
) -> Result<(), Error> {
    let iface_id = req.pod.iface_id();
    let stale = host.vsctl(&[
        "--bare",
        "--columns=name",
        "find",
        "Interface",
        &format!("external_ids:iface-id=\"{iface_id}\""),
    ])?;
    for name in stale.split_whitespace().filter(|n| *n != host_if) {
        host.vsctl(&["--if-exists", "del-port", INTEGRATION_BRIDGE, name])?;
    }
    let ips: Vec<String> = net.ips.iter().map(ToString::to_string).collect();
    let ids = [
        format!("external_ids:attached_mac=\"{}\"", net.mac),
        format!("external_ids:iface-id=\"{iface_id}\""),
        format!(
            "external_ids:iface-id-ver=\"{}\"",
            req.pod.uid.clone().unwrap_or_default()
        ),
        format!("external_ids:sandbox=\"{}\"", req.container_id),
        format!("external_ids:ip_addresses=\"{}\"", ips.join(",")),
    ];
    let mut args = vec![
        "--",
        "--may-exist",
        "add-port",
        INTEGRATION_BRIDGE,
        host_if,
        "other_config:transient=true",
        "--",
        "set",
        "Interface",
        host_if,
    ];
    args.extend(ids.iter().map(String::as_str));
    host.vsctl(&args)?;
    Ok(())
}

fn ovn_installed(host: &Host, host_if: &str) -> Result<bool, Error> {
    let v = host.vsctl(&[
        "--if-exists",
        "get",
        "Interface",
        host_if,
        "external_ids:ovn-installed",
    ])?;
    Ok(v.trim_matches('"') == "true")
}

/// Waits until ovn-controller has installed the port's flows (`external_ids:ovn-installed`):
/// `ovs-vsctl wait-until` returns the moment the column changes (no polling interval added to
/// every pod's start-up).
fn wait_for_ovn_installed(host: &Host, host_if: &str, timeout: Duration) -> Result<(), CniError> {
    let limit = format!("--timeout={}", timeout.as_secs().max(1));
    host.vsctl(&[
        &limit,
        "wait-until",
        "Interface",
        host_if,
        "external_ids:ovn-installed=true",
    ])
    .map(|_| ())
    .map_err(|e| {
        CniError::new(
            ERR_TRY_AGAIN,
            format!("OVS port {host_if} was not reported up by ovn-controller"),
            format!("external_ids:ovn-installed not set after {}s (is ovn-controller running and the logical port created?): {e}", timeout.as_secs()),
        )
    })
}

fn result_json(
    conf: &NetConf,
    req: &CniRequest,
    host_if: &str,
    host_mac: &str,
    net: &PodNetwork,
) -> String {
    let legacy = conf.cni_version != "1.0.0";
    let gateway = net.gateways.first().map(ToString::to_string);
    let ips: Vec<serde_json::Value> = net
        .ips
        .iter()
        .map(|ip| {
            let mut v = json!({"address": ip.to_string(), "interface": 1});
            if let Some(gw) = &gateway {
                v["gateway"] = json!(gw);
            }
            if legacy {
                v["version"] = json!("4");
            }
            v
        })
        .collect();
    let mut routes: Vec<serde_json::Value> = net
        .gateways
        .iter()
        .map(|gw| json!({"dst": "0.0.0.0/0", "gw": gw.to_string()}))
        .collect();
    routes.extend(
        net.routes
            .iter()
            .map(|(dst, nh)| json!({"dst": dst.trunc().to_string(), "gw": nh.to_string()})),
    );
    json!({
        "cniVersion": conf.cni_version,
        "interfaces": [
            {"name": host_if, "mac": host_mac},
            {"name": req.ifname, "mac": net.mac.to_string(), "sandbox": req.netns},
        ],
        "ips": ips,
        "routes": routes,
        "dns": {},
    })
    .to_string()
}

/// DEL: removes the OVS port and the veth; missing pieces are not an error.
pub(super) fn del(host: &Host, req: &CniRequest) -> Result<(), CniError> {
    let host_if = req.host_ifname();
    host.vsctl(&["--if-exists", "del-port", INTEGRATION_BRIDGE, &host_if])?;
    if host.run("ip", &["link", "show", "dev", &host_if]).is_ok() {
        host.run("ip", &["link", "del", &host_if])?;
    }
    Ok(())
}

/// CHECK: the OVS port claims this pod and the pod interface holds the attached addresses.
pub(super) fn check(host: &Host, conf: &NetConf, req: &CniRequest) -> Result<(), CniError> {
    let host_if = req.host_ifname();
    let fail = |msg: String| CniError::new(ERR_HOST, msg, "");
    let iface_id = host.vsctl(&[
        "--if-exists",
        "get",
        "Interface",
        &host_if,
        "external_ids:iface-id",
    ])?;
    if iface_id.trim_matches('"') != req.pod.iface_id() {
        return Err(fail(format!(
            "OVS port {host_if} does not carry iface-id {}",
            req.pod.iface_id()
        )));
    }
    if !ovn_installed(host, &host_if)? {
        return Err(fail(format!("OVS port {host_if} is not ovn-installed")));
    }
    let addrs = pod_ip(
        host,
        &req.netns,
        &["-o", "-4", "addr", "show", "dev", &req.ifname],
        None,
    )
    .map_err(|e| {
        fail(format!(
            "pod interface {} in {}: {e}",
            req.ifname, req.netns
        ))
    })?;
    for ip in &conf.prev_ips {
        if !addrs.split_whitespace().any(|w| w == ip) {
            return Err(fail(format!("pod interface {} lacks {ip}", req.ifname)));
        }
    }
    Ok(())
}
