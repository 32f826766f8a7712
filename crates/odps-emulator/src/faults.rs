//! Fault injection for writer retry tests: a share of block uploads and
//! commits fail with a retryable 500 error, every one can be delayed, and a
//! share can stall (hang for a long time before being handled, as a
//! congested service does; a client may give up or be killed meanwhile).
//! The draw is a seeded generator, so a test run is repeatable. A crash point
//! kills the process in the middle of a commit, for the atomicity tests. A
//! switch file fails every commit while it exists, for outages a test starts
//! and ends at will.

use std::sync::Mutex;
use std::time::Duration;

use crate::error::OdpsError;

/// What to inject.
#[derive(Clone, Debug, Default)]
pub struct FaultConfig {
    /// Share (0.0..=1.0) of block uploads that fail before their data is kept.
    pub fail_block_rate: f64,
    /// Share (0.0..=1.0) of commits that fail before anything is published.
    pub fail_commit_rate: f64,
    /// Delay before each block upload and commit is handled.
    pub delay: Duration,
    /// Share (0.0..=1.0) of block uploads and commits that stall for
    /// [`FaultConfig::stall`] before being handled (then maybe failed).
    pub stall_rate: f64,
    /// How long a stalled operation hangs.
    pub stall: Duration,
    /// Seed of the generator.
    pub seed: u64,
    /// Abort the process when a commit reaches this point.
    pub crash_at: Option<CrashPoint>,
    /// Every commit fails (retryable, before publishing) while this file exists.
    pub fail_commits_while: Option<std::path::PathBuf>,
}

/// A point inside a commit where [`FaultConfig::crash_at`] aborts the process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrashPoint {
    /// The first staged block has been moved into the data directory.
    AfterFirstBlock,
    /// Every block is moved and the new manifest is on disk under its
    /// temporary name, not yet renamed.
    BeforeManifest,
    /// The new manifest is published; the session is not yet marked committed.
    AfterManifest,
}

impl CrashPoint {
    /// Every point with its command-line name.
    pub const ALL: [(Self, &'static str); 3] = [
        (Self::AfterFirstBlock, "commit-after-first-block"),
        (Self::BeforeManifest, "commit-before-manifest"),
        (Self::AfterManifest, "commit-after-manifest"),
    ];
}

impl std::str::FromStr for CrashPoint {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .iter()
            .find(|(_, name)| *name == s)
            .map(|(point, _)| *point)
            .ok_or_else(|| {
                let names: Vec<&str> = Self::ALL.iter().map(|(_, n)| *n).collect();
                format!("unknown crash point {s:?} (one of {})", names.join(", "))
            })
    }
}

/// The injector shared by all requests.
#[derive(Debug)]
pub struct Faults {
    config: FaultConfig,
    state: Mutex<u64>,
}

/// The faults drawn for one operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Injected {
    stall: bool,
    fail: bool,
}

/// Which operation a fault hits.
#[derive(Clone, Copy, Debug)]
pub enum Operation {
    /// A block upload.
    Block,
    /// A session commit.
    Commit,
}

impl Faults {
    /// An injector for a configuration.
    pub fn new(config: FaultConfig) -> Self {
        let seed = config.seed | 1;
        Self {
            config,
            state: Mutex::new(seed),
        }
    }

    /// Waits the configured delay (and the stall, when this operation is
    /// drawn to stall), then maybe fails the operation.
    pub async fn before(&self, op: Operation) -> Result<(), OdpsError> {
        let injected = self.draw(op);
        let wait = self.config.delay
            + if injected.stall {
                self.config.stall
            } else {
                Duration::ZERO
            };
        if injected.stall {
            tracing::info!(?op, stall = ?self.config.stall, "stalling on purpose");
        }
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        let switched_on = matches!(op, Operation::Commit)
            && self
                .config
                .fail_commits_while
                .as_ref()
                .is_some_and(|p| p.exists());
        if switched_on {
            tracing::info!(?op, "failing a commit while the fault switch file exists");
            return Err(OdpsError::new(
                500,
                "InternalServerError",
                "ODPS-0010000:System internal error - commits are switched off (fault switch file)",
            ));
        }
        if injected.fail {
            tracing::info!(?op, "injecting a fault");
            return Err(OdpsError::new(
                500,
                "InternalServerError",
                format!("ODPS-0010000:System internal error - injected fault ({op:?})"),
            ));
        }
        Ok(())
    }

    /// What to inject into the next `op`: one draw per configured fault
    /// kind, so a configuration without stalls sees the same failures as
    /// before stalls existed.
    fn draw(&self, op: Operation) -> Injected {
        let stall = self.config.stall_rate > 0.0 && self.next_unit() < self.config.stall_rate;
        let rate = match op {
            Operation::Block => self.config.fail_block_rate,
            Operation::Commit => self.config.fail_commit_rate,
        };
        let fail = rate > 0.0 && self.next_unit() < rate;
        Injected { stall, fail }
    }

    /// Aborts the process if the configuration asks for a crash here (a
    /// test hook: never set outside crash tests).
    pub fn crash_point(&self, point: CrashPoint) {
        if self.config.crash_at == Some(point) {
            tracing::error!(?point, "crashing on purpose");
            std::process::abort();
        }
    }

    /// xorshift64*: a uniform draw in [0, 1).
    fn next_unit(&self) -> f64 {
        let mut state = match self.state.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        let mut x = *state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        *state = x;
        (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn fails_about_the_configured_share() {
        let faults = Faults::new(FaultConfig {
            fail_block_rate: 0.3,
            seed: 7,
            ..Default::default()
        });
        let mut failed = 0;
        for _ in 0..1000 {
            if faults.before(Operation::Block).await.is_err() {
                failed += 1;
            }
            assert!(faults.before(Operation::Commit).await.is_ok());
        }
        assert!((200..400).contains(&failed), "{failed}");
    }

    #[test]
    fn stalls_about_the_configured_share_of_both_operations() {
        let faults = Faults::new(FaultConfig {
            stall_rate: 0.2,
            stall: Duration::from_secs(30),
            seed: 3,
            ..Default::default()
        });
        let (mut blocks, mut commits) = (0, 0);
        for _ in 0..1000 {
            blocks += usize::from(faults.draw(Operation::Block).stall);
            commits += usize::from(faults.draw(Operation::Commit).stall);
            assert!(!faults.draw(Operation::Block).fail, "no failure configured");
        }
        assert!((120..280).contains(&blocks), "{blocks}");
        assert!((120..280).contains(&commits), "{commits}");
    }

    #[tokio::test]
    async fn a_drawn_stall_holds_the_operation_back() {
        let faults = Faults::new(FaultConfig {
            stall_rate: 1.0,
            stall: Duration::from_millis(40),
            ..Default::default()
        });
        let started = std::time::Instant::now();
        faults.before(Operation::Block).await.unwrap();
        assert!(started.elapsed() >= Duration::from_millis(40));
    }

    #[tokio::test]
    async fn commits_fail_while_the_switch_file_exists() {
        let dir = tempfile::tempdir().expect("tempdir");
        let switch = dir.path().join("fail-commits");
        let faults = Faults::new(FaultConfig {
            fail_commits_while: Some(switch.clone()),
            ..Default::default()
        });
        assert!(faults.before(Operation::Commit).await.is_ok());
        std::fs::write(&switch, b"").expect("switch on");
        assert!(faults.before(Operation::Commit).await.is_err());
        assert!(
            faults.before(Operation::Block).await.is_ok(),
            "blocks still pass"
        );
        std::fs::remove_file(&switch).expect("switch off");
        assert!(faults.before(Operation::Commit).await.is_ok());
    }

    #[tokio::test]
    async fn delays_before_the_operation() {
        let faults = Faults::new(FaultConfig {
            delay: Duration::from_millis(30),
            ..Default::default()
        });
        let started = std::time::Instant::now();
        faults.before(Operation::Commit).await.unwrap();
        assert!(started.elapsed() >= Duration::from_millis(30));
    }
}
