//! A 3-member RAFT NB cluster: the client follows the leader when it is killed, transactions in
//! flight commit once or fail retryably, and the replica stays equal to a fresh client's.

mod common;

use std::time::Duration;

use common::*;
use ovn_testlab::Lab;
use ovsdb::ops::TransactError;
use ovsdb::{Client, Error};

const WRITERS: usize = 4;
const PER_WRITER: usize = 60;

/// Inserts `name` until it is known to exist exactly once; returns how many attempts had an
/// unknown outcome.
async fn insert_once(client: &Client, name: &str) -> usize {
    let mut unknown = 0;
    loop {
        match client.transact(guarded_lb_insert(name)).await {
            Ok(_) => return unknown,
            // The guard failed: the row exists, so an earlier attempt whose outcome was
            // unknown did commit (names are unique, nobody else writes them).
            Err(Error::Transact {
                index: 0,
                error: TransactError::TimedOut(_),
                ..
            }) if unknown > 0 => return unknown,
            Err(e) if e.is_retryable() => {
                if matches!(e, Error::OutcomeUnknown { .. }) {
                    unknown += 1;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Err(e) => panic!("{name}: {e}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_kill_moves_client_and_commits_each_txn_once() {
    let mut lab = Lab::new().unwrap();
    let ids = lab.start_nb_cluster(3).unwrap();
    let remotes: Vec<String> = ids.iter().map(|&i| lab.server(i).unix_remote()).collect();
    let all = remotes.join(",");
    // List the leader last so that the client has to find it.
    let leader = lab.wait_cluster_leader(&ids).unwrap();
    let mut ordered = remotes.clone();
    ordered.sort_by_key(|r| *r == lab.server(leader).unix_remote());
    let client = Client::connect(nb_config(ordered)).await.unwrap();
    assert_eq!(
        client.current_remote(),
        Some(lab.server(leader).unix_remote()),
        "{:?} {:?}",
        client.last_disconnect_reason(),
        client.metrics()
    );

    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let client = client.clone();
            tokio::spawn(async move {
                let mut unknown = 0;
                for i in 0..PER_WRITER {
                    unknown += insert_once(&client, &format!("lb-{w}-{i}")).await;
                }
                unknown
            })
        })
        .collect();
    // Kill the leader with writes in flight.
    wait_until(&client, "some writes to land", |r| {
        r.table("Load_Balancer").is_some_and(|t| t.len() >= 40)
    })
    .await;
    lab.kill(leader);
    let mut unknown = 0;
    for w in writers {
        unknown += w.await.unwrap();
    }
    eprintln!("attempts with an unknown outcome: {unknown}");
    let new_leader = lab.wait_cluster_leader(&ids).unwrap();
    assert_ne!(new_leader, leader);
    poll_until("client on the new leader", || {
        client.current_remote() == Some(lab.server(new_leader).unix_remote())
    })
    .await;
    assert!(client.metrics().reconnects >= 1);

    // Every name exactly once, as the cluster itself reports it.
    let names = lab
        .nbctl(&all, &["--bare", "--columns=name", "list", "Load_Balancer"])
        .unwrap();
    let mut names: Vec<&str> = names.split_whitespace().collect();
    names.sort();
    let mut expected: Vec<String> = (0..WRITERS)
        .flat_map(|w| (0..PER_WRITER).map(move |i| format!("lb-{w}-{i}")))
        .collect();
    expected.sort();
    assert_eq!(
        names, expected,
        "({unknown} attempts had an unknown outcome)"
    );

    // The replica equals what a fresh client downloads.
    let fresh = Client::connect(nb_config(remotes)).await.unwrap();
    let want = replica_rows(&fresh.replica(), "Load_Balancer");
    assert_eq!(want.len(), WRITERS * PER_WRITER);
    wait_until(&client, "replica to equal a fresh client's", |r| {
        replica_rows(r, "Load_Balancer") == want
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_leaving_the_cluster_moves_the_client() {
    let mut lab = Lab::new().unwrap();
    let ids = lab.start_nb_cluster(3).unwrap();
    let remotes: Vec<String> = ids.iter().map(|&i| lab.server(i).unix_remote()).collect();
    let client = Client::connect(nb_config(remotes)).await.unwrap();
    let leader = lab.wait_cluster_leader(&ids).unwrap();
    assert_eq!(
        client.current_remote(),
        Some(lab.server(leader).unix_remote())
    );
    client.transact(guarded_lb_insert("before")).await.unwrap();
    // The old leader keeps running and keeps our connection open: only the `_Server` watch
    // can tell the client to move.
    lab.appctl(leader, &["cluster/leave", NB]).unwrap();
    let rest: Vec<_> = ids.iter().copied().filter(|&i| i != leader).collect();
    let new_leader = lab.wait_cluster_leader(&rest).unwrap();
    poll_until("client on the new leader", || {
        client.current_remote() == Some(lab.server(new_leader).unix_remote())
    })
    .await;
    client.transact(guarded_lb_insert("after")).await.unwrap();
    wait_until(&client, "both rows", |r| {
        r.table("Load_Balancer").is_some_and(|t| t.len() == 2)
    })
    .await;
    let m = client.metrics();
    assert!(m.reconnects >= 1, "{m:?}");
    // The client left because of what `_Server` reported, not because the socket closed.
    let reason = client.last_disconnect_reason().unwrap();
    assert!(
        [
            "not connected to its cluster",
            "not the cluster leader",
            "removed from the server"
        ]
        .iter()
        .any(|r| reason.contains(r)),
        "{reason}"
    );
}
