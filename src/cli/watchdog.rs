//! The start-up check of the supervisor's watchdog interval against the longest unit of work
//! between two pings: said once, as a warning naming what to change; it never stops the agent
//! and decides nothing about trading.
//!
//! The agent pings at most every half interval (`telemetry::sd_notify`), so the last ping
//! before a unit of work may be almost half an interval old when the unit starts: the longest
//! gap between two pings is half the interval plus the longest unit. The interval must
//! therefore be at least twice the longest unit.
//!
//! The same unit bounds how long a stop takes (the agent finishes its current unit on
//! SIGTERM), but systemd does not tell a service its stop timeout (`TimeoutStopSec=`; no
//! environment variable carries it), so that bound is documented in the unit file instead of
//! checked here.

use std::time::Duration;

use crate::config::{Config, VenueKind};

/// The shortest watchdog interval under which a healthy agent is never killed while one unit of
/// work of `longest` runs: twice it, since pings go out at most every half interval.
pub(super) fn watchdog_minimum(longest: Duration) -> Duration {
    longest.saturating_mul(2)
}

/// Whether `watchdog` may kill a healthy agent whose longest unit of work is `longest`.
pub(super) fn watchdog_too_short(watchdog: Duration, longest: Duration) -> bool {
    watchdog < watchdog_minimum(longest)
}

/// Warns once when the supervisor's watchdog (`WATCHDOG_USEC`) is too short for the
/// Crypto.com venue's longest unit of work at the configured budget and timeout
/// (`venue::cryptocom::longest_unit`), saying which keys to change.
pub(super) fn warn_if_too_short(config: &Config, watchdog: Option<Duration>) {
    let Some(watchdog) = watchdog else {
        return;
    };
    if config.venue.kind != VenueKind::CryptoCom {
        return;
    }
    let longest =
        crate::venue::cryptocom::longest_unit(config.loop_.turn_budget, config.venue.timeout);
    if watchdog_too_short(watchdog, longest) {
        tracing::warn!(
            watchdog_seconds = watchdog.as_secs_f64(),
            watchdog_min_seconds = watchdog_minimum(longest).as_secs_f64(),
            longest_unit_seconds = longest.as_secs_f64(),
            turn_budget_seconds = config.loop_.turn_budget.as_secs_f64(),
            timeout_seconds = config.venue.timeout.as_secs_f64(),
            "the watchdog interval (WatchdogSec) is shorter than twice the longest unit of work against a slow exchange (the turn budget plus one request; pings go out at most every half interval), so systemd may kill a healthy agent: raise WatchdogSec= to at least watchdog_min_seconds, or lower loop.turn_budget_seconds or venue.timeout_seconds"
        );
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{watchdog_minimum, watchdog_too_short};
    use crate::venue::cryptocom::longest_unit;

    #[test]
    fn the_watchdog_must_cover_half_an_interval_plus_the_longest_unit() {
        // The defaults: a 60 s budget and 10 s requests give a 71 s unit, so 142 s at least.
        let longest = longest_unit(Duration::from_secs(60), Duration::from_secs(10));
        assert_eq!(longest, Duration::from_secs(71));
        assert_eq!(watchdog_minimum(longest), Duration::from_secs(142));
        // The unit file's 3 minutes pass.
        assert!(!watchdog_too_short(Duration::from_secs(180), longest));
        assert!(!watchdog_too_short(Duration::from_secs(142), longest));
        // Longer than one unit but shorter than two: a ping throttled just before the unit
        // leaves a gap of up to 50 s + 71 s = 121 s > 100 s, so this warns too.
        assert!(watchdog_too_short(Duration::from_secs(100), longest));
        assert!(watchdog_too_short(
            Duration::from_secs(142) - Duration::from_millis(1),
            longest
        ));
        assert!(watchdog_too_short(Duration::from_secs(60), longest));
        // A smaller budget and timeout need less.
        let short = longest_unit(Duration::from_secs(6), Duration::from_secs(2));
        assert_eq!(watchdog_minimum(short), Duration::from_secs(18));
        assert!(!watchdog_too_short(Duration::from_secs(20), short));
        assert!(watchdog_too_short(Duration::from_secs(17), short));
    }

    /// A `KEY=` duration of the agent's unit, in seconds or minutes as it writes them.
    fn unit_duration(key: &str) -> Duration {
        let unit = include_str!("../../systemd/fillguard.service");
        let value = unit
            .lines()
            .find_map(|line| line.strip_prefix(key))
            .unwrap_or_else(|| panic!("{key} in the unit"))
            .trim();
        let seconds = match value.strip_suffix("min") {
            Some(minutes) => minutes.parse::<u64>().unwrap() * 60,
            None => value.trim_end_matches('s').parse::<u64>().unwrap(),
        };
        Duration::from_secs(seconds)
    }

    /// The unit's watchdog passes the start-up check at the defaults, and its stop timeout,
    /// which the agent cannot see, covers the unit a stop waits for.
    #[test]
    fn the_units_watchdog_and_stop_timeout_cover_the_longest_unit_at_the_defaults() {
        use crate::config::{TURN_BUDGET_DEFAULT, VENUE_TIMEOUT_DEFAULT};
        let longest = longest_unit(TURN_BUDGET_DEFAULT, VENUE_TIMEOUT_DEFAULT);
        let watchdog = unit_duration("WatchdogSec=");
        assert!(!watchdog_too_short(watchdog, longest), "{watchdog:?}");
        let stop = unit_duration("TimeoutStopSec=");
        assert!(
            stop > longest,
            "TimeoutStopSec {stop:?} against {longest:?}"
        );
    }
}
