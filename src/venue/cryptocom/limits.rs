//! Client-side request limits per method (reference §6), so fillguard stays below the exchange's
//! limits instead of learning them from 429 answers. Each method has a sliding window of its
//! recent send times; a send waits for a free slot, bounded by `WAIT_MAX`.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use crate::venue::VenueError;

/// Longest wait for a free slot; a longer one is reported as `RateLimited` without sleeping.
pub(super) const WAIT_MAX: Duration = Duration::from_secs(1);

const WINDOW_SHORT: Duration = Duration::from_millis(100);
const WINDOW_SECOND: Duration = Duration::from_secs(1);

/// Requests allowed per window for one method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Limit {
    pub requests_max: usize,
    pub window: Duration,
}

const _: () = assert!(WINDOW_SECOND.as_millis() <= WAIT_MAX.as_millis());

/// The limit of a method (reference §6). Advanced methods are not listed separately: they get
/// the "other private" limit, except advanced/get-order-history, which is kept at the 1 per
/// second of the history endpoints (UNCERTAIN in the reference; the conservative side).
pub(super) fn limit_for(method: &str) -> Limit {
    let (requests_max, window) = match method {
        "private/create-order" | "private/cancel-order" | "private/cancel-all-orders" => {
            (15, WINDOW_SHORT)
        }
        "private/get-order-detail" => (30, WINDOW_SHORT),
        "private/get-order-history"
        | "private/get-trades"
        | "private/advanced/get-order-history" => (1, WINDOW_SECOND),
        method if method.starts_with("public/") => (100, WINDOW_SECOND),
        _ => (3, WINDOW_SHORT),
    };
    Limit {
        requests_max,
        window,
    }
}

/// Send times per method, each window holding at most its limit's `requests_max` entries.
#[derive(Debug, Default)]
pub(super) struct RateLimiter {
    sent: BTreeMap<String, VecDeque<Instant>>,
}

impl RateLimiter {
    /// Waits (at most `WAIT_MAX`) until `method` may be sent, then records the send.
    pub fn acquire(&mut self, method: &str) -> Result<(), VenueError> {
        let wait = self.wait_for(method, Instant::now());
        if wait > WAIT_MAX {
            return Err(VenueError::RateLimited(format!(
                "{method}: client-side limit, next slot in {} ms",
                wait.as_millis()
            )));
        }
        if !wait.is_zero() {
            std::thread::sleep(wait);
        }
        self.record(method, Instant::now());
        Ok(())
    }

    /// How long `method` must wait at `now` for a free slot.
    pub fn wait_for(&mut self, method: &str, now: Instant) -> Duration {
        let limit = limit_for(method);
        let Some(sent) = self.sent.get_mut(method) else {
            return Duration::ZERO;
        };
        while sent
            .front()
            .is_some_and(|oldest| now.duration_since(*oldest) >= limit.window)
        {
            sent.pop_front();
        }
        if sent.len() < limit.requests_max {
            return Duration::ZERO;
        }
        let oldest = sent.front().copied().unwrap_or(now);
        (oldest + limit.window).saturating_duration_since(now)
    }

    fn record(&mut self, method: &str, now: Instant) {
        let limit = limit_for(method);
        let sent = self.sent.entry(method.to_string()).or_default();
        sent.push_back(now);
        while sent.len() > limit.requests_max {
            sent.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_follow_the_reference_table() {
        assert_eq!(limit_for("private/create-order").requests_max, 15);
        assert_eq!(limit_for("private/cancel-order").window, WINDOW_SHORT);
        assert_eq!(limit_for("private/get-order-detail").requests_max, 30);
        assert_eq!(limit_for("private/get-order-history").window, WINDOW_SECOND);
        assert_eq!(limit_for("private/get-trades").requests_max, 1);
        assert_eq!(limit_for("private/user-balance").requests_max, 3);
        assert_eq!(limit_for("private/advanced/create-oco").requests_max, 3);
        assert_eq!(limit_for("public/get-tickers").requests_max, 100);
    }

    #[test]
    fn a_full_window_waits_until_its_oldest_send_leaves_it() {
        let mut limiter = RateLimiter::default();
        let start = Instant::now();
        for _ in 0..3 {
            assert_eq!(
                limiter.wait_for("private/user-balance", start),
                Duration::ZERO
            );
            limiter.record("private/user-balance", start);
        }
        let later = start + Duration::from_millis(40);
        assert_eq!(
            limiter.wait_for("private/user-balance", later),
            Duration::from_millis(60)
        );
        // Other methods have their own windows.
        assert_eq!(
            limiter.wait_for("private/create-order", later),
            Duration::ZERO
        );
        let after = start + WINDOW_SHORT;
        assert_eq!(
            limiter.wait_for("private/user-balance", after),
            Duration::ZERO
        );
    }

    #[test]
    fn history_is_one_per_second_and_acquire_sleeps_for_it() {
        let mut limiter = RateLimiter::default();
        let start = Instant::now();
        limiter.acquire("private/get-order-history").unwrap();
        limiter.acquire("private/get-order-history").unwrap();
        assert!(start.elapsed() >= Duration::from_millis(900));
    }
}
