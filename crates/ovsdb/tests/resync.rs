//! Server killed and restarted under a connected client: reconnect, resync, convergence.

mod common;

use common::*;
use ovn_testlab::{Db, Lab, ServerOptions};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ovsdb::ops::Operation;
use ovsdb::{Client, Datum, Error, Row};

const TABLES: [&str; 2] = ["Logical_Switch", "Load_Balancer"];
const BULK: usize = 2000;

async fn converge(client: &Client, lab: &Lab, remote: &str) {
    let want: Vec<_> = TABLES
        .iter()
        .map(|t| (*t, nbctl_rows(lab, remote, t)))
        .collect();
    wait_until(client, "replica to equal ovn-nbctl list", |r| {
        want.iter().all(|(t, rows)| {
            replica_rows(r, t)
                == rows
                    .iter()
                    .map(|(u, row)| (*u, normalized(r.schema(), t, row)))
                    .collect()
        })
    })
    .await;
    assert_replica_matches_nbctl(client, lab, remote, &TABLES);
}

async fn wait_reconnected(client: &Client, reconnects: u64) {
    poll_until("client to reconnect", || {
        client.is_connected() && client.metrics().reconnects >= reconnects
    })
    .await;
}

/// Kills and restarts the server twice with writes in between; returns the client.
async fn kill_restart_cycle(lab: &mut Lab, clustered: bool) -> Client {
    let nb = lab
        .start_server(ServerOptions {
            clustered,
            ..ServerOptions::new(Db::Northbound)
        })
        .unwrap();
    let remote = lab.server(nb).unix_remote();
    for i in 0..20 {
        lab.nbctl(&remote, &["ls-add", &format!("sw{i}")]).unwrap();
    }
    let client = Client::connect(nb_config(vec![remote.clone()]))
        .await
        .unwrap();
    assert_eq!(client.metrics().last_monitor_found, Some(false));
    // Enough rows that a replica refilled in place would be seen half-full.
    let bulk: Vec<Operation> = (0..BULK)
        .map(|i| Operation::Insert {
            table: "Logical_Switch".into(),
            row: Row::from([("name", Datum::scalar(format!("bulk{i}")))]),
            uuid_name: None,
        })
        .collect();
    client.transact(bulk).await.unwrap();
    converge(&client, lab, &remote).await;
    // A reader polling through both restarts: a resync must swap the replica in whole.
    let stop = Arc::new(AtomicBool::new(false));
    let reader = std::thread::spawn({
        let (client, stop) = (client.clone(), stop.clone());
        move || {
            let mut fewest = usize::MAX;
            while !stop.load(Ordering::Relaxed) {
                let n = client
                    .replica()
                    .table("Logical_Switch")
                    .map_or(0, |t| t.len());
                fewest = fewest.min(n);
                std::thread::yield_now();
            }
            fewest
        }
    });
    for round in 1..=2 {
        lab.kill(nb);
        poll_until("client to notice the dead server", || {
            !client.is_connected()
        })
        .await;
        // A transaction issued while disconnected waits for the next connection.
        let pending = tokio::spawn({
            let client = client.clone();
            async move {
                client
                    .transact(guarded_lb_insert(&format!("while-down{round}")))
                    .await
            }
        });
        lab.restart(nb).unwrap();
        // Written whether or not the client has reconnected yet.
        lab.nbctl(
            &remote,
            &[
                "lb-add",
                &format!("lb{round}"),
                "10.43.0.10:80",
                "10.42.0.5:80",
            ],
        )
        .unwrap();
        wait_reconnected(&client, round).await;
        pending.await.unwrap().unwrap();
        lab.nbctl(&remote, &["ls-del", &format!("sw{round}")])
            .unwrap();
        converge(&client, lab, &remote).await;
    }
    stop.store(true, Ordering::Relaxed);
    // 20 switches and the bulk ones, minus the two deleted: never fewer.
    assert_eq!(reader.join().unwrap(), BULK + 18);
    client
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standalone_restart_resyncs_in_full() {
    let mut lab = Lab::new().unwrap();
    let client = kill_restart_cycle(&mut lab, false).await;
    let m = client.metrics();
    // A standalone server keeps no transaction history: every resync is a full one.
    assert_eq!(m.last_monitor_found, Some(false));
    assert_eq!(m.resyncs_full, 3, "{m:?}");
    // Each full resync is announced to whoever must compare the whole database again.
    assert_eq!(*client.reloads().borrow(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clustered_restart_resumes_from_last_txn_id() {
    let mut lab = Lab::new().unwrap();
    let client = kill_restart_cycle(&mut lab, true).await;
    let m = client.metrics();
    assert_eq!(m.last_monitor_found, Some(true), "{m:?}");
    assert_eq!((m.resyncs_full, m.resyncs_found), (1, 2), "{m:?}");
    // Resumed monitors kept the replica: only the first load counts as a reload.
    assert_eq!(*client.reloads().borrow(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transact_gives_up_after_request_wait_without_sending() {
    let mut lab = Lab::new().unwrap();
    let nb = lab.start_nb().unwrap();
    let mut config = nb_config(vec![lab.server(nb).unix_remote()]);
    config.request_wait = Duration::from_millis(300);
    let client = Client::connect(config).await.unwrap();
    lab.kill(nb);
    poll_until("client to notice the dead server", || {
        !client.is_connected()
    })
    .await;
    let err = client
        .transact(guarded_lb_insert("never"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotConnected { .. }), "{err}");
    assert!(err.is_retryable());
    assert_eq!(client.metrics().transactions_sent, 0);
}
