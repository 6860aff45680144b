//! Running the host tools (`ip`, `iptables-*`, `ovs-vsctl`, `ovs-ofctl`, `sysctl`) against one
//! network namespace: the agent's own (it is started inside the node's namespace) or, for tests,
//! a named namespace entered with `ip netns exec`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::Error;

/// Where host commands run and where the OVS sockets are.
#[derive(Debug, Clone)]
pub struct Host {
    netns: Option<String>,
    ovs_rundir: PathBuf,
}

/// The OVS run directory when none is configured.
pub const DEFAULT_OVS_RUNDIR: &str = "/var/run/openvswitch";

impl Host {
    /// Commands run in this process's own network namespace.
    pub fn current(ovs_rundir: impl Into<PathBuf>) -> Host {
        Host {
            netns: None,
            ovs_rundir: ovs_rundir.into(),
        }
    }

    /// Commands run inside the named namespace (`ip netns exec <name>`).
    pub fn in_netns(name: impl Into<String>, ovs_rundir: impl Into<PathBuf>) -> Host {
        Host {
            netns: Some(name.into()),
            ovs_rundir: ovs_rundir.into(),
        }
    }

    /// The OVS run directory (`db.sock`, `<bridge>.mgmt`).
    pub fn ovs_rundir(&self) -> &Path {
        &self.ovs_rundir
    }

    /// A path naming this host's network namespace, usable as `ip ... netns <path>`.
    pub fn netns_path(&self) -> String {
        match &self.netns {
            Some(name) => format!("/var/run/netns/{name}"),
            None => format!("/proc/{}/ns/net", std::process::id()),
        }
    }

    fn command(&self, prog: &str, args: &[&str]) -> Command {
        let mut cmd = match &self.netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, prog]);
                c
            }
            None => Command::new(prog),
        };
        cmd.args(args).env("OVS_RUNDIR", &self.ovs_rundir);
        cmd
    }

    /// Runs a command, returning its stdout; a non-zero exit is an error naming the command.
    pub fn run(&self, prog: &str, args: &[&str]) -> Result<String, Error> {
        self.run_with_input(prog, args, None)
    }

    /// Runs a command with `input` on stdin.
    pub fn run_with_input(
        &self,
        prog: &str,
        args: &[&str],
        input: Option<&str>,
    ) -> Result<String, Error> {
        let describe = || format!("{prog} {}", args.join(" "));
        let mut child = self
            .command(prog, args)
            .stdin(if input.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| Error::Spawn {
                command: describe(),
                source: e,
            })?;
        if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
            stdin.write_all(text.as_bytes()).map_err(|e| Error::Spawn {
                command: describe(),
                source: e,
            })?;
        }
        let out = child.wait_with_output().map_err(|e| Error::Spawn {
            command: describe(),
            source: e,
        })?;
        if !out.status.success() {
            return Err(Error::Command {
                command: describe(),
                status: out.status.code().unwrap_or(-1),
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            });
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// `ovs-vsctl` against this host's OVS database.
    pub fn vsctl(&self, args: &[&str]) -> Result<String, Error> {
        let db = format!("--db=unix:{}", self.ovs_rundir.join("db.sock").display());
        let mut all = vec![db.as_str(), "--timeout=30"];
        all.extend_from_slice(args);
        self.run("ovs-vsctl", &all).map(|s| s.trim().to_string())
    }

    /// `ovs-ofctl` (finds `<bridge>.mgmt` through `OVS_RUNDIR`).
    pub fn ofctl(&self, args: &[&str], input: Option<&str>) -> Result<String, Error> {
        self.run_with_input("ovs-ofctl", args, input)
    }
}
