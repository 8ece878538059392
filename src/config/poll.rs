//! Validation of `[poll]`: how an entry's fill is polled (DESIGN §1, step 3) — the bounds
//! (`max_attempts`, `interval_seconds`, `deadline_seconds`), the schedule (`fixed`, the design
//! fillguard replaces, or `adaptive`) with the adaptive schedule's shape (`first_delay_seconds`,
//! `growth`), and the source (`detail`, or `open-then-history` as that design did). It only
//! checks and converts; the schedule itself is the core's (`core::trade::fill_poll_delay`).

use std::time::Duration;

use rust_decimal::Decimal;

use super::defaults;
use super::raw::{Num, RawPoll};
use super::validate::{
    Check, POLL_ATTEMPTS_MAX, POLL_ATTEMPTS_MIN, POLL_DEADLINE_MAX, POLL_INTERVAL_MAX,
    POLL_INTERVAL_MIN,
};
use super::{ConfigError, PollConfig};
use crate::core::trade::{
    POLL_FIRST_DELAY_DEFAULT_MS, POLL_GROWTH_DEFAULT_PERCENT, POLL_GROWTH_MAX_PERCENT,
    POLL_GROWTH_MIN_PERCENT, PollSchedule, PollSource,
};

pub(crate) const POLL_SCHEDULE_DEFAULT: &str = "adaptive";
pub(crate) const POLL_SOURCE_DEFAULT: &str = "detail";
pub(crate) const POLL_FIRST_DELAY_DEFAULT: Duration =
    Duration::from_millis(POLL_FIRST_DELAY_DEFAULT_MS as u64);
const _: () = assert!(POLL_FIRST_DELAY_DEFAULT_MS >= 0);
const _: () = assert!(POLL_FIRST_DELAY_DEFAULT.as_nanos() <= POLL_INTERVAL_MIN.as_nanos());

const SCHEDULE_KEY: &str = "poll.schedule";
const SOURCE_KEY: &str = "poll.source";
const FIRST_DELAY_KEY: &str = "poll.first_delay_seconds";
const GROWTH_KEY: &str = "poll.growth";

pub(crate) fn schedule_name(schedule: PollSchedule) -> &'static str {
    match schedule {
        PollSchedule::Fixed => "fixed",
        PollSchedule::Adaptive => "adaptive",
    }
}

pub(crate) fn source_name(source: PollSource) -> &'static str {
    match source {
        PollSource::Detail => "detail",
        PollSource::OpenThenHistory => "open-then-history",
    }
}

/// A growth in percent as the factor written in the configuration (150 → 1.5).
pub(crate) fn growth_num(percent: u32) -> Num {
    Num(Decimal::new(i64::from(percent), 2).normalize())
}

pub(crate) fn poll_growth_default() -> Num {
    growth_num(POLL_GROWTH_DEFAULT_PERCENT)
}

pub(super) fn poll_config(c: &Check<'_>, raw: &RawPoll) -> Result<PollConfig, ConfigError> {
    let max_attempts = c.count_u32(
        "poll.max_attempts",
        raw.max_attempts,
        POLL_ATTEMPTS_MIN,
        POLL_ATTEMPTS_MAX,
    )?;
    let interval = c.seconds(
        "poll.interval_seconds",
        raw.interval_seconds,
        POLL_INTERVAL_MIN,
        POLL_INTERVAL_MAX,
    )?;
    let deadline_key = "poll.deadline_seconds";
    let deadline = c.seconds(
        deadline_key,
        raw.deadline_seconds,
        POLL_INTERVAL_MIN,
        POLL_DEADLINE_MAX,
    )?;
    if deadline < interval {
        let interval_seconds = defaults::seconds(interval);
        let reason = format!("must be at least poll.interval_seconds = {interval_seconds}");
        return Err(c.invalid(deadline_key, &defaults::seconds(deadline), &reason));
    }
    let schedule = match c.text(SCHEDULE_KEY, raw.schedule.as_ref())? {
        "fixed" => PollSchedule::Fixed,
        "adaptive" => PollSchedule::Adaptive,
        other => {
            let reason = "must be fixed or adaptive";
            return Err(c.invalid(SCHEDULE_KEY, &format!("{other:?}"), reason));
        }
    };
    let source = match c.text(SOURCE_KEY, raw.source.as_ref())? {
        "detail" => PollSource::Detail,
        "open-then-history" => PollSource::OpenThenHistory,
        other => {
            let reason = "must be detail or open-then-history";
            return Err(c.invalid(SOURCE_KEY, &format!("{other:?}"), reason));
        }
    };
    let first_delay = c.seconds(
        FIRST_DELAY_KEY,
        raw.first_delay_seconds,
        Duration::ZERO,
        POLL_INTERVAL_MAX,
    )?;
    if first_delay > interval {
        let interval_seconds = defaults::seconds(interval);
        let reason = format!("must be at most poll.interval_seconds = {interval_seconds}");
        return Err(c.invalid(FIRST_DELAY_KEY, &defaults::seconds(first_delay), &reason));
    }
    Ok(PollConfig {
        max_attempts,
        interval,
        deadline,
        schedule,
        source,
        first_delay,
        growth_percent: growth_percent(c, raw.growth)?,
    })
}

/// `poll.growth`: a factor from 1 to 4 with at most two decimals, as a percentage.
fn growth_percent(c: &Check<'_>, value: Option<Num>) -> Result<u32, ConfigError> {
    let bounds = (
        Decimal::from(POLL_GROWTH_MIN_PERCENT) / Decimal::ONE_HUNDRED,
        Some(Decimal::from(POLL_GROWTH_MAX_PERCENT) / Decimal::ONE_HUNDRED),
    );
    let factor = c.decimal(GROWTH_KEY, value, bounds, false)?;
    let percent = factor * Decimal::ONE_HUNDRED;
    if !percent.fract().is_zero() {
        let reason = "must have at most two decimals, e.g. 1.5";
        return Err(c.invalid(GROWTH_KEY, &factor, reason));
    }
    u32::try_from(percent).map_err(|_| c.invalid(GROWTH_KEY, &factor, "must be between 1 and 4"))
}
