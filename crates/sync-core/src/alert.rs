//! Alerts: when the lag stays over a threshold, or the task fails.
//!
//! An alert is always a `WARN` log line (target `sync_core::alert`) and,
//! when a webhook is configured, an HTTP(S) `POST` of a small JSON object:
//!
//! ```json
//! {"alert": "lag", "state": "firing", "task": "shop", "lag_seconds": 93.5, "threshold_seconds": 60, "message": "…"}
//! ```
//!
//! `state` is `firing` when the condition starts to hold and `resolved`
//! when it stops; a condition that keeps holding does not repeat. A webhook
//! that cannot be reached is logged and never stops the task.

use crate::metrics::{Metrics, Snapshot};
use serde::Deserialize;
use std::time::Duration;

/// The `[alert]` section of the task file.
///
/// `Debug` shows the webhook only as `scheme://host[:port]`: its path and
/// query often hold the receiver's secret.
#[derive(Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AlertConfig {
    /// Fire when the lag is over this many seconds …
    #[serde(default = "default_lag_threshold")]
    pub lag_seconds: f64,
    /// … for at least this long.
    #[serde(default = "default_lag_for")]
    pub for_seconds: u64,
    /// Optional `http://` or `https://` URL to `POST` alerts to; any other
    /// scheme is refused when the task file is read.
    #[serde(default, deserialize_with = "webhook_url")]
    pub webhook: Option<String>,
}

impl std::fmt::Debug for AlertConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlertConfig")
            .field("lag_seconds", &self.lag_seconds)
            .field("for_seconds", &self.for_seconds)
            .field(
                "webhook",
                &self.webhook.as_deref().map(crate::webhook::redact),
            )
            .finish()
    }
}

/// `[alert] webhook`: an `http://` or `https://` URL, checked as it is read
/// (the error shows the URL only as `scheme://host[:port]`).
fn webhook_url<'de, D>(deserializer: D) -> Result<Option<String>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    let url = Option::<String>::deserialize(deserializer)?;
    if let Some(url) = &url {
        crate::webhook::validate(url).map_err(serde::de::Error::custom)?;
    }
    Ok(url)
}

impl Default for AlertConfig {
    fn default() -> Self {
        Self {
            lag_seconds: default_lag_threshold(),
            for_seconds: default_lag_for(),
            webhook: None,
        }
    }
}

fn default_lag_threshold() -> f64 {
    300.0
}
fn default_lag_for() -> u64 {
    60
}

/// One alert.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Alert {
    /// `lag` or `failed`.
    pub alert: &'static str,
    /// `firing` or `resolved`.
    pub state: &'static str,
    /// The task's name.
    pub task: String,
    /// The lag when it fired or resolved.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lag_seconds: Option<f64>,
    /// The configured threshold.
    pub threshold_seconds: f64,
    /// A sentence for people.
    pub message: String,
}

/// The alert state machine, fed one [`Snapshot`] at a time (pure: the
/// caller owns the clock, so tests need no waiting).
#[derive(Debug)]
pub struct AlertRules {
    cfg: AlertConfig,
    task: String,
    over_since: Option<Duration>,
    lag_firing: bool,
    failed_sent: bool,
}

impl AlertRules {
    /// Rules for the task named `task`.
    pub fn new(cfg: AlertConfig, task: impl Into<String>) -> Self {
        Self {
            cfg,
            task: task.into(),
            over_since: None,
            lag_firing: false,
            failed_sent: false,
        }
    }

    /// What changed at time `now` (any monotonic origin).
    pub fn observe(&mut self, snap: &Snapshot, now: Duration) -> Vec<Alert> {
        let mut out = Vec::new();
        let threshold = self.cfg.lag_seconds;
        let lag = snap.lag_seconds;
        let over = lag.is_some_and(|l| l > threshold);
        if over {
            let since = *self.over_since.get_or_insert(now);
            let held = now.saturating_sub(since);
            if !self.lag_firing && held >= Duration::from_secs(self.cfg.for_seconds) {
                self.lag_firing = true;
                out.push(self.alert(
                    "lag",
                    "firing",
                    lag,
                    format!(
                        "lag {:.1} s has been over {threshold} s for {} s",
                        lag.unwrap_or_default(),
                        held.as_secs()
                    ),
                ));
            }
        } else {
            self.over_since = None;
            if self.lag_firing {
                self.lag_firing = false;
                out.push(self.alert(
                    "lag",
                    "resolved",
                    lag,
                    format!("lag is back under {threshold} s"),
                ));
            }
        }
        if snap.failed && !self.failed_sent {
            self.failed_sent = true;
            out.push(self.alert(
                "failed",
                "firing",
                lag,
                "the task failed; see its log for the reason".to_owned(),
            ));
        }
        out
    }

    fn alert(
        &self,
        alert: &'static str,
        state: &'static str,
        lag: Option<f64>,
        message: String,
    ) -> Alert {
        Alert {
            alert,
            state,
            task: self.task.clone(),
            lag_seconds: lag,
            threshold_seconds: self.cfg.lag_seconds,
            message,
        }
    }
}

/// Watches `metrics` once a second and sends what [`AlertRules`] reports,
/// until the returned handle is aborted.
pub fn watch(cfg: AlertConfig, task: String, metrics: Metrics) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let webhook = cfg.webhook.clone();
        let mut rules = AlertRules::new(cfg, task);
        let start = tokio::time::Instant::now();
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tick.tick().await;
            for a in rules.observe(&metrics.snapshot(), start.elapsed()) {
                send(&a, webhook.as_deref()).await;
            }
        }
    })
}

/// Logs `alert` and posts it to `webhook` when there is one.
pub async fn send(alert: &Alert, webhook: Option<&str>) {
    tracing::warn!(
        target: "sync_core::alert",
        alert = alert.alert,
        state = alert.state,
        task = %alert.task,
        lag_seconds = alert.lag_seconds,
        "{}",
        alert.message
    );
    let Some(url) = webhook else { return };
    match serde_json::to_vec(alert) {
        Ok(body) => {
            if let Err(e) = crate::webhook::post_json(url, body).await {
                tracing::warn!(target: "sync_core::alert", webhook = %crate::webhook::redact(url), error = %e, "the alert webhook failed");
            }
        }
        Err(e) => tracing::warn!(error = %e, "an alert could not be encoded"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(lag: Option<f64>, failed: bool) -> Snapshot {
        Snapshot {
            lag_seconds: lag,
            failed,
            ..Snapshot::default()
        }
    }

    #[test]
    fn lag_fires_after_holding_and_resolves_once() {
        let cfg = AlertConfig {
            lag_seconds: 10.0,
            for_seconds: 5,
            webhook: None,
        };
        let mut r = AlertRules::new(cfg, "t");
        let s = Duration::from_secs;
        assert!(r.observe(&snap(Some(3.0), false), s(0)).is_empty());
        assert!(r.observe(&snap(Some(12.0), false), s(1)).is_empty());
        assert!(
            r.observe(&snap(Some(15.0), false), s(5)).is_empty(),
            "held 4 s"
        );
        let fired = r.observe(&snap(Some(15.0), false), s(6));
        assert_eq!(fired.len(), 1);
        assert_eq!((fired[0].alert, fired[0].state), ("lag", "firing"));
        assert!(
            r.observe(&snap(Some(20.0), false), s(7)).is_empty(),
            "no repeat"
        );
        let resolved = r.observe(&snap(Some(1.0), false), s(8));
        assert_eq!(resolved[0].state, "resolved");
        // A dip under the threshold restarts the hold time.
        assert!(r.observe(&snap(Some(11.0), false), s(9)).is_empty());
        assert!(r.observe(&snap(Some(9.0), false), s(12)).is_empty());
        assert!(r.observe(&snap(Some(11.0), false), s(13)).is_empty());
        assert!(r.observe(&snap(Some(11.0), false), s(17)).is_empty());
        assert_eq!(r.observe(&snap(Some(11.0), false), s(18)).len(), 1);
    }

    #[test]
    fn webhook_schemes_are_checked_at_load_and_debug_hides_the_path() {
        let cfg: AlertConfig = toml::from_str(
            "webhook = \"https://hooks.slack.com/services/T000/B000/XXXX?token=abc\"",
        )
        .expect("https");
        let shown = format!("{cfg:?}");
        assert!(shown.contains("\"https://hooks.slack.com\""), "{shown}");
        assert!(!shown.contains("XXXX") && !shown.contains("abc"), "{shown}");
        for bad in [
            "ftp://h/x",
            "file:///etc/passwd",
            "hooks.slack.com/x",
            "http://u:p@h/",
        ] {
            let err = toml::from_str::<AlertConfig>(&format!("webhook = \"{bad}\""))
                .expect_err(bad)
                .to_string();
            assert!(err.contains("expected http://"), "{bad}: {err}");
        }
        // Through the task file: the key and its line are named, the secret is not.
        let err = crate::taskfile::parse(
            "[source]\nurl = \"mysql://h\"\n[destination]\nkind = \"local\"\npath = \"w\"\n\
             [objects]\ninclude = [\"a.*\"]\n[sync]\ntypes = [\"schema\"]\nstate_dir = \"s\"\n\
             [alert]\nwebhook = \"gopher://h/T000/XXXX\"\n",
            "task.toml",
        )
        .expect_err("bad scheme");
        assert_eq!(err.line, 12, "{err}");
        assert!(!err.to_string().contains("XXXX"), "{err}");
        assert!(err.to_string().contains("https://"), "{err}");
    }

    #[test]
    fn failure_fires_once() {
        let mut r = AlertRules::new(AlertConfig::default(), "t");
        let a = r.observe(&snap(None, true), Duration::ZERO);
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].alert, "failed");
        let json = serde_json::to_string(&a[0]).expect("json");
        assert!(json.contains("\"state\":\"firing\"") && !json.contains("lag_seconds"));
        assert!(
            r.observe(&snap(None, true), Duration::from_secs(1))
                .is_empty()
        );
    }
}
