//! The seed cluster rendered into exactly the rows the seed shows.

mod common;

use common::{microshift_config, seed_snapshot};
use ovnkube_desired::names::*;
use ovnkube_desired::{desired_cluster, GatewayMode, RowId};
use ovsdb::{Datum, Row};

fn col(r: &Row, c: &str) -> String {
    r.get(c).map(|d| d.to_string()).unwrap_or_default()
}

fn children<'a>(d: &'a ovnkube_desired::Desired, table: &str, parent: &str) -> Vec<&'a Row> {
    d.rows
        .iter()
        .filter(|(id, _)| matches!(id, RowId::Child { table: t, parent: p, .. } if *t == table && p.name == parent))
        .map(|(_, r)| &r.columns)
        .collect()
}

#[test]
fn seed_cluster_has_no_errors_and_is_deterministic() {
    let (a, errors) = desired_cluster(&microshift_config(), &seed_snapshot());
    assert!(errors.is_empty(), "{errors:?}");
    let (b, _) = desired_cluster(&microshift_config(), &seed_snapshot());
    assert_eq!(a, b);
}

#[test]
fn topology_matches_the_seed() {
    let (d, _) = desired_cluster(&microshift_config(), &seed_snapshot());
    let gr = d.named_row(LOGICAL_ROUTER, "GR_microshift-dev").unwrap();
    assert_eq!(
        col(gr, "options"),
        "{always_learn_from_arp_request=false, chassis=275588ee-e349-4824-9d80-106bd275228f, \
         dynamic_neigh_routers=true, lb_force_snat_ip=router_ip, snat-ct-zone=0}"
    );
    let rtoj = d
        .named_row(LOGICAL_ROUTER_PORT, "rtoj-GR_microshift-dev")
        .unwrap();
    assert_eq!(
        (col(rtoj, "mac").as_str(), col(rtoj, "networks").as_str()),
        ("0a:58:64:40:00:02", "100.64.0.2/16")
    );
    let rtoe = d
        .named_row(LOGICAL_ROUTER_PORT, "rtoe-GR_microshift-dev")
        .unwrap();
    assert_eq!(
        (col(rtoe, "mac").as_str(), col(rtoe, "networks").as_str()),
        ("52:54:00:e2:ed:d0", "192.168.122.14/24")
    );
    let rtos = d
        .named_row(LOGICAL_ROUTER_PORT, "rtos-microshift-dev")
        .unwrap();
    assert_eq!(
        (col(rtos, "mac").as_str(), col(rtos, "networks").as_str()),
        ("0a:58:0a:2a:00:01", "10.42.0.1/24")
    );
    let rtoj_cr = d
        .named_row(LOGICAL_ROUTER_PORT, "rtoj-ovn_cluster_router")
        .unwrap();
    assert_eq!(col(rtoj_cr, "networks"), "100.64.0.1/16");
    assert_eq!(
        col(
            d.named_row(LOGICAL_SWITCH_PORT, "k8s-microshift-dev")
                .unwrap(),
            "addresses"
        ),
        "76:3a:81:5a:05:d7 10.42.0.2"
    );
    let switches: Vec<&str> = d
        .rows
        .keys()
        .filter_map(|id| match id {
            RowId::Named(n) if n.table == LOGICAL_SWITCH => Some(n.name.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(switches, ["ext_microshift-dev", "join", "microshift-dev"]);
}

#[test]
fn routes_and_policies_match_the_seed() {
    let (d, _) = desired_cluster(&microshift_config(), &seed_snapshot());
    // The seed's one route, plus the GR join-IP route its flows through the GR need for their
    // replies (see the crate docs, "Where the seed decides").
    let mut cr_routes: Vec<(String, String, String)> = children(&d, STATIC_ROUTE, CLUSTER_ROUTER)
        .iter()
        .map(|r| (col(r, "ip_prefix"), col(r, "nexthop"), col(r, "policy")))
        .collect();
    cr_routes.sort();
    assert_eq!(
        cr_routes,
        [
            ("10.42.0.0/24".into(), "10.42.0.2".into(), "src-ip".into()),
            ("100.64.0.2".into(), "100.64.0.2".into(), "[]".into()),
        ]
    );
    let mut gr: Vec<(String, String, String)> = children(&d, STATIC_ROUTE, "GR_microshift-dev")
        .iter()
        .map(|r| {
            (
                col(r, "ip_prefix"),
                col(r, "nexthop"),
                col(r, "output_port"),
            )
        })
        .collect();
    gr.sort();
    assert_eq!(
        gr,
        [
            (
                "0.0.0.0/0".into(),
                "192.168.122.1".into(),
                "rtoe-GR_microshift-dev".into()
            ),
            ("10.42.0.0/16".into(), "100.64.0.1".into(), "[]".into()),
            (
                "169.254.169.0/29".into(),
                "169.254.169.4".into(),
                "rtoe-GR_microshift-dev".into()
            ),
        ]
    );
    let policies = children(&d, POLICY, CLUSTER_ROUTER);
    assert_eq!(
        policies.len(),
        1,
        "local gateway mode reroutes only the gateway address"
    );
    assert_eq!(
        col(policies[0], "match"),
        r#"inport == "rtos-microshift-dev" && ip4.dst == 192.168.122.14"#
    );
    assert_eq!(
        (col(policies[0], "action"), col(policies[0], "nexthops")),
        ("reroute".into(), "10.42.0.2".into())
    );
}

#[test]
fn shared_mode_reroutes_every_host_address_and_routes_via_the_gr() {
    let config = ovnkube_desired::Config {
        gateway_mode: GatewayMode::Shared,
        ..microshift_config()
    };
    let (d, _) = desired_cluster(&config, &seed_snapshot());
    let mut matches: Vec<String> = children(&d, POLICY, CLUSTER_ROUTER)
        .iter()
        .map(|r| col(r, "match"))
        .collect();
    matches.sort();
    assert_eq!(matches.len(), 2);
    assert!(matches[0].ends_with("ip4.dst == 10.44.0.0"));
    let mut routes: Vec<(String, String)> = children(&d, STATIC_ROUTE, CLUSTER_ROUTER)
        .iter()
        .map(|r| (col(r, "ip_prefix"), col(r, "nexthop")))
        .collect();
    routes.sort();
    assert_eq!(
        routes,
        [
            ("10.42.0.0/24".into(), "100.64.0.2".into()),
            ("100.64.0.2".into(), "100.64.0.2".into())
        ]
    );
}

#[test]
fn load_balancers_match_the_seed() {
    let (d, _) = desired_cluster(&microshift_config(), &seed_snapshot());
    let lb = |name: &str| {
        d.named_row(LOAD_BALANCER, name)
            .unwrap_or_else(|| panic!("{name} missing"))
    };
    let dns = lb("Service_openshift-dns/dns-default_TCP_node_router+switch_microshift-dev");
    assert_eq!(
        col(dns, "options"),
        "{event=false, reject=true, skip_snat=false}"
    );
    assert_eq!(
        col(dns, "vips"),
        "{10.43.0.10:53=10.42.0.7:5353, 10.43.0.10:9154=10.42.0.7:9154}"
    );
    assert_eq!(
        col(dns, "external_ids"),
        "{k8s.ovn.org/kind=Service, k8s.ovn.org/owner=openshift-dns/dns-default}"
    );
    assert_eq!(col(dns, "protocol"), "tcp");
    let dns_udp = lb("Service_openshift-dns/dns-default_UDP_node_router+switch_microshift-dev");
    assert_eq!(
        (col(dns_udp, "protocol"), col(dns_udp, "vips")),
        ("udp".into(), "{10.43.0.10:53=10.42.0.7:5353}".into())
    );
    let kube = lb("Service_default/kubernetes_TCP_node_router+switch_microshift-dev");
    assert_eq!(
        col(kube, "options"),
        "{event=false, hairpin_snat_ip=169.254.169.5 fd69::5, neighbor_responder=none, reject=true, skip_snat=false}"
    );
    assert_eq!(col(kube, "vips"), "{10.43.0.1:443=10.44.0.0:6443}");
    let np = lb("Service_default/svc-nodeport_TCP_node_router+switch_microshift-dev");
    assert_eq!(col(np, "vips"), "{192.168.122.14:30700=10.42.0.13:8080}");
    assert_eq!(
        col(np, "options"),
        "{event=false, reject=true, skip_snat=false}"
    );
    assert_eq!(
        col(lb("Service_default/svc-nodeport_TCP_cluster"), "vips"),
        "{10.43.19.182:7000=10.42.0.13:8080}"
    );
    // Attachments: per-node LBs on both the node switch and the GR, cluster LBs in the group.
    let attached = |parent: &str, lb: &str| {
        d.links.iter().any(|l| {
            l.parent.name == parent
                && l.column == "load_balancer"
                && matches!(&l.child, RowId::Named(n) if n.name == lb)
        })
    };
    for name in [
        "Service_openshift-dns/dns-default_TCP_node_router+switch_microshift-dev",
        "Service_default/kubernetes_TCP_node_router+switch_microshift-dev",
        "Service_default/svc-nodeport_TCP_node_router+switch_microshift-dev",
    ] {
        assert!(
            attached("microshift-dev", name) && attached("GR_microshift-dev", name),
            "{name}"
        );
    }
    assert!(attached(
        CLUSTER_LB_GROUP,
        "Service_default/svc-nodeport_TCP_cluster"
    ));
    assert!(!attached(
        "microshift-dev",
        "Service_default/svc-nodeport_TCP_cluster"
    ));
}

#[test]
fn kubernetes_with_the_node_ip_endpoint_splits_switch_and_router() {
    let mut snap = seed_snapshot();
    let slice = snap
        .endpoint_slices
        .iter_mut()
        .find(|s| s.metadata.name.as_deref() == Some("kubernetes"))
        .unwrap();
    slice.endpoints[0].addresses = vec!["192.168.122.14".into()];
    let (d, errors) = desired_cluster(&microshift_config(), &snap);
    assert!(errors.is_empty());
    let sw = d
        .named_row(
            LOAD_BALANCER,
            "Service_default/kubernetes_TCP_node_switch_microshift-dev",
        )
        .unwrap();
    assert_eq!(col(sw, "vips"), "{10.43.0.1:443=192.168.122.14:6443}");
    assert_eq!(
        col(sw, "options"),
        "{event=false, reject=true, skip_snat=false}"
    );
    let rt = d
        .named_row(
            LOAD_BALANCER,
            "Service_default/kubernetes_TCP_node_router_microshift-dev",
        )
        .unwrap();
    assert_eq!(col(rt, "vips"), "{10.43.0.1:443=169.254.169.2:6443}");
    assert!(col(rt, "options")
        .contains("hairpin_snat_ip=169.254.169.5 fd69::5, neighbor_responder=none"));
    assert!(d
        .named_row(
            LOAD_BALANCER,
            "Service_default/kubernetes_TCP_node_router+switch_microshift-dev"
        )
        .is_none());
}

#[test]
fn pods_get_ports_host_network_pods_do_not() {
    let (d, _) = desired_cluster(&microshift_config(), &seed_snapshot());
    let p = d.named_row(LOGICAL_SWITCH_PORT, "default_pod-1").unwrap();
    assert_eq!(col(p, "addresses"), "0a:58:0a:2a:00:0c 10.42.0.12");
    assert_eq!(col(p, "port_security"), "0a:58:0a:2a:00:0c 10.42.0.12");
    assert_eq!(col(p, "external_ids"), "{namespace=default, pod=true}");
    assert!(col(p, "options").contains("requested-chassis=microshift-dev"));
    let pods = d
        .rows
        .values()
        .filter(|r| {
            r.columns
                .get("external_ids")
                .and_then(|e| e.get("pod"))
                .is_some()
        })
        .count();
    assert_eq!(pods, 5, "three host-network pods get no port");
    assert!(d
        .named_row(LOGICAL_SWITCH_PORT, "openshift-dns_node-resolver-87kvk")
        .is_none());
    // --disable-snat-multiple-gws: one SNAT per pod on the GR; without it, one for the cluster CIDR.
    let nats = children(&d, NAT, "GR_microshift-dev");
    assert_eq!(nats.len(), 5);
    let config = ovnkube_desired::Config {
        disable_snat_multiple_gws: false,
        ..microshift_config()
    };
    let (d, _) = desired_cluster(&config, &seed_snapshot());
    let nats = children(&d, NAT, "GR_microshift-dev");
    assert_eq!(nats.len(), 1);
    assert_eq!(col(nats[0], "logical_ip"), "10.42.0.0/16");
    assert_eq!(nats[0]["options"], Datum::map([("stateless", "false")]));
}

#[test]
fn routers_share_the_upstream_copp_and_meters() {
    let (d, _) = desired_cluster(&microshift_config(), &seed_snapshot());
    let copp = d.named_row(COPP, COPP_NAME).unwrap();
    assert_eq!(
        col(copp, "meters"),
        "{arp=arp-rate-limiter, arp-resolve=arp-resolve-rate-limiter, bfd=bfd-rate-limiter, \
         event-elb=event-elb-rate-limiter, icmp4-error=icmp4-error-rate-limiter, \
         icmp6-error=icmp6-error-rate-limiter, reject=reject-rate-limiter, tcp-reset=tcp-reset-rate-limiter}"
    );
    let meter = d.named_row(METER, "reject-rate-limiter").unwrap();
    assert_eq!(
        (col(meter, "fair"), col(meter, "unit")),
        ("true".into(), "pktps".into())
    );
    let band = children(&d, METER_BAND, "reject-rate-limiter");
    assert_eq!(
        (col(band[0], "action"), col(band[0], "rate")),
        ("drop".into(), "25".into())
    );
    let acl = children(&d, METER_BAND, ACL_LOGGING_METER);
    assert_eq!(
        col(acl[0], "rate"),
        "20",
        "MicroShift's --acl-logging-rate-limit"
    );
    for router in [CLUSTER_ROUTER, "GR_microshift-dev"] {
        assert!(
            d.links.iter().any(|l| l.parent.name == router
                && l.column == "copp"
                && matches!(&l.child, RowId::Named(n) if n.name == COPP_NAME)),
            "{router}"
        );
    }
}
