//! Malformed and unexpected input from the peer gives errors, never panics. The peer here is a
//! scripted fake on a unix socket: the one place where a non-ovsdb peer is the point.

use std::path::PathBuf;
use std::time::Duration;

use ovsdb::connection::{CallError, Connection, ConnectionOptions, Notification};
use ovsdb::framing::FrameDecoder;
use ovsdb::{Client, ClientConfig, Datum, Uuid};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::mpsc;

/// One accepted connection of the fake peer.
struct Peer {
    stream: UnixStream,
    decoder: FrameDecoder,
}

impl Peer {
    async fn recv(&mut self) -> Option<Value> {
        loop {
            if let Some(v) = self.decoder.next_message().unwrap() {
                return Some(v);
            }
            let n = self.stream.read_buf(self.decoder.buffer()).await.ok()?;
            if n == 0 {
                return None;
            }
        }
    }
    async fn send(&mut self, bytes: &[u8]) {
        let _ = self.stream.write_all(bytes).await;
    }
}

fn socket_path(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("peer.sock")
}

/// Connects a [`Connection`] to a fake peer; returns it, the peer side, and notifications.
async fn connect(
    max_message: usize,
    probe: Option<Duration>,
) -> (
    Connection,
    Peer,
    mpsc::UnboundedReceiver<Notification>,
    tempfile::TempDir,
) {
    let dir = tempfile::tempdir().unwrap();
    let listener = UnixListener::bind(socket_path(&dir)).unwrap();
    let ours = UnixStream::connect(socket_path(&dir)).await.unwrap();
    let (theirs, _) = listener.accept().await.unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    let (r, w) = ours.into_split();
    let conn = Connection::start(
        "unix:fake".into(),
        Box::new(r),
        Box::new(w),
        ConnectionOptions {
            inactivity_probe: probe,
            max_message,
        },
        Box::new(move |n| {
            let _ = tx.send(n);
            Ok(())
        }),
    );
    let peer = Peer {
        stream: theirs,
        decoder: FrameDecoder::default(),
    };
    (conn, peer, rx, dir)
}

async fn call_answered_with(bytes: &[u8], max_message: usize) -> CallError {
    let (conn, mut peer, _n, _dir) = connect(max_message, None).await;
    let call = tokio::spawn({
        let conn = conn.clone();
        async move { conn.call("list_dbs", json!([])).await }
    });
    let req = peer.recv().await.unwrap();
    assert_eq!(req["method"], "list_dbs");
    peer.send(bytes).await;
    drop(peer);
    let err = call.await.unwrap().unwrap_err();
    assert!(conn.close_reason().is_some());
    // Nothing can be sent on a closed connection, and the caller is told so.
    assert!(matches!(
        conn.call("list_dbs", json!([])).await,
        Err(CallError::NotSent(_))
    ));
    err
}

fn lost_reason(e: CallError) -> String {
    match e {
        CallError::Lost(reason) => reason,
        other => panic!("expected Lost, got {other:?}"),
    }
}

#[tokio::test]
async fn garbage_truncation_and_oversize_close_the_connection() {
    let r = lost_reason(call_answered_with(b"hello, not json", 1 << 20).await);
    assert!(r.contains("undecodable"), "{r}");
    let r = lost_reason(call_answered_with(br#"{"id":1,"result":["#, 1 << 20).await);
    assert!(r.contains("closed by peer"), "{r}");
    let big = format!(r#"{{"id":1,"result":"{}"}}"#, "a".repeat(4096));
    let r = lost_reason(call_answered_with(big.as_bytes(), 1024).await);
    assert!(r.contains("larger than"), "{r}");
    let r = lost_reason(call_answered_with(br#"{"id":1,"method":7}"#, 1 << 20).await);
    assert!(r.contains("method is not a string"), "{r}");
    let r = lost_reason(call_answered_with(br#"{"id":1,"result":"#, 1 << 20).await);
    assert!(r.contains("closed by peer"), "{r}");
}

#[tokio::test]
async fn server_requests_and_notifications() {
    let (conn, mut peer, mut notes, _dir) = connect(1 << 20, None).await;
    let call = tokio::spawn({
        let conn = conn.clone();
        async move { conn.call("get_schema", json!(["X"])).await }
    });
    let req = peer.recv().await.unwrap();
    // Echo is answered with its params; other requests with an error; notifications reach the
    // handler in order; responses to unknown ids are ignored.
    peer.send(
        br#"{"id":"e1","method":"echo","params":[1,"x"]}{"id":9,"method":"frobnicate","params":[]}
           {"id":null,"method":"update2","params":["c",{}]}{"id":null,"method":"locked","params":["l"]}
           {"id":12345,"result":[],"error":null}"#,
    )
    .await;
    let echo = peer.recv().await.unwrap();
    assert_eq!(echo, json!({"id":"e1","result":[1,"x"],"error":null}));
    let unknown = peer.recv().await.unwrap();
    assert_eq!(unknown["id"], 9);
    assert!(unknown["error"].as_str().unwrap().contains("frobnicate"));
    assert_eq!(notes.recv().await.unwrap().method, "update2");
    assert_eq!(notes.recv().await.unwrap().method, "locked");
    let reply = json!({"id": req["id"], "result": {"ok": true}, "error": null});
    peer.send(reply.to_string().as_bytes()).await;
    assert_eq!(call.await.unwrap().unwrap(), json!({"ok": true}));
    // A server error object is returned as such.
    let call = tokio::spawn({
        let conn = conn.clone();
        async move { conn.call("transact", json!(["X"])).await }
    });
    let req = peer.recv().await.unwrap();
    let reply = json!({"id": req["id"], "result": null, "error": "unknown database"});
    peer.send(reply.to_string().as_bytes()).await;
    assert!(matches!(call.await.unwrap(), Err(CallError::Server(e)) if e == "unknown database"));
}

#[tokio::test]
async fn inactivity_probe_echoes_then_disconnects() {
    let (conn, mut peer, _n, _dir) = connect(1 << 20, Some(Duration::from_millis(100))).await;
    let echo = tokio::time::timeout(Duration::from_secs(10), peer.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(echo["method"], "echo");
    let reason = tokio::time::timeout(Duration::from_secs(10), conn.closed())
        .await
        .unwrap();
    assert!(reason.contains("inactivity"), "{reason}");
}

const LS_SCHEMA: &str = r#"{"name":"OVN_Northbound","version":"1.0.0","tables":{
    "Logical_Switch":{"columns":{"name":{"type":"string"}},"isRoot":true}}}"#;

/// A fake server without `monitor_cond_since` that sends an update right behind the monitor
/// reply: the client falls back to `monitor_cond` and applies the reply before the update.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monitor_fallback_and_updates_behind_the_reply() {
    let dir = tempfile::tempdir().unwrap();
    let listener = UnixListener::bind(socket_path(&dir)).unwrap();
    let row = Uuid::new_v4();
    let server = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let mut peer = Peer {
            stream,
            decoder: FrameDecoder::default(),
        };
        let mut methods = Vec::new();
        while let Some(req) = peer.recv().await {
            let method = req["method"].as_str().unwrap_or_default().to_owned();
            let id = req["id"].clone();
            let answer = match method.as_str() {
                "get_schema" => {
                    json!({"id": id, "result": serde_json::from_str::<Value>(LS_SCHEMA).unwrap(), "error": null})
                        .to_string()
                }
                "monitor_cond_since" => {
                    json!({"id": id, "result": null, "error": "unknown method"}).to_string()
                }
                "monitor_cond" => {
                    let cookie = &req["params"][1];
                    let reply = json!({"id": id, "error": null, "result":
                        {"Logical_Switch": {row.to_string(): {"initial": {"name": "a"}}}}});
                    let update = json!({"id": null, "method": "update2", "params": [cookie,
                        {"Logical_Switch": {row.to_string(): {"modify": {"name": "b"}}}}]});
                    format!("{reply}{update}")
                }
                _ => continue,
            };
            methods.push(method.clone());
            peer.send(answer.as_bytes()).await;
            if method == "monitor_cond" {
                // The peer stays open: the client must not see a disconnect.
                return (methods, peer);
            }
        }
        panic!("client hung up before monitoring");
    });
    let mut config = ClientConfig::new(
        "OVN_Northbound",
        vec![format!("unix:{}", socket_path(&dir).display())],
    );
    config.leader_only = false;
    let client = Client::connect(config).await.unwrap();
    let mut rx = client.subscribe();
    let renamed = |c: &Client| {
        c.replica()
            .get("Logical_Switch", &row)
            .is_some_and(|r| r["name"] == Datum::scalar("b"))
    };
    tokio::time::timeout(Duration::from_secs(10), async {
        while !renamed(&client) {
            rx.changed().await.unwrap();
        }
    })
    .await
    .expect("update applied after the monitor reply");
    let (methods, _peer) = server.await.unwrap();
    assert_eq!(
        methods,
        ["get_schema", "monitor_cond_since", "monitor_cond"]
    );
    assert_eq!(client.metrics().last_monitor_found, Some(false));
}

/// A peer that answers with garbage never yields a client, and nothing panics.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_against_garbage_peer_fails_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let listener = UnixListener::bind(socket_path(&dir)).unwrap();
    tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((mut s, _)) = listener.accept().await {
            let _ = s.write_all(b"\x00\xffgarbage{{{").await;
            open.push(s);
        }
    });
    let mut config = ClientConfig::new(
        "OVN_Northbound",
        vec![format!("unix:{}", socket_path(&dir).display())],
    );
    config.request_wait = Duration::from_millis(300);
    let err = Client::connect(config).await.err().expect("no client");
    assert!(err.to_string().contains("undecodable"), "{err}");
}
