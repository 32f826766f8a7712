//! Peak memory of processes, for tests and benches that state a memory bound.

use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

/// What a child process cost: wall time, exit status and peak resident
/// memory (Linux `VmHWM`, sampled every 20 ms while it runs, so growth in
/// its last few milliseconds can be missed).
#[derive(Debug)]
pub struct Measured {
    /// Wall time from spawn to exit.
    pub elapsed: Duration,
    /// How it ended.
    pub status: ExitStatus,
    /// Peak resident set size in bytes (0 where /proc is unavailable).
    pub peak_rss: u64,
}

/// Spawns `cmd` and waits for it, sampling its peak memory.
pub fn measure(cmd: &mut Command) -> Measured {
    let t0 = Instant::now();
    let mut child: Child = cmd.spawn().expect("spawn");
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak_rss = 0;
    let status = loop {
        if let Ok(text) = std::fs::read_to_string(&status_file) {
            peak_rss = peak_rss.max(vm_hwm(&text));
        }
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Measured {
        elapsed: t0.elapsed(),
        status,
        peak_rss,
    }
}

/// `VmHWM` of a `/proc/PID/status` text, in bytes.
fn vm_hwm(status: &str) -> u64 {
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// Peak memory of this process so far (Linux `VmHWM`), in bytes.
pub fn own_peak_rss() -> u64 {
    std::fs::read_to_string("/proc/self/status").map_or(0, |s| vm_hwm(&s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vm_hwm_reads_kilobytes() {
        let status = "Name:\tx\nVmPeak:\t  9000 kB\nVmHWM:\t    1234 kB\nVmRSS:\t 1000 kB\n";
        assert_eq!(vm_hwm(status), 1234 * 1024);
        assert_eq!(vm_hwm("Name: x\n"), 0);
    }
}
