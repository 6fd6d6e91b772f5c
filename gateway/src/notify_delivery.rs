//! Notifications towards the operator's notification service (SPEC 10):
//! one task per process follows the log (transfers about a person become
//! notifications, `store/notifications.rs`), looks for consents about to
//! expire, and sends what is due from the durable outbox as CloudEvents 1.0
//! structured JSON, one `POST` each, to `[notify] webhook_url`.
//!
//! At least once: a row is marked sent only after the receiver answered
//! 2xx; a failure is tried again after an exponential back-off with jitter
//! (1 s, 2 s, 4 s, … up to `max_backoff_ms`), so a receiver that was down
//! gets everything once it is back. Rows are claimed with a lease (twice the
//! timeout and a second), so replicas share the work, and a process killed
//! mid-delivery leaves rows that another (or its restart) sends when the
//! lease runs out. The event's `id` is the notification's, stable across
//! attempts, so a receiver dedupes.
//!
//! The event names the person by `party`: the keyed pseudonym Bru's audit
//! records carry as `subject_ref` (HMAC-SHA256 of the person number under
//! `[keys] pseudonym_key`), which the operator, who holds the key, resolves.
//! Never the person number.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use consent_db::{Notification, NotificationKind, Timestamp};
use serde_json::Value;
use tokio::sync::watch;

use crate::app::App;
use crate::config::notify_section::NotifyConfig;

/// How often the task looks for work; records appended through this process
/// are followed on the next tick, others' within [`FOLLOW_EVERY`].
const TICK: Duration = Duration::from_millis(250);
const FOLLOW_EVERY: Duration = Duration::from_secs(2);
/// Log indexes one follower step covers: one `INSERT … SELECT` inside the
/// database, so a large window costs one short write transaction.
const FOLLOW_BATCH: u32 = 4096;
/// Consents about to expire are looked for this often.
const SWEEP_EVERY: Duration = Duration::from_secs(60);
/// "About to expire" (SPEC 10).
pub use portal::notify::EXPIRING_WITHIN;
/// Notifications claimed at once (sent concurrently).
const CLAIM_BATCH: u32 = 20;
/// The first retry's wait; each further one doubles.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);

/// The delivery side: its HTTP client and what it has done.
pub struct Deliverer {
    target: Option<Target>,
    /// Who holds a lease: one id per process.
    owner: String,
    delivered: AtomicU64,
    last_error: Mutex<Option<String>>,
}

struct Target {
    http: reqwest::Client,
    url: String,
    token: Option<String>,
    timeout: Duration,
    max_backoff: Duration,
}

impl Deliverer {
    pub fn new(config: &NotifyConfig) -> Result<Deliverer, String> {
        let target = match &config.webhook_url {
            None => None,
            Some(url) => {
                let mut builder = reqwest::Client::builder()
                    .connect_timeout(config.timeout)
                    .timeout(config.timeout)
                    // A redirect would send the event somewhere not configured.
                    .redirect(reqwest::redirect::Policy::none());
                if let Some(ca) = &config.ca_file {
                    let pem = std::fs::read(ca)
                        .map_err(|e| format!("notify: cannot read {}: {e}", ca.display()))?;
                    let cert = reqwest::Certificate::from_pem(&pem).map_err(|e| {
                        format!("notify: {} is not a PEM certificate: {e}", ca.display())
                    })?;
                    builder = builder.add_root_certificate(cert);
                }
                let token = config
                    .auth_token
                    .as_ref()
                    .map(|s| {
                        s.read_string()
                            .map_err(|e| format!("notify.auth_token: {e}"))
                    })
                    .transpose()?;
                Some(Target {
                    http: builder
                        .build()
                        .map_err(|e| format!("notify: HTTP client: {e}"))?,
                    url: url.clone(),
                    token,
                    timeout: config.timeout,
                    max_backoff: config.max_backoff,
                })
            }
        };
        Ok(Deliverer {
            target,
            owner: uuid::Uuid::new_v4().to_string(),
            delivered: AtomicU64::new(0),
            last_error: Mutex::new(None),
        })
    }

    /// Whether `[notify] webhook_url` is set.
    pub fn enabled(&self) -> bool {
        self.target.is_some()
    }

    /// Notifications this process delivered.
    pub fn delivered(&self) -> u64 {
        self.delivered.load(Ordering::Relaxed)
    }

    fn set_error(&self, error: Option<String>) {
        if let Ok(mut last) = self.last_error.lock() {
            *last = error;
        }
    }

    /// For `/readyz`: whether delivery fails now, and why (never a reason
    /// to be unready: the outbox keeps everything until it can be sent).
    pub fn detail(&self) -> Option<String> {
        self.target.as_ref()?;
        let last = self.last_error.lock().ok().and_then(|l| l.clone());
        Some(match last {
            None => "notifications: delivering\n".to_owned(),
            Some(e) => format!("notifications: failing ({e}); queued in the outbox, retried\n"),
        })
    }
}

/// The task: follow the log, look for expiring consents, deliver.
pub async fn run(app: Arc<App>, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut seen_records = u64::MAX;
    let mut followed_at: Option<Instant> = None;
    let mut swept_at: Option<Instant> = None;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => break,
        }
        let records = app.audit.stats().records;
        let follows = crate::pipeline::Stage::follows_log(&app.config, "notify");
        if follows
            && (records != seen_records || followed_at.is_none_or(|t| t.elapsed() >= FOLLOW_EVERY))
        {
            seen_records = records;
            followed_at = Some(Instant::now());
            follow(&app).await;
        }
        if swept_at.is_none_or(|t| t.elapsed() >= SWEEP_EVERY) {
            swept_at = Some(Instant::now());
            if let Err(e) = app
                .store
                .queue_expiring_consents(Timestamp::now(), EXPIRING_WITHIN, None)
                .await
            {
                tracing::warn!(error = %e, "notifications: looking for expiring consents failed");
            }
        }
        if app.notify.target.is_some() {
            deliver_due(&app).await;
        }
    }
}

/// The follower, until it has caught up with the log.
async fn follow(app: &App) {
    loop {
        match app.store.follow_log_for_notifications(FOLLOW_BATCH).await {
            Ok(n) if n as u64 == u64::from(FOLLOW_BATCH) => continue,
            Ok(_) => return,
            Err(e) => {
                tracing::warn!(error = %e, "notifications: following the log failed; retried");
                return;
            }
        }
    }
}

async fn deliver_due(app: &App) {
    let Some(target) = &app.notify.target else {
        return;
    };
    let now = Timestamp::now();
    let lease = target.timeout * 2 + Duration::from_secs(1);
    let until = now
        .as_datetime()
        .checked_add(time::Duration::try_from(lease).unwrap_or(time::Duration::MINUTE))
        .map_or(now, Timestamp::from_datetime);
    let claimed = match app
        .store
        .claim_notifications(&app.notify.owner, now, until, CLAIM_BATCH)
        .await
    {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "notifications: claiming from the outbox failed");
            return;
        }
    };
    futures_util::future::join_all(claimed.iter().map(|n| deliver_one(app, target, n))).await;
}

/// What happened to one notification.
enum Sent {
    Delivered,
    /// The citizen's settings leave it out, or it has no one to reach.
    Skipped,
    Failed(String),
}

async fn deliver_one(app: &App, target: &Target, n: &Notification) {
    let outcome = send(app, target, n).await;
    let owner = &app.notify.owner;
    let now = Timestamp::now();
    let result = match &outcome {
        Sent::Delivered => {
            app.notify.delivered.fetch_add(1, Ordering::Relaxed);
            app.notify.set_error(None);
            app.store
                .notification_done(&n.id, owner, false, now)
                .await
                .map(drop)
        }
        Sent::Skipped => app
            .store
            .notification_done(&n.id, owner, true, now)
            .await
            .map(drop),
        Sent::Failed(error) => {
            tracing::warn!(notification = %n.id, attempts = n.attempts + 1, %error, "notification not delivered; retried");
            app.notify.set_error(Some(error.clone()));
            let wait = backoff(n.attempts + 1, target.max_backoff);
            let retry_at = now
                .as_datetime()
                .checked_add(time::Duration::try_from(wait).unwrap_or(time::Duration::MINUTE))
                .map_or(now, Timestamp::from_datetime);
            app.store
                .notification_failed(&n.id, owner, retry_at, error)
                .await
        }
    };
    if let Err(e) = result {
        // The lease runs out and the row is sent again: at least once.
        tracing::warn!(notification = %n.id, error = %e, "notifications: could not mark the outbox row");
    }
}

async fn send(app: &App, target: &Target, n: &Notification) -> Sent {
    let party = match (&n.subject_ref, &n.consent_subject) {
        (Some(r), _) => r.clone(),
        (None, Some(person)) => app.keys.pseudonym.subject_ref(person),
        (None, None) => return Sent::Skipped,
    };
    match app.store.notification_settings(&party).await {
        Ok(settings) if !settings.wants(n.kind, n.decision) => return Sent::Skipped,
        Ok(_) => {}
        Err(e) => return Sent::Failed(format!("settings: {e}")),
    }
    let event = cloud_event(app, n, &party);
    let mut request = target
        .http
        .post(&target.url)
        .header(http::header::CONTENT_TYPE, "application/cloudevents+json")
        .body(event.to_string());
    if let Some(token) = &target.token {
        request = request.bearer_auth(token);
    }
    match request.send().await {
        Ok(r) if r.status().is_success() => Sent::Delivered,
        Ok(r) => Sent::Failed(format!("HTTP {}", r.status().as_u16())),
        // Not the error's text: it may quote the URL, which may carry a secret.
        Err(e) if e.is_timeout() => Sent::Failed("timeout".into()),
        Err(e) if e.is_connect() => Sent::Failed("cannot connect".into()),
        Err(_) => Sent::Failed("request failed".into()),
    }
}

/// The CloudEvents type of a notification.
pub fn event_type(n: &Notification) -> String {
    match n.kind {
        NotificationKind::Transfer => "no.bru.transfer".into(),
        NotificationKind::BreakGlass => "no.bru.break_glass".into(),
        NotificationKind::ConsentExpiring => "no.bru.consent.expiring".into(),
        NotificationKind::ConsentEvent => {
            format!("no.bru.consent.{}", n.event.as_deref().unwrap_or("changed"))
        }
    }
}

/// The event (CloudEvents 1.0, structured JSON): what the citizen's inbox
/// shows of it, and `party`.
pub fn cloud_event(app: &App, n: &Notification, party: &str) -> Value {
    let view = portal::notify::notification(&app.policy, n);
    let mut data = serde_json::to_value(&view).unwrap_or_else(|_| serde_json::json!({}));
    if let Some(obj) = data.as_object_mut() {
        obj.insert("party".into(), Value::String(party.to_owned()));
    }
    serde_json::json!({
        "specversion": "1.0",
        "id": n.id,
        "source": format!("{}/citizen/v1/notifications", app.config.public_url.trim_end_matches('/')),
        "type": event_type(n),
        "time": n.at.to_string(),
        "datacontenttype": "application/json",
        "data": data,
    })
}

/// The wait before attempt `attempt + 1`: 1 s doubling, at most `cap`, with
/// "equal jitter" (half fixed, half random), so replicas and notifications
/// that failed together do not retry in step.
fn backoff(attempt: u32, cap: Duration) -> Duration {
    let exp = FIRST_BACKOFF.saturating_mul(1u32 << attempt.saturating_sub(1).min(20));
    let full = exp.min(cap);
    let mut bytes = [0u8; 8];
    let random = match aws_lc_rs::rand::fill(&mut bytes) {
        Ok(()) => u64::from_le_bytes(bytes),
        Err(_) => 0,
    };
    let half = full / 2;
    let half_ms = u64::try_from(half.as_millis()).unwrap_or(u64::MAX).max(1);
    half + Duration::from_millis(random % half_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_cap_with_jitter() {
        let cap = Duration::from_secs(60);
        for attempt in 1..40 {
            let full = (FIRST_BACKOFF * (1u32 << (attempt - 1).min(20))).min(cap);
            let wait = backoff(attempt, cap);
            assert!(wait >= full / 2 && wait <= full, "{attempt}: {wait:?}");
        }
        assert!(backoff(30, cap) >= Duration::from_secs(30));
    }
}
