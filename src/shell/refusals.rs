//! What the operator learns when the database refuses writes: each abandoned turn is logged
//! and counted where it happens (`resilient_turn`); this module keeps the refusal episode (how
//! many turns, from when to when, why) in memory and, on the first turn whose writes work
//! again, queues one WARNING alert about it through the outbox, so it reaches the alert sink.
//! The alert is the first write of that turn: if it is refused too, the episode goes on.
//! A database that keeps failing now and then (a dying SD card) must not page the operator
//! every few turns: after one report, refusals are gathered for `REPORT_INTERVAL_MS` and the
//! next report covers them all.

use std::path::Path;

use tracing::info;

use super::Agent;
use crate::core::domain::Millis;
use crate::core::trade::{Alert, Severity};
use crate::store;

/// Shortest time between two refusal reports; refusals in between join the next one.
pub const REPORT_INTERVAL_MS: Millis = 60 * 60 * 1000;

/// Refused turns not yet reported: one run of consecutive ones, or several gathered while a
/// report was recent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub turns: u32,
    /// Wall time of the first and the last refused turn.
    pub first_ms: Millis,
    pub last_ms: Millis,
    /// Causes seen (`busy`, `full`, `io`, `corrupt`, `other`), in the order first seen.
    pub causes: Vec<&'static str>,
}

impl Refusal {
    pub fn new(now_ms: Millis) -> Refusal {
        Refusal {
            turns: 0,
            first_ms: now_ms,
            last_ms: now_ms,
            causes: Vec::new(),
        }
    }

    pub fn record(&mut self, cause: &'static str, now_ms: Millis) {
        self.turns = self.turns.saturating_add(1);
        self.last_ms = now_ms;
        if !self.causes.contains(&cause) {
            self.causes.push(cause);
        }
    }

    /// The alert about this episode; its key names the episode, so it is queued once.
    pub fn alert(&self, database: &Path) -> Alert {
        let turns = if self.turns == 1 { "turn" } else { "turns" };
        Alert {
            severity: Severity::Warning,
            key: format!("store-refused-{}", self.first_ms),
            text: format!(
                "DATABASE REFUSED WRITES for {} loop {turns} from {} to {} (cause: {}) on {}: each of those turns was abandoned and the open trades were read back from the exchange before going on; writes work again now (refusals within an hour of this report join the next one). Operator: check the free space of the database's filesystem (df), the database file's and its directory's owner and permissions, and whether another process holds the database (fuser or lsof on it); fillguard exits for its supervisor after {} refused turns in a row",
                self.turns,
                utc_text(self.first_ms),
                utc_text(self.last_ms),
                self.causes.join(", "),
                database.display(),
                super::STORE_FAILURES_MAX,
            ),
        }
    }
}

impl Agent {
    /// The first write of a turn after refused ones: the episode's alert. Refused again, the
    /// turn is abandoned like any other.
    pub(super) fn report_refusal(&mut self) -> anyhow::Result<()> {
        let Some(refusal) = &self.refusal else {
            return Ok(());
        };
        let wall_now = self.wall.now_ms();
        let recent = self
            .refusal_reported_ms
            .is_some_and(|reported| wall_now.saturating_sub(reported) < REPORT_INTERVAL_MS);
        if recent {
            return Ok(());
        }
        let alert = refusal.alert(&self.config.store.path);
        // The audit row leaves the path out: the simulation compares event logs across runs.
        let detail = format!(
            "writes refused for {} turns from {} to {} (cause: {})",
            refusal.turns,
            utc_text(refusal.first_ms),
            utc_text(refusal.last_ms),
            refusal.causes.join(", ")
        );
        let now = self.clock.now_ms();
        self.store.transaction(|conn| {
            store::enqueue_alert(conn, &alert, None, None, now)?;
            store::record_event(conn, now, None, None, "store", &detail)
        })?;
        info!(
            turns = refusal.turns,
            causes = %refusal.causes.join(","),
            "database accepts writes again; the refusal is reported"
        );
        self.refusal = None;
        self.refusal_reported_ms = Some(wall_now);
        Ok(())
    }
}

/// `YYYY-MM-DD HH:MM:SS UTC` of a Unix time in milliseconds.
pub fn utc_text(unix_ms: Millis) -> String {
    let seconds = unix_ms.div_euclid(1000);
    let (days, second_of_day) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    let (year, month, day) = crate::core::clock::civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        second_of_day / 3600,
        second_of_day % 3600 / 60,
        second_of_day % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_text_matches_known_dates() {
        assert_eq!(utc_text(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc_text(951_782_400_000), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc_text(1_760_000_000_999), "2025-10-09 08:53:20 UTC");
        assert_eq!(utc_text(4_102_444_799_000), "2099-12-31 23:59:59 UTC");
    }

    #[test]
    fn an_episode_counts_its_turns_and_names_each_cause_once() {
        let mut refusal = Refusal::new(1_760_000_000_000);
        refusal.record("busy", 1_760_000_000_000);
        refusal.record("full", 1_760_000_001_000);
        refusal.record("busy", 1_760_000_003_000);
        assert_eq!(refusal.turns, 3);
        assert_eq!(refusal.causes, ["busy", "full"]);
        let alert = refusal.alert(Path::new("/var/lib/fillguard/fillguard.db"));
        assert_eq!(alert.severity, Severity::Warning);
        assert_eq!(alert.key, "store-refused-1760000000000");
        for needle in [
            "for 3 loop turns from 2025-10-09 08:53:20 UTC to 2025-10-09 08:53:23 UTC",
            "cause: busy, full",
            "/var/lib/fillguard/fillguard.db",
            "df",
            "permissions",
            "another process",
        ] {
            assert!(alert.text.contains(needle), "{needle}: {}", alert.text);
        }
    }
}
