//! The watchlist meets the exchange at start-up: each watchlist symbol is compared with the
//! instruments the exchange lists. A listed symbol is enabled; one the exchange does not list
//! is disabled (its strategy is not evaluated, its inbox signals are dropped with the reason)
//! and reported once, with a WARNING alert that is re-armed once the symbol is fixed. A failed
//! listing (no route, timeout, 5xx, 429) decides nothing: the check stays pending and is
//! retried with a bounded backoff. Pure: the shell asks the venue, hands the answer here,
//! stores what comes back and schedules the retry. It gates entries only, never an open
//! trade's protection.

use std::collections::{BTreeMap, BTreeSet};

use crate::core::domain::Millis;
use crate::core::trade::{Alert, Severity};

/// Retries of a listing that failed: first after this, doubling up to
/// `WATCHLIST_RETRY_MAX_MS`, for as long as it fails. The maximum is short next to a signal's
/// default time-to-live (300 s), so a signal waiting for the check is seldom lost to it.
pub const WATCHLIST_RETRY_MIN_MS: Millis = 2_000;
pub const WATCHLIST_RETRY_MAX_MS: Millis = 120_000;
const _: () = assert!(WATCHLIST_RETRY_MIN_MS <= WATCHLIST_RETRY_MAX_MS);

/// Where one watchlist symbol stands against the exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum SymbolState {
    /// Not checked yet (the listing failed or has not been asked for): its signals wait.
    Unchecked,
    /// The exchange lists it.
    Enabled,
    /// The exchange does not list it: no strategy, its signals dropped.
    Disabled,
}

impl SymbolState {
    pub const ALL: [SymbolState; 3] = [
        SymbolState::Enabled,
        SymbolState::Disabled,
        SymbolState::Unchecked,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SymbolState::Unchecked => "unchecked",
            SymbolState::Enabled => "enabled",
            SymbolState::Disabled => "disabled",
        }
    }

    pub fn parse(text: &str) -> Option<SymbolState> {
        SymbolState::ALL
            .into_iter()
            .find(|state| state.as_str() == text)
    }
}

/// What the venue answered when asked for its instruments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listing {
    /// Every symbol the exchange lists.
    Listed(BTreeSet<String>),
    /// The question was not answered (no route, timeout, 5xx, 429, an unreadable answer):
    /// nothing can be concluded from it.
    Failed(String),
}

/// The decision after one check attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchlistDecision {
    /// Each watchlist symbol's state, in symbol order.
    pub states: BTreeMap<String, SymbolState>,
    /// The WARNING alerts of symbols disabled and not reported before, each with its symbol.
    pub alerts: Vec<(String, Alert)>,
    /// The symbols reported as not listed, to be remembered across restarts (`None`: keep
    /// what is stored). A symbol that is listed again or left the watchlist is no longer in
    /// it, so it is reported again if it is ever unlisted again.
    pub reported: Option<BTreeSet<String>>,
    /// When to ask again (`None`: the check is complete for this run).
    pub retry_at_ms: Option<Millis>,
}

/// The reason a signal for a disabled symbol is dropped with.
pub fn drop_reason(symbol: &str) -> String {
    format!("{symbol} is not listed on the exchange (disabled by the watchlist check at start-up)")
}

/// Decides after one attempt. `watchlist` the configured symbols, `reported` the symbols
/// already reported as not listed (stored), `failures` the consecutive failed attempts before
/// this one, `venue` the venue's name for the alert text.
pub fn check(
    watchlist: &[String],
    listing: &Listing,
    reported: &BTreeSet<String>,
    failures: u32,
    venue: &str,
    now: Millis,
) -> WatchlistDecision {
    let listed = match listing {
        // An exchange that lists nothing at all is a glitch of the answer, not a verdict on
        // every symbol: it is taken as a failed listing and asked again.
        Listing::Listed(listed) if !listed.is_empty() => listed,
        Listing::Listed(_) | Listing::Failed(_) => {
            let delay = WATCHLIST_RETRY_MIN_MS
                .saturating_mul(1 << failures.min(20))
                .min(WATCHLIST_RETRY_MAX_MS);
            return WatchlistDecision {
                states: watchlist
                    .iter()
                    .map(|symbol| (symbol.clone(), SymbolState::Unchecked))
                    .collect(),
                alerts: Vec::new(),
                reported: None,
                retry_at_ms: Some(now.saturating_add(delay)),
            };
        }
    };
    let states: BTreeMap<String, SymbolState> = watchlist
        .iter()
        .map(|symbol| {
            let state = if listed.contains(symbol) {
                SymbolState::Enabled
            } else {
                SymbolState::Disabled
            };
            (symbol.clone(), state)
        })
        .collect();
    let disabled: BTreeSet<String> = states
        .iter()
        .filter(|(_, state)| **state == SymbolState::Disabled)
        .map(|(symbol, _)| symbol.clone())
        .collect();
    let alerts = disabled
        .difference(reported)
        .map(|symbol| (symbol.clone(), unlisted_alert(symbol, venue, now)))
        .collect();
    WatchlistDecision {
        states,
        alerts,
        reported: Some(disabled),
        retry_at_ms: None,
    }
}

fn unlisted_alert(symbol: &str, venue: &str, now: Millis) -> Alert {
    Alert {
        severity: Severity::Warning,
        // Unique per report; that it is made once is the stored `reported` set's doing.
        key: format!("watchlist-unlisted-{symbol}-{now}"),
        text: format!(
            "WATCHLIST SYMBOL NOT LISTED {symbol}: {venue} does not list {symbol}. It is DISABLED: its strategy is not evaluated and its signals are dropped; open trades on it are still protected and watched. Operator: correct the symbol in the watchlist (or remove it) and restart. This is reported once until the symbol is fixed"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn symbols(names: &[&str]) -> Vec<String> {
        names.iter().map(|name| name.to_string()).collect()
    }

    fn listed(names: &[&str]) -> Listing {
        Listing::Listed(names.iter().map(|name| name.to_string()).collect())
    }

    #[test]
    fn a_listed_symbol_is_enabled_and_an_unlisted_one_disabled_and_reported_once() {
        let watchlist = symbols(&["BTC_USDT", "FOO_USDT"]);
        let listing = listed(&["BTC_USDT", "ETH_USDT"]);
        let first = check(&watchlist, &listing, &BTreeSet::new(), 0, "cryptocom", 7);
        assert_eq!(first.states["BTC_USDT"], SymbolState::Enabled);
        assert_eq!(first.states["FOO_USDT"], SymbolState::Disabled);
        assert_eq!(first.retry_at_ms, None);
        let [(symbol, alert)] = first.alerts.as_slice() else {
            panic!("one alert: {:?}", first.alerts);
        };
        assert_eq!(symbol, "FOO_USDT");
        assert_eq!(alert.severity, Severity::Warning);
        assert!(alert.text.contains("FOO_USDT"), "{}", alert.text);
        assert!(!alert.text.contains("BTC_USDT"), "{}", alert.text);
        let reported = first.reported.expect("the report is remembered");
        assert_eq!(reported, BTreeSet::from(["FOO_USDT".to_string()]));
        // A restart with the same watchlist: the symbol is disabled again, not reported again.
        let again = check(&watchlist, &listing, &reported, 0, "cryptocom", 9);
        assert_eq!(again.states, first.states);
        assert!(again.alerts.is_empty(), "{:?}", again.alerts);
        assert_eq!(again.reported, Some(reported));
    }

    #[test]
    fn a_failed_listing_disables_nothing_and_retries_with_a_bounded_backoff() {
        let watchlist = symbols(&["BTC_USDT", "FOO_USDT"]);
        let failed = Listing::Failed("connection refused".into());
        let reported = BTreeSet::from(["FOO_USDT".to_string()]);
        let first = check(&watchlist, &failed, &reported, 0, "cryptocom", 1_000);
        assert!(
            first
                .states
                .values()
                .all(|state| *state == SymbolState::Unchecked)
        );
        assert!(first.alerts.is_empty());
        assert_eq!(first.reported, None, "what was reported before is kept");
        assert_eq!(first.retry_at_ms, Some(1_000 + WATCHLIST_RETRY_MIN_MS));
        let second = check(&watchlist, &failed, &reported, 1, "cryptocom", 1_000);
        assert_eq!(second.retry_at_ms, Some(1_000 + 2 * WATCHLIST_RETRY_MIN_MS));
        for failures in [6, 30, u32::MAX] {
            let late = check(&watchlist, &failed, &reported, failures, "cryptocom", 1_000);
            assert_eq!(late.retry_at_ms, Some(1_000 + WATCHLIST_RETRY_MAX_MS));
        }
    }

    #[test]
    fn a_fixed_symbol_re_arms_its_report() {
        let reported = BTreeSet::from(["FOO_USDT".to_string()]);
        // Listed now (or corrected): enabled, and no longer remembered as reported.
        let fixed = check(
            &symbols(&["FOO_USDT"]),
            &listed(&["FOO_USDT"]),
            &reported,
            0,
            "paper",
            5,
        );
        assert_eq!(fixed.states["FOO_USDT"], SymbolState::Enabled);
        assert_eq!(fixed.reported, Some(BTreeSet::new()));
        // Removed from the watchlist: forgotten as well.
        let removed = check(
            &symbols(&["BTC_USDT"]),
            &listed(&["BTC_USDT"]),
            &reported,
            0,
            "paper",
            5,
        );
        assert_eq!(removed.reported, Some(BTreeSet::new()));
        // Unlisted again later: reported again.
        let unlisted = check(
            &symbols(&["FOO_USDT"]),
            &listed(&["BTC_USDT"]),
            &BTreeSet::new(),
            0,
            "paper",
            6,
        );
        assert_eq!(unlisted.alerts.len(), 1);
    }

    #[test]
    fn an_empty_listing_is_no_verdict_and_the_reason_names_the_symbol() {
        let decision = check(
            &symbols(&["A_B", "C_D"]),
            &listed(&[]),
            &BTreeSet::new(),
            0,
            "paper",
            0,
        );
        assert!(decision.alerts.is_empty());
        assert_eq!(decision.reported, None);
        assert_eq!(decision.retry_at_ms, Some(WATCHLIST_RETRY_MIN_MS));
        assert!(
            decision
                .states
                .values()
                .all(|state| *state == SymbolState::Unchecked)
        );
        let reason = drop_reason("FOO_USDT");
        assert!(reason.starts_with("FOO_USDT is not listed on the exchange"));
        for state in SymbolState::ALL {
            assert_eq!(SymbolState::parse(state.as_str()), Some(state));
        }
    }
}
