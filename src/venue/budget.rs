//! The time a loop turn may still spend on exchange requests (DESIGN §1): a deadline on the
//! monotonic clock that every request, retry back-off and rate-limit wait draws from. A venue
//! starts a request only when its whole worst case fits in what is left; what does not fit is
//! not sent and waits for the next turn (`VenueError::Deferred`). Only arithmetic on the
//! instants it is given; it reads no clock itself, so its accounting is tested exactly.

use std::time::{Duration, Instant};

use crate::venue::VenueError;

/// The remaining time of one turn, or no limit (tools and tests that run one call).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    deadline: Option<Instant>,
}

impl Budget {
    /// No limit: every request is admitted (the paper venue, one-off commands, tests).
    pub const fn unlimited() -> Budget {
        Budget { deadline: None }
    }

    /// A budget of `length` from `now`.
    pub fn starting(now: Instant, length: Duration) -> Budget {
        Budget {
            deadline: Some(now + length),
        }
    }

    /// What is left at `now`; `None` when unlimited.
    pub fn remaining(&self, now: Instant) -> Option<Duration> {
        self.deadline
            .map(|deadline| deadline.saturating_duration_since(now))
    }

    /// Whether something that takes at most `cost` from `now` ends within the budget.
    pub fn admits(&self, cost: Duration, now: Instant) -> bool {
        self.remaining(now)
            .is_none_or(|remaining| cost <= remaining)
    }

    /// `Ok` when `cost` fits at `now`; else the `Deferred` error naming `what` was not sent.
    pub fn admit(&self, what: &str, cost: Duration, now: Instant) -> Result<(), VenueError> {
        if self.admits(cost, now) {
            return Ok(());
        }
        let left = self.remaining(now).unwrap_or_default();
        Err(VenueError::Deferred(format!(
            "{what}: needs up to {} ms, {} ms left in this turn",
            cost.as_millis(),
            left.as_millis()
        )))
    }
}

impl Default for Budget {
    fn default() -> Budget {
        Budget::unlimited()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cost_is_admitted_only_when_it_ends_within_the_deadline() {
        let start = Instant::now();
        let budget = Budget::starting(start, Duration::from_secs(10));
        assert!(budget.admits(Duration::from_secs(10), start));
        assert!(!budget.admits(Duration::from_secs(10), start + Duration::from_millis(1)));
        let later = start + Duration::from_secs(7);
        assert_eq!(budget.remaining(later), Some(Duration::from_secs(3)));
        assert!(budget.admits(Duration::from_secs(3), later));
        assert!(!budget.admits(Duration::from_millis(3001), later));
        // Past the deadline nothing that takes time fits.
        let past = start + Duration::from_secs(11);
        assert_eq!(budget.remaining(past), Some(Duration::ZERO));
        assert!(!budget.admits(Duration::from_millis(1), past));
    }

    #[test]
    fn what_does_not_fit_is_deferred_never_ambiguous() {
        let start = Instant::now();
        let budget = Budget::starting(start, Duration::from_secs(5));
        let refused = budget
            .admit("private/create-order", Duration::from_secs(11), start)
            .unwrap_err();
        assert!(matches!(refused, VenueError::Deferred(_)), "{refused:?}");
        assert!(!refused.is_ambiguous());
        assert!(!refused.is_transient());
        assert!(refused.to_string().contains("private/create-order"));
        assert!(budget.admit("m", Duration::from_secs(5), start).is_ok());
    }

    #[test]
    fn an_unlimited_budget_admits_anything() {
        let budget = Budget::unlimited();
        let now = Instant::now();
        assert_eq!(budget.remaining(now), None);
        assert!(budget.admits(Duration::from_secs(86_400), now));
    }
}
