//! The OVS side of node setup: `Open_vSwitch` external_ids for ovn-controller, the management
//! port, and reading bridge facts (MACs, ofports, the uplink).

use std::thread::sleep;
use std::time::{Duration, Instant};

use crate::facts::{Uplink, MGMT_PORT, PHYSNET};
use crate::host::Host;
use crate::net::MacAddr;
use crate::Error;

const POLL: Duration = Duration::from_millis(100);

/// What ovn-controller needs in `Open_vSwitch external_ids`.
#[derive(Debug, Clone)]
pub struct OvsSettings {
    /// `ovn-remote`, the SB database (`unix:/var/run/ovn/ovnsb_db.sock` in MicroShift).
    pub sb_remote: String,
    /// `ovn-encap-ip`, the node IP.
    pub encap_ip: String,
    /// `hostname`, the node name.
    pub hostname: String,
    /// The gateway bridge mapped to `physnet`.
    pub bridge: String,
}

/// Strips the quotes `ovs-vsctl get` puts around strings.
fn unquote(s: &str) -> &str {
    s.trim().trim_matches('"')
}

/// `ovn-bridge-mappings` with any `physnet:*` entry replaced by `physnet:<bridge>`, others kept.
pub fn merge_bridge_mappings(existing: &str, bridge: &str) -> String {
    let mut entries: Vec<&str> = existing
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty() && e.split(':').next() != Some(PHYSNET))
        .collect();
    let ours = format!("{PHYSNET}:{bridge}");
    entries.push(&ours);
    entries.join(",")
}

/// Writes the `Open_vSwitch .` keys upstream's node sets (MicroShift values).
pub fn configure_open_vswitch(host: &Host, s: &OvsSettings) -> Result<(), Error> {
    let existing = host.vsctl(&[
        "--if-exists",
        "get",
        "Open_vSwitch",
        ".",
        "external_ids:ovn-bridge-mappings",
    ])?;
    let mappings = merge_bridge_mappings(unquote(&existing), &s.bridge);
    let kv = [
        format!("external_ids:ovn-remote=\"{}\"", s.sb_remote),
        "external_ids:ovn-encap-type=geneve".to_string(),
        format!("external_ids:ovn-encap-ip=\"{}\"", s.encap_ip),
        "external_ids:ovn-remote-probe-interval=180000".to_string(),
        "external_ids:ovn-openflow-probe-interval=180".to_string(),
        format!("external_ids:hostname=\"{}\"", s.hostname),
        "external_ids:ovn-is-interconn=false".to_string(),
        "external_ids:ovn-monitor-all=true".to_string(),
        "external_ids:ovn-ofctrl-wait-before-clear=0".to_string(),
        "external_ids:ovn-enable-lflow-cache=false".to_string(),
        "external_ids:ovn-memlimit-lflow-cache-kb=870".to_string(),
        format!("external_ids:ovn-bridge-mappings=\"{mappings}\""),
        "other_config:bundle-idle-timeout=180".to_string(),
    ];
    let mut args = vec!["set", "Open_vSwitch", "."];
    args.extend(kv.iter().map(String::as_str));
    host.vsctl(&args)?;
    Ok(())
}

/// `Open_vSwitch external_ids:system-id` (the chassis id), provided by the OVS packaging.
pub fn system_id(host: &Host) -> Result<String, Error> {
    let id = host.vsctl(&[
        "--if-exists",
        "get",
        "Open_vSwitch",
        ".",
        "external_ids:system-id",
    ])?;
    let id = unquote(&id);
    if id.is_empty() {
        return Err(Error::Host {
            what: "Open_vSwitch external_ids:system-id".into(),
            reason: "not set (the OVS packaging provides it)".into(),
        });
    }
    Ok(id.to_string())
}

/// Fails unless the bridge exists.
pub fn require_bridge(host: &Host, bridge: &str) -> Result<(), Error> {
    host.vsctl(&["br-exists", bridge])
        .map(|_| ())
        .map_err(|_| Error::Host {
            what: format!("OVS bridge {bridge}"),
            reason: "does not exist".into(),
        })
}

/// The `mac_in_use` of an interface.
pub fn interface_mac(host: &Host, iface: &str) -> Result<MacAddr, Error> {
    unquote(&host.vsctl(&["get", "Interface", iface, "mac_in_use"])?).parse()
}

/// The interface's OpenFlow port, if it has a valid one yet.
pub fn ofport(host: &Host, iface: &str) -> Result<Option<u32>, Error> {
    let out = host.vsctl(&["--if-exists", "get", "Interface", iface, "ofport"])?;
    Ok(unquote(&out)
        .parse::<i64>()
        .ok()
        .filter(|p| *p > 0)
        .and_then(|p| u32::try_from(p).ok()))
}

/// Waits until the interface has a valid ofport (the patch port appears once ovn-controller
/// has seen the localnet port of `ext_<node>` and the bridge mapping).
pub fn wait_for_ofport(host: &Host, iface: &str, timeout: Duration) -> Result<u32, Error> {
    let start = Instant::now();
    loop {
        if let Some(p) = ofport(host, iface)? {
            return Ok(p);
        }
        if start.elapsed() > timeout {
            return Err(Error::Timeout {
                what: format!("OVS interface {iface} to get an ofport"),
                seconds: timeout.as_secs(),
            });
        }
        sleep(POLL);
    }
}

/// The uplink NIC of the bridge: its first port whose interface is a plain system device.
pub fn uplink(host: &Host, bridge: &str) -> Result<Uplink, Error> {
    for port in host.vsctl(&["list-ports", bridge])?.lines() {
        if unquote(&host.vsctl(&["get", "Interface", port, "type"])?).is_empty() {
            if let Some(p) = ofport(host, port)? {
                return Ok(Uplink::Port(p));
            }
        }
    }
    Ok(Uplink::None)
}

/// Creates (or keeps) `ovn-k8s-mp0` on br-int with `iface-id=k8s-<node>`, pins its MAC with
/// `mac=` so it survives restarts, and waits for the netdev; returns the MAC.
pub fn ensure_mgmt_port(host: &Host, node: &str, mtu: u32) -> Result<MacAddr, Error> {
    let legacy = format!("k8s-{}", node.chars().take(11).collect::<String>());
    let iface_id = format!("external-ids:iface-id=\"k8s-{node}\"");
    let mtu_request = format!("mtu_request={mtu}");
    let mut args = Vec::new();
    if legacy != format!("k8s-{node}") {
        args.extend(["--", "--if-exists", "del-port", "br-int", legacy.as_str()]);
    }
    args.extend([
        "--",
        "--may-exist",
        "add-port",
        "br-int",
        MGMT_PORT,
        "--",
        "set",
        "Interface",
        MGMT_PORT,
        "type=internal",
        mtu_request.as_str(),
        iface_id.as_str(),
    ]);
    host.vsctl(&args)?;
    let mac = interface_mac(host, MGMT_PORT)?;
    host.vsctl(&["set", "Interface", MGMT_PORT, &format!("mac=\"{mac}\"")])?;
    let start = Instant::now();
    while host.run("ip", &["link", "show", "dev", MGMT_PORT]).is_err() {
        if start.elapsed() > Duration::from_secs(10) {
            return Err(Error::Timeout {
                what: format!("the {MGMT_PORT} netdev"),
                seconds: 10,
            });
        }
        sleep(POLL);
    }
    Ok(mac)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bridge_mappings_replace_only_physnet() {
        assert_eq!(merge_bridge_mappings("", "br-ex"), "physnet:br-ex");
        assert_eq!(
            merge_bridge_mappings("physnet:br-old,exgw:br-ex1", "br-ex"),
            "exgw:br-ex1,physnet:br-ex"
        );
    }
}
