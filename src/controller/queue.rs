//! A keyed work queue: deduplicates keys, never hands out a key that is being processed, and
//! retries failed keys with per-key exponential backoff.
//!
//! Workers take keys in batches (`next_batch`) so that many keys become one NB transaction; a key
//! added while it is being processed is handed out again once `done` is called for it, so its
//! latest state is always reconciled ("read the store, not the event").

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet, VecDeque};
use std::hash::Hash;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

/// Backoff of a key that failed `n` times in a row: `base * 2^(n-1)`, capped.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub base: Duration,
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            base: Duration::from_millis(5),
            max: Duration::from_secs(300),
        }
    }
}

impl Backoff {
    fn delay(&self, failures: u32) -> Duration {
        let exp = failures.saturating_sub(1).min(30);
        self.base.saturating_mul(1 << exp).min(self.max)
    }
}

struct State<K> {
    ready: VecDeque<K>,
    queued: HashSet<K>,
    processing: HashSet<K>,
    /// Keys added while being processed: re-queued by `done`.
    dirty: HashSet<K>,
    /// Keys waiting for their retry time, earliest first (the sequence number keeps order stable).
    delayed: BinaryHeap<Reverse<(Instant, u64, K)>>,
    seq: u64,
    failures: HashMap<K, u32>,
    shut_down: bool,
}

/// The queue. Shared by reference (wrap it in an `Arc`).
pub struct WorkQueue<K> {
    state: Mutex<State<K>>,
    wake: Notify,
    backoff: Backoff,
}

impl<K: Hash + Eq + Clone + Ord> WorkQueue<K> {
    /// An empty queue.
    pub fn new(backoff: Backoff) -> Self {
        WorkQueue {
            state: Mutex::new(State {
                ready: VecDeque::new(),
                queued: HashSet::new(),
                processing: HashSet::new(),
                dirty: HashSet::new(),
                delayed: BinaryHeap::new(),
                seq: 0,
                failures: HashMap::new(),
                shut_down: false,
            }),
            wake: Notify::new(),
            backoff,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State<K>> {
        // A panic while holding the lock cannot leave the state inconsistent (every method
        // completes its updates before anything that can panic), so poisoning is ignored.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues a key now (a no-op if it is already queued).
    pub fn add(&self, key: K) {
        let mut s = self.lock();
        if s.processing.contains(&key) {
            s.dirty.insert(key);
            return;
        }
        if s.queued.insert(key.clone()) {
            s.ready.push_back(key);
            drop(s);
            self.wake.notify_one();
        }
    }

    /// Queues a key once `delay` has passed.
    pub fn add_after(&self, key: K, delay: Duration) {
        let mut s = self.lock();
        s.seq += 1;
        let seq = s.seq;
        s.delayed.push(Reverse((Instant::now() + delay, seq, key)));
        drop(s);
        self.wake.notify_one();
    }

    /// Marks a key processed; a key added meanwhile is queued again.
    pub fn done(&self, key: &K) {
        let mut s = self.lock();
        s.processing.remove(key);
        if s.dirty.remove(key) && s.queued.insert(key.clone()) {
            s.ready.push_back(key.clone());
            drop(s);
            self.wake.notify_one();
        }
    }

    /// Marks a key processed after a failure and schedules its retry with backoff.
    /// Returns the number of consecutive failures.
    pub fn retry(&self, key: &K) -> u32 {
        let failures = {
            let mut s = self.lock();
            let n = s.failures.entry(key.clone()).or_insert(0);
            *n += 1;
            *n
        };
        self.done(key);
        self.add_after(key.clone(), self.backoff.delay(failures));
        failures
    }

    /// Forgets a key's failure count (after it succeeded).
    pub fn forget(&self, key: &K) {
        self.lock().failures.remove(key);
    }

    /// Keys queued or waiting for a retry.
    pub fn depth(&self) -> usize {
        let s = self.lock();
        s.ready.len() + s.delayed.len()
    }

    /// Drops every ready key (keys being processed or waiting for a retry stay): for the keys
    /// a full sync that is about to read the stores covers anyway.
    pub fn clear_ready(&self) {
        let mut s = self.lock();
        s.ready.clear();
        s.queued.clear();
    }

    /// Stops the queue: `next_batch` returns `None` from now on.
    pub fn shut_down(&self) {
        self.lock().shut_down = true;
        self.wake.notify_waiters();
        self.wake.notify_one();
    }

    fn promote_due(s: &mut State<K>, now: Instant) {
        while let Some(Reverse((at, _, _))) = s.delayed.peek() {
            if *at > now {
                break;
            }
            let Reverse((_, _, key)) = s.delayed.pop().expect("peeked");
            if s.processing.contains(&key) {
                s.dirty.insert(key);
            } else if s.queued.insert(key.clone()) {
                s.ready.push_back(key);
            }
        }
    }

    /// Waits for at least one ready key and takes up to `max` of them (they are marked as being
    /// processed until `done` or `retry`). `None` once the queue is shut down.
    pub async fn next_batch(&self, max: usize) -> Option<Vec<K>> {
        loop {
            let notified = self.wake.notified();
            let next_due = {
                let mut s = self.lock();
                if s.shut_down {
                    return None;
                }
                Self::promote_due(&mut s, Instant::now());
                if !s.ready.is_empty() {
                    let n = max.max(1).min(s.ready.len());
                    let batch: Vec<K> = s.ready.drain(..n).collect();
                    for k in &batch {
                        s.queued.remove(k);
                        s.processing.insert(k.clone());
                    }
                    return Some(batch);
                }
                s.delayed.peek().map(|Reverse((at, _, _))| *at)
            };
            match next_due {
                Some(at) => {
                    tokio::select! {
                        _ = notified => {}
                        _ = tokio::time::sleep_until(at) => {}
                    }
                }
                None => notified.await,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queue() -> WorkQueue<&'static str> {
        WorkQueue::new(Backoff {
            base: Duration::from_millis(10),
            max: Duration::from_secs(1),
        })
    }

    #[tokio::test]
    async fn deduplicates_queued_keys() {
        let q = queue();
        q.add("a");
        q.add("b");
        q.add("a");
        assert_eq!(q.depth(), 2);
        assert_eq!(q.next_batch(10).await.unwrap(), vec!["a", "b"]);
    }

    #[tokio::test]
    async fn a_key_in_processing_is_not_handed_out_twice() {
        let q = queue();
        q.add("a");
        let batch = q.next_batch(10).await.unwrap();
        assert_eq!(batch, vec!["a"]);
        q.add("a");
        q.add("b");
        // "a" is still being processed: only "b" is ready.
        assert_eq!(q.next_batch(10).await.unwrap(), vec!["b"]);
        q.done(&"a");
        assert_eq!(q.next_batch(10).await.unwrap(), vec!["a"]);
    }

    #[tokio::test(start_paused = true)]
    async fn retries_back_off_exponentially() {
        let q = queue();
        q.add("a");
        q.next_batch(1).await.unwrap();
        assert_eq!(q.retry(&"a"), 1);
        let t0 = Instant::now();
        q.next_batch(1).await.unwrap();
        assert_eq!(t0.elapsed(), Duration::from_millis(10));
        assert_eq!(q.retry(&"a"), 2);
        let t1 = Instant::now();
        q.next_batch(1).await.unwrap();
        assert_eq!(t1.elapsed(), Duration::from_millis(20));
        q.forget(&"a");
        assert_eq!(q.retry(&"a"), 1);
    }

    #[tokio::test]
    async fn clearing_drops_ready_keys_only() {
        let q = queue();
        q.add("a");
        assert_eq!(q.next_batch(1).await.unwrap(), vec!["a"]);
        q.add("a"); // while processing: dirty
        q.add("b");
        q.add("c");
        q.clear_ready();
        assert_eq!(q.depth(), 0);
        q.add("b");
        assert_eq!(q.next_batch(10).await.unwrap(), vec!["b"]);
        q.done(&"a");
        assert_eq!(q.next_batch(10).await.unwrap(), vec!["a"]);
    }

    #[tokio::test]
    async fn batches_are_bounded_and_shutdown_ends_waiters() {
        let q = std::sync::Arc::new(queue());
        for k in ["a", "b", "c"] {
            q.add(k);
        }
        assert_eq!(q.next_batch(2).await.unwrap().len(), 2);
        assert_eq!(q.next_batch(2).await.unwrap().len(), 1);
        let waiter = {
            let q = q.clone();
            tokio::spawn(async move { q.next_batch(1).await })
        };
        tokio::task::yield_now().await;
        q.shut_down();
        assert_eq!(waiter.await.unwrap(), None);
    }
}
