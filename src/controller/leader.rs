//! Leader election with a `coordination.k8s.io/v1` Lease, as client-go's leaderelection does it:
//! the holder renews `renewTime`; another replica takes over once `renewTime + leaseDuration`
//! has passed. Every write carries the resourceVersion it read, so two replicas racing for an
//! expired lease cannot both win (the loser gets 409 Conflict).

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, PostParams};
use tokio::sync::watch;
use tracing::{info, warn};

/// Timing of the election (MicroShift's ovnkube-master uses 137 s / 107 s / 26 s).
#[derive(Debug, Clone)]
pub struct LeaseTiming {
    pub lease_duration: Duration,
    pub retry_period: Duration,
}

/// One replica's side of the election.
pub struct LeaderElector {
    api: Api<Lease>,
    name: String,
    identity: String,
    timing: LeaseTiming,
}

enum Verdict {
    Leader,
    Follower(String),
}

impl LeaderElector {
    /// An elector for lease `name` in the API's namespace, as `identity`.
    pub fn new(api: Api<Lease>, name: &str, identity: &str, timing: LeaseTiming) -> Self {
        LeaderElector {
            api,
            name: name.to_owned(),
            identity: identity.to_owned(),
            timing,
        }
    }

    fn spec(&self, now: Timestamp, acquired: Option<MicroTime>, transitions: i32) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(self.identity.clone()),
            lease_duration_seconds: Some(self.timing.lease_duration.as_secs().max(1) as i32),
            acquire_time: Some(acquired.unwrap_or(MicroTime(now))),
            renew_time: Some(MicroTime(now)),
            lease_transitions: Some(transitions),
            ..LeaseSpec::default()
        }
    }

    async fn try_acquire_or_renew(&self) -> Result<Verdict, kube::Error> {
        let now = Timestamp::now();
        let Some(mut lease) = self.api.get_opt(&self.name).await? else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.name.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(self.spec(now, None, 0)),
            };
            self.api.create(&PostParams::default(), &lease).await?;
            return Ok(Verdict::Leader);
        };
        let spec = lease.spec.clone().unwrap_or_default();
        let holder = spec.holder_identity.clone().unwrap_or_default();
        let transitions = spec.lease_transitions.unwrap_or(0);
        if holder == self.identity {
            lease.spec = Some(self.spec(now, spec.acquire_time, transitions));
        } else {
            let duration = i64::from(spec.lease_duration_seconds.unwrap_or(0));
            let expires = spec
                .renew_time
                .map(|t| t.0 + SignedDuration::from_secs(duration));
            if !holder.is_empty() && expires.is_some_and(|e| e > now) {
                return Ok(Verdict::Follower(holder));
            }
            lease.spec = Some(self.spec(now, None, transitions + 1));
        }
        self.api
            .replace(&self.name, &PostParams::default(), &lease)
            .await?;
        Ok(Verdict::Leader)
    }

    /// Runs the election for ever, publishing whether this replica leads. A replica that cannot
    /// renew before its lease would expire steps down first, so two leaders never overlap.
    pub async fn run(self, leading: watch::Sender<bool>) {
        let mut last_renew = tokio::time::Instant::now();
        loop {
            let verdict = self.try_acquire_or_renew().await;
            let is_leader = match verdict {
                Ok(Verdict::Leader) => {
                    last_renew = tokio::time::Instant::now();
                    true
                }
                Ok(Verdict::Follower(holder)) => {
                    if *leading.borrow() {
                        warn!(%holder, "lost the leader lease");
                    }
                    false
                }
                Err(e) => {
                    // Keep leading only while the lease we last renewed is still valid.
                    let valid = last_renew.elapsed()
                        < self
                            .timing
                            .lease_duration
                            .saturating_sub(self.timing.retry_period);
                    warn!(error = %e, still_valid = valid, "leader lease renewal failed");
                    *leading.borrow() && valid
                }
            };
            if is_leader != *leading.borrow() {
                info!(lease = %self.name, identity = %self.identity, is_leader, "leadership changed");
                let _ = leading.send(is_leader);
            }
            tokio::time::sleep(self.timing.retry_period).await;
        }
    }
}
