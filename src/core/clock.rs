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
