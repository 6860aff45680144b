//! `ovnkube-rs`: one binary, a few roles (see ARCHITECTURE.md).

use clap::{Parser, Subcommand};

mod cni;
mod flags;
mod node;
mod render;
mod sync;

#[derive(Parser)]
#[command(name = "ovnkube-rs", version, about = "OVN-Kubernetes control plane in Rust (MicroShift drop-in)")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Cluster work: watch the Kubernetes API, allocate addresses, program the OVN Northbound DB.
    Controller,
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

fn not_yet(what: &str) -> anyhow::Result<()> {
    anyhow::bail!("`ovnkube-rs {what}` is not yet implemented")
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Controller => not_yet("controller"),
        Command::Node(args) => node::run(*args),
        Command::Cni => std::process::exit(cni::run()),
        Command::Render { args } => render::run(&args),
        Command::Sync { args } => sync::run(&args),
    }
}
