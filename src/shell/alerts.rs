//! The alert outbox's delivery. Every queued alert is written to the log once, when this
//! process first sees it (so the operator reading `journalctl` learns of it at once, whatever
//! happens to the channel), then leaves through one `AlertSink`: the log itself when nothing
//! else is configured, else Telegram. A sink gets a bounded number of attempts per loop turn
//! (Telegram: one), so a down or slow channel costs the loop at most one timeout per turn. A
//! failed attempt is recorded on the row (`mark_alert_failed`) with a growing delay; a passing
//! failure (timeout, no connection, 5xx, 429) also pauses the whole channel with its own
//! growing delay, so a silent Telegram costs one attempt per pause however many alerts are
//! due. Nothing is dropped, and the outbox lives in SQLite, so pending alerts survive a
//! restart (and are logged once more by the new process, which is when the operator wants to
//! see them again).
//! This module decides nothing about trading and never changes an alert's text in the store.

use std::time::Duration;

use tracing::{error, info, warn};

use super::{ALERTS_PER_TURN_MAX, Agent};
use crate::config::Config;
use crate::core::domain::Millis;
use crate::store::{self, AlertRow};
use crate::telemetry::telegram::{self, SendOutcome, TelegramClient};

/// First delay after a failed attempt; it doubles with every attempt up to `RETRY_DELAY_MAX`.
pub const RETRY_DELAY_MIN: Duration = Duration::from_secs(5);
pub const RETRY_DELAY_MAX: Duration = Duration::from_secs(600);
/// Delay after the channel refused the alert itself (a wrong token or chat): retrying sooner
/// cannot help before the operator fixes the configuration.
pub const REFUSED_DELAY: Duration = RETRY_DELAY_MAX;

/// Re-sends of one alert after attempts the channel did not confirm. Telegram has no
/// idempotency key, so a Telegram that delivers but answers too late would otherwise get the
/// alert again at every backoff, for ever; after this many the alert is given up (the message
/// most likely arrived, and the log and `last_error` say it may not have).
pub const UNCONFIRMED_RESENDS_MAX: u32 = 3;

/// How many newly queued alerts one loop turn writes to the log at most: more than a turn
/// delivers, so a CRITICAL queued behind a burst is logged, and so deliverable, in the same
/// turn.
const LOGGED_PER_TURN_MAX: usize = 10 * ALERTS_PER_TURN_MAX;

const _: () = assert!(RETRY_DELAY_MIN.as_millis() <= RETRY_DELAY_MAX.as_millis());

/// What one delivery attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    Sent,
    /// A passing failure: retried with backoff, not before `after` when the channel said so.
    Retry {
        after: Option<Duration>,
        error: String,
    },
    /// The channel refused the alert itself; `error` says what to fix. Retried slowly.
    Refused {
        error: String,
    },
    /// The request went out but its outcome is unknown (the channel may have delivered it):
    /// retried with backoff like a passing failure, at most `UNCONFIRMED_RESENDS_MAX` times.
    Unconfirmed {
        error: String,
    },
}

/// Where alerts leave to. Implementations make one bounded attempt per `deliver` call and never
/// retry by themselves.
pub trait AlertSink {
    /// Names the channel in log lines.
    fn name(&self) -> &'static str;
    /// Whether a delivery leaves the machine (and so cannot be taken back once made).
    fn external(&self) -> bool {
        true
    }
    /// How many alerts one loop turn may try to deliver.
    fn attempts_per_turn(&self) -> usize;
    fn deliver(&mut self, alert: &AlertRow) -> Delivery;
}

/// The log as the only channel: the line written when the alert was first seen is its
/// delivery.
pub struct LogSink;

impl AlertSink for LogSink {
    fn name(&self) -> &'static str {
        "log"
    }

    fn external(&self) -> bool {
        false
    }

    fn attempts_per_turn(&self) -> usize {
        ALERTS_PER_TURN_MAX
    }

    fn deliver(&mut self, _alert: &AlertRow) -> Delivery {
        Delivery::Sent
    }
}

/// Telegram through the Bot API: one `sendMessage` per loop turn at most.
pub struct TelegramSink {
    client: TelegramClient,
}

impl TelegramSink {
    pub fn new(client: TelegramClient) -> TelegramSink {
        TelegramSink { client }
    }
}

impl AlertSink for TelegramSink {
    fn name(&self) -> &'static str {
        "telegram"
    }

    fn attempts_per_turn(&self) -> usize {
        1
    }

    fn deliver(&mut self, alert: &AlertRow) -> Delivery {
        let text = telegram::fit(
            &phone_text(alert),
            telegram::MESSAGE_UNITS_MAX,
            alert.trade_id,
        );
        match self.client.send_message(&text) {
            SendOutcome::Sent => Delivery::Sent,
            SendOutcome::Retry { after, error } => Delivery::Retry { after, error },
            SendOutcome::Failed { description } => Delivery::Refused { error: description },
            SendOutcome::Unconfirmed { error } => Delivery::Unconfirmed { error },
        }
    }
}

/// The message as a phone shows it: the severity leads the first line, the alert's own text
/// (which names the symbol and what happened first) follows.
pub fn phone_text(alert: &AlertRow) -> String {
    let marker = match alert.severity.as_str() {
        "CRITICAL" => "🔴",
        "WARNING" => "🟠",
        _ => "🔵",
    };
    format!("{marker} {} {}", alert.severity, alert.text)
}

/// The outbox's state in a running agent: its sink, and how far the log has seen the queue.
pub(super) struct Outbox {
    sink: Box<dyn AlertSink>,
    /// Every unsent alert up to this id has been logged by this process.
    logged_through_id: i64,
    /// Delivery attempts left in this loop turn.
    attempts_left: usize,
    /// Whether this process has checked the schedule against its clock (`pull_forward`).
    schedule_checked: bool,
    /// No alert is offered to the sink before this: the channel itself failed in passing.
    paused_until_ms: Millis,
    /// Passing failures of the channel in a row, which set the pause's length.
    channel_failures: u32,
}

impl Outbox {
    /// Telegram when `alerts.telegram` is configured, else the log alone.
    pub(super) fn new(config: &Config) -> Outbox {
        let sink: Box<dyn AlertSink> = match &config.alerts.telegram {
            Some(telegram) => Box::new(TelegramSink::new(TelegramClient::new(
                &telegram.base_url,
                telegram.token.clone(),
                &telegram.chat_id,
                telegram::TIMEOUT,
            ))),
            None => Box::new(LogSink),
        };
        Outbox::with_sink(sink)
    }

    fn with_sink(sink: Box<dyn AlertSink>) -> Outbox {
        let attempts_left = sink.attempts_per_turn();
        Outbox {
            sink,
            logged_through_id: 0,
            attempts_left,
            schedule_checked: false,
            paused_until_ms: Millis::MIN,
            channel_failures: 0,
        }
    }

    /// A new loop turn: the sink's attempts are available again.
    pub(super) fn new_turn(&mut self) {
        self.attempts_left = self.sink.attempts_per_turn();
    }
}

impl Agent {
    /// Replaces the channel alerts leave through (the simulation's failing sink, a test's
    /// Telegram client with a short timeout).
    pub fn set_alert_sink(&mut self, sink: Box<dyn AlertSink>) {
        self.alerts = Outbox::with_sink(sink);
    }

    /// Logs the alerts queued since the last call, then spends this turn's delivery attempts
    /// on the due ones.
    pub(super) fn deliver_alerts(&mut self) -> anyhow::Result<()> {
        if !self.alerts.schedule_checked {
            self.pull_forward()?;
        }
        let fresh = store::unsent_alerts_after(
            self.store.conn(),
            self.alerts.logged_through_id,
            LOGGED_PER_TURN_MAX,
        )?;
        for alert in &fresh {
            log_alert(alert);
            self.alerts.logged_through_id = alert.id;
        }
        let now = self.clock.now_ms();
        let mut due = store::due_alerts(self.store.conn(), now, ALERTS_PER_TURN_MAX)?;
        // An alert is delivered only after the log has it. `due` comes in precedence order
        // (`store::due_alerts`: a CRITICAL goes ahead of all but much older alerts).
        due.retain(|alert| alert.id <= self.alerts.logged_through_id);
        let attempts = due.len().min(self.alerts.attempts_left);
        for alert in due.into_iter().take(attempts) {
            // While the channel is paused the alerts stay queued (and already logged).
            if now < self.alerts.paused_until_ms {
                break;
            }
            self.alerts.attempts_left -= 1;
            if self.alerts.sink.external() {
                self.claim(&alert, now)?;
            }
            let outcome = self.alerts.sink.deliver(&alert);
            self.record_delivery(&alert, outcome)?;
        }
        Ok(())
    }

    /// Once per process: an alert scheduled further ahead than the longest delay was scheduled
    /// by a clock that has since gone back (a restart reads the system clock anew); it is made
    /// due now instead of waiting out the step.
    fn pull_forward(&mut self) -> anyhow::Result<()> {
        let now = self.clock.now_ms();
        let latest = now + i64::try_from(RETRY_DELAY_MAX.as_millis()).unwrap_or(i64::MAX / 2);
        let pulled = self
            .store
            .transaction(|conn| store::pull_alerts_forward(conn, now, latest))?;
        if pulled > 0 {
            warn!(
                alerts = pulled,
                "alerts were scheduled beyond the longest retry delay (the clock went back); retrying them now"
            );
        }
        self.alerts.schedule_checked = true;
        Ok(())
    }

    /// Before a message leaves the machine its next attempt is pushed back by the retry
    /// delay: while the database refuses writes nothing is sent (a delivery that could not be
    /// recorded would go out again on every turn), and if only the outcome's write is lost,
    /// the alert goes out again after the delay, not at once.
    fn claim(&mut self, alert: &AlertRow, now: Millis) -> anyhow::Result<()> {
        let delay = i64::try_from(retry_delay(alert.attempts).as_millis()).unwrap_or(i64::MAX / 2);
        self.store
            .transaction(|conn| store::defer_alert(conn, alert.id, now + delay))?;
        Ok(())
    }

    /// Marks the attempt in the store, counts it and, for a channel other than the log, says
    /// how it went.
    fn record_delivery(&mut self, alert: &AlertRow, outcome: Delivery) -> anyhow::Result<()> {
        let now = self.clock.now_ms();
        let channel = self.alerts.sink.name();
        let attempt = alert.attempts + 1;
        let (error, delay) = match outcome {
            Delivery::Sent => {
                self.alerts.channel_failures = 0;
                self.alerts.paused_until_ms = Millis::MIN;
                self.store
                    .transaction(|conn| store::mark_alert_sent(conn, alert.id, now))?;
                count(alert, "sent");
                if channel != LogSink.name() {
                    info!(alert = %alert.key, severity = %alert.severity, channel, attempt,
                        "alert delivered");
                }
                return Ok(());
            }
            Delivery::Retry { after, error } => {
                let delay = retry_delay(alert.attempts).max(after.unwrap_or_default());
                let pause = self.pause_channel(now, after);
                warn!(alert = %alert.key, severity = %alert.severity, channel, attempt,
                    retry_in_seconds = delay.as_secs(), channel_paused_seconds = pause.as_secs(),
                    error = %error, "alert not delivered; retrying later");
                (error, delay)
            }
            Delivery::Unconfirmed { error } => return self.record_unconfirmed(alert, error, now),
            Delivery::Refused { error } => {
                error!(alert = %alert.key, severity = %alert.severity, channel, attempt,
                    retry_in_seconds = REFUSED_DELAY.as_secs(), error = %error,
                    "alert channel refused the alert; fix its configuration (the alert stays queued)");
                (error, REFUSED_DELAY)
            }
        };
        let next_at_ms = now + i64::try_from(delay.as_millis()).unwrap_or(i64::MAX / 2);
        self.store
            .transaction(|conn| store::mark_alert_failed(conn, alert.id, &error, next_at_ms))?;
        count(alert, "failed");
        Ok(())
    }
}

impl Agent {
    /// An attempt whose outcome is unknown: the channel is paused as after a passing failure,
    /// the first such attempt says at warn that the message may have arrived, and after
    /// `UNCONFIRMED_RESENDS_MAX` re-sends the alert is given up, at error level.
    fn record_unconfirmed(
        &mut self,
        alert: &AlertRow,
        error: String,
        now: Millis,
    ) -> anyhow::Result<()> {
        let channel = self.alerts.sink.name();
        let attempt = alert.attempts + 1;
        let pause = self.pause_channel(now, None);
        let delay = retry_delay(alert.attempts);
        let next_at_ms = now + millis(delay);
        let unconfirmed = self.store.transaction(|conn| {
            store::mark_alert_unconfirmed(conn, alert.id, &error, next_at_ms)
        })?;
        count(alert, "failed");
        if unconfirmed > UNCONFIRMED_RESENDS_MAX {
            let reason = format!(
                "given up after {unconfirmed} unconfirmed attempts: the message may have been delivered (or not); last: {error}"
            );
            self.store
                .transaction(|conn| store::give_up_alert(conn, alert.id, &reason, now))?;
            error!(alert = %alert.key, severity = %alert.severity, channel, attempt,
                error = %error,
                "alert given up after {unconfirmed} unconfirmed attempts; it may not have been delivered: check the chat, and `fillguard status --json` for the alert");
        } else if unconfirmed == 1 {
            warn!(alert = %alert.key, severity = %alert.severity, channel, attempt,
                retry_in_seconds = delay.as_secs(), channel_paused_seconds = pause.as_secs(),
                error = %error,
                "alert sent but not confirmed; it may have been delivered, and a retry may deliver it twice");
        } else {
            warn!(alert = %alert.key, severity = %alert.severity, channel, attempt,
                retry_in_seconds = delay.as_secs(), channel_paused_seconds = pause.as_secs(),
                error = %error, "alert not confirmed again; retrying later");
        }
        Ok(())
    }

    /// After a passing failure of the channel: no alert is offered to it for the channel's own
    /// retry delay (doubling per failure in a row, at least what the channel asked for).
    fn pause_channel(&mut self, now: Millis, after: Option<Duration>) -> Duration {
        let pause = retry_delay(self.alerts.channel_failures).max(after.unwrap_or_default());
        self.alerts.channel_failures = self.alerts.channel_failures.saturating_add(1);
        self.alerts.paused_until_ms = now + millis(pause);
        pause
    }
}

fn millis(duration: Duration) -> Millis {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX / 2)
}

/// `RETRY_DELAY_MIN` doubled per earlier attempt, at most `RETRY_DELAY_MAX`.
pub fn retry_delay(attempts_before: u32) -> Duration {
    let factor = 1_u32 << attempts_before.min(16);
    RETRY_DELAY_MIN.saturating_mul(factor).min(RETRY_DELAY_MAX)
}

fn count(alert: &AlertRow, outcome: &'static str) {
    metrics::counter!("fillguard_alerts_total", "severity" => alert.severity.clone(),
        "outcome" => outcome)
    .increment(1);
}

/// The alert's one log line, at its severity's level: one event per line, so its line breaks
/// become ` | `.
fn log_alert(alert: &AlertRow) {
    let text = alert.text.replace('\n', " | ");
    let symbol = alert.symbol.as_deref().unwrap_or("");
    match alert.severity.as_str() {
        "CRITICAL" => {
            error!(alert = %alert.key, severity = "CRITICAL", trade_id = alert.trade_id,
            symbol, "{text}")
        }
        "WARNING" => {
            warn!(alert = %alert.key, severity = "WARNING", trade_id = alert.trade_id,
            symbol, "{text}")
        }
        _ => info!(alert = %alert.key, severity = %alert.severity, "{text}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delays_double_from_five_seconds_to_ten_minutes() {
        let delays: Vec<u64> = (0..10).map(|n| retry_delay(n).as_secs()).collect();
        assert_eq!(delays, [5, 10, 20, 40, 80, 160, 320, 600, 600, 600]);
        assert_eq!(retry_delay(u32::MAX), RETRY_DELAY_MAX);
    }
}
