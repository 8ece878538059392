//! The watchlist check at start-up: once the venue self-check no longer waits, the exchange's
//! instruments are read (one request where the venue lists them all), `core::watchlist::check`
//! decides, and its states, its remembered reports and its WARNING alerts are committed in one
//! transaction. A symbol it disables gets no strategy evaluation and its inbox signals are
//! dropped with the reason; a failed listing disables nothing and is retried with a bounded
//! backoff. Gates entries only: an open trade on a disabled symbol is driven like any other.

use std::collections::BTreeMap;

use tracing::{error, info, warn};

use super::Agent;
use crate::config::WatchItem;
use crate::core::domain::Millis;
use crate::core::watchlist::{self, Listing, SymbolState};
use crate::store;

/// Each watchlist symbol's state in this run, and when the check runs next.
#[derive(Debug, Clone)]
pub(super) struct WatchlistGate {
    states: BTreeMap<String, SymbolState>,
    /// When the check is attempted next (`None`: complete for this run).
    due_ms: Option<Millis>,
    /// Consecutive failed listings.
    failures: u32,
    /// Whether a disabled symbol's signals are dropped. Always on; only the simulation's
    /// canary turns it off, to prove its check can fail.
    enforced: bool,
}

impl WatchlistGate {
    /// Every symbol unchecked, the check due at once.
    pub(super) fn new(watchlist: &[WatchItem]) -> WatchlistGate {
        WatchlistGate {
            states: watchlist
                .iter()
                .map(|item| (item.symbol.clone(), SymbolState::Unchecked))
                .collect(),
            due_ms: Some(0),
            failures: 0,
            enforced: true,
        }
    }

    pub(super) fn is_due(&self, now: Millis) -> bool {
        self.due_ms.is_some_and(|due| due <= now)
    }

    /// Whether `symbol`'s strategy is skipped and its signals are dropped.
    pub(super) fn is_disabled(&self, symbol: &str) -> bool {
        self.enforced && self.states.get(symbol) == Some(&SymbolState::Disabled)
    }

    /// How many watchlist symbols are in each state, every state listed.
    pub(super) fn counts(&self) -> [(SymbolState, usize); 3] {
        SymbolState::ALL.map(|state| {
            let count = self.states.values().filter(|each| **each == state).count();
            (state, count)
        })
    }
}

impl Agent {
    /// The states of the watchlist's symbols in this run.
    pub fn watchlist_states(&self) -> &BTreeMap<String, SymbolState> {
        &self.watchlist.states
    }

    /// Turns the dropping of a disabled symbol's signals off (the check still runs and
    /// reports). Wrong on purpose; for the simulation's canary only, which must make its
    /// unlisted-symbol check fail.
    pub fn set_watchlist_enforced(&mut self, on: bool) {
        self.watchlist.enforced = on;
    }

    /// One attempt of the watchlist check; a call the turn's budget deferred stays due.
    pub(super) fn check_watchlist(&mut self) -> anyhow::Result<()> {
        let now = self.clock.now_ms();
        let listing = match self.venue.listed_symbols() {
            Err(error) if error.is_deferred() => {
                info!(error = %error, "watchlist check deferred to the next turn");
                self.turn_deferred = true;
                return Ok(());
            }
            Ok(listed) => Listing::Listed(listed),
            Err(error) => Listing::Failed(error.to_string()),
        };
        let reported = match store::watchlist_reported(self.store.conn()) {
            Ok(reported) => reported,
            // An unreadable memory of past reports costs at most one repeated alert.
            Err(store::StoreError::Corrupt(problem)) => {
                warn!(problem = %problem, "watchlist reports unreadable; reporting again");
                Default::default()
            }
            Err(error) => return Err(error.into()),
        };
        let symbols: Vec<String> = self.watchlist.states.keys().cloned().collect();
        let decision = watchlist::check(
            &symbols,
            &listing,
            &reported,
            self.watchlist.failures,
            self.venue.name(),
            now,
        );
        let checked_at_ms = decision.retry_at_ms.is_none().then_some(now);
        self.store.transaction(|conn| {
            store::save_watchlist(
                conn,
                &decision.states,
                decision.reported.as_ref(),
                checked_at_ms,
            )?;
            for (symbol, alert) in &decision.alerts {
                store::enqueue_alert(conn, alert, None, Some(symbol), now)?;
            }
            for (symbol, state) in &decision.states {
                if *state == SymbolState::Disabled {
                    let reason = watchlist::drop_reason(symbol);
                    store::record_event(conn, now, None, Some(symbol), "watchlist", &reason)?;
                }
            }
            Ok(())
        })?;
        self.log_watchlist(&listing, &decision, now);
        self.watchlist.failures = match decision.retry_at_ms {
            Some(_) => self.watchlist.failures.saturating_add(1),
            None => 0,
        };
        self.watchlist.due_ms = decision.retry_at_ms;
        self.watchlist.states = decision.states;
        Ok(())
    }

    fn log_watchlist(
        &self,
        listing: &Listing,
        decision: &watchlist::WatchlistDecision,
        now: Millis,
    ) {
        if let Some(retry_at_ms) = decision.retry_at_ms {
            let error = match listing {
                Listing::Failed(error) => error.as_str(),
                Listing::Listed(_) => "the exchange listed no instruments",
            };
            warn!(
                error,
                failures = self.watchlist.failures + 1,
                retry_in_seconds = (retry_at_ms - now).max(0) / 1000,
                "watchlist check failed; nothing disabled, retrying"
            );
            return;
        }
        for (symbol, state) in &decision.states {
            if *state == SymbolState::Disabled {
                error!(symbol = %symbol,
                    "watchlist symbol is not listed on the exchange; disabled (no strategy, its signals dropped)");
            }
        }
        let count = |wanted: SymbolState| {
            decision
                .states
                .values()
                .filter(|state| **state == wanted)
                .count()
        };
        info!(
            enabled = count(SymbolState::Enabled),
            disabled = count(SymbolState::Disabled),
            "watchlist checked against the exchange"
        );
    }
}
