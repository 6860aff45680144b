//! `ovnkube-rs sync`: reconcile the NB once to match a file of Kubernetes objects.

use std::time::Duration;

use anyhow::{bail, Context};
use ovnkube_desired::desired_cluster;
use ovnkube_reconcile::{diff, Scope};
use ovsdb::client::{Client, ClientConfig};

use crate::{flags, render};

/// Runs `sync` with its raw arguments (`-f FILE --nb-address REMOTE [ovnkube flags]`): one
/// full-scope diff sent as one transaction; prints the number of operations sent and exits 0
/// once the NB replica shows nothing left to do.
pub fn run(args: &[String]) -> anyhow::Result<()> {
    let flags::Parsed {
        ovnkube,
        own,
        warnings,
    } = flags::parse(args, &["f", "filename"])?;
    for w in warnings {
        eprintln!("warning: {w}");
    }
    let file = own
        .into_iter()
        .map(|(_, v)| v)
        .next_back()
        .context("sync needs -f <objects.yaml>")?;
    let (snapshot, mut errors) = render::load_objects(&file)?;
    let (desired, more) = desired_cluster(&ovnkube.config, &snapshot);
    errors.extend(more);
    render::report(&errors);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let nb = ovnkube.nb_address.join(",");
        let mut config = ClientConfig::new("OVN_Northbound", ovnkube.nb_address);
        config.tls = ovnkube.nb_tls;
        let client = Client::connect(config)
            .await
            .with_context(|| format!("connecting to the NB at {nb}"))?;
        let plan = diff(&desired, &client.replica(), &Scope::Full);
        for issue in &plan.issues {
            eprintln!("warning: {issue}");
        }
        let sent = plan.write_count();
        if !plan.ops.is_empty() {
            let mut changes = client.subscribe();
            client.transact(plan.ops).await.context("NB transaction")?;
            // The replica follows the server's update; converged means nothing is left to do.
            let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
            loop {
                let left = diff(&desired, &client.replica(), &Scope::Full).write_count();
                if left == 0 {
                    break;
                }
                if tokio::time::timeout_at(deadline, changes.changed())
                    .await
                    .is_err()
                {
                    bail!("NB not converged: {left} operations still needed after the transaction");
                }
            }
        }
        println!("{sent} operations");
        Ok(())
    })
}
