//! One JSON-RPC 1.0 connection: a reader task and a writer task own the two halves of the socket.
//!
//! Requests are pipelined: a caller allocates an id, registers a oneshot in the pending map and
//! queues pre-serialized bytes for the writer; the reader routes each response to its oneshot.
//! The reader answers the server's `echo`, sends our own `echo` when the peer has been silent for
//! one probe interval, and gives up after a second silent interval. Notifications (`update*`,
//! `locked`, ...) go to a handler called inline by the reader, so they are seen in wire order
//! relative to responses: a `transact` reply is delivered only after the update it caused.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot, watch};

use crate::framing::FrameDecoder;
use crate::transport::{BoxRead, BoxWrite};

/// A server-to-client message without an id; `params` stays unparsed JSON text so that the
/// handler parses it straight into its final form.
#[derive(Debug)]
pub struct Notification {
    pub method: String,
    pub params: Box<RawValue>,
}

/// Called by the reader for every notification; an `Err` closes the connection with that reason.
pub type NotificationHandler = Box<dyn FnMut(Notification) -> Result<(), String> + Send>;

/// Why a call did not return a result.
#[derive(Debug, Clone)]
pub enum CallError {
    /// The connection was already closed: the request was never sent.
    NotSent(String),
    /// The connection closed after the request was queued: the server may have acted on it.
    Lost(String),
    /// The server answered with a non-null `error`.
    Server(Value),
}

type Reply = Result<Box<RawValue>, Value>;

#[derive(Default)]
struct Pending {
    calls: HashMap<u64, oneshot::Sender<Reply>>,
    closed: Option<String>,
}

struct Shared {
    remote: String,
    pending: Mutex<Pending>,
    next_id: AtomicU64,
    closed: watch::Sender<Option<String>>,
}

impl Shared {
    fn shut_down(&self, reason: String) {
        let mut p = self.pending.lock().expect("pending lock");
        if p.closed.is_none() {
            tracing::debug!(remote = %self.remote, %reason, "connection closed");
            p.closed = Some(reason.clone());
            // Dropping the senders fails every in-flight call with `Lost`.
            p.calls.clear();
            self.closed.send_replace(Some(reason));
        }
    }
}

/// Tunables of a connection.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionOptions {
    /// Send an echo after this much silence; close after twice as much. `None` disables probes.
    pub inactivity_probe: Option<Duration>,
    /// Largest accepted message.
    pub max_message: usize,
}

/// Closes the connection when the last [`Connection`] handle goes away (the tasks only hold
/// `Shared`), so an abandoned attempt (e.g. a connect timeout) does not leak a socket.
struct CloseOnDrop(Arc<Shared>);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        self.0.shut_down("connection handle dropped".into());
    }
}

/// A handle to a running connection (cheap to clone).
#[derive(Clone)]
pub struct Connection {
    shared: Arc<Shared>,
    out: mpsc::UnboundedSender<Vec<u8>>,
    _close_on_drop: Arc<CloseOnDrop>,
}

impl Connection {
    /// Spawns the reader and writer tasks on the current tokio runtime.
    pub fn start(
        remote: String,
        read: BoxRead,
        write: BoxWrite,
        options: ConnectionOptions,
        handler: NotificationHandler,
    ) -> Connection {
        let (closed, _) = watch::channel(None);
        let shared = Arc::new(Shared {
            remote,
            pending: Mutex::new(Pending::default()),
            next_id: AtomicU64::new(1),
            closed,
        });
        let (out, out_rx) = mpsc::unbounded_channel();
        tokio::spawn(write_loop(shared.clone(), write, out_rx));
        tokio::spawn(read_loop(
            shared.clone(),
            read,
            out.clone(),
            options,
            handler,
        ));
        Connection {
            _close_on_drop: Arc::new(CloseOnDrop(shared.clone())),
            shared,
            out,
        }
    }

    /// True when both handles refer to the same connection.
    pub fn same(&self, other: &Connection) -> bool {
        Arc::ptr_eq(&self.shared, &other.shared)
    }

    /// The remote this connection goes to.
    pub fn remote(&self) -> &str {
        &self.shared.remote
    }

    /// Sends a request and waits for its response.
    pub async fn call(&self, method: &str, params: Value) -> Result<Value, CallError> {
        let raw = self.call_raw(method, params).await?;
        // The text was validated as JSON when the message was framed.
        Ok(serde_json::from_str(raw.get()).unwrap_or(Value::Null))
    }

    /// Sends a request; the result comes back as unparsed JSON text.
    pub async fn call_raw(&self, method: &str, params: Value) -> Result<Box<RawValue>, CallError> {
        let id = self.next_id();
        let mut bytes = Vec::with_capacity(256);
        bytes.extend_from_slice(format!("{{\"id\":{id},\"method\":").as_bytes());
        serde_json::to_writer(&mut bytes, method).expect("string serializes");
        bytes.extend_from_slice(b",\"params\":");
        serde_json::to_writer(&mut bytes, &params).expect("Value serializes");
        bytes.push(b'}');
        self.call_serialized(id, bytes).await
    }

    /// Allocates a request id, for callers that serialize the request themselves.
    pub fn next_id(&self) -> u64 {
        self.shared.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Sends a request already serialized with the id from [`Connection::next_id`].
    pub fn call_serialized(
        &self,
        id: u64,
        bytes: Vec<u8>,
    ) -> impl Future<Output = Result<Box<RawValue>, CallError>> + Send + 'static {
        let (tx, rx) = oneshot::channel();
        let registered = {
            let mut p = self.shared.pending.lock().expect("pending lock");
            match &p.closed {
                Some(reason) => Err(CallError::NotSent(reason.clone())),
                None => {
                    p.calls.insert(id, tx);
                    Ok(())
                }
            }
        };
        let queued = registered.and_then(|()| {
            self.out
                .send(bytes)
                .map_err(|_| CallError::NotSent("writer stopped".into()))
        });
        let shared = self.shared.clone();
        async move {
            queued?;
            match rx.await {
                Ok(Ok(v)) => Ok(v),
                Ok(Err(e)) => Err(CallError::Server(e)),
                Err(_) => Err(CallError::Lost(
                    shared
                        .pending
                        .lock()
                        .expect("pending lock")
                        .closed
                        .clone()
                        .unwrap_or_else(|| "connection closed".into()),
                )),
            }
        }
    }

    /// Closes the connection; in-flight calls fail with [`CallError::Lost`].
    pub fn close(&self, reason: &str) {
        self.shared.shut_down(reason.to_owned());
    }

    /// Why the connection closed, once it has.
    pub fn close_reason(&self) -> Option<String> {
        self.shared.closed.borrow().clone()
    }

    /// Waits until the connection is closed and returns the reason.
    pub async fn closed(&self) -> String {
        let mut rx = self.shared.closed.subscribe();
        let r = rx.wait_for(Option::is_some).await;
        match r {
            Ok(reason) => reason.clone().unwrap_or_default(),
            Err(_) => "connection dropped".into(),
        }
    }
}

async fn write_loop(
    shared: Arc<Shared>,
    mut write: BoxWrite,
    mut rx: mpsc::UnboundedReceiver<Vec<u8>>,
) {
    let mut closed = shared.closed.subscribe();
    let mut batch: Vec<u8> = Vec::new();
    loop {
        let first = tokio::select! {
            biased;
            _ = closed.wait_for(Option::is_some) => break,
            m = rx.recv() => match m {
                Some(m) => m,
                None => break,
            },
        };
        // Coalesce whatever else is queued into one write.
        batch.clear();
        batch.extend_from_slice(&first);
        while batch.len() < (1 << 20) {
            match rx.try_recv() {
                Ok(m) => batch.extend_from_slice(&m),
                Err(_) => break,
            }
        }
        if let Err(e) = write.write_all(&batch).await {
            shared.shut_down(format!("write failed: {e}"));
            break;
        }
    }
    let _ = write.shutdown().await;
}

async fn read_loop(
    shared: Arc<Shared>,
    mut read: BoxRead,
    out: mpsc::UnboundedSender<Vec<u8>>,
    options: ConnectionOptions,
    mut handler: NotificationHandler,
) {
    let mut closed = shared.closed.subscribe();
    let mut decoder = FrameDecoder::new(options.max_message);
    let mut silent_intervals = 0;
    loop {
        let read_more = read.read_buf(decoder.buffer());
        let probe = options.inactivity_probe.unwrap_or(Duration::MAX);
        let result = tokio::select! {
            biased;
            _ = closed.wait_for(Option::is_some) => return,
            r = tokio::time::timeout(probe, read_more) => r,
        };
        let n = match result {
            Err(_elapsed) => {
                silent_intervals += 1;
                if silent_intervals >= 2 {
                    shared.shut_down("inactivity probe: no message for 2 intervals".into());
                    return;
                }
                let _ = out.send(br#"{"id":"echo","method":"echo","params":[]}"#.to_vec());
                continue;
            }
            Ok(Err(e)) => {
                shared.shut_down(format!("read failed: {e}"));
                return;
            }
            Ok(Ok(n)) => n,
        };
        if n == 0 {
            let reason = match decoder.finish() {
                Ok(()) => "connection closed by peer".to_owned(),
                Err(e) => format!("connection closed by peer: {e}"),
            };
            shared.shut_down(reason);
            return;
        }
        silent_intervals = 0;
        loop {
            // Messages after a close (e.g. a leadership change) must not reach the handler.
            if closed.borrow().is_some() {
                return;
            }
            let frame = match decoder.next_frame() {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(e) => {
                    shared.shut_down(format!("undecodable input: {e}"));
                    return;
                }
            };
            if let Err(reason) = dispatch(&shared, &out, &mut handler, frame) {
                shared.shut_down(reason);
                return;
            }
        }
    }
}

/// A JSON-RPC message with its payload left as text (borrowed from the frame).
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(default)]
    id: Value,
    #[serde(default)]
    method: Value,
    #[serde(default, borrow)]
    params: Option<&'a RawValue>,
    #[serde(default, borrow)]
    result: Option<&'a RawValue>,
    #[serde(default)]
    error: Value,
}

fn raw_or_null(raw: Option<&RawValue>) -> Box<RawValue> {
    match raw {
        Some(r) => r.to_owned(),
        None => serde_json::value::to_raw_value(&Value::Null).expect("null serializes"),
    }
}

fn dispatch(
    shared: &Shared,
    out: &mpsc::UnboundedSender<Vec<u8>>,
    handler: &mut NotificationHandler,
    frame: &[u8],
) -> Result<(), String> {
    let msg: Envelope =
        serde_json::from_slice(frame).map_err(|e| format!("malformed message: {e}"))?;
    match msg.method {
        Value::String(method) => {
            if msg.id.is_null() {
                let params = raw_or_null(msg.params);
                return handler(Notification { method, params });
            }
            let id = msg.id.to_string();
            let reply = if method == "echo" {
                let params = msg.params.map_or("[]", RawValue::get);
                format!(r#"{{"id":{id},"result":{params},"error":null}}"#)
            } else {
                tracing::warn!(remote = %shared.remote, %method, "server sent an unknown request");
                let error = Value::String(format!("unknown method {method}"));
                format!(r#"{{"id":{id},"result":null,"error":{error}}}"#)
            };
            let _ = out.send(reply.into_bytes());
            Ok(())
        }
        Value::Null => {
            // A response; ids we did not allocate (e.g. our "echo" probe) are ignored.
            let Some(id) = msg.id.as_u64() else {
                return Ok(());
            };
            let sender = shared
                .pending
                .lock()
                .expect("pending lock")
                .calls
                .remove(&id);
            let Some(sender) = sender else {
                tracing::debug!(remote = %shared.remote, id, "response to no pending request");
                return Ok(());
            };
            let reply = if msg.error.is_null() {
                Ok(raw_or_null(msg.result))
            } else {
                Err(msg.error)
            };
            let _ = sender.send(reply);
            Ok(())
        }
        other => Err(format!("method is not a string: {other}")),
    }
}
