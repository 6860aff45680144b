//! Test processes that live in a node network namespace: the Kubernetes API test server on a
//! thread that entered the namespace, and child processes killed by PID on drop. Shared by the
//! e2e lab and the node agent's API test.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::process::Child;
use std::thread::JoinHandle;
use std::time::Duration;

use kube_test_apiserver::{Config, TestApiServer};
use serde_json::Value;

/// The API test server on the namespace's loopback, stopped on drop.
pub struct NetnsApiServer {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl NetnsApiServer {
    /// Starts it in `netns` with `objects`; returns it and its kubeconfig text.
    pub fn start_in(netns: &str, objects: Vec<Value>) -> (NetnsApiServer, String) {
        let (tx, rx) = std::sync::mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let path = format!("/var/run/netns/{netns}");
        let thread = std::thread::spawn(move || {
            let ns = File::open(&path).expect("open the node netns");
            // SAFETY: setns on this thread only, with a valid namespace fd.
            let rc = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(rc, 0, "setns into {path}");
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("tokio runtime");
            rt.block_on(async move {
                let server = TestApiServer::start(Config {
                    objects,
                    ..Config::default()
                })
                .await
                .expect("start the API test server");
                tx.send(server.kubeconfig()).expect("report the kubeconfig");
                let _ = stopped.await;
            });
        });
        let kubeconfig = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("the API test server started");
        let server = NetnsApiServer {
            stop: Some(stop),
            thread: Some(thread),
        };
        (server, kubeconfig)
    }
}

impl Drop for NetnsApiServer {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A child process (`ip netns exec` execs it, so the PID is its own), killed by PID on drop.
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
