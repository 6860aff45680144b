//! The floor to compare the controller's cold start with: the same rows written to a fresh
//! ovsdb-server as one pre-serialized transaction on a raw socket (no client, no replica).

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use k8s_openapi::api::core::v1::{Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, ListParams};
use ovnkube_desired::{desired_cluster, Config, Desired, Snapshot};
use ovnkube_reconcile::{diff, Scope};
use ovsdb::framing::FrameDecoder;
use ovsdb::replica::Replica;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

/// MicroShift's flags as the controller gets them: local gateway mode,
/// `--disable-snat-multiple-gws`.
pub fn microshift_config() -> Config {
    Config {
        disable_snat_multiple_gws: true,
        ..Config::default()
    }
}

/// The desired rows of every object the API server holds now (as `sync` computes them from a
/// dump of the API).
pub async fn desired_from_api(client: &kube::Client) -> anyhow::Result<Desired> {
    let lp = ListParams::default();
    let snapshot = Snapshot {
        nodes: Api::<Node>::all(client.clone()).list(&lp).await?.items,
        pods: Api::<Pod>::all(client.clone()).list(&lp).await?.items,
        services: Api::<Service>::all(client.clone()).list(&lp).await?.items,
        endpoint_slices: Api::<EndpointSlice>::all(client.clone())
            .list(&lp)
            .await?
            .items,
    };
    let (desired, errors) = desired_cluster(&microshift_config(), &snapshot);
    if let Some(e) = errors.first() {
        bail!("{} objects cannot be programmed, e.g. {e}", errors.len());
    }
    Ok(desired)
}

/// What the raw write took.
pub struct RawWrite {
    pub elapsed: Duration,
    pub operations: usize,
    pub request_bytes: usize,
}

/// Writes `desired` into the empty NB at unix socket `path` as one transaction, timing from the
/// first byte written to the reply parsed. `empty` is a replica of that NB (for the plan).
pub async fn write(path: &str, empty: &Replica, desired: &Desired) -> anyhow::Result<RawWrite> {
    let plan = diff(desired, empty, &Scope::Full);
    let operations = plan.write_count();
    let mut params = vec![serde_json::Value::String("OVN_Northbound".into())];
    params.extend(plan.ops.iter().map(ovsdb::ops::Operation::to_json));
    let request = serde_json::to_vec(&serde_json::json!({
        "id": 1, "method": "transact", "params": params
    }))?;
    let mut s = UnixStream::connect(path)
        .await
        .with_context(|| format!("connecting to {path}"))?;
    let mut decoder = FrameDecoder::new(1 << 30);
    let started = Instant::now();
    s.write_all(&request).await?;
    let reply = loop {
        if let Some(m) = decoder.next_message()? {
            if m["id"] == 1 {
                break m;
            }
            continue;
        }
        if s.read_buf(decoder.buffer()).await? == 0 {
            bail!("the NB closed the connection during the raw write");
        }
    };
    let elapsed = started.elapsed();
    let results = reply["result"].as_array().context("transact result")?;
    if let Some(e) = results.iter().find(|r| r.get("error").is_some()) {
        bail!("the raw transaction failed: {e}");
    }
    Ok(RawWrite {
        elapsed,
        operations,
        request_bytes: request.len(),
    })
}
