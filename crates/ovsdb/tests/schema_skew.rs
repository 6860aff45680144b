//! A server with a newer schema (an extra table and column) does not break the client: it
//! monitors and writes what the server has, and typed rows ignore columns they do not know.

mod common;

use common::*;
use ovn_testlab::{Db, Lab, ServerOptions};
use ovsdb::model::Model;
use ovsdb::nb::LoadBalancer;
use ovsdb::ops::Operation;
use ovsdb::{Client, Datum, Row};
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn newer_server_schema() {
    let mut lab = Lab::new().unwrap();
    let mut schema: Value =
        serde_json::from_str(&std::fs::read_to_string(Db::Northbound.schema_path()).unwrap())
            .unwrap();
    schema["version"] = json!("7.99.0");
    schema["tables"]["Load_Balancer"]["columns"]["future_column"] =
        json!({"type": {"key": "string", "min": 0, "max": 1}});
    schema["tables"]["Future_Table"] =
        json!({"columns": {"name": {"type": "string"}}, "isRoot": true});
    let path = lab.path().join("newer.ovsschema");
    std::fs::write(&path, schema.to_string()).unwrap();
    let nb = lab
        .start_server(ServerOptions {
            schema: Some(path),
            ..ServerOptions::new(Db::Northbound)
        })
        .unwrap();
    let client = Client::connect(nb_config(vec![lab.server(nb).unix_remote()]))
        .await
        .unwrap();
    let mut row = lb_row("lb0", "ns/svc");
    row.insert("future_column", Datum::scalar("from the future"));
    let r = client
        .transact(vec![
            Operation::Insert {
                table: "Load_Balancer".into(),
                row,
                uuid_name: None,
            },
            Operation::Insert {
                table: "Future_Table".into(),
                row: Row::from([("name", Datum::scalar("f"))]),
                uuid_name: None,
            },
        ])
        .await
        .unwrap();
    let lb_uuid = r[0].uuid.unwrap();
    let replica = client.replica();
    let stored = replica.get("Load_Balancer", &lb_uuid).unwrap();
    assert_eq!(stored["future_column"], Datum::scalar("from the future"));
    assert_eq!(replica.table("Future_Table").unwrap().len(), 1);
    let typed = LoadBalancer::from_row(lb_uuid, stored).unwrap();
    assert_eq!(typed.name, "lb0");
}
