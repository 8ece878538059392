//! Validation of `[loop]`: how often signals are checked and the time budget of one loop turn
//! (DESIGN §1), which every exchange request and retry draws from and from which the unit
//! file's `WatchdogSec=` is derived (`venue::cryptocom::longest_unit`). The budget must let the
//! longest call that is repeated whole make progress at `venue.timeout_seconds`.

use std::time::Duration;

use super::defaults;
use super::raw::RawLoop;
use super::validate::{Check, LOOP_INTERVAL_MAX, LOOP_INTERVAL_MIN};
use super::{ConfigError, LoopConfig};
use crate::venue::cryptocom::turn_budget_min;

pub(crate) const TURN_BUDGET_MIN: Duration = Duration::from_secs(2);
pub(crate) const TURN_BUDGET_MAX: Duration = Duration::from_secs(600);
pub(crate) const TURN_BUDGET_DEFAULT: Duration = Duration::from_secs(60);
const _: () = assert!(TURN_BUDGET_MIN.as_nanos() <= TURN_BUDGET_DEFAULT.as_nanos());
const _: () = assert!(TURN_BUDGET_DEFAULT.as_nanos() <= TURN_BUDGET_MAX.as_nanos());

pub(super) const TURN_BUDGET_KEY: &str = "loop.turn_budget_seconds";

pub(super) fn loop_config(
    c: &Check<'_>,
    raw: &RawLoop,
    venue_timeout: Duration,
) -> Result<LoopConfig, ConfigError> {
    let interval = c.seconds(
        "loop.interval_seconds",
        raw.interval_seconds,
        LOOP_INTERVAL_MIN,
        LOOP_INTERVAL_MAX,
    )?;
    let turn_budget = c.seconds(
        TURN_BUDGET_KEY,
        raw.turn_budget_seconds,
        TURN_BUDGET_MIN,
        TURN_BUDGET_MAX,
    )?;
    let needed = turn_budget_min(venue_timeout);
    if turn_budget < needed {
        let reason = format!(
            "must be at least {} seconds at venue.timeout_seconds = {}: two requests, each \
             with its whole timeout and 1 s of rate-limit wait, must fit in one turn",
            defaults::seconds(needed),
            defaults::seconds(venue_timeout)
        );
        return Err(c.invalid(TURN_BUDGET_KEY, &defaults::seconds(turn_budget), &reason));
    }
    Ok(LoopConfig {
        interval,
        turn_budget,
    })
}
