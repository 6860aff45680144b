//! `kube-test-apiserver`: runs the in-memory Kubernetes API server until interrupted.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use kube_test_apiserver::{load_objects, Config, Ipv4Cidr, TestApiServer};
use tokio::signal::unix::{signal, SignalKind};

/// An in-memory Kubernetes API server on 127.0.0.1 for tests and demos.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Port on 127.0.0.1 (0 = ephemeral); the bound address is printed on stdout.
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// YAML file of objects to create at start (multi-document or `kind: List`); repeatable.
    #[arg(long = "load")]
    load: Vec<PathBuf>,
    /// Where to write a kubeconfig pointing at this server.
    #[arg(long)]
    kubeconfig_out: Option<PathBuf>,
    /// Service ClusterIP range.
    #[arg(long, default_value = "10.43.0.0/16")]
    service_cidr: Ipv4Cidr,
    /// Number of events kept for watch resumption (older resourceVersions get 410 Gone).
    #[arg(long, default_value_t = 10_000)]
    event_window: usize,
    /// Where to write the (user, verb, group, resource) requests seen, as JSON, at shutdown.
    #[arg(long)]
    requests_out: Option<PathBuf>,
    /// Seconds between BOOKMARK events on watches that allow them.
    #[arg(long, default_value_t = 5)]
    bookmark_seconds: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let args = Args::parse();
    let mut objects = Vec::new();
    for path in &args.load {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading objects from {}", path.display()))?;
        objects.extend(load_objects(&path.display().to_string(), &text)?);
    }
    let config = Config {
        port: args.port,
        event_window: args.event_window,
        service_cidr: args.service_cidr,
        objects,
        bookmark_interval: Duration::from_secs(args.bookmark_seconds.max(1)),
    };
    let server = TestApiServer::start(config).await?;
    if let Some(path) = &args.kubeconfig_out {
        server
            .write_kubeconfig(path)
            .with_context(|| format!("writing the kubeconfig to {}", path.display()))?;
    }
    println!("listening on {}", server.url());
    let mut terminate =
        signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    tokio::select! {
        interrupted = tokio::signal::ctrl_c() => interrupted.context("waiting for SIGINT")?,
        _ = terminate.recv() => {}
    }
    if let Some(path) = &args.requests_out {
        let records = serde_json::to_vec_pretty(&server.requests())?;
        std::fs::write(path, records)
            .with_context(|| format!("writing the request records to {}", path.display()))?;
    }
    Ok(())
}
