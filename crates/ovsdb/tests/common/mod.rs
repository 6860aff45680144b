//! Helpers shared by the integration tests: client configs, polling with deadlines, and
//! comparing the replica with what `ovn-nbctl` lists.
#![allow(dead_code)] // each test crate uses a subset

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use ovn_testlab::Lab;
use ovsdb::ops::Operation;
use ovsdb::replica::Replica;
use ovsdb::schema::DatabaseSchema;
use ovsdb::{Backoff, Client, ClientConfig, Datum, Row, Uuid};
use serde_json::Value;

pub const NB: &str = "OVN_Northbound";
pub const DEADLINE: Duration = Duration::from_secs(30);

/// A client config with fast reconnects.
pub fn nb_config(remotes: Vec<String>) -> ClientConfig {
    let mut c = ClientConfig::new(NB, remotes);
    c.backoff = Backoff {
        initial: Duration::from_millis(20),
        max: Duration::from_millis(500),
    };
    c.indexed_external_ids = vec!["k8s.ovn.org/owner".into()];
    c
}

/// Waits (on replica change notifications) until `pred` holds; panics after [`DEADLINE`].
pub async fn wait_until(client: &Client, what: &str, pred: impl Fn(&Replica) -> bool) {
    let deadline = Instant::now() + DEADLINE;
    let mut rx = client.subscribe();
    loop {
        if pred(&client.replica()) {
            return;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "timed out waiting for {what}");
        // Also re-check periodically: a reconnect may change state without a new generation.
        let _ = tokio::time::timeout(left.min(Duration::from_millis(200)), rx.changed()).await;
    }
}

/// Polls a condition evaluated outside the replica (e.g. a lab query) until it holds.
pub async fn poll_until(what: &str, mut pred: impl FnMut() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !pred() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A row without the columns that hold their default value (the server omits those in updates).
pub fn normalized(schema: &DatabaseSchema, table: &str, row: &Row) -> Row {
    let ts = schema.table(table).expect("table in schema");
    row.iter()
        .filter(|(c, d)| {
            ts.columns
                .get(*c)
                .is_some_and(|cs| **d != cs.kind.default_datum())
        })
        .map(|(c, d)| (c, d.clone()))
        .collect()
}

/// The rows of `table` as `ovn-nbctl --format=json list` shows them.
pub fn nbctl_rows(lab: &Lab, remote: &str, table: &str) -> BTreeMap<Uuid, Row> {
    let out = lab
        .nbctl(remote, &["--format=json", "list", table])
        .expect("ovn-nbctl list");
    let v: Value = serde_json::from_str(&out).expect("nbctl JSON");
    let headings: Vec<&str> = v["headings"]
        .as_array()
        .expect("headings")
        .iter()
        .map(|h| h.as_str().expect("heading"))
        .collect();
    let mut rows = BTreeMap::new();
    for data in v["data"].as_array().expect("data") {
        let data = data.as_array().expect("row");
        let mut uuid = None;
        let mut row = Row::new();
        for (h, cell) in headings.iter().zip(data) {
            let d = Datum::from_json(cell).expect("datum");
            match *h {
                "_uuid" => uuid = d.as_atom().and_then(|a| a.as_uuid()),
                "_version" => {}
                col => {
                    row.insert(col, d);
                }
            }
        }
        rows.insert(uuid.expect("_uuid"), row);
    }
    rows
}

/// The replica's rows of `table`, normalized.
pub fn replica_rows(replica: &Replica, table: &str) -> BTreeMap<Uuid, Row> {
    replica
        .table(table)
        .map(|t| {
            t.rows()
                .map(|(u, r)| (*u, normalized(replica.schema(), table, r)))
                .collect()
        })
        .unwrap_or_default()
}

/// Asserts that the replica holds exactly the rows `ovn-nbctl` lists for each table.
pub fn assert_replica_matches_nbctl(client: &Client, lab: &Lab, remote: &str, tables: &[&str]) {
    let replica = client.replica();
    for table in tables {
        let expected: BTreeMap<Uuid, Row> = nbctl_rows(lab, remote, table)
            .into_iter()
            .map(|(u, r)| (u, normalized(replica.schema(), table, &r)))
            .collect();
        assert_eq!(replica_rows(&replica, table), expected, "table {table}");
    }
}

/// An insert of a Load_Balancer guarded by a `wait` that fails if the name already exists, so a
/// retried transaction cannot create a duplicate.
pub fn guarded_lb_insert(name: &str) -> Vec<Operation> {
    vec![
        Operation::Wait {
            table: "Load_Balancer".into(),
            conditions: vec![ovsdb::ops::Condition::eq("name", Datum::scalar(name))],
            columns: vec!["name".into()],
            until_equal: true,
            rows: vec![],
            timeout_ms: Some(0),
        },
        Operation::Insert {
            table: "Load_Balancer".into(),
            row: lb_row(name, "ns/svc"),
            uuid_name: None,
        },
    ]
}

/// A Load_Balancer row with one VIP and three backends.
pub fn lb_row(name: &str, owner: &str) -> Row {
    Row::from([
        ("name", Datum::scalar(name)),
        ("protocol", Datum::scalar("tcp")),
        (
            "vips",
            Datum::map([(
                "10.43.0.10:80",
                "10.42.0.5:8080,10.42.0.6:8080,10.42.0.7:8080",
            )]),
        ),
        (
            "external_ids",
            Datum::map([
                ("k8s.ovn.org/kind", "Service"),
                ("k8s.ovn.org/owner", owner),
            ]),
        ),
    ])
}
