//! Start-up policies: the venue self-check (DESIGN §1, field failure F13) and exchange orders
//! that carry fillguard's prefix but are unknown to the store (S5). Pure: the shell reports
//! what it saw, applies the returned actions in one transaction, and schedules what is due.

use crate::core::breaker::{Breaker, GLOBAL};
use crate::core::domain::Millis;
use crate::core::ids::parse_client_oid;
use crate::core::trade::{Alert, Severity};

/// The global breaker's reason while the venue cannot be reached: it closes by itself once the
/// self-check passes. Any other reason waits for the operator.
pub const UNREACHABLE_REASON: &str = "self_check_unreachable";
pub const REFUSED_REASON: &str = "self_check_failed";
/// Retries of a self-check that failed for a passing reason: first after this, doubling up to
/// `SELF_CHECK_RETRY_MAX_MS`, for as long as it fails.
pub const SELF_CHECK_RETRY_MIN_MS: Millis = 2_000;
pub const SELF_CHECK_RETRY_MAX_MS: Millis = 300_000;
const _: () = assert!(SELF_CHECK_RETRY_MIN_MS <= SELF_CHECK_RETRY_MAX_MS);

/// What a start-up policy asks the shell to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartupAction {
    TripBreaker {
        symbol: String,
        reason: String,
    },
    /// Close the breaker only if it is still as the policy saw it: open for `reason` and tripped
    /// `trip_count` times (no one — the operator, another failure — tripped it since).
    CloseBreaker {
        symbol: String,
        reason: String,
        trip_count: u32,
    },
    Alert(Alert),
}

/// How one self-check attempt ended, as the venue reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckResult {
    Passed,
    /// No route, refused, timed out, 5xx, 429: it may pass later.
    Transient(String),
    /// Bad key or signature, IP not whitelisted, API disabled, missing permission.
    Definitive(String),
}

/// The decision after one self-check attempt: what to do now, and when to try again (`None`:
/// not again in this run).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelfCheckDecision {
    pub actions: Vec<StartupAction>,
    pub retry_at_ms: Option<Millis>,
}

/// Decides after the `failures`-th consecutive failed attempt (0 on the first attempt).
/// `global` is the global breaker as stored; `since_ms` when the failures began.
pub fn self_check(
    result: &CheckResult,
    failures: u32,
    global: Option<&Breaker>,
    venue: &str,
    since_ms: Millis,
    now: Millis,
) -> SelfCheckDecision {
    let opened_by_us = global
        .filter(|breaker| breaker.open && breaker.reason.as_deref() == Some(UNREACHABLE_REASON));
    match (result, opened_by_us) {
        (CheckResult::Passed, Some(breaker)) => SelfCheckDecision {
            actions: vec![
                StartupAction::CloseBreaker {
                    symbol: GLOBAL.to_string(),
                    reason: UNREACHABLE_REASON.to_string(),
                    trip_count: breaker.trip_count,
                },
                StartupAction::Alert(Alert {
                    severity: Severity::Warning,
                    key: format!("self-check-resolved-{since_ms}"),
                    text: format!(
                        "RESOLVED venue self-check on {venue} passes again after {} s; the global breaker it opened is CLOSED and new entries may open",
                        (now - since_ms).max(0) / 1000
                    ),
                }),
            ],
            retry_at_ms: None,
        },
        (CheckResult::Passed, None) => SelfCheckDecision {
            actions: Vec::new(),
            retry_at_ms: None,
        },
        (CheckResult::Transient(error), _) => {
            let mut actions = Vec::new();
            let already_open = global.is_some_and(|breaker| breaker.open);
            if !already_open {
                actions.push(StartupAction::TripBreaker {
                    symbol: GLOBAL.to_string(),
                    reason: UNREACHABLE_REASON.to_string(),
                });
            }
            if failures == 0 {
                actions.push(StartupAction::Alert(Alert {
                    severity: Severity::Warning,
                    key: format!("self-check-unreachable-{since_ms}"),
                    text: format!(
                        "VENUE UNREACHABLE {venue}: the start-up self-check failed ({error}). No new entries until it passes; it is retried with backoff and the breaker closes by itself. Open trades are still watched"
                    ),
                }));
            }
            let delay = SELF_CHECK_RETRY_MIN_MS
                .saturating_mul(1 << failures.min(20))
                .min(SELF_CHECK_RETRY_MAX_MS);
            SelfCheckDecision {
                actions,
                retry_at_ms: Some(now + delay),
            }
        }
        (CheckResult::Definitive(error), _) => SelfCheckDecision {
            actions: vec![
                StartupAction::TripBreaker {
                    symbol: GLOBAL.to_string(),
                    reason: REFUSED_REASON.to_string(),
                },
                StartupAction::Alert(Alert {
                    severity: Severity::Critical,
                    key: format!("self-check-{now}"),
                    text: format!(
                        "VENUE SELF-CHECK FAILED on {venue}: {error}. The global breaker is OPEN: no new entries; open trades are still protected and watched. Operator: check the API key's permissions, IP whitelist and the exchange's status, then `fillguard breaker reset \"*\"`"
                    ),
                }),
            ],
            retry_at_ms: None,
        },
    }
}

/// An open exchange order that carries fillguard's prefix but is unknown to the store. With
/// one of this database's epochs it is an orphan (a database restored from an older copy): its
/// symbol's breaker opens and a CRITICAL alert names it. With another epoch it belongs to
/// another database: a warning names it, and it is never adopted, cancelled or counted as ours.
pub fn unknown_order(
    epochs: &[String],
    client_oid: &str,
    symbol: &str,
    order_id: &str,
) -> Vec<StartupAction> {
    let Some(parsed) = parse_client_oid(client_oid) else {
        return Vec::new();
    };
    let epoch = epochs.last().map(String::as_str).unwrap_or_default();
    if !epochs.contains(&parsed.epoch) {
        return vec![StartupAction::Alert(Alert {
            severity: Severity::Warning,
            key: format!("foreign-{client_oid}"),
            text: format!(
                "FOREIGN ORDER {symbol}: open order client_oid={client_oid} order_id={order_id} carries fillguard's prefix but another database's epoch (this one: {epoch}); it is not this agent's and is left alone. Operator: cancel it by hand if no other fillguard owns it"
            ),
        })];
    }
    vec![
        StartupAction::TripBreaker {
            symbol: symbol.to_string(),
            reason: "orphan_order".to_string(),
        },
        StartupAction::Alert(Alert {
            severity: Severity::Critical,
            key: format!("orphan-{client_oid}"),
            text: format!(
                "ORPHAN ORDER {symbol}: open order client_oid={client_oid} order_id={order_id} carries one of this database's epochs but is unknown to the store (a database restored from an older copy?). Breaker for {symbol} OPEN. Operator: cancel or settle it on the exchange, then `fillguard breaker reset {symbol}`"
            ),
        }),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(reason: &str) -> Breaker {
        let mut breaker = Breaker::closed(GLOBAL);
        breaker.trip(reason, 1);
        breaker
    }

    #[test]
    fn a_transient_failure_opens_the_global_breaker_and_retries_with_backoff() {
        let result = CheckResult::Transient("connection refused".into());
        let first = self_check(&result, 0, None, "cryptocom", 100, 100);
        assert!(first.actions.contains(&StartupAction::TripBreaker {
            symbol: GLOBAL.into(),
            reason: UNREACHABLE_REASON.into()
        }));
        assert_eq!(first.retry_at_ms, Some(100 + SELF_CHECK_RETRY_MIN_MS));
        let breaker = open(UNREACHABLE_REASON);
        let later = self_check(&result, 30, Some(&breaker), "cryptocom", 100, 1_000);
        assert!(later.actions.is_empty(), "no second trip, no second alert");
        assert_eq!(later.retry_at_ms, Some(1_000 + SELF_CHECK_RETRY_MAX_MS));
    }

    #[test]
    fn a_pass_closes_only_the_breaker_the_transient_failure_opened() {
        let ours = open(UNREACHABLE_REASON);
        let passed = self_check(&CheckResult::Passed, 3, Some(&ours), "paper", 0, 60_000);
        assert!(passed.actions.contains(&StartupAction::CloseBreaker {
            symbol: GLOBAL.into(),
            reason: UNREACHABLE_REASON.into(),
            trip_count: 1,
        }));
        assert!(passed.actions.iter().any(|action| matches!(action,
            StartupAction::Alert(alert) if alert.text.starts_with("RESOLVED"))));
        let operators = open("manual");
        let kept = self_check(&CheckResult::Passed, 0, Some(&operators), "paper", 0, 1);
        assert!(kept.actions.is_empty());
    }

    #[test]
    fn a_definitive_refusal_waits_for_the_operator() {
        let result = CheckResult::Definitive("authentication failed: bad signature".into());
        let decision = self_check(&result, 0, None, "cryptocom", 5, 5);
        assert_eq!(decision.retry_at_ms, None);
        assert!(decision.actions.iter().any(|action| matches!(action,
            StartupAction::Alert(alert) if alert.severity == Severity::Critical)));
        assert!(decision.actions.contains(&StartupAction::TripBreaker {
            symbol: GLOBAL.into(),
            reason: REFUSED_REASON.into()
        }));
    }

    #[test]
    fn orders_of_another_epoch_are_named_and_left_alone() {
        let ours = ["1a2b3c4d".to_string(), "0a1b2c3d".to_string()];
        let foreign = unknown_order(&ours, "fg-ffffffff-3-S1", "BTC_USDT", "99");
        assert!(matches!(foreign.as_slice(),
            [StartupAction::Alert(alert)] if alert.severity == Severity::Warning));
        let old_format = unknown_order(&ours, "fg-3-S1", "BTC_USDT", "98");
        assert_eq!(old_format.len(), 1);
        // Any epoch this database used, not only the current one, makes an orphan.
        for epoch in &ours {
            let orphan = unknown_order(&ours, &format!("fg-{epoch}-3-S1"), "BTC_USDT", "97");
            assert!(
                orphan
                    .iter()
                    .any(|action| matches!(action, StartupAction::TripBreaker { .. }))
            );
        }
        assert!(unknown_order(&ours, "someone-else", "BTC_USDT", "1").is_empty());
    }
}
