//! The risk part of `fillguard status`: each configured limit with what is used of it now, the
//! symbols cooling down, and the signals the limits dropped in the loss period. Reads only.

use std::collections::BTreeMap;

use rusqlite::Connection;
use serde_json::{Value, json};

use crate::config::Config;
use crate::core::domain::Millis;
use crate::core::normalize::plain;
use crate::core::risk::{HOUR_MS, Limit, RiskLimits, loss_period_start};
use crate::store;

/// What `status` shows of the risk limits.
pub struct RiskReport {
    pub limits: RiskLimits,
    pub open_trades: u32,
    pub entries_last_hour: u32,
    pub loss_period_start_ms: Millis,
    /// Net realized result per quote asset since the loss period started.
    pub realized: BTreeMap<String, rust_decimal::Decimal>,
    /// Watchlist symbols still cooling down, with the seconds left.
    pub cooling: Vec<(String, i64)>,
    /// Signals the limits dropped in the loss period, by limit.
    pub dropped: BTreeMap<String, u32>,
}

pub fn risk_report(
    conn: &Connection,
    config: &Config,
    now: Millis,
) -> Result<RiskReport, store::StoreError> {
    let limits = config.risk.clone();
    let since = loss_period_start(now, store::loss_state(conn)?.since_ms);
    let mut cooling = Vec::new();
    if let Some(cooldown) = limits.cooldown_ms {
        for item in &config.watchlist {
            let usage = store::risk_usage(conn, &item.symbol, now, since)?;
            if let Some(ended) = usage.last_ended_on_symbol_ms {
                let left = ended.saturating_add(cooldown) - now;
                if left > 0 {
                    cooling.push((item.symbol.clone(), (left + 999) / 1000));
                }
            }
        }
    }
    Ok(RiskReport {
        open_trades: store::open_trade_count(conn)?,
        entries_last_hour: store::entries_since(conn, now - HOUR_MS)?,
        loss_period_start_ms: since,
        realized: store::realized_since(conn, since)?,
        cooling,
        dropped: store::risk_drops_since(conn, since)?,
        limits,
    })
}

fn shown<T: ToString>(value: Option<T>) -> String {
    value.map_or_else(|| "off".to_string(), |v| v.to_string())
}

pub fn risk_json(report: &RiskReport) -> Value {
    let limits = &report.limits;
    json!({
        "limits": {
            Limit::MaxOpenTrades.as_str(): limits.max_open_trades,
            Limit::MaxOpenTradesPerSymbol.as_str(): limits.max_open_trades_per_symbol,
            Limit::MaxNotionalPerOrder.as_str(): limits.max_notional_per_order.map(plain),
            "cooldown_seconds": limits.cooldown_ms.map(|ms| ms / 1000),
            Limit::MaxEntriesPerHour.as_str(): limits.max_entries_per_hour,
            Limit::DailyLoss.as_str(): limits.daily_loss.iter()
                .map(|(asset, limit)| (asset.clone(), Value::from(plain(*limit))))
                .collect::<serde_json::Map<_, _>>(),
        },
        "open_trades": report.open_trades,
        "entries_last_hour": report.entries_last_hour,
        "loss_period_start_ms": report.loss_period_start_ms,
        "realized": report.realized.iter()
            .map(|(asset, value)| (asset.clone(), Value::from(plain(*value))))
            .collect::<serde_json::Map<_, _>>(),
        "cooling_down": report.cooling.iter()
            .map(|(symbol, left)| json!({"symbol": symbol, "seconds_left": left}))
            .collect::<Vec<_>>(),
        "dropped": report.dropped,
    })
}

pub fn print_risk(report: &RiskReport) {
    let limits = &report.limits;
    println!("\nrisk limits:");
    println!(
        "  open trades        {} of {}",
        report.open_trades,
        shown(limits.max_open_trades)
    );
    println!(
        "  per symbol         {}",
        shown(limits.max_open_trades_per_symbol)
    );
    println!(
        "  notional per order {}",
        shown(limits.max_notional_per_order.map(plain))
    );
    println!(
        "  entries last hour  {} of {}",
        report.entries_last_hour,
        shown(limits.max_entries_per_hour)
    );
    let cooling: Vec<String> = report
        .cooling
        .iter()
        .map(|(symbol, left)| format!("{symbol} {left} s"))
        .collect();
    println!(
        "  cooldown           {}{}",
        shown(limits.cooldown_ms.map(|ms| format!("{} s", ms / 1000))),
        if cooling.is_empty() {
            String::new()
        } else {
            format!(" (cooling: {})", cooling.join(", "))
        }
    );
    if limits.daily_loss.is_empty() {
        println!("  daily loss         off");
    }
    for (asset, limit) in &limits.daily_loss {
        let result = report.realized.get(asset).copied().unwrap_or_default();
        println!(
            "  daily loss {asset:<7} result {} of limit -{}",
            plain(result.round_dp(8)),
            plain(*limit)
        );
    }
    if !report.dropped.is_empty() {
        let dropped: Vec<String> = report
            .dropped
            .iter()
            .map(|(limit, count)| format!("{limit} {count}"))
            .collect();
        println!("  dropped today      {}", dropped.join(", "));
    }
}
