//! The clock as a trait, so the shell can run on the system clock, a faster paper clock or the
//! simulator's virtual clock. The core never holds a clock: it is given `now` by the shell.

use std::time::Duration;

use crate::core::domain::Millis;

pub trait Clock {
    fn now_ms(&self) -> Millis;
    /// Wait for `duration` of this clock's time (wall time divided by the speed for a fast clock;
    /// nothing for a virtual clock, which only advances).
    fn sleep(&self, duration: Duration);
}

/// The proleptic Gregorian `(year, month, day)` of a count of days since 1970-01-01, negative
/// before it (Howard Hinnant's `civil_from_days`); for dates in logs, alerts and the simulator's
/// wire format.
pub fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let shifted = days + 719_468;
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}
