//! What the loop reports to the metrics (`telemetry::metrics`): the gauges read back from the
//! database every turn, and the counters and histograms of what a committed step, a send or a
//! refused turn showed. Facts are derived from stored state (timestamps, states, reasons) and
//! recorded only after their transaction committed. Decides nothing: a metric that cannot be
//! read is logged and skipped, never an error of the turn.

use std::collections::BTreeMap;

use metrics::{counter, gauge, histogram};
use rust_decimal::Decimal;
use tracing::warn;

use super::Agent;
use crate::core::breaker::GLOBAL;
use crate::core::ids::parse_client_oid;
use crate::core::trade::{Event, SendOutcome, Trade, TradeState};
use crate::store::{self, OpenTrade};
use crate::telemetry::metrics::{
    self as names, CIRCUIT_BREAKER_OPEN, CIRCUIT_BREAKER_TRIPS_TOTAL, FILL_POLL_ATTEMPTS,
    ORDERS_TOTAL, PROTECTION_FAILURES_TOTAL, RECONCILIATIONS_TOTAL, STORE_WRITE_FAILURES_TOTAL,
    UNPROTECTED_SECONDS,
};

/// A breaker the agent opened (it was closed before), for `circuit_breaker_trips_total`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Trip {
    pub symbol: String,
    pub reason: String,
}

/// What one committed step showed, compared with the trade before it.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct StepFacts {
    /// The filled position's protection failed: (symbol, reason).
    pub protection_failure: Option<(String, String)>,
    /// Fill observed → both protective legs acknowledged, first protection only.
    pub unprotected_seconds: Option<f64>,
    /// Fill polls the entry needed, when this step ended the polling.
    pub entry_polls: Option<u32>,
}

/// States in which the entry is being placed or polled.
fn polling(state: TradeState) -> bool {
    matches!(
        state,
        TradeState::EntryPending | TradeState::EntryUnknown | TradeState::AwaitingFill
    )
}

/// States a trade enters when its filled position's protection failed: the failsafe exit, the
/// recovery, or a final halt.
fn failed_protection(state: TradeState) -> bool {
    matches!(
        state,
        TradeState::Exiting | TradeState::Recovering | TradeState::Halted
    )
}

/// The metrics facts of one step from `before` to `after`; `looked` when the step's event was
/// the answer to a lookup (a fill poll).
pub(super) fn step_facts(before: &Trade, after: &Trade, looked: bool) -> StepFacts {
    let mut facts = StepFacts::default();
    // Once per recovery episode: a retry of a recovering trade (back in `Protecting` with its
    // episode still open) that fails again is the same failure, as its alert is.
    let entered_failure = failed_protection(after.state)
        && !failed_protection(before.state)
        && before.recovering_since_ms.is_none();
    if entered_failure && after.filled_quantity > Decimal::ZERO {
        let reason = after
            .close_reason
            .as_deref()
            .unwrap_or("unknown")
            .to_string();
        facts.protection_failure = Some((after.symbol.clone(), reason));
    }
    if let (None, Some(protected), Some(filled)) = (
        before.protected_at_ms,
        after.protected_at_ms,
        after.filled_at_ms,
    ) {
        // Milliseconds of stored time, so the precision of an f64 is ample.
        facts.unprotected_seconds = Some((protected - filled).max(0) as f64 / 1000.0);
    }
    // The lookup that ends the polling is counted by the core after the step began.
    if polling(before.state) && !polling(after.state) && looked {
        facts.entry_polls = Some(before.attempts.saturating_add(1));
    }
    facts
}

/// Records what a committed step showed.
pub(super) fn record_step(facts: &StepFacts, trips: &[Trip]) {
    if let Some((symbol, reason)) = &facts.protection_failure {
        counter!(PROTECTION_FAILURES_TOTAL, "symbol" => symbol.clone(), "reason" => reason.clone())
            .increment(1);
    }
    if let Some(seconds) = facts.unprotected_seconds {
        histogram!(UNPROTECTED_SECONDS).record(seconds);
    }
    if let Some(polls) = facts.entry_polls {
        histogram!(FILL_POLL_ATTEMPTS).record(f64::from(polls));
    }
    record_trips(trips);
}

/// Counts breakers the agent opened, after their transaction committed.
pub(super) fn record_trips(trips: &[Trip]) {
    for trip in trips {
        counter!(CIRCUIT_BREAKER_TRIPS_TOTAL, "symbol" => trip.symbol.clone(), "reason" => trip.reason.clone())
            .increment(1);
    }
}

/// A quarantined trade: its protection can no longer be trusted.
pub(super) fn record_quarantine(symbol: &str, reason: &str) {
    counter!(PROTECTION_FAILURES_TOTAL, "symbol" => symbol.to_string(), "reason" => reason.to_string())
        .increment(1);
}

/// The `outcome` label of a send.
pub(super) fn send_outcome_label(outcome: &SendOutcome) -> &'static str {
    match outcome {
        SendOutcome::Ack { .. } => "ack",
        SendOutcome::Duplicate => "duplicate",
        SendOutcome::Rejected { .. } => "rejected",
        SendOutcome::Ambiguous { .. } => "ambiguous",
    }
}

/// The `(role, outcome)` labels of every order a send carried (an OCO two, an OTOCO three).
pub(super) fn send_labels(event: &Event) -> Vec<(&'static str, &'static str)> {
    let Event::Sent {
        client_oids,
        outcome,
    } = event
    else {
        return Vec::new();
    };
    let outcome = send_outcome_label(outcome);
    // Every client_oid the agent sends is its own; one that does not parse is not counted.
    client_oids
        .iter()
        .filter_map(|client_oid| parse_client_oid(client_oid))
        .map(|parsed| (names::role_label(parsed.role), outcome))
        .collect()
}

/// Counts the orders of a send by role and outcome.
pub(super) fn record_send(event: &Event) {
    for (role, outcome) in send_labels(event) {
        counter!(ORDERS_TOTAL, "role" => role, "outcome" => outcome).increment(1);
    }
}

/// The `cause` label of a database refusal: SQLite's primary result code, or the store's
/// own verdict on a row.
pub(super) fn store_cause(error: &anyhow::Error) -> &'static str {
    for cause in error.chain() {
        if let Some(store_error) = cause.downcast_ref::<store::StoreError>() {
            return match store_error {
                store::StoreError::Sql(sql) => sqlite_cause(sql),
                store::StoreError::Corrupt(_) => "corrupt",
                _ => "other",
            };
        }
        if let Some(sql) = cause.downcast_ref::<rusqlite::Error>() {
            return sqlite_cause(sql);
        }
    }
    "other"
}

fn sqlite_cause(error: &rusqlite::Error) -> &'static str {
    use rusqlite::ErrorCode;
    let rusqlite::Error::SqliteFailure(failure, _) = error else {
        return "other";
    };
    match failure.code {
        ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => "busy",
        ErrorCode::DiskFull => "full",
        ErrorCode::SystemIoFailure => "io",
        ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase => "corrupt",
        _ => "other",
    }
}

/// Counts one turn the database refused.
pub(super) fn record_store_failure(cause: &'static str) {
    counter!(STORE_WRITE_FAILURES_TOTAL, "cause" => cause).increment(1);
}

pub(super) fn record_reconciliation(ok: bool) {
    let outcome = if ok { "ok" } else { "failed" };
    counter!(RECONCILIATIONS_TOTAL, "outcome" => outcome).increment(1);
}

/// Filled positions of open trades whose protection is not both legs acknowledged now, by
/// symbol: every state but `Protected` (watched legs) and `Closing` (a leg closed the position).
pub(super) fn unprotected_positions(trades: &[OpenTrade]) -> BTreeMap<&str, usize> {
    let mut by_symbol = BTreeMap::new();
    let unprotected = trades
        .iter()
        .filter(|trade| trade.filled_quantity > Decimal::ZERO)
        .filter(|trade| !matches!(trade.state, TradeState::Protected | TradeState::Closing));
    for trade in unprotected {
        *by_symbol.entry(trade.symbol.as_str()).or_insert(0) += 1;
    }
    by_symbol
}

/// The agent's state in one line for `systemctl status` (`STATUS=`): open trades, how many
/// are protected, filled positions without protection, and the open breakers by name.
pub(super) fn status_line(store: &store::Store) -> store::Result<String> {
    let conn = store.conn();
    let trades = store::open_trades(conn)?;
    let protected = trades
        .iter()
        .filter(|trade| trade.state == TradeState::Protected)
        .count();
    let unprotected: usize = unprotected_positions(&trades).values().sum();
    let open: Vec<String> = store::breakers(conn)?
        .into_iter()
        .filter(|breaker| breaker.open)
        .map(|breaker| breaker.symbol)
        .collect();
    let names = if open.is_empty() {
        String::new()
    } else {
        format!(" ({})", open.join(", "))
    };
    Ok(format!(
        "open trades: {}, protected: {protected}, unprotected positions: {unprotected}, breakers open: {}{names}",
        trades.len(),
        open.len()
    ))
}

impl Agent {
    /// Sets the gauges from the database, so they are right right after a restart and never
    /// drift from what the store says.
    pub(super) fn refresh_gauges(&self) {
        if !names::is_installed() {
            return;
        }
        if let Err(error) = self.read_gauges() {
            warn!(error = %error, "metrics: the database could not be read for the gauges");
        }
    }

    fn read_gauges(&self) -> store::Result<()> {
        let conn = self.store.conn();
        let trades = store::open_trades(conn)?;
        for state in names::open_states() {
            let count = trades.iter().filter(|trade| trade.state == state).count();
            gauge!(names::OPEN_TRADES, "state" => state.as_str()).set(count as f64);
        }
        // Every symbol reported once is reported again (at 0 when nothing is unprotected), so
        // a series never sticks at its last value; the set is bounded by the symbols traded.
        let unprotected = unprotected_positions(&trades);
        let mut symbols = self.unprotected_symbols.borrow_mut();
        symbols.extend(self.config.watchlist.iter().map(|item| item.symbol.clone()));
        symbols.extend(unprotected.keys().map(|symbol| symbol.to_string()));
        for symbol in symbols.iter() {
            let count = unprotected.get(symbol.as_str()).copied().unwrap_or(0);
            gauge!(names::POSITIONS_UNPROTECTED, "symbol" => symbol.clone()).set(count as f64);
        }
        gauge!(names::ALERTS_PENDING).set(store::pending_alerts(conn)? as f64);
        for (state, count) in self.watchlist.counts() {
            gauge!(names::WATCHLIST_SYMBOLS, "state" => state.as_str()).set(count as f64);
        }
        let breakers = store::breakers(conn)?;
        let watched = self
            .config
            .watchlist
            .iter()
            .map(|item| item.symbol.as_str());
        for symbol in std::iter::once(GLOBAL).chain(watched) {
            if !breakers.iter().any(|breaker| breaker.symbol == symbol) {
                gauge!(CIRCUIT_BREAKER_OPEN, "symbol" => symbol.to_string()).set(0.0);
            }
        }
        for breaker in &breakers {
            let open = if breaker.open { 1.0 } else { 0.0 };
            gauge!(CIRCUIT_BREAKER_OPEN, "symbol" => breaker.symbol.clone()).set(open);
        }
        self.read_risk_gauges(conn)
    }

    /// One turn's duration; for a completed turn also the heartbeat, its wall time (a turn
    /// the database refused did not complete).
    pub(super) fn record_turn(&self, seconds: f64, completed: bool) {
        histogram!(names::LOOP_DURATION_SECONDS).record(seconds);
        if completed {
            let wall_seconds = self.wall.now_ms() as f64 / 1000.0;
            gauge!(names::LAST_LOOP_TIMESTAMP_SECONDS).set(wall_seconds);
        }
    }
}

#[cfg(test)]
mod tests;
