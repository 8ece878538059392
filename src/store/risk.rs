//! What the risk limits read and what an ended trade leaves for them: when it ended and its
//! realized result in its quote asset. Queries only; the limits are decided in `core::risk`.

use std::collections::BTreeMap;
use std::str::FromStr;

use rusqlite::{Connection, OptionalExtension, params};
use rust_decimal::Decimal;

use super::Result;
use crate::core::domain::Millis;
use crate::core::normalize::plain;
use crate::core::risk::{HOUR_MS, LossState, RiskUsage, realized_result};
use crate::core::trade::TradeView;

/// Called with every saved view: the first save of an ended trade stamps `ended_ms`, and every
/// save of one records its realized result (the quote and base assets from the cached
/// instrument, else from the symbol's `BASE_QUOTE` form).
pub(super) fn record_end(conn: &Connection, view: &TradeView) -> Result<()> {
    let trade = &view.trade;
    if !trade.state.is_terminal() {
        return Ok(());
    }
    let (base, quote) = assets(conn, &trade.symbol)?;
    let result = realized_result(view, &base, &quote).map(plain);
    conn.prepare_cached(
        "UPDATE trades SET ended_ms = COALESCE(ended_ms, ?2), realized_result = ?3,
            result_asset = ?4 WHERE id = ?1",
    )?
    .execute(params![trade.id, trade.updated_ms, result, quote])?;
    Ok(())
}

fn assets(conn: &Connection, symbol: &str) -> Result<(String, String)> {
    if let Some(instrument) = super::cached_instrument(conn, symbol)? {
        return Ok((instrument.base, instrument.quote));
    }
    let (base, quote) = symbol.split_once('_').unwrap_or((symbol, ""));
    Ok((base.to_string(), quote.to_string()))
}

/// Net realized results per asset of the trades that ended at or after `since`. A result that
/// does not parse (only a hand-edited row can hold one) counts as nothing.
pub fn realized_since(conn: &Connection, since: Millis) -> Result<BTreeMap<String, Decimal>> {
    let mut statement = conn.prepare_cached(
        "SELECT result_asset, realized_result FROM trades
         WHERE ended_ms >= ?1 AND realized_result IS NOT NULL AND result_asset IS NOT NULL",
    )?;
    let rows = statement.query_map([since], |row| {
        Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
    })?;
    let mut sums: BTreeMap<String, Decimal> = BTreeMap::new();
    for row in rows {
        let (asset, text) = row?;
        let Ok(value) = Decimal::from_str(&text) else {
            continue;
        };
        let sum = sums.entry(asset).or_default();
        *sum = sum.saturating_add(value);
    }
    Ok(sums)
}

/// The figures one entry on `symbol` is checked against at `now`, the realized results counted
/// from `loss_since`.
pub fn risk_usage(
    conn: &Connection,
    symbol: &str,
    now: Millis,
    loss_since: Millis,
) -> Result<RiskUsage> {
    let count = |sql: &str, value: &dyn rusqlite::ToSql| -> Result<u32> {
        let n: i64 = conn
            .prepare_cached(sql)?
            .query_row([value], |row| row.get(0))?;
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    };
    let open_trades = open_trade_count(conn)?;
    let open_trades_on_symbol = count(
        "SELECT COUNT(*) FROM trades WHERE symbol = ?1 AND state NOT IN ('CLOSED', 'HALTED')",
        &symbol,
    )?;
    let last_ended_on_symbol_ms: Option<Millis> = conn
        .prepare_cached(
            // Trades that filled: an entry that never filled traded nothing to cool down from.
            "SELECT MAX(ended_ms) FROM trades
             WHERE symbol = ?1 AND ended_ms IS NOT NULL AND realized_result IS NOT NULL",
        )?
        .query_row([symbol], |row| row.get(0))
        .optional()?
        .flatten();
    let entries_last_hour = entries_since(conn, now - HOUR_MS)?;
    Ok(RiskUsage {
        open_trades,
        open_trades_on_symbol,
        last_ended_on_symbol_ms,
        entries_last_hour,
        realized: realized_since(conn, loss_since)?,
    })
}

/// Trades opened after `since`.
pub fn entries_since(conn: &Connection, since: Millis) -> Result<u32> {
    let n: i64 = conn
        .prepare_cached("SELECT COUNT(*) FROM trades WHERE created_ms > ?1")?
        .query_row([since], |row| row.get(0))?;
    Ok(u32::try_from(n).unwrap_or(u32::MAX))
}

/// Trades whose protection is live and verified.
pub fn protected_trade_count(conn: &Connection) -> Result<u32> {
    let n: i64 = conn
        .prepare_cached(
            "SELECT COUNT(*) FROM trades WHERE state NOT IN ('CLOSED', 'HALTED') AND state = 'PROTECTED'",
        )?
        .query_row([], |row| row.get(0))?;
    Ok(u32::try_from(n).unwrap_or(u32::MAX))
}

/// Trades not closed or halted, every symbol.
pub fn open_trade_count(conn: &Connection) -> Result<u32> {
    let n: i64 = conn
        .prepare_cached("SELECT COUNT(*) FROM trades WHERE state NOT IN ('CLOSED', 'HALTED')")?
        .query_row([], |row| row.get(0))?;
    Ok(u32::try_from(n).unwrap_or(u32::MAX))
}

/// Whether an alert with this key was ever queued.
pub fn alert_exists(conn: &Connection, key: &str) -> Result<bool> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM alerts WHERE dedup_key = ?1")?
        .query_row([key], |_| Ok(()))
        .optional()?
        .is_some())
}

/// Signals a risk limit dropped since `since`, by the limit named in their reason.
pub fn risk_drops_since(conn: &Connection, since: Millis) -> Result<BTreeMap<String, u32>> {
    let mut statement = conn.prepare_cached(
        "SELECT reason FROM signals
         WHERE status = 'DROPPED' AND created_at_ms >= ?1 AND reason LIKE 'risk limit %'",
    )?;
    let rows = statement.query_map([since], |row| row.get::<_, String>(0))?;
    let mut counts = BTreeMap::new();
    for reason in rows {
        let reason = reason?;
        let limit = reason
            .trim_start_matches("risk limit ")
            .split(':')
            .next()
            .unwrap_or_default()
            .to_string();
        *counts.entry(limit).or_insert(0u32) += 1;
    }
    Ok(counts)
}

/// `meta` keys of the daily loss limit's state.
const RESET_MARKER_KEY: &str = "risk_global_reset_ms";
const RESET_SEEN_KEY: &str = "risk_global_reset_seen";
const LOSS_SINCE_KEY: &str = "risk_loss_since_ms";
const LATCH_KEY: &str = "risk_loss_latched";

fn meta_i64(conn: &Connection, key: &str) -> Result<Option<i64>> {
    let value: Option<String> = conn
        .prepare_cached("SELECT value FROM meta WHERE key = ?1")?
        .query_row([key], |row| row.get(0))
        .optional()?;
    Ok(value.and_then(|text| text.parse().ok()))
}

fn set_meta(conn: &Connection, key: &str, value: Option<i64>) -> Result<()> {
    match value {
        Some(value) => conn
            .prepare_cached("INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)")?
            .execute(params![key, value.to_string()])?,
        None => conn
            .prepare_cached("DELETE FROM meta WHERE key = ?1")?
            .execute([key])?,
    };
    Ok(())
}

pub fn loss_state(conn: &Connection) -> Result<LossState> {
    Ok(LossState {
        reset_marker: meta_i64(conn, RESET_MARKER_KEY)?,
        reset_seen: meta_i64(conn, RESET_SEEN_KEY)?,
        since_ms: meta_i64(conn, LOSS_SINCE_KEY)?,
        latched: meta_i64(conn, LATCH_KEY)?.is_some(),
    })
}

/// Saves what the agent keeps of the state (the marker is the command's).
pub fn save_loss_state(conn: &Connection, state: &LossState) -> Result<()> {
    set_meta(conn, RESET_SEEN_KEY, state.reset_seen)?;
    set_meta(conn, LOSS_SINCE_KEY, state.since_ms)?;
    set_meta(conn, LATCH_KEY, state.latched.then_some(1))
}

/// Notes an operator's reset of a loss trip: the agent starts counting the day's losses again
/// when it sees it. Only the operator's command writes it.
pub fn record_global_reset(conn: &Connection, now: Millis) -> Result<()> {
    set_meta(conn, RESET_MARKER_KEY, Some(now))
}
