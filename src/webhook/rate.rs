//! The receiver's rate limit: a token bucket holding up to one minute's allowance
//! (`signals.webhook.rate_per_minute`), refilled continuously. Counts in whole units of
//! 1/60,000 of a request (a request per minute refills one unit per millisecond), so no float
//! is involved. Pure: the monotonic time comes in as an argument.

use std::time::{Duration, Instant};

/// Units of one request: a rate of one per minute refills one unit per millisecond.
const UNITS_PER_REQUEST: u64 = 60_000;

#[derive(Debug)]
pub struct RateLimiter {
    rate_per_minute: u64,
    /// Current allowance in units; at most `rate_per_minute` requests' worth.
    units: u64,
    last: Instant,
}

impl RateLimiter {
    /// A full bucket: `rate_per_minute` requests may come at once.
    pub fn new(rate_per_minute: u32, now: Instant) -> RateLimiter {
        assert!(rate_per_minute >= 1, "a rate of zero admits nothing");
        let rate_per_minute = u64::from(rate_per_minute);
        RateLimiter {
            rate_per_minute,
            units: rate_per_minute * UNITS_PER_REQUEST,
            last: now,
        }
    }

    /// Takes one request's allowance, or says how long until one is there.
    pub fn admit(&mut self, now: Instant) -> Result<(), Duration> {
        let elapsed_ms =
            u64::try_from(now.saturating_duration_since(self.last).as_millis()).unwrap_or(u64::MAX);
        let capacity = self.rate_per_minute * UNITS_PER_REQUEST;
        self.units = self
            .units
            .saturating_add(elapsed_ms.saturating_mul(self.rate_per_minute))
            .min(capacity);
        // Time advances only by whole milliseconds counted, so no fraction of one is lost.
        self.last += Duration::from_millis(elapsed_ms.min(u64::from(u32::MAX)));
        if self.units >= UNITS_PER_REQUEST {
            self.units -= UNITS_PER_REQUEST;
            return Ok(());
        }
        let missing = UNITS_PER_REQUEST - self.units;
        Err(Duration::from_millis(
            missing.div_ceil(self.rate_per_minute),
        ))
    }
}
