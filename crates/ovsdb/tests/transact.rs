//! Transactions against a real NB ovsdb-server: every operation, and the typed errors.

mod common;

use common::*;
use ovn_testlab::Lab;
use ovsdb::ops::{Condition, Mutation, Operation, TransactError};
use ovsdb::{Atom, Client, Datum, Error, Row, Uuid};

fn insert(table: &str, row: Row, name: Option<&str>) -> Operation {
    Operation::Insert {
        table: table.into(),
        row,
        uuid_name: name.map(str::to_owned),
    }
}

fn by_name(name: &str) -> Vec<Condition> {
    vec![Condition::eq("name", Datum::scalar(name))]
}

fn failed_op(r: Result<Vec<ovsdb::ops::OperationResult>, Error>) -> (usize, TransactError) {
    match r {
        Err(Error::Transact { index, error, .. }) => (index, error),
        other => panic!("expected a transaction error, got {other:?}"),
    }
}

async fn start() -> (Lab, Client) {
    let mut lab = Lab::new().unwrap();
    let nb = lab.start_nb().unwrap();
    let client = Client::connect(nb_config(vec![lab.server(nb).unix_remote()]))
        .await
        .unwrap();
    (lab, client)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_round_trips() {
    let (_lab, c) = start().await;
    assert!(c.list_dbs().await.unwrap().contains(&NB.to_owned()));
    assert_eq!(c.get_schema(NB).await.unwrap().name, NB);

    // insert with named-uuid cross reference
    let r = c
        .transact(vec![
            insert(
                "Logical_Switch_Port",
                Row::from([("name", Datum::scalar("p1"))]),
                Some("p1"),
            ),
            insert(
                "Logical_Switch",
                Row::from([
                    ("name", Datum::scalar("sw0")),
                    ("ports", Datum::scalar(Atom::NamedUuid("p1".into()))),
                ]),
                Some("sw"),
            ),
            Operation::Comment("ovsdb integration test".into()),
        ])
        .await
        .unwrap();
    let (p1, sw) = (r[0].uuid.unwrap(), r[1].uuid.unwrap());
    // The update for our own transaction is applied before transact returns.
    {
        let replica = c.replica();
        let t = replica.table("Logical_Switch").unwrap();
        assert_eq!(t.by_name("sw0").collect::<Vec<_>>(), [sw]);
        assert_eq!(t.get(&sw).unwrap()["ports"], Datum::scalar(p1));
    }

    // select
    let r = c
        .transact(vec![Operation::Select {
            table: "Logical_Switch".into(),
            conditions: by_name("sw0"),
            columns: Some(vec!["name".into(), "_uuid".into()]),
        }])
        .await
        .unwrap();
    let rows = r[0].rows.as_ref().unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["name"], "sw0");

    // update
    let r = c
        .transact(vec![Operation::Update {
            table: "Logical_Switch".into(),
            conditions: vec![Condition::uuid(sw)],
            row: Row::from([("other_config", Datum::map([("a", "b")]))]),
        }])
        .await
        .unwrap();
    assert_eq!(r[0].count, Some(1));
    assert_eq!(
        c.replica().get("Logical_Switch", &sw).unwrap()["other_config"],
        Datum::map([("a", "b")])
    );

    // mutate: add a second port
    let r = c
        .transact(vec![
            insert(
                "Logical_Switch_Port",
                Row::from([("name", Datum::scalar("p2"))]),
                Some("p2"),
            ),
            Operation::Mutate {
                table: "Logical_Switch".into(),
                conditions: vec![Condition::uuid(sw)],
                mutations: vec![Mutation::insert(
                    "ports",
                    Datum::scalar(Atom::NamedUuid("p2".into())),
                )],
            },
        ])
        .await
        .unwrap();
    let p2 = r[0].uuid.unwrap();
    assert_eq!(r[1].count, Some(1));
    assert_eq!(
        c.replica().get("Logical_Switch", &sw).unwrap()["ports"],
        Datum::set([p1, p2])
    );

    // wait that holds, commit
    let row = Row::from([("name", Datum::scalar("sw0"))]);
    c.transact(vec![
        Operation::Wait {
            table: "Logical_Switch".into(),
            conditions: by_name("sw0"),
            columns: vec!["name".into()],
            until_equal: true,
            rows: vec![row],
            timeout_ms: Some(0),
        },
        Operation::Commit { durable: false },
    ])
    .await
    .unwrap();

    // wait that does not hold: timed out, at the wait's index
    let (index, err) = failed_op(
        c.transact(vec![
            Operation::Comment("x".into()),
            Operation::Wait {
                table: "Logical_Switch".into(),
                conditions: by_name("sw0"),
                columns: vec!["name".into()],
                until_equal: true,
                rows: vec![],
                timeout_ms: Some(0),
            },
        ])
        .await,
    );
    assert_eq!(index, 1);
    assert!(matches!(err, TransactError::TimedOut(_)), "{err:?}");

    // abort
    let (_, err) = failed_op(
        c.transact(vec![
            Operation::Delete {
                table: "Logical_Switch".into(),
                conditions: vec![],
            },
            Operation::Abort,
        ])
        .await,
    );
    assert_eq!(err, TransactError::Aborted);
    assert!(c.replica().get("Logical_Switch", &sw).is_some());

    // delete: the ports, no longer referenced, are garbage-collected
    let r = c
        .transact(vec![Operation::Delete {
            table: "Logical_Switch".into(),
            conditions: vec![Condition::uuid(sw)],
        }])
        .await
        .unwrap();
    assert_eq!(r[0].count, Some(1));
    let replica = c.replica();
    assert!(replica.get("Logical_Switch", &sw).is_none());
    assert!(replica
        .table("Logical_Switch_Port")
        .is_none_or(|t| t.is_empty()));
    let m = c.metrics();
    assert!(m.transactions_sent >= 7 && m.operations_sent >= 7, "{m:?}");
    assert_eq!(m.transaction_latency_count, m.transactions_sent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn integrity_and_constraint_errors_are_typed() {
    let (_lab, c) = start().await;
    // A strong reference to a row that does not exist.
    let (index, err) = failed_op(
        c.transact(vec![insert(
            "Logical_Switch",
            Row::from([
                ("name", Datum::scalar("sw")),
                ("ports", Datum::scalar(Uuid::new_v4())),
            ]),
            None,
        )])
        .await,
    );
    assert!(
        matches!(err, TransactError::ReferentialIntegrity(_)),
        "{index} {err:?}"
    );
    // A port no switch references is not an error, but the server garbage-collects it.
    let r = c
        .transact(vec![insert(
            "Logical_Switch_Port",
            Row::from([("name", Datum::scalar("orphan"))]),
            None,
        )])
        .await
        .unwrap();
    assert!(r[0].uuid.is_some());
    let r = c
        .transact(vec![Operation::Select {
            table: "Logical_Switch_Port".into(),
            conditions: by_name("orphan"),
            columns: None,
        }])
        .await
        .unwrap();
    assert_eq!(r[0].rows.as_ref().unwrap().len(), 0);
    // Load_Balancer_Group names are a unique index.
    let group = || {
        insert(
            "Load_Balancer_Group",
            Row::from([("name", Datum::scalar("clusterLBGroup"))]),
            None,
        )
    };
    c.transact(vec![group()]).await.unwrap();
    let (_, err) = failed_op(c.transact(vec![group()]).await);
    assert!(
        matches!(err, TransactError::ConstraintViolation(_)),
        "{err:?}"
    );
    assert!(!err.is_retryable());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn columns_the_server_lacks() {
    let (_lab, c) = start().await;
    // Dropped from an inserted row: a newer model still writes to an older server.
    let r = c
        .transact(vec![insert(
            "Logical_Switch",
            Row::from([
                ("name", Datum::scalar("sw")),
                ("column_from_the_future", Datum::scalar(1)),
            ]),
            None,
        )])
        .await
        .unwrap();
    let row = c
        .replica()
        .get("Logical_Switch", &r[0].uuid.unwrap())
        .cloned();
    assert_eq!(row.unwrap()["name"], Datum::scalar("sw"));
    // An error in a condition, which would otherwise change what the operation matches.
    let e = c
        .transact(vec![Operation::Delete {
            table: "Logical_Switch".into(),
            conditions: vec![Condition::eq("column_from_the_future", Datum::scalar(1))],
        }])
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::UnknownColumn { column, .. } if column == "column_from_the_future"),
        "{e}"
    );
    let e = c
        .transact(vec![Operation::Delete {
            table: "No_Such_Table".into(),
            conditions: vec![],
        }])
        .await
        .unwrap_err();
    assert!(matches!(e, Error::UnknownTable { .. }), "{e}");
}
