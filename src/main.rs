//! `ovnkube-rs`: one binary, a few roles (see ARCHITECTURE.md).

use clap::{Parser, Subcommand};

mod flags;
mod render;
mod sync;

mod cni;
mod node;

mod controller;
mod metrics;

#[derive(Parser)]
#[command(
    name = "ovnkube-rs",
    version,
    about = "OVN-Kubernetes control plane in Rust (MicroShift drop-in)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Cluster work: watch the Kubernetes API, allocate addresses, program the OVN Northbound DB.
    Controller(controller::ControllerArgs),
    /// Host work for one node: management port, br-ex flows, iptables, routes, node annotations.
    Node(Box<node::NodeArgs>),
    /// The CNI plugin entry point (ADD/DEL/CHECK/VERSION), invoked by the container runtime.
    Cni,
    /// Offline: Kubernetes objects in, the NB rows that would be programmed out.
    /// Usage: render -f <objects.yaml|-> [--format nbctl|json] [ovnkube flags]
    Render {
        #[arg(allow_hyphen_values = true, trailing_var_arg = true, num_args = 0..)]
        args: Vec<String>,
    },
    /// Reconcile the NB once to match a file of objects; prints the operations sent.
    /// Usage: sync -f <objects.yaml> --nb-address <remote> [ovnkube flags]
    Sync {
        #[arg(allow_hyphen_values = true, trailing_var_arg = true, num_args = 0..)]
        args: Vec<String>,
    },
}

/// Logs go to stderr (stdout carries CNI results and render output); the level comes from
/// `RUST_LOG` (default `info`).
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

/// The name container runtimes call the CNI plugin by (upstream's binary in `/opt/cni/bin`);
/// a link of that name to `ovnkube-rs` runs the plugin, with no arguments, as the CNI spec says.
const CNI_PLUGIN_NAME: &str = "ovn-k8s-cni-overlay";

fn main() -> anyhow::Result<()> {
    let invoked_as = std::env::args_os()
        .next()
        .map(std::path::PathBuf::from)
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()));
    if invoked_as.as_deref() == Some(CNI_PLUGIN_NAME) {
        init_logging();
        std::process::exit(cni::run());
    }
    let cli = Cli::parse();
    init_logging();
    match cli.command {
        Command::Controller(args) => controller::run(args),
        Command::Node(args) => node::run(*args),
        Command::Cni => std::process::exit(cni::run()),
        Command::Render { args } => render::run(&args),
        Command::Sync { args } => sync::run(&args),
    }
}
