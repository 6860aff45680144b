//! A test harness that runs real OVN daemons from the Debian packages under a temporary directory.
//!
//! [`Lab`] starts NB/SB `ovsdb-server`s (unix socket, optionally a TCP and an SSL listener on
//! 127.0.0.1), RAFT NB clusters and `ovn-northd`, kills and restarts servers on the same DB file,
//! finds the RAFT leader and runs `ovn-nbctl`/`ovn-sbctl`/`ovn-trace`. Every daemon is a child
//! in its own process group; dropping the lab (also while unwinding from a panic) SIGKILLs the
//! groups and reaps the children. Nothing touches network configuration: listeners are loopback
//! only and every file lives under the lab directory.

mod pki;

use std::io;
use std::net::TcpListener;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

pub use pki::Pki;

/// How long to wait for a daemon to come up or a cluster to elect a leader.
const STARTUP_DEADLINE: Duration = Duration::from_secs(20);
const POLL: Duration = Duration::from_millis(20);

/// Which OVN database a server holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Db {
    Northbound,
    Southbound,
}

impl Db {
    /// The database name inside the schema.
    pub fn name(self) -> &'static str {
        match self {
            Db::Northbound => "OVN_Northbound",
            Db::Southbound => "OVN_Southbound",
        }
    }
    /// The schema file Debian installs.
    pub fn schema_path(self) -> &'static str {
        match self {
            Db::Northbound => "/usr/share/ovn/ovn-nb.ovsschema",
            Db::Southbound => "/usr/share/ovn/ovn-sb.ovsschema",
        }
    }
    fn short(self) -> &'static str {
        match self {
            Db::Northbound => "nb",
            Db::Southbound => "sb",
        }
    }
}

/// The files an SSL listener (or client) uses: private key, certificate, CA certificate.
#[derive(Debug, Clone)]
pub struct SslFiles {
    pub private_key: PathBuf,
    pub certificate: PathBuf,
    pub ca_cert: PathBuf,
}

/// What to start with [`Lab::start_server`].
#[derive(Debug, Clone)]
pub struct ServerOptions {
    pub db: Db,
    /// Also listen on `ptcp:<free port>:127.0.0.1`.
    pub tcp: bool,
    /// Also listen on `pssl:<free port>:127.0.0.1` with these files.
    pub ssl: Option<SslFiles>,
    /// Create the DB as a 1-member RAFT cluster instead of a standalone file.
    pub clustered: bool,
    /// A schema file to use instead of Debian's (e.g. one from a newer OVN).
    pub schema: Option<PathBuf>,
}

impl ServerOptions {
    /// A standalone server on a unix socket only.
    pub fn new(db: Db) -> ServerOptions {
        ServerOptions {
            db,
            tcp: false,
            ssl: None,
            clustered: false,
            schema: None,
        }
    }

    /// The schema file the database is created from.
    fn schema_path(&self) -> String {
        match &self.schema {
            Some(p) => p.to_string_lossy().into_owned(),
            None => self.db.schema_path().to_owned(),
        }
    }
}

/// Index of a server inside its [`Lab`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ServerId(usize);

/// One `ovsdb-server` of the lab.
#[derive(Debug)]
pub struct Server {
    name: String,
    db: Db,
    clustered: bool,
    sock: PathBuf,
    ctl: PathBuf,
    tcp_port: Option<u16>,
    ssl_port: Option<u16>,
    args: Vec<String>,
    /// The database file and the schema it was created from (for [`Lab::recreate`]).
    db_file: PathBuf,
    schema: String,
    child: Option<Child>,
}

impl Server {
    /// `unix:<socket>`.
    pub fn unix_remote(&self) -> String {
        format!("unix:{}", self.sock.display())
    }
    /// `tcp:127.0.0.1:<port>` when the server has a TCP listener.
    pub fn tcp_remote(&self) -> Option<String> {
        self.tcp_port.map(|p| format!("tcp:127.0.0.1:{p}"))
    }
    /// `ssl:127.0.0.1:<port>` when the server has an SSL listener.
    pub fn ssl_remote(&self) -> Option<String> {
        self.ssl_port.map(|p| format!("ssl:127.0.0.1:{p}"))
    }
    /// The unixctl socket (`ovs-appctl -t`).
    pub fn ctl_path(&self) -> &Path {
        &self.ctl
    }
    /// The pid while the server runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }
    /// The server's name in the lab (`nb0`, `sb1`, ...).
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// A set of OVN daemons under one temporary directory, stopped on drop.
pub struct Lab {
    dir: tempfile::TempDir,
    servers: Vec<Server>,
    northd: Vec<Child>,
}

fn other_err(msg: String) -> io::Error {
    io::Error::other(msg)
}

fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn kill_group(child: &mut Child) {
    // The child leads its own process group (process_group(0)), so -pid reaches anything it forked.
    let pid = child.id() as libc::pid_t;
    // SAFETY: kill(2) with a negative pid signals that process group; no memory is involved.
    unsafe {
        libc::kill(-pid, libc::SIGKILL);
    }
    let _ = child.kill();
    let _ = child.wait();
}

impl Lab {
    /// An empty lab in a fresh temporary directory.
    pub fn new() -> io::Result<Lab> {
        let dir = tempfile::Builder::new().prefix("ovnlab").tempdir()?;
        Ok(Lab {
            dir,
            servers: Vec::new(),
            northd: Vec::new(),
        })
    }

    /// The lab's directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// One server.
    pub fn server(&self, id: ServerId) -> &Server {
        &self.servers[id.0]
    }

    /// A command with the OVS/OVN run, log and db directories pointed into the lab.
    pub fn command(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        let d = self.dir.path();
        for var in [
            "OVS_RUNDIR",
            "OVS_LOGDIR",
            "OVS_DBDIR",
            "OVN_RUNDIR",
            "OVN_LOGDIR",
            "OVN_DBDIR",
        ] {
            c.env(var, d);
        }
        c.current_dir(d);
        c
    }

    /// Runs a command to completion; an error carries its stderr.
    pub fn run(&self, program: &str, args: &[&str]) -> io::Result<String> {
        let out = self
            .command(program)
            .args(args)
            .stdin(Stdio::null())
            .output()?;
        if !out.status.success() {
            return Err(other_err(format!(
                "{program} {}: {}: {}",
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    fn next_name(&self, db: Db) -> String {
        let n = self.servers.iter().filter(|s| s.db == db).count();
        format!("{}{n}", db.short())
    }

    /// A standalone NB server on a unix socket.
    pub fn start_nb(&mut self) -> io::Result<ServerId> {
        self.start_server(ServerOptions::new(Db::Northbound))
    }

    /// A standalone SB server on a unix socket.
    pub fn start_sb(&mut self) -> io::Result<ServerId> {
        self.start_server(ServerOptions::new(Db::Southbound))
    }

    /// Creates a DB file and starts a server on it.
    pub fn start_server(&mut self, opts: ServerOptions) -> io::Result<ServerId> {
        let name = self.next_name(opts.db);
        let db_file = self.path().join(format!("{name}.db"));
        let db_path = db_file.to_string_lossy().into_owned();
        let schema = opts.schema_path();
        if opts.clustered {
            let raft = format!(
                "unix:{}",
                self.path().join(format!("{name}.raft")).display()
            );
            self.run("ovsdb-tool", &["create-cluster", &db_path, &schema, &raft])?;
        } else {
            self.run("ovsdb-tool", &["create", &db_path, &schema])?;
        }
        let id = self.add_server(name, &opts, db_file)?;
        self.wait_ready(id)?;
        if opts.clustered {
            self.wait_cluster_leader(&[id])?;
        }
        Ok(id)
    }

    fn add_server(
        &mut self,
        name: String,
        opts: &ServerOptions,
        db_file: PathBuf,
    ) -> io::Result<ServerId> {
        let d = self.path().to_path_buf();
        let sock = d.join(format!("{name}.sock"));
        let ctl = d.join(format!("{name}.ctl"));
        let mut args = vec![
            "--no-chdir".to_owned(),
            format!("--log-file={}", d.join(format!("{name}.log")).display()),
            format!("--pidfile={}", d.join(format!("{name}.pid")).display()),
            format!("--unixctl={}", ctl.display()),
            format!("--remote=punix:{}", sock.display()),
        ];
        let tcp_port = if opts.tcp { Some(free_port()?) } else { None };
        if let Some(p) = tcp_port {
            args.push(format!("--remote=ptcp:{p}:127.0.0.1"));
        }
        let ssl_port = match &opts.ssl {
            Some(files) => {
                let p = free_port()?;
                args.push(format!("--remote=pssl:{p}:127.0.0.1"));
                args.push(format!("--private-key={}", files.private_key.display()));
                args.push(format!("--certificate={}", files.certificate.display()));
                args.push(format!("--ca-cert={}", files.ca_cert.display()));
                Some(p)
            }
            None => None,
        };
        args.push(db_file.to_string_lossy().into_owned());
        self.servers.push(Server {
            name,
            db: opts.db,
            db_file,
            schema: opts.schema_path(),
            clustered: opts.clustered,
            sock,
            ctl,
            tcp_port,
            ssl_port,
            args,
            child: None,
        });
        let id = ServerId(self.servers.len() - 1);
        self.spawn(id)?;
        Ok(id)
    }

    fn spawn(&mut self, id: ServerId) -> io::Result<()> {
        let s = &self.servers[id.0];
        let log = std::fs::File::create(self.path().join(format!("{}.stderr", s.name)))?;
        let child = self
            .command("ovsdb-server")
            .args(&s.args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .process_group(0)
            .spawn()?;
        self.servers[id.0].child = Some(child);
        Ok(())
    }

    fn wait_ready(&mut self, id: ServerId) -> io::Result<()> {
        let deadline = Instant::now() + STARTUP_DEADLINE;
        loop {
            let s = &mut self.servers[id.0];
            if let Some(status) = s.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                return Err(other_err(format!(
                    "ovsdb-server {} exited at start-up ({status}); see {}/{}.log",
                    s.name,
                    self.dir.path().display(),
                    s.name
                )));
            }
            if UnixStream::connect(&s.sock).is_ok() && s.ctl.exists() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(other_err(format!(
                    "ovsdb-server {} did not come up",
                    s.name
                )));
            }
            sleep(POLL);
        }
    }

    /// Starts an NB RAFT cluster of `members` servers, each with its own unix socket, and waits
    /// until every member has joined and a leader is elected.
    pub fn start_nb_cluster(&mut self, members: usize) -> io::Result<Vec<ServerId>> {
        let db = Db::Northbound;
        let mut ids = Vec::new();
        let mut first_raft = String::new();
        for i in 0..members {
            let name = self.next_name(db);
            let db_file = self.path().join(format!("{name}.db"));
            let db_path = db_file.to_string_lossy().into_owned();
            let raft = format!(
                "unix:{}",
                self.path().join(format!("{name}.raft")).display()
            );
            if i == 0 {
                self.run(
                    "ovsdb-tool",
                    &["create-cluster", &db_path, db.schema_path(), &raft],
                )?;
                first_raft = raft;
            } else {
                self.run(
                    "ovsdb-tool",
                    &["join-cluster", &db_path, db.name(), &raft, &first_raft],
                )?;
            }
            let opts = ServerOptions {
                clustered: true,
                ..ServerOptions::new(db)
            };
            ids.push(self.add_server(name, &opts, db_file)?);
        }
        for &id in &ids {
            self.wait_ready(id)?;
        }
        let deadline = Instant::now() + STARTUP_DEADLINE;
        while !ids.iter().all(|&id| {
            self.cluster_status(id)
                .is_ok_and(|s| s.contains("Status: cluster member"))
        }) {
            if Instant::now() > deadline {
                return Err(other_err("RAFT cluster members did not join".into()));
            }
            sleep(POLL);
        }
        self.wait_cluster_leader(&ids)?;
        Ok(ids)
    }

    /// `ovs-appctl -t <ctl> <args>` against a server's unixctl socket.
    pub fn appctl(&self, id: ServerId, args: &[&str]) -> io::Result<String> {
        let ctl = self.server(id).ctl.to_string_lossy().into_owned();
        let mut all = vec!["-T", "5", "-t", ctl.as_str()];
        all.extend_from_slice(args);
        self.run("ovs-appctl", &all)
    }

    /// `ovs-appctl -t <ctl> cluster/status <db>`.
    pub fn cluster_status(&self, id: ServerId) -> io::Result<String> {
        let s = self.server(id);
        if !s.clustered {
            return Err(other_err(format!("{} is not clustered", s.name)));
        }
        self.appctl(id, &["cluster/status", s.db.name()])
    }

    /// The running member among `ids` that reports itself RAFT leader.
    pub fn cluster_leader(&self, ids: &[ServerId]) -> Option<ServerId> {
        ids.iter().copied().find(|&id| {
            self.server(id).child.is_some()
                && self
                    .cluster_status(id)
                    .is_ok_and(|s| s.lines().any(|l| l.trim() == "Role: leader"))
        })
    }

    /// Polls [`Lab::cluster_leader`] until a leader exists.
    pub fn wait_cluster_leader(&self, ids: &[ServerId]) -> io::Result<ServerId> {
        let deadline = Instant::now() + STARTUP_DEADLINE;
        loop {
            if let Some(id) = self.cluster_leader(ids) {
                return Ok(id);
            }
            if Instant::now() > deadline {
                return Err(other_err("no RAFT leader elected".into()));
            }
            sleep(POLL);
        }
    }

    /// SIGKILLs a server (its DB file stays for [`Lab::restart`]).
    pub fn kill(&mut self, id: ServerId) {
        if let Some(mut child) = self.servers[id.0].child.take() {
            kill_group(&mut child);
        }
    }

    /// Stops a standalone server and starts it on a new, empty database with the same listeners:
    /// a database container recreated without its data.
    pub fn recreate(&mut self, id: ServerId) -> io::Result<()> {
        let s = &self.servers[id.0];
        if s.clustered {
            return Err(other_err(format!("{} is clustered", s.name)));
        }
        let (db, schema) = (s.db_file.to_string_lossy().into_owned(), s.schema.clone());
        self.kill(id);
        std::fs::remove_file(&db)?;
        self.run("ovsdb-tool", &["create", &db, &schema])?;
        self.spawn(id)?;
        self.wait_ready(id)
    }

    /// Starts a killed server again on the same DB file and listeners.
    pub fn restart(&mut self, id: ServerId) -> io::Result<()> {
        self.kill(id);
        self.spawn(id)?;
        self.wait_ready(id)
    }

    /// Starts `ovn-northd` between an NB and an SB server.
    pub fn start_northd(&mut self, nb: ServerId, sb: ServerId) -> io::Result<()> {
        let d = self.path();
        let n = self.northd.len();
        let log = std::fs::File::create(d.join(format!("northd{n}.stderr")))?;
        let child = self
            .command("ovn-northd")
            .arg("--no-chdir")
            .arg(format!(
                "--log-file={}",
                d.join(format!("northd{n}.log")).display()
            ))
            .arg(format!(
                "--pidfile={}",
                d.join(format!("northd{n}.pid")).display()
            ))
            .arg(format!(
                "--unixctl={}",
                d.join(format!("northd{n}.ctl")).display()
            ))
            .arg(format!("--ovnnb-db={}", self.server(nb).unix_remote()))
            .arg(format!("--ovnsb-db={}", self.server(sb).unix_remote()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .process_group(0)
            .spawn()?;
        self.northd.push(child);
        Ok(())
    }

    /// `ovn-nbctl --db=<remote> <args>` (a comma-separated list of remotes finds the leader).
    pub fn nbctl(&self, remote: &str, args: &[&str]) -> io::Result<String> {
        let db = format!("--db={remote}");
        let mut all = vec![db.as_str(), "--timeout=30"];
        all.extend_from_slice(args);
        self.run("ovn-nbctl", &all)
    }

    /// `ovn-sbctl --db=<remote> <args>`.
    pub fn sbctl(&self, remote: &str, args: &[&str]) -> io::Result<String> {
        let db = format!("--db={remote}");
        let mut all = vec![db.as_str(), "--timeout=30"];
        all.extend_from_slice(args);
        self.run("ovn-sbctl", &all)
    }

    /// `ovn-trace --db=<SB remote> <args>`.
    pub fn trace(&self, sb_remote: &str, args: &[&str]) -> io::Result<String> {
        let db = format!("--db={sb_remote}");
        let mut all = vec![db.as_str()];
        all.extend_from_slice(args);
        self.run("ovn-trace", &all)
    }

    /// A CA plus server and client certificates under the lab directory.
    pub fn make_pki(&self) -> io::Result<Pki> {
        Pki::generate(self)
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for child in &mut self.northd {
            kill_group(child);
        }
        for s in &mut self.servers {
            if let Some(mut child) = s.child.take() {
                kill_group(&mut child);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nb_sb_northd_and_restart() {
        let mut lab = Lab::new().unwrap();
        let nb = lab.start_nb().unwrap();
        let sb = lab.start_sb().unwrap();
        lab.start_northd(nb, sb).unwrap();
        let nbr = lab.server(nb).unix_remote();
        let sbr = lab.server(sb).unix_remote();
        lab.nbctl(&nbr, &["ls-add", "sw0"]).unwrap();
        lab.nbctl(&nbr, &["--wait=sb", "sync"]).unwrap();
        let dps = lab
            .sbctl(
                &sbr,
                &[
                    "--bare",
                    "--columns=external_ids",
                    "list",
                    "Datapath_Binding",
                ],
            )
            .unwrap();
        assert!(dps.contains("name=sw0"), "northd did not create sw0: {dps}");
        for (port, mac) in [("p1", "0a:00:00:00:00:01"), ("p2", "0a:00:00:00:00:02")] {
            let addr = format!("{mac} 10.0.0.{}", &port[1..]);
            lab.nbctl(
                &nbr,
                &[
                    "lsp-add",
                    "sw0",
                    port,
                    "--",
                    "lsp-set-addresses",
                    port,
                    &addr,
                ],
            )
            .unwrap();
        }
        lab.nbctl(&nbr, &["--wait=sb", "sync"]).unwrap();
        let trace = lab
            .trace(
                &sbr,
                &[
                    "--minimal",
                    "sw0",
                    "inport==\"p1\" && eth.src==0a:00:00:00:00:01 && eth.dst==0a:00:00:00:00:02",
                ],
            )
            .unwrap();
        assert!(trace.contains("output(\"p2\")"), "{trace}");
        let pid = lab.server(nb).pid().unwrap();
        lab.kill(nb);
        assert!(lab.nbctl(&nbr, &["ls-list"]).is_err());
        lab.restart(nb).unwrap();
        assert_ne!(lab.server(nb).pid(), Some(pid));
        assert!(lab.nbctl(&nbr, &["ls-list"]).unwrap().contains("sw0"));
    }

    #[test]
    fn three_member_cluster_elects_new_leader() {
        let mut lab = Lab::new().unwrap();
        let ids = lab.start_nb_cluster(3).unwrap();
        let remotes: Vec<String> = ids.iter().map(|&i| lab.server(i).unix_remote()).collect();
        let all = remotes.join(",");
        lab.nbctl(&all, &["ls-add", "sw0"]).unwrap();
        let leader = lab.wait_cluster_leader(&ids).unwrap();
        lab.kill(leader);
        let new_leader = lab.wait_cluster_leader(&ids).unwrap();
        assert_ne!(new_leader, leader);
        assert!(lab.nbctl(&all, &["ls-list"]).unwrap().contains("sw0"));
    }

    #[test]
    fn dropping_the_lab_kills_its_daemons() {
        let pid;
        let dir;
        {
            let mut lab = Lab::new().unwrap();
            let nb = lab.start_nb().unwrap();
            pid = lab.server(nb).pid().unwrap();
            dir = lab.path().to_path_buf();
        }
        assert!(!Path::new(&format!("/proc/{pid}")).exists());
        assert!(!dir.exists());
    }
}
