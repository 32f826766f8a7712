//! Peak memory of processes, for tests and benches that state a memory bound.

use std::process::{Child, Command, ExitStatus};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
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

impl Measured {
    /// The peak resident set size in MB (10^6 bytes).
    pub fn peak_mb(&self) -> f64 {
        self.peak_rss as f64 / 1e6
    }
}

/// Spawns `cmd` and waits for it, sampling its peak memory.
pub fn measure(cmd: &mut Command) -> Measured {
    Watched::spawn(cmd).wait()
}

/// A running child whose peak memory a thread samples every 20 ms.
pub struct Watched {
    child: Child,
    started: Instant,
    peak: Arc<AtomicU64>,
    done: Arc<AtomicBool>,
    sampler: Option<std::thread::JoinHandle<()>>,
}

impl Watched {
    /// Spawns `cmd`.
    pub fn spawn(cmd: &mut Command) -> Self {
        let started = Instant::now();
        let child = cmd.spawn().expect("spawn");
        let status_file = format!("/proc/{}/status", child.id());
        let peak = Arc::new(AtomicU64::new(0));
        let done = Arc::new(AtomicBool::new(false));
        let sampler = {
            let (peak, done) = (peak.clone(), done.clone());
            std::thread::spawn(move || {
                while !done.load(Ordering::Relaxed) {
                    if let Ok(text) = std::fs::read_to_string(&status_file) {
                        peak.fetch_max(vm_hwm(&text), Ordering::Relaxed);
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            })
        };
        Self {
            child,
            started,
            peak,
            done,
            sampler: Some(sampler),
        }
    }

    /// Its process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// The child's stdout, when it was piped.
    pub fn take_stdout(&mut self) -> Option<std::process::ChildStdout> {
        self.child.stdout.take()
    }

    /// The peak memory sampled so far, in bytes.
    pub fn peak_rss(&self) -> u64 {
        self.peak.load(Ordering::Relaxed)
    }

    /// Whether it has exited (and how).
    pub fn try_status(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().expect("wait")
    }

    /// Waits for it to exit by itself.
    pub fn wait(mut self) -> Measured {
        let status = self.child.wait().expect("wait");
        self.finish(status)
    }

    /// Asks it to stop (SIGTERM) and waits.
    pub fn terminate(mut self) -> Measured {
        // Sample once more: VmHWM is gone once the process has exited.
        if let Ok(text) = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())) {
            self.peak.fetch_max(vm_hwm(&text), Ordering::Relaxed);
        }
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let status = self.child.wait().expect("wait");
        self.finish(status)
    }

    fn finish(&mut self, status: ExitStatus) -> Measured {
        let elapsed = self.started.elapsed();
        self.done.store(true, Ordering::Relaxed);
        if let Some(t) = self.sampler.take() {
            let _ = t.join();
        }
        Measured {
            elapsed,
            status,
            peak_rss: self.peak.load(Ordering::Relaxed),
        }
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        // A bench that panics midway must not leave its child running.
        if self.sampler.is_some() {
            let _ = self.child.kill();
            let _ = self.child.wait();
            self.done.store(true, Ordering::Relaxed);
        }
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
