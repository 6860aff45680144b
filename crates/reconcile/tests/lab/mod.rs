//! A real NB + SB + ovn-northd (ovn-testlab) and the same one-shot sync `ovnkube-rs sync` does.

#![allow(dead_code)]

use ovn_testlab::Lab;
use ovnkube_desired::Desired;
use ovnkube_reconcile::{diff, Scope};
use ovsdb::client::{Client, ClientConfig};

/// The daemons and their remotes.
pub struct SeedLab {
    pub lab: Lab,
    pub nb: String,
    pub sb: String,
}

impl SeedLab {
    pub fn start() -> SeedLab {
        let mut lab = Lab::new().expect("lab dir");
        let nb = lab.start_nb().expect("NB server");
        let sb = lab.start_sb().expect("SB server");
        lab.start_northd(nb, sb).expect("northd");
        let nb = lab.server(nb).unix_remote();
        let sb = lab.server(sb).unix_remote();
        lab.nbctl(&nb, &["init"]).expect("nbctl init");
        SeedLab { lab, nb, sb }
    }

    pub fn nbctl(&self, args: &[&str]) -> String {
        self.lab
            .nbctl(&self.nb, args)
            .unwrap_or_else(|e| panic!("ovn-nbctl {args:?}: {e}"))
    }

    pub fn sbctl(&self, args: &[&str]) -> String {
        self.lab
            .sbctl(&self.sb, args)
            .unwrap_or_else(|e| panic!("ovn-sbctl {args:?}: {e}"))
    }

    /// Waits until northd has processed the NB.
    pub fn wait_sb(&self) {
        self.nbctl(&["--wait=sb", "sync"]);
    }

    /// Connects, diffs in full scope, sends one transaction; returns the writes sent after
    /// checking that the replica then needs nothing more.
    pub fn sync(&self, desired: &Desired) -> usize {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let client =
                Client::connect(ClientConfig::new("OVN_Northbound", vec![self.nb.clone()]))
                    .await
                    .expect("connect to NB");
            let plan = diff(desired, &client.replica(), &Scope::Full);
            assert!(plan.issues.is_empty(), "{:?}", plan.issues);
            let sent = plan.write_count();
            if !plan.ops.is_empty() {
                let mut changes = client.subscribe();
                client.transact(plan.ops).await.expect("transaction");
                let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
                while diff(desired, &client.replica(), &Scope::Full).write_count() != 0 {
                    tokio::time::timeout_at(deadline, changes.changed())
                        .await
                        .expect("replica converges")
                        .unwrap();
                }
            }
            sent
        })
    }
}
