//! The replica follows changes another client (`ovn-nbctl`) makes, and equals what it lists.

mod common;

use std::collections::BTreeMap;

use common::*;
use ovn_testlab::Lab;
use ovsdb::ops::Condition;
use ovsdb::{Client, Datum, MonitorSpec, TableMonitor};

const TABLES: [&str; 4] = [
    "Logical_Switch",
    "Logical_Switch_Port",
    "Load_Balancer",
    "NB_Global",
];

/// Waits until the replica equals `ovn-nbctl list` for every table in [`TABLES`].
async fn converge(client: &Client, lab: &Lab, remote: &str) {
    let expected: Vec<_> = TABLES
        .iter()
        .map(|t| (*t, nbctl_rows(lab, remote, t)))
        .collect();
    wait_until(client, "replica to equal ovn-nbctl list", |r| {
        expected.iter().all(|(t, rows)| {
            let want: BTreeMap<_, _> = rows
                .iter()
                .map(|(u, row)| (*u, normalized(r.schema(), t, row)))
                .collect();
            replica_rows(r, t) == want
        })
    })
    .await;
    assert_replica_matches_nbctl(client, lab, remote, &TABLES);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replica_follows_inserts_updates_and_deletes_by_nbctl() {
    let mut lab = Lab::new().unwrap();
    let nb = lab.start_nb().unwrap();
    let remote = lab.server(nb).unix_remote();
    lab.nbctl(&remote, &["init"]).unwrap();
    lab.nbctl(&remote, &["ls-add", "before-connect"]).unwrap();
    let client = Client::connect(nb_config(vec![remote.clone()]))
        .await
        .unwrap();
    assert_eq!(client.metrics().last_monitor_found, Some(false));
    converge(&client, &lab, &remote).await;

    // inserts
    let nbctl = |args: &[&str]| lab.nbctl(&remote, args).unwrap();
    nbctl(&["ls-add", "sw0"]);
    nbctl(&[
        "lsp-add",
        "sw0",
        "p1",
        "--",
        "lsp-set-addresses",
        "p1",
        "0a:58:0a:2a:00:0c 10.42.0.12",
    ]);
    nbctl(&[
        "lb-add",
        "lb0",
        "10.43.0.10:80",
        "10.42.0.12:8080,10.42.0.13:8080",
        "tcp",
    ]);
    nbctl(&["ls-lb-add", "sw0", "lb0"]);
    nbctl(&[
        "set",
        "Load_Balancer",
        "lb0",
        "external_ids:k8s.ovn.org/owner=ns/svc",
        "options:reject=true",
    ]);
    converge(&client, &lab, &remote).await;
    let lb = {
        let r = client.replica();
        let t = r.table("Load_Balancer").unwrap();
        let owned: Vec<_> = t.by_external_id("k8s.ovn.org/owner", "ns/svc").collect();
        assert_eq!(owned.len(), 1);
        owned[0]
    };

    // updates: scalar, set, map key added/changed/removed
    nbctl(&["set", "Logical_Switch_Port", "p1", "enabled=false"]);
    nbctl(&[
        "lsp-set-addresses",
        "p1",
        "0a:58:0a:2a:00:0d 10.42.0.13",
        "router",
    ]);
    nbctl(&[
        "set",
        "Load_Balancer",
        "lb0",
        "vips:\"10.43.0.11:53\"=\"10.42.0.12:5353\"",
        "options:reject=false",
    ]);
    nbctl(&[
        "remove",
        "Load_Balancer",
        "lb0",
        "external_ids",
        "k8s.ovn.org/owner",
    ]);
    converge(&client, &lab, &remote).await;
    {
        let r = client.replica();
        let t = r.table("Load_Balancer").unwrap();
        assert_eq!(t.by_external_id("k8s.ovn.org/owner", "ns/svc").count(), 0);
        assert_eq!(
            t.get(&lb).unwrap()["options"],
            Datum::map([("reject", "false")])
        );
    }

    // deletes
    nbctl(&["lb-del", "lb0"]);
    nbctl(&["lsp-del", "p1"]);
    nbctl(&["ls-del", "before-connect"]);
    converge(&client, &lab, &remote).await;
    assert!(client.replica().get("Load_Balancer", &lb).is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conditional_monitor_selects_rows_and_columns() {
    let mut lab = Lab::new().unwrap();
    let nb = lab.start_nb().unwrap();
    let remote = lab.server(nb).unix_remote();
    for name in ["a", "b"] {
        lab.nbctl(
            &remote,
            &[
                "ls-add",
                name,
                "--",
                "set",
                "Logical_Switch",
                name,
                "other_config:x=y",
            ],
        )
        .unwrap();
    }
    let mut config = nb_config(vec![remote.clone()]);
    config.monitor = MonitorSpec {
        tables: Some(BTreeMap::from([(
            "Logical_Switch".to_owned(),
            TableMonitor {
                columns: Some(vec!["name".into(), "not_in_this_schema".into()]),
                conditions: vec![Condition::eq("name", Datum::scalar("a"))],
            },
        )])),
    };
    let client = Client::connect(config).await.unwrap();
    lab.nbctl(&remote, &["ls-add", "c"]).unwrap();
    lab.nbctl(&remote, &["set", "Logical_Switch", "a", "other_config:x=z"])
        .unwrap();
    lab.nbctl(
        &remote,
        &["lb-add", "lb0", "10.43.0.10:80", "10.42.0.12:8080"],
    )
    .unwrap();
    lab.nbctl(&remote, &["set", "Logical_Switch", "a", "name=a2"])
        .unwrap();
    // The rename takes row "a" out of the condition: the server reports it as a delete.
    wait_until(&client, "rename to leave the monitored set", |r| {
        r.table("Logical_Switch").is_none_or(|t| t.is_empty())
    })
    .await;
    lab.nbctl(&remote, &["set", "Logical_Switch", "b", "name=a"])
        .unwrap();
    wait_until(&client, "b renamed to a to enter the monitored set", |r| {
        r.table("Logical_Switch")
            .is_some_and(|t| t.by_name("a").count() == 1)
    })
    .await;
    let r = client.replica();
    let t = r.table("Logical_Switch").unwrap();
    assert_eq!(t.len(), 1);
    let (_, row) = t.rows().next().unwrap();
    assert_eq!(
        row.keys().collect::<Vec<_>>(),
        ["name"],
        "only monitored columns"
    );
    assert!(r.table("Load_Balancer").is_none(), "unmonitored table");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monitor_conditions_and_columns_change_at_run_time() {
    let mut lab = Lab::new().unwrap();
    let nb = lab.start_nb().unwrap();
    let remote = lab.server(nb).unix_remote();
    for name in ["a", "b"] {
        let set = format!("other_config:x={name}");
        lab.nbctl(
            &remote,
            &["ls-add", name, "--", "set", "Logical_Switch", name, &set],
        )
        .unwrap();
    }
    let only = |name: &str, columns: &[&str]| TableMonitor {
        columns: Some(columns.iter().map(|c| c.to_string()).collect()),
        conditions: vec![Condition::eq("name", Datum::scalar(name))],
    };
    let names = |c: &Client| -> Vec<String> {
        let r = c.replica();
        let mut v: Vec<String> = r
            .table("Logical_Switch")
            .map(|t| t.rows().map(|(_, row)| row["name"].to_string()).collect())
            .unwrap_or_default();
        v.sort();
        v
    };
    let mut config = nb_config(vec![remote.clone()]);
    config.monitor = MonitorSpec {
        tables: Some(BTreeMap::from([(
            "Logical_Switch".to_owned(),
            only("a", &["name"]),
        )])),
    };
    let client = Client::connect(config).await.unwrap();
    assert_eq!(names(&client), ["a"]);

    // Conditions only: monitor_cond_change.
    client
        .set_table_monitor("Logical_Switch", only("b", &["name"]))
        .await
        .unwrap();
    wait_until(&client, "b to replace a", |r| {
        r.table("Logical_Switch")
            .is_some_and(|t| t.len() == 1 && t.by_name("b").count() == 1)
    })
    .await;

    // Columns: monitor_cancel and a new monitor.
    client
        .set_table_monitor("Logical_Switch", only("b", &["name", "other_config"]))
        .await
        .unwrap();
    wait_until(&client, "other_config to be monitored", |r| {
        r.table("Logical_Switch").is_some_and(|t| {
            t.rows()
                .all(|(_, row)| row.get("other_config") == Some(&Datum::map([("x", "b")])))
        })
    })
    .await;
    assert_eq!(names(&client), ["b"]);

    // A reconnect keeps the new spec.
    lab.restart(nb).unwrap();
    poll_until("reconnect", || {
        client.metrics().reconnects >= 1 && client.is_connected()
    })
    .await;
    lab.nbctl(&remote, &["ls-add", "c"]).unwrap();
    lab.nbctl(&remote, &["set", "Logical_Switch", "b", "other_config:x=y"])
        .unwrap();
    wait_until(&client, "b's change after the reconnect", |r| {
        r.table("Logical_Switch").is_some_and(|t| {
            t.rows()
                .all(|(_, row)| row.get("other_config") == Some(&Datum::map([("x", "y")])))
        })
    })
    .await;
    assert_eq!(names(&client), ["b"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_client_closes_its_session() {
    let mut lab = Lab::new().unwrap();
    let nb = lab.start_nb().unwrap();
    let sessions = |lab: &Lab| {
        let out = lab.appctl(nb, &["memory/show"]).unwrap();
        out.split_whitespace()
            .find_map(|f| f.strip_prefix("sessions:"))
            .map_or(0, |n| n.parse::<u32>().unwrap())
    };
    let client = Client::connect(nb_config(vec![lab.server(nb).unix_remote()]))
        .await
        .unwrap();
    let other = client.clone();
    assert_eq!(sessions(&lab), 1);
    drop(client);
    assert_eq!(sessions(&lab), 1, "a clone keeps the client running");
    drop(other);
    poll_until("the server to see the session end", || sessions(&lab) == 0).await;
}
