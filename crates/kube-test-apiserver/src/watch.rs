//! Watch streams: newline-delimited JSON events sent in a chunked response body.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Frame, SizeHint};
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::error::ApiError;
use crate::resources::ResourceType;
use crate::selectors::Selectors;
use crate::store::{event_line, EventType, Store, WatchEvent};
use crate::tables;

/// A response body: either complete, or a stream of chunks (a watch).
#[derive(Debug)]
pub enum Body {
    /// A whole body, taken on the first poll.
    Full(Option<Bytes>),
    /// Chunks as a watch task produces them; ends when the task drops its sender.
    Stream(mpsc::Receiver<Bytes>),
}

impl hyper::body::Body for Body {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.get_mut() {
            Body::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            Body::Stream(rx) => rx
                .poll_recv(cx)
                .map(|chunk| chunk.map(|b| Ok(Frame::data(b)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, Body::Full(None))
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Body::Full(Some(bytes)) => SizeHint::with_exact(bytes.len() as u64),
            Body::Full(None) => SizeHint::with_exact(0),
            Body::Stream(_) => SizeHint::default(),
        }
    }
}

/// Where a watch starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchStart {
    /// Synthetic ADDED events for the current objects first (no resourceVersion, "0", or
    /// `sendInitialEvents=true`); `end_bookmark` marks their end with an initial-events-end
    /// BOOKMARK.
    Snapshot {
        /// Whether to send the `k8s.io/initial-events-end` BOOKMARK after the snapshot.
        end_bookmark: bool,
    },
    /// Only changes after this resourceVersion.
    After(u64),
}

/// A parsed watch request.
#[derive(Debug, Clone)]
pub struct WatchRequest {
    /// The resource watched.
    pub resource: &'static ResourceType,
    /// The namespace watched, or all.
    pub namespace: Option<String>,
    /// Label and field selectors.
    pub selectors: Selectors,
    /// Where the stream starts.
    pub start: WatchStart,
    /// Whether to send periodic BOOKMARK events.
    pub bookmarks: bool,
    /// When the server ends the stream (`timeoutSeconds`).
    pub timeout: Option<Duration>,
    /// Whether objects are sent as one-row Tables (`kubectl get -w`).
    pub as_table: bool,
}

/// The event type a watcher with these filters sees for `event`, if any: a modification that
/// makes an object start or stop matching becomes ADDED or DELETED, as in Kubernetes.
fn visible_type(req: &WatchRequest, event: &WatchEvent) -> Option<&'static str> {
    if let Some(ns) = &req.namespace {
        if event.object["metadata"]["namespace"].as_str() != Some(ns) {
            return None;
        }
    }
    let matches_now = req.selectors.matches(&event.object);
    let matched_before = event
        .previous
        .as_ref()
        .map_or(matches_now, |p| req.selectors.matches(p));
    match (event.kind, matched_before, matches_now) {
        (kind, true, true) => Some(kind.as_str()),
        (EventType::Modified, false, true) => Some("ADDED"),
        (EventType::Modified, true, false) => Some("DELETED"),
        _ => None,
    }
}

/// The line sent for an object: as itself, or as a one-row Table for `kubectl get -w`.
fn object_line(req: &WatchRequest, kind: &str, object: &Value) -> Bytes {
    if req.as_table {
        event_line(kind, &tables::table(req.resource, [object], None))
    } else {
        event_line(kind, object)
    }
}

/// The line a watcher receives for `event`, if any; the shared pre-serialized line when the
/// watcher sees the event as it is.
fn line_for(req: &WatchRequest, event: &WatchEvent) -> Option<Bytes> {
    let kind = visible_type(req, event)?;
    if !req.as_table && kind == event.kind.as_str() {
        return Some(event.line.clone());
    }
    Some(object_line(req, kind, &event.object))
}

fn bookmark(resource: &ResourceType, rv: u64, initial_events_end: bool) -> Bytes {
    let mut metadata = json!({"resourceVersion": rv.to_string()});
    if initial_events_end {
        metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    let object = json!({
        "kind": resource.kind,
        "apiVersion": resource.api_version(),
        "metadata": metadata,
    });
    event_line("BOOKMARK", &object)
}

/// The ERROR event line carrying a Status, as sent when a watch's version has expired.
pub fn error_line(err: &ApiError) -> Bytes {
    event_line("ERROR", &err.status())
}

/// Runs one watch until the client leaves, the timeout passes, the store closes watches or
/// the history it needs is dropped. Each wake-up reads only the events it has not seen.
pub async fn run(
    store: Arc<Store>,
    req: WatchRequest,
    tx: mpsc::Sender<Bytes>,
    bookmark_interval: Duration,
) {
    let mut signals = store.subscribe();
    let started = *signals.borrow_and_update();
    let mut cursor = match req.start {
        WatchStart::Snapshot { end_bookmark } => {
            let (items, rv) = store.list(req.resource, req.namespace.as_deref(), &req.selectors);
            for item in items {
                if tx.send(object_line(&req, "ADDED", &item)).await.is_err() {
                    return;
                }
            }
            if end_bookmark && tx.send(bookmark(req.resource, rv, true)).await.is_err() {
                return;
            }
            rv
        }
        WatchStart::After(rv) => rv,
    };
    let deadline = req.timeout.map(|t| Instant::now() + t);
    let mut next_bookmark = Instant::now() + bookmark_interval;
    loop {
        match store.events_since(req.resource, cursor) {
            Ok((events, upto)) => {
                for event in &events {
                    if let Some(line) = line_for(&req, event) {
                        if tx.send(line).await.is_err() {
                            return;
                        }
                    }
                }
                cursor = upto;
            }
            Err(gone) => {
                // The client is told why; whether it is still there to read it does not matter.
                let _ = tx.send(error_line(&gone)).await;
                return;
            }
        }
        let far = Instant::now() + Duration::from_secs(86_400);
        tokio::select! {
            changed = signals.changed() => {
                if changed.is_err() {
                    return;
                }
                let now = *signals.borrow_and_update();
                if now.expiries != started.expiries {
                    let gone = ApiError::gone(format!(
                        "too old resource version: {cursor} (history expired by the test server)"
                    ));
                    let _ = tx.send(error_line(&gone)).await;
                    return;
                }
                if now.closes != started.closes {
                    return;
                }
            }
            _ = tokio::time::sleep_until(deadline.unwrap_or(far)) => return,
            _ = tokio::time::sleep_until(next_bookmark), if req.bookmarks => {
                if tx.send(bookmark(req.resource, cursor, false)).await.is_err() {
                    return;
                }
                next_bookmark = Instant::now() + bookmark_interval;
            }
            _ = tx.closed() => return,
        }
    }
}

/// Whether an object would appear in a watch with these filters (used by tests of the filter).
#[cfg(test)]
fn sees(req: &WatchRequest, event: &WatchEvent) -> Option<String> {
    line_for(req, event).map(|line| {
        let value: Value = serde_json::from_slice(&line).unwrap();
        value["type"].as_str().unwrap().to_string()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::find;
    use crate::selectors::LabelSelector;

    fn event(kind: EventType, before: Option<&str>, after: &str) -> WatchEvent {
        let pod =
            |app: &str| Arc::new(json!({"metadata": {"namespace": "ns", "labels": {"app": app}}}));
        WatchEvent {
            resource: find("", "v1", "pods").unwrap(),
            kind,
            object: pod(after),
            previous: before.map(pod),
            line: event_line(kind.as_str(), &pod(after)),
        }
    }

    #[test]
    fn selector_transitions_become_added_and_deleted() {
        let req = WatchRequest {
            resource: find("", "v1", "pods").unwrap(),
            namespace: Some("ns".into()),
            selectors: Selectors {
                labels: LabelSelector::parse("app=web").unwrap(),
                ..Default::default()
            },
            start: WatchStart::After(0),
            bookmarks: false,
            timeout: None,
            as_table: false,
        };
        let seen = |e| sees(&req, &e);
        assert_eq!(
            seen(event(EventType::Added, None, "web")).as_deref(),
            Some("ADDED")
        );
        assert_eq!(seen(event(EventType::Added, None, "db")), None);
        assert_eq!(
            seen(event(EventType::Modified, Some("web"), "web")).as_deref(),
            Some("MODIFIED")
        );
        assert_eq!(
            seen(event(EventType::Modified, Some("db"), "web")).as_deref(),
            Some("ADDED")
        );
        assert_eq!(
            seen(event(EventType::Modified, Some("web"), "db")).as_deref(),
            Some("DELETED")
        );
        assert_eq!(seen(event(EventType::Modified, Some("db"), "db")), None);
        assert_eq!(
            seen(event(EventType::Deleted, None, "web")).as_deref(),
            Some("DELETED")
        );
        let other_ns = WatchRequest {
            namespace: Some("elsewhere".into()),
            ..req.clone()
        };
        assert_eq!(sees(&other_ns, &event(EventType::Added, None, "web")), None);
        let as_table = WatchRequest {
            as_table: true,
            ..req.clone()
        };
        let line = line_for(&as_table, &event(EventType::Modified, Some("db"), "web")).unwrap();
        let value: Value = serde_json::from_slice(&line).unwrap();
        assert_eq!(
            (value["type"].as_str(), value["object"]["kind"].as_str()),
            (Some("ADDED"), Some("Table"))
        );
    }
}
