//! EndpointSlice churn: merge patches at a fixed rate, each bringing a new endpoint address,
//! and the time until that address shows in a load balancer of the NB (and of the SB, once
//! ovn-northd has processed it), watched through monitoring clients.

use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, Patch, PatchParams};
use ovsdb::replica::Replica;
use ovsdb::{Client, Row};
use serde_json::json;
use tokio::sync::{watch, Semaphore};

use crate::cluster::{endpoints, SliceRef};

/// The port every generated slice serves.
const TARGET_PORT: u16 = 8080;
/// Most patches in flight at once.
const IN_FLIGHT: usize = 128;

/// Latency samples, reported as percentiles.
#[derive(Debug, Default, Clone)]
pub struct Latencies(Vec<Duration>);

impl Latencies {
    /// The `p`-th percentile (0..=100).
    pub fn pct(&self, p: f64) -> Duration {
        let mut v = self.0.clone();
        v.sort();
        match v.len() {
            0 => Duration::ZERO,
            n => v[((p / 100.0 * n as f64).ceil() as usize).clamp(1, n) - 1],
        }
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// `p50/p90/p99/max` in milliseconds.
    pub fn summary(&self) -> String {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        format!(
            "p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            ms(self.pct(50.0)),
            ms(self.pct(90.0)),
            ms(self.pct(99.0)),
            ms(self.pct(100.0))
        )
    }
}

/// Which database a watcher looks at.
#[derive(Clone, Copy)]
enum Db {
    Nb,
    Sb,
}

/// Backends waiting to be seen, per load-balancer lookup key (NB: owner; SB: LB name).
#[derive(Default)]
struct Waiting {
    nb: HashMap<String, Vec<(String, Instant)>>,
    sb: HashMap<String, Vec<(String, Instant)>>,
    nb_seen: Latencies,
    sb_seen: Latencies,
    /// Backends a later patch removed before the NB showed them (coalesced, not lost).
    superseded: usize,
}

impl Waiting {
    /// Forgets `backend` of `owner` if it still waits for the NB; true if it did.
    fn supersede(&mut self, owner: &str, backend: &str) -> bool {
        let Some(list) = self.nb.get_mut(owner) else {
            return false;
        };
        let before = list.len();
        list.retain(|(b, _)| b != backend);
        let gone = list.len() < before;
        self.superseded += usize::from(gone);
        gone
    }
}

/// True when one of `row`'s VIPs lists `backend`.
fn lists_backend(row: &Row, backend: &str) -> bool {
    row.get("vips")
        .into_iter()
        .flat_map(|v| v.pairs())
        .filter_map(|(_, b)| b.as_str())
        .any(|list| list.split(',').any(|b| b == backend))
}

/// What one look at a replica found.
#[derive(Default)]
struct Scan {
    /// Backends not shown yet, by lookup key.
    still: HashMap<String, Vec<(String, Instant)>>,
    /// Latencies of the backends shown now.
    seen: Vec<Duration>,
    /// (SB load-balancer name, backend, sent) of NB finds, when the SB is followed.
    for_sb: Vec<(String, String, Instant)>,
}

/// Looks up every `pending` backend in `replica`'s load balancers.
fn scan(
    db: Db,
    replica: &Replica,
    pending: HashMap<String, Vec<(String, Instant)>>,
    follow_sb: bool,
) -> Scan {
    let now = Instant::now();
    let Some(table) = replica.table("Load_Balancer") else {
        return Scan {
            still: pending,
            ..Scan::default()
        };
    };
    let mut out = Scan::default();
    for (key, backends) in pending {
        let rows: Vec<&Row> = match db {
            Db::Nb => table
                .by_external_id("k8s.ovn.org/owner", &key)
                .filter_map(|u| table.get(&u))
                .collect(),
            Db::Sb => table.by_name(&key).filter_map(|u| table.get(&u)).collect(),
        };
        let mut left = Vec::new();
        for (backend, sent) in backends {
            match rows.iter().find(|r| lists_backend(r, &backend)) {
                Some(row) => {
                    out.seen.push(now - sent);
                    if follow_sb {
                        if let Some(name) = row.get("name").and_then(|n| n.as_atom()) {
                            let name = name.as_str().unwrap_or_default().to_owned();
                            out.for_sb.push((name, backend, sent));
                        }
                    }
                }
                None => left.push((backend, sent)),
            }
        }
        if !left.is_empty() {
            out.still.insert(key, left);
        }
    }
    out
}

/// How often the SB is looked at: its latencies are seconds (ovn-northd), and a look at a
/// backlog of thousands of backends must not steal the NB measurement's CPU or lock.
const SB_LOOK_EVERY: Duration = Duration::from_millis(25);

/// Moves waiting backends that `client`'s replica shows to the seen list on every change,
/// until `stop` turns true. NB finds pass on to the SB wait when an SB is watched. The lock is
/// held only to take and give back the pending lists, never while looking.
fn spawn_watcher(
    db: Db,
    client: Client,
    waiting: Arc<Mutex<Waiting>>,
    follow_sb: bool,
    mut stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let lock = || waiting.lock().unwrap_or_else(|p| p.into_inner());
        let mut changes = client.subscribe();
        loop {
            tokio::select! {
                r = changes.changed() => if r.is_err() { return },
                _ = stop.wait_for(|s| *s) => return,
            }
            let pending = match db {
                Db::Nb => std::mem::take(&mut lock().nb),
                Db::Sb => std::mem::take(&mut lock().sb),
            };
            let found = scan(db, &client.replica(), pending, follow_sb);
            {
                let mut guard = lock();
                let w = &mut *guard;
                let (waits, seen) = match db {
                    Db::Nb => (&mut w.nb, &mut w.nb_seen),
                    Db::Sb => (&mut w.sb, &mut w.sb_seen),
                };
                seen.0.extend(found.seen);
                // Backends added while we looked stay; what we did not find goes back in front.
                for (key, left) in found.still {
                    let list = waits.entry(key).or_default();
                    let added = std::mem::replace(list, left);
                    list.extend(added);
                }
                for (name, backend, sent) in found.for_sb {
                    w.sb.entry(name).or_default().push((backend, sent));
                }
            }
            if matches!(db, Db::Sb) {
                tokio::time::sleep(SB_LOOK_EVERY).await;
            }
        }
    })
}

/// What one churn phase measured.
pub struct ChurnResult {
    pub rate: u32,
    pub sent: usize,
    pub send_seconds: f64,
    pub patch_errors: usize,
    pub nb: Latencies,
    pub nb_lost: usize,
    /// Patches whose address a later patch of the same slice removed before the NB showed it.
    pub superseded: usize,
    /// `None` without an SB.
    pub sb: Option<(Latencies, usize)>,
}

/// The slices and where the next new endpoint address comes from.
pub struct Churner {
    pub client: kube::Client,
    pub slices: Vec<SliceRef>,
    /// New addresses cycle through the cluster subnet above the nodes' /24s: inside the
    /// cluster subnet, as pod endpoints are (an address outside it would be a host-network
    /// endpoint, which takes per-node load balancers).
    first: u32,
    last: u32,
    next: u32,
    /// New addresses some slice still holds (never handed out again while held).
    in_use: HashSet<String>,
    cursor: usize,
}

impl Churner {
    /// A churner over `slices` of a cluster whose `nodes` nodes hold 10.42.0.0/24 upwards.
    pub fn new(client: kube::Client, slices: Vec<SliceRef>, nodes: usize) -> Self {
        let first = u32::from(Ipv4Addr::new(10, 42, nodes as u8, 0));
        Churner {
            client,
            slices,
            first,
            last: u32::from(Ipv4Addr::new(10, 42, 255, 254)),
            next: first,
            in_use: HashSet::new(),
            cursor: 0,
        }
    }

    /// An address no slice holds.
    fn unique_ip(&mut self) -> anyhow::Result<String> {
        for _ in self.first..=self.last {
            self.next = if self.next >= self.last {
                self.first
            } else {
                self.next + 1
            };
            let octet = self.next & 0xff;
            let ip = Ipv4Addr::from(self.next).to_string();
            if octet != 0 && octet != 255 && !self.in_use.contains(&ip) {
                self.in_use.insert(ip.clone());
                return Ok(ip);
            }
        }
        anyhow::bail!("no free endpoint address left above the node subnets")
    }

    /// Patches at `rate` per second for `duration`, round-robin over the slices, each patch
    /// replacing the slice's oldest address with a new one; then waits up to `drain` for the
    /// stragglers.
    pub async fn run(
        &mut self,
        nb: &Client,
        sb: Option<&Client>,
        rate: u32,
        duration: Duration,
        drain: Duration,
    ) -> anyhow::Result<ChurnResult> {
        anyhow::ensure!(!self.slices.is_empty(), "no EndpointSlices to churn");
        let waiting = Arc::new(Mutex::new(Waiting::default()));
        let (stop_tx, stop) = watch::channel(false);
        let watchers = [
            Some(spawn_watcher(
                Db::Nb,
                nb.clone(),
                waiting.clone(),
                sb.is_some(),
                stop.clone(),
            )),
            sb.map(|sb| spawn_watcher(Db::Sb, sb.clone(), waiting.clone(), false, stop.clone())),
        ];
        let total = (f64::from(rate) * duration.as_secs_f64()).round() as usize;
        let period = Duration::from_secs_f64(1.0 / f64::from(rate));
        let permits = Arc::new(Semaphore::new(IN_FLIGHT));
        let errors = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let started = tokio::time::Instant::now();
        // The last patch of each slice: the next one of that slice waits for it, so two patches
        // of one slice never race (the API would apply them in either order).
        let mut last: Vec<Option<tokio::task::JoinHandle<()>>> =
            (0..self.slices.len()).map(|_| None).collect();
        for k in 0..total {
            tokio::time::sleep_until(started + period * k as u32).await;
            let ip = self.unique_ip()?;
            let index = self.cursor;
            self.cursor = (self.cursor + 1) % self.slices.len();
            let slice = &mut self.slices[index];
            if let Some(previous) = last[index].take() {
                previous.await?;
            }
            let permit = permits.clone().acquire_owned().await?;
            let mut w = waiting.lock().unwrap_or_else(|p| p.into_inner());
            if !slice.addresses.is_empty() {
                let oldest = slice.addresses.remove(0);
                self.in_use.remove(&oldest);
                w.supersede(&slice.owner, &format!("{oldest}:{TARGET_PORT}"));
            }
            slice.addresses.push(ip.clone());
            let body = json!({"endpoints": endpoints(&slice.addresses)});
            let api: Api<EndpointSlice> = Api::namespaced(self.client.clone(), &slice.namespace);
            let (name, owner) = (slice.name.clone(), slice.owner.clone());
            w.nb.entry(owner)
                .or_default()
                .push((format!("{ip}:{TARGET_PORT}"), Instant::now()));
            drop(w);
            let errors = errors.clone();
            last[index] = Some(tokio::spawn(async move {
                let patched = api
                    .patch(&name, &PatchParams::default(), &Patch::Merge(&body))
                    .await;
                if patched.is_err() {
                    errors.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                drop(permit);
            }));
        }
        for t in last.into_iter().flatten() {
            t.await?;
        }
        let send_seconds = started.elapsed().as_secs_f64();
        let deadline = Instant::now() + drain;
        loop {
            let left = {
                let w = waiting.lock().unwrap_or_else(|p| p.into_inner());
                w.nb.values().map(Vec::len).sum::<usize>()
                    + w.sb.values().map(Vec::len).sum::<usize>()
            };
            if left == 0 || Instant::now() > deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let _ = stop_tx.send(true);
        for w in watchers.into_iter().flatten() {
            w.await?;
        }
        let w = waiting.lock().unwrap_or_else(|p| p.into_inner());
        let lost = |m: &HashMap<String, Vec<(String, Instant)>>| m.values().map(Vec::len).sum();
        Ok(ChurnResult {
            rate,
            sent: total,
            send_seconds,
            patch_errors: errors.load(std::sync::atomic::Ordering::Relaxed),
            nb: w.nb_seen.clone(),
            nb_lost: lost(&w.nb),
            superseded: w.superseded,
            sb: sb.map(|_| (w.sb_seen.clone(), lost(&w.sb))),
        })
    }
}
