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

/// Logs go to stderr (stdout carries CNI results and render output). The level comes from
/// `RUST_LOG`, else from ovnkube's klog-style `--loglevel N` (2 info, 4 debug, 5+ trace),
/// else `info`.
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        let args: Vec<String> = std::env::args().collect();
        tracing_subscriber::EnvFilter::new(klog_level(&args).unwrap_or("info"))
    });
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

/// The tracing level for ovnkube's `--loglevel`/`-loglevel` (`N` or `=N`), if given.
fn klog_level(args: &[String]) -> Option<&'static str> {
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let body = a.trim_start_matches('-');
        let value = match body.split_once('=') {
            Some(("loglevel", v)) => v.to_owned(),
            None if body == "loglevel" && a.starts_with('-') => it.next()?.clone(),
            _ => continue,
        };
        return Some(match value.parse::<u8>().ok()? {
            0 | 1 => "warn",
            2 | 3 => "info",
            4 => "debug",
            _ => "trace",
        });
    }
    None
}

/// The name container runtimes call the CNI plugin by (upstream's binary in `/opt/cni/bin`);
/// a link of that name to `ovnkube-rs` runs the plugin, with no arguments, as the CNI spec says.
const CNI_PLUGIN_NAME: &str = "ovn-k8s-cni-overlay";

/// glibc's malloc, tuned for a long-lived process whose big buffers (NB dumps, lists, a full
/// sync's transaction) come and go: one arena instead of one per thread that ever allocated
/// (each arena keeps its own free memory; with two, the scenario-S start-up peaked ~6 MiB higher,
/// and a handful of threads hardly contend: small blocks come from per-thread caches), and a
/// fixed mmap threshold so those buffers go back to the kernel when freed (by default the
/// threshold grows to the largest block freed, and such blocks then stay in the heap).
/// Environment variables (`MALLOC_ARENA_MAX`, ...) still win: they are read at the first malloc.
fn tune_malloc() {
    #[cfg(target_env = "gnu")]
    {
        const ARENAS: libc::c_int = 1;
        const MMAP_THRESHOLD: libc::c_int = 256 * 1024;
        const TRIM_THRESHOLD: libc::c_int = 1024 * 1024;
        let unset = |name: &str| std::env::var_os(name).is_none();
        // SAFETY: mallopt only changes allocator parameters; called before any thread starts.
        unsafe {
            if unset("MALLOC_ARENA_MAX") {
                libc::mallopt(libc::M_ARENA_MAX, ARENAS);
            }
            if unset("MALLOC_MMAP_THRESHOLD_") {
                libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
            }
            if unset("MALLOC_TRIM_THRESHOLD_") {
                libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD);
            }
        }
    }
}

fn main() -> anyhow::Result<()> {
    tune_malloc();
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
        Command::Node(args) => node::run(*args, metrics::NodeMetrics::new()),
        Command::Cni => std::process::exit(cni::run()),
        Command::Render { args } => render::run(&args),
        Command::Sync { args } => sync::run(&args),
    }
}

#[cfg(test)]
mod tests {
    use super::klog_level;

    #[test]
    fn klog_levels_map_to_tracing_levels() {
        let args = |s: &str| s.split_whitespace().map(String::from).collect::<Vec<_>>();
        assert_eq!(klog_level(&args("controller --loglevel=4")), Some("debug"));
        assert_eq!(klog_level(&args("controller -loglevel 5")), Some("trace"));
        assert_eq!(
            klog_level(&args("controller --loglevel 2 --x")),
            Some("info")
        );
        assert_eq!(klog_level(&args("controller --nb-address x")), None);
    }
}
