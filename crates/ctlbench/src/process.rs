//! The controller under test as a child process: start, readiness, metrics, resource usage.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A running `ovnkube-rs controller`, SIGKILLed on drop.
pub struct Controller {
    child: Child,
    metrics: SocketAddr,
    started: Instant,
    pub log: PathBuf,
}

/// Peak memory and CPU time of a process.
#[derive(Debug, Clone, Copy, Default)]
pub struct Usage {
    /// VmHWM (peak resident set) in MiB.
    pub peak_rss_mib: f64,
    /// utime + stime in seconds.
    pub cpu_seconds: f64,
}

fn free_port() -> anyhow::Result<SocketAddr> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?)
}

async fn http_get(addr: SocketAddr, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(addr).await.ok()?;
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
        .await
        .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).await.ok()?;
    Some(out)
}

/// Resource usage of `pid` from /proc.
pub fn usage(pid: u32) -> anyhow::Result<Usage> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let hwm_kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .context("VmHWM in /proc status")?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the parenthesized command name; utime and stime are fields 14 and 15.
    let rest = &stat[stat.rfind(')').context("stat format")? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f[11].parse::<f64>()? + f[12].parse::<f64>()?;
    // SAFETY: sysconf has no memory effects.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Ok(Usage {
        peak_rss_mib: hwm_kib / 1024.0,
        cpu_seconds: ticks / hz,
    })
}

impl Controller {
    /// Starts the controller without leader election, MicroShift's flags, logs to `log`.
    pub fn spawn(bin: &Path, kubeconfig: &Path, nb: &str, log: PathBuf) -> anyhow::Result<Self> {
        let metrics = free_port()?;
        let child = Command::new(bin)
            .args([
                "controller",
                "--init-master",
                "node-000",
                "--gateway-mode",
                "local",
            ])
            .args(["--disable-snat-multiple-gws", "--leader-election=false"])
            .arg(format!("--k8s-kubeconfig={}", kubeconfig.display()))
            .arg(format!("--nb-address={nb}"))
            .arg(format!("--metrics-bind-address={metrics}"))
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log)?)
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        Ok(Controller {
            child,
            metrics,
            started: Instant::now(),
            log,
        })
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for `/readyz` to answer 200; returns the time since the process was started.
    pub async fn wait_ready(&mut self, timeout: Duration) -> anyhow::Result<Duration> {
        let deadline = Instant::now() + timeout;
        loop {
            let reply = http_get(self.metrics, "/readyz").await;
            if reply.is_some_and(|r| r.starts_with("HTTP/1.1 200")) {
                return Ok(self.started.elapsed());
            }
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "the controller exited ({status}); see {}",
                    self.log.display()
                );
            }
            if Instant::now() > deadline {
                bail!(
                    "the controller was not ready after {timeout:?}; see {}",
                    self.log.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// The value of an unlabelled metric (NaN when unreadable).
    pub async fn metric(&self, name: &str) -> f64 {
        let text = http_get(self.metrics, "/metrics").await.unwrap_or_default();
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(f64::NAN)
    }

    /// NB transactions and write operations sent so far.
    pub async fn nb_counters(&self) -> (f64, f64) {
        (
            self.metric("ovnkube_controller_nb_transactions_total")
                .await,
            self.metric("ovnkube_controller_nb_operations_total").await,
        )
    }

    /// Waits until nothing is queued and no operation was sent for `still`; returns the time
    /// since the process was started.
    pub async fn wait_quiet(&self, still: Duration, timeout: Duration) -> anyhow::Result<Duration> {
        let deadline = Instant::now() + timeout;
        let mut last = (f64::NAN, Instant::now());
        loop {
            let ops = self.metric("ovnkube_controller_nb_operations_total").await;
            let depth = self.metric("ovnkube_controller_workqueue_depth").await;
            if ops != last.0 || depth != 0.0 {
                last = (ops, Instant::now());
            } else if last.1.elapsed() >= still {
                return Ok(last.1.duration_since(self.started));
            }
            if Instant::now() > deadline {
                bail!("the controller did not go quiet in {timeout:?}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Peak memory and CPU time so far.
    pub fn usage(&self) -> anyhow::Result<Usage> {
        usage(self.pid())
    }

    /// SIGTERM, then waits for the exit.
    pub fn terminate(&mut self) -> anyhow::Result<()> {
        // SAFETY: kill(2) on our own child's pid; no memory is involved.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
        }
        self.child.wait()?;
        Ok(())
    }
}

impl Drop for Controller {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
