//! Small helpers of tests that drive `sync-cli` as a process: a free port
//! for `[monitor] listen`, polling for a condition, one plain HTTP GET,
//! reading numbers out of the Prometheus text, and timing how long a server
//! keeps a client that stalls in its request head.
//!
//! ```
//! use std::time::Duration;
//! let port = sync_testkit::probe::free_port();
//! assert!(port > 0);
//! let mut n = 0;
//! sync_testkit::probe::wait_until("n to reach 3", Duration::from_secs(5), || {
//!     n += 1;
//!     n == 3
//! });
//! let text = "sync_retries_total{kind=\"connection\"} 4\nsync_failed 0\n";
//! assert_eq!(sync_testkit::probe::metric(text, "sync_retries_total{kind=\"connection\"}"), Some(4.0));
//! ```

use std::io::{Read as _, Write as _};
use std::time::{Duration, Instant};

/// A loopback TCP port nobody listens on right now (the kernel's pick).
#[allow(clippy::panic)]
pub fn free_port() -> u16 {
    match std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()) {
        Ok(a) => a.port(),
        Err(e) => panic!("no free TCP port on 127.0.0.1: {e}"),
    }
}

/// Polls `ready` every 100 ms until it holds; panics naming `what` after
/// `timeout` (a test helper: a timeout fails the test).
#[allow(clippy::panic)]
pub fn wait_until(what: &str, timeout: Duration, mut ready: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !ready() {
        if t0.elapsed() > timeout {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `GET path` from `127.0.0.1:port`: the whole response (status line,
/// headers, body), or `None` when nobody answers.
pub fn http_get(port: u16, path: &str) -> Option<String> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

/// The value of the sample `name` (with its labels, as rendered) in a
/// Prometheus text exposition.
pub fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

/// Sends `partial` (an unfinished request head) to `addr`, then waits up to
/// 10 s for the server to close the connection; returns how long that took
/// (`None` when it never did). Blocking: call it from `spawn_blocking` when
/// the server runs on the same async runtime.
pub fn stalled_head_closed_after(addr: std::net::SocketAddr, partial: &[u8]) -> Option<Duration> {
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    s.write_all(partial).ok()?;
    let start = Instant::now();
    let mut sink = Vec::new();
    match s.read_to_end(&mut sink) {
        // EOF or a reset both mean the server let go.
        Ok(_) => Some(start.elapsed()),
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => Some(start.elapsed()),
        Err(_) => None,
    }
}
