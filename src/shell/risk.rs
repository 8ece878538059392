//! The risk limits in the loop (`core::risk` decides): the check of one new entry inside the
//! transaction that opens its trade, the daily realized-loss check that opens the global
//! breaker, and the risk gauges. Entries only: nothing here reaches a protective order.

use metrics::{counter, gauge};
use rusqlite::Connection;
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use tracing::error;

use crate::core::breaker::GLOBAL;
use crate::core::domain::Millis;
use crate::core::risk::{
    DAILY_LOSS_REASON, HOUR_MS, Limit, LossFacts, Refusal, RiskLimits, check_entry,
    daily_loss_decision, loss_period_start,
};
use crate::shell::Agent;
use crate::store;
use crate::telemetry::metrics as names;

use super::observe::{Trip, record_trips};
use super::records::trip_breaker;

/// Where today's loss period starts: UTC midnight, or when the agent began counting again
/// after the operator's last reset of a loss trip.
fn loss_period(conn: &Connection, now: Millis) -> store::Result<Millis> {
    let state = store::loss_state(conn)?;
    Ok(loss_period_start(now, state.since_ms))
}

/// Checks an entry of `notional` in `quote` on `symbol` against the limits, inside the
/// transaction that would open it.
pub(super) fn check(
    conn: &Connection,
    limits: &RiskLimits,
    symbol: &str,
    quote: &str,
    notional: Decimal,
    now: Millis,
) -> store::Result<Result<(), Refusal>> {
    if *limits == RiskLimits::default() {
        return Ok(Ok(()));
    }
    let usage = store::risk_usage(conn, symbol, now, loss_period(conn, now)?)?;
    Ok(check_entry(limits, &usage, quote, notional, now))
}

/// Counts an entry a limit refused.
pub(super) fn record_refusal(limit: Limit) {
    counter!(names::RISK_REFUSALS_TOTAL, "limit" => limit.as_str()).increment(1);
}

impl Agent {
    /// Opens the global breaker with a CRITICAL alert when the day's net realized loss in a
    /// quote asset reached its limit (the alert once per loss period), and holds it open until
    /// the operator resets it. Every turn: it reads only the database. Open trades are left as
    /// they are: watched and protected.
    pub(super) fn check_daily_loss(&mut self) -> anyhow::Result<()> {
        if self.config.risk.daily_loss.is_empty() {
            return Ok(());
        }
        let now = self.clock.now_ms();
        let limits = self.config.risk.clone();
        let mut trips = Vec::new();
        self.store.transaction(|conn| {
            let stored = store::loss_state(conn)?;
            let mut state = stored.after_resets(now);
            let period_start = loss_period_start(now, state.since_ms);
            let realized = store::realized_since(conn, period_start)?;
            let breaker_open = store::breaker(conn, GLOBAL)?.is_some_and(|b| b.open);
            let facts = LossFacts {
                period_start,
                latched: state.latched,
                breaker_open,
                alerted: false,
                protected_trades: store::protected_trade_count(conn)?,
                open_trades: store::open_trade_count(conn)?,
            };
            let mut decision = daily_loss_decision(&limits, &realized, facts);
            if let Some(alert) = &decision.alert {
                if store::alert_exists(conn, &alert.key)? {
                    decision.alert = None;
                }
            }
            state.latched = decision.latch;
            if state != stored {
                store::save_loss_state(conn, &state)?;
            }
            if let Some(alert) = &decision.alert {
                error!(
                    symbol = GLOBAL,
                    reason = DAILY_LOSS_REASON,
                    "{}",
                    alert.text
                );
                store::enqueue_alert(conn, alert, None, Some(GLOBAL), now)?;
            }
            if !decision.trip {
                return Ok(());
            }
            if trip_breaker(conn, GLOBAL, DAILY_LOSS_REASON, now)? {
                trips.push(Trip {
                    symbol: GLOBAL.to_string(),
                    reason: DAILY_LOSS_REASON.to_string(),
                });
            }
            let detail = format!("breaker tripped: {DAILY_LOSS_REASON}");
            store::record_event(conn, now, None, Some(GLOBAL), "breaker", &detail)
        })?;
        record_trips(&trips);
        Ok(())
    }

    /// The configured limits (+Inf when off) and what is used of them: open trades, entries in
    /// the last hour, and the loss period's net loss per quote asset with a limit.
    pub(super) fn read_risk_gauges(&self, conn: &Connection) -> store::Result<()> {
        let limits = &self.config.risk;
        let now = self.clock.now_ms();
        let scalar = |limit: Limit| -> Option<f64> {
            match limit {
                Limit::MaxOpenTrades => limits.max_open_trades.map(f64::from),
                Limit::MaxOpenTradesPerSymbol => limits.max_open_trades_per_symbol.map(f64::from),
                Limit::MaxNotionalPerOrder => limits.max_notional_per_order?.to_f64(),
                Limit::Cooldown => limits.cooldown_ms.map(|ms| ms as f64 / 1000.0),
                Limit::MaxEntriesPerHour => limits.max_entries_per_hour.map(f64::from),
                Limit::DailyLoss => None,
            }
        };
        for limit in names::RISK_SCALAR_LIMITS {
            let value = scalar(limit).unwrap_or(f64::INFINITY);
            gauge!(names::RISK_LIMIT, "limit" => limit.as_str(), "asset" => "").set(value);
        }
        let open = store::open_trade_count(conn)?;
        let entries = store::entries_since(conn, now - HOUR_MS)?;
        gauge!(names::RISK_USED, "limit" => Limit::MaxOpenTrades.as_str(), "asset" => "")
            .set(f64::from(open));
        gauge!(names::RISK_USED, "limit" => Limit::MaxEntriesPerHour.as_str(), "asset" => "")
            .set(f64::from(entries));
        if limits.daily_loss.is_empty() {
            return Ok(());
        }
        let realized = store::realized_since(conn, loss_period(conn, now)?)?;
        for (asset, limit) in &limits.daily_loss {
            let loss = (-realized.get(asset).copied().unwrap_or_default()).max(Decimal::ZERO);
            let name = Limit::DailyLoss.as_str();
            gauge!(names::RISK_LIMIT, "limit" => name, "asset" => asset.clone())
                .set(limit.to_f64().unwrap_or(f64::MAX));
            gauge!(names::RISK_USED, "limit" => name, "asset" => asset.clone())
                .set(loss.to_f64().unwrap_or(0.0));
        }
        Ok(())
    }
}
