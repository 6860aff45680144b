//! Real sockets inside the lab's network namespaces: "who-am-I" servers that answer every TCP
//! connection and UDP datagram with the peer address they saw, and clients that return that
//! answer. Each socket lives on its own thread that entered the namespace (setns is per thread).

use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// Transport of a probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    /// TCP: connect, read the answer.
    Tcp,
    /// UDP: one datagram, one answer.
    Udp,
}

/// Moves the calling thread into network namespace `netns`: a name under /var/run/netns, or a
/// path (e.g. /proc/<pid>/ns/net, or a pod's namespace inside a container's /run/netns).
fn enter(netns: &str) -> std::io::Result<()> {
    let ns = if netns.starts_with('/') {
        File::open(netns)?
    } else {
        File::open(format!("/var/run/netns/{netns}"))?
    };
    // SAFETY: setns on the calling thread with a valid namespace fd; no memory is shared.
    if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Runs `f` on a fresh thread inside `netns` and returns its result.
pub fn in_netns<T: Send + 'static>(
    netns: &str,
    f: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> std::io::Result<T> {
    let netns = netns.to_string();
    std::thread::spawn(move || {
        enter(&netns)?;
        f()
    })
    .join()
    .expect("probe thread panicked")
}

/// A server answering with the peer address it saw; stopped on drop.
pub struct PeerEcho {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl PeerEcho {
    /// Binds `addr` in `netns` (panics if it cannot) and serves until dropped.
    pub fn start(netns: &str, proto: Proto, addr: SocketAddr) -> PeerEcho {
        let stop = Arc::new(AtomicBool::new(false));
        let (ready, bound) = std::sync::mpsc::channel();
        let netns_name = netns.to_string();
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let served = enter(&netns_name).and_then(|()| match proto {
                Proto::Tcp => serve_tcp(addr, &flag, &ready),
                Proto::Udp => serve_udp(addr, &flag, &ready),
            });
            if let Err(e) = served {
                let _ = ready.send(Err(e));
            }
        });
        match bound.recv().expect("server thread reports its bind") {
            Ok(()) => PeerEcho {
                stop,
                thread: Some(thread),
            },
            Err(e) => panic!("cannot serve {proto:?} {addr} in {netns}: {e}"),
        }
    }
}

type Ready = std::sync::mpsc::Sender<std::io::Result<()>>;

fn serve_tcp(addr: SocketAddr, stop: &AtomicBool, ready: &Ready) -> std::io::Result<()> {
    let listener = TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    let _ = ready.send(Ok(()));
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((mut conn, peer)) => {
                conn.set_nonblocking(false)?;
                let local = conn.local_addr()?;
                let _ = writeln!(conn, "{peer} {local}");
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(10))
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn serve_udp(addr: SocketAddr, stop: &AtomicBool, ready: &Ready) -> std::io::Result<()> {
    let socket = UdpSocket::bind(addr)?;
    socket.set_read_timeout(Some(Duration::from_millis(50)))?;
    let _ = ready.send(Ok(()));
    let mut buf = [0u8; 512];
    while !stop.load(Ordering::Relaxed) {
        match socket.recv_from(&mut buf) {
            Ok((_, peer)) => {
                socket.send_to(format!("{peer} {addr}\n").as_bytes(), peer)?;
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

impl Drop for PeerEcho {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// What a [`PeerEcho`] answered.
#[derive(Debug, Clone, Copy)]
pub struct Answer {
    /// The client address the server saw.
    pub peer: SocketAddr,
    /// The server's own address (TCP: the connection's local address; UDP: the bound one).
    pub server: SocketAddr,
}

/// One attempt from `netns` to `dst`: what the server answered.
pub fn ask(
    netns: &str,
    proto: Proto,
    dst: SocketAddr,
    timeout: Duration,
) -> std::io::Result<Answer> {
    let answer = in_netns(netns, move || match proto {
        Proto::Tcp => {
            let mut conn = TcpStream::connect_timeout(&dst, timeout)?;
            conn.set_read_timeout(Some(timeout))?;
            let mut text = String::new();
            conn.read_to_string(&mut text)?;
            Ok(text)
        }
        Proto::Udp => {
            let socket = UdpSocket::bind("0.0.0.0:0")?;
            socket.set_read_timeout(Some(timeout))?;
            socket.send_to(b"who am i", dst)?;
            let mut buf = [0u8; 512];
            let (n, _) = socket.recv_from(&mut buf)?;
            Ok(String::from_utf8_lossy(&buf[..n]).into_owned())
        }
    })?;
    let mut words = answer.split_whitespace().map(str::parse::<SocketAddr>);
    match (words.next(), words.next()) {
        (Some(Ok(peer)), Some(Ok(server))) => Ok(Answer { peer, server }),
        _ => Err(std::io::Error::new(
            ErrorKind::InvalidData,
            format!("unexpected answer {answer:?}"),
        )),
    }
}

/// Asks until an answer comes or `within` passes (the first packets may race flow installation);
/// returns the answer and the latency of the successful attempt, or the last error.
pub fn ask_until(
    netns: &str,
    proto: Proto,
    dst: SocketAddr,
    within: Duration,
) -> Result<(Answer, Duration), std::io::Error> {
    let start = std::time::Instant::now();
    loop {
        let attempt = std::time::Instant::now();
        match ask(netns, proto, dst, Duration::from_secs(2)) {
            Ok(answer) => return Ok((answer, attempt.elapsed())),
            Err(e) if start.elapsed() >= within => return Err(e),
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}
