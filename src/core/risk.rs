//! Risk limits: the guards an entry passes after the breakers and before sizing is trusted, and
//! the daily realized-loss check that opens the global breaker. Pure: the shell reads the usage
//! from the database and records what these functions decide.
//!
//! The limits gate entries only. Nothing here ever stops, delays or resizes a protective order
//! or a failsafe exit: a trade that is open stays watched and protected whatever the limits say.

use std::collections::BTreeMap;
use std::fmt;

use rust_decimal::Decimal;

use crate::core::domain::{Millis, Side};
use crate::core::ids::Role;
use crate::core::normalize::plain;
use crate::core::trade::{Alert, Severity, TradeView};

/// One hour, the window of `max_entries_per_hour`.
pub const HOUR_MS: Millis = 3_600_000;
/// One day, the period of the realized-loss limit (UTC days).
pub const DAY_MS: Millis = 86_400_000;

/// The configured limits; `None` (or an empty map) is no limit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RiskLimits {
    /// Trades open at once, all symbols together.
    pub max_open_trades: Option<u32>,
    /// Trades open at once on one symbol.
    pub max_open_trades_per_symbol: Option<u32>,
    /// The entry's value in its quote asset (quantity × last price).
    pub max_notional_per_order: Option<Decimal>,
    /// No entry on a symbol until this long after its last trade ended.
    pub cooldown_ms: Option<Millis>,
    /// Net realized loss per quote asset (e.g. `USDT`) since the start of the UTC day, or since
    /// the global breaker was last reset that day, at which the global breaker opens.
    pub daily_loss: BTreeMap<String, Decimal>,
    /// Trades opened in the last hour, all symbols together.
    pub max_entries_per_hour: Option<u32>,
}

/// Which limit refused an entry; its name is the `limit` label of the metrics and the start of
/// the dropped signal's reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Limit {
    MaxOpenTrades,
    MaxOpenTradesPerSymbol,
    MaxNotionalPerOrder,
    Cooldown,
    DailyLoss,
    MaxEntriesPerHour,
}

impl Limit {
    pub const ALL: [Limit; 6] = [
        Limit::MaxOpenTrades,
        Limit::MaxOpenTradesPerSymbol,
        Limit::MaxNotionalPerOrder,
        Limit::Cooldown,
        Limit::DailyLoss,
        Limit::MaxEntriesPerHour,
    ];

    /// The configuration key's last part, also the metrics label.
    pub fn as_str(self) -> &'static str {
        match self {
            Limit::MaxOpenTrades => "max_open_trades",
            Limit::MaxOpenTradesPerSymbol => "max_open_trades_per_symbol",
            Limit::MaxNotionalPerOrder => "max_notional_per_order",
            Limit::Cooldown => "cooldown",
            Limit::DailyLoss => "daily_loss_limit",
            Limit::MaxEntriesPerHour => "max_entries_per_hour",
        }
    }
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the limits are measured against at the moment of one entry, read from the store.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RiskUsage {
    /// Trades not closed or halted (recovering ones count: their position may exist).
    pub open_trades: u32,
    pub open_trades_on_symbol: u32,
    /// When the symbol's most recent trade that filled ended (closed or halted).
    pub last_ended_on_symbol_ms: Option<Millis>,
    /// Trades opened since `now − 1 h`.
    pub entries_last_hour: u32,
    /// Net realized result per quote asset over the loss period (negative is a loss).
    pub realized: BTreeMap<String, Decimal>,
}

/// An entry the limits refuse, with the figures behind it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub limit: Limit,
    pub detail: String,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "risk limit {}: {}", self.limit, self.detail)
    }
}

/// Checks one entry of `notional` (quote asset `quote`) against every limit, in a fixed order,
/// and names the first that refuses it.
pub fn check_entry(
    limits: &RiskLimits,
    usage: &RiskUsage,
    quote: &str,
    notional: Decimal,
    now: Millis,
) -> Result<(), Refusal> {
    let refuse = |limit: Limit, detail: String| Err(Refusal { limit, detail });
    if let Some(max) = limits.max_open_trades {
        if usage.open_trades >= max {
            let detail = format!("{} trades open, at most {max}", usage.open_trades);
            return refuse(Limit::MaxOpenTrades, detail);
        }
    }
    if let Some(max) = limits.max_open_trades_per_symbol {
        if usage.open_trades_on_symbol >= max {
            let open = usage.open_trades_on_symbol;
            return refuse(
                Limit::MaxOpenTradesPerSymbol,
                format!("{open} trades open on the symbol, at most {max}"),
            );
        }
    }
    if let Some(max) = limits.max_notional_per_order {
        if notional > max {
            let detail = format!(
                "the entry is worth about {} {quote}, at most {}",
                plain(notional.round_dp(8)),
                plain(max)
            );
            return refuse(Limit::MaxNotionalPerOrder, detail);
        }
    }
    if let (Some(cooldown), Some(ended)) = (limits.cooldown_ms, usage.last_ended_on_symbol_ms) {
        let until = ended.saturating_add(cooldown);
        if now < until {
            let detail = format!(
                "the symbol's last trade ended {} s ago, cooldown {} s",
                (now - ended).max(0) / 1000,
                cooldown / 1000
            );
            return refuse(Limit::Cooldown, detail);
        }
    }
    if let Some(breach) = daily_loss_breach(limits, &usage.realized) {
        if breach.quote == quote {
            return refuse(Limit::DailyLoss, breach.to_string());
        }
    }
    if let Some(max) = limits.max_entries_per_hour {
        if usage.entries_last_hour >= max {
            let detail = format!(
                "{} entries in the last hour, at most {max}",
                usage.entries_last_hour
            );
            return refuse(Limit::MaxEntriesPerHour, detail);
        }
    }
    Ok(())
}

/// A realized loss at or beyond its limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LossBreach {
    pub quote: String,
    /// The net loss, positive.
    pub loss: Decimal,
    pub limit: Decimal,
}

impl fmt::Display for LossBreach {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "realized loss today {} {quote}, limit {} {quote}",
            plain(self.loss.round_dp(8)),
            plain(self.limit),
            quote = self.quote
        )
    }
}

/// The first quote asset (in name order) whose net realized loss reached its limit.
pub fn daily_loss_breach(
    limits: &RiskLimits,
    realized: &BTreeMap<String, Decimal>,
) -> Option<LossBreach> {
    limits.daily_loss.iter().find_map(|(quote, limit)| {
        let result = realized.get(quote).copied().unwrap_or_default();
        let loss = -result;
        (loss > Decimal::ZERO && loss >= *limit).then(|| LossBreach {
            quote: quote.clone(),
            loss,
            limit: *limit,
        })
    })
}

/// The reason the global breaker carries when the daily loss limit opened it.
pub const DAILY_LOSS_REASON: &str = "daily_loss_limit";

/// What the shell does when a realized loss reaches its limit: open the global breaker and
/// queue the CRITICAL alert, once per loss period (the alert's key carries the period's start,
/// so an operator's reset, which starts a new period, re-arms it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LossTrip {
    pub reason: &'static str,
    pub alert: Alert,
}

/// The daily loss limit's state, kept in the database: the operator's last reset of a loss
/// trip (as the command stamped it on the wall clock: only a marker of change), the marker the
/// agent last acted on, when the agent began counting again after it (on the agent's own
/// clock), and whether a loss trip holds the global breaker until the operator resets it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LossState {
    pub reset_marker: Option<Millis>,
    pub reset_seen: Option<Millis>,
    pub since_ms: Option<Millis>,
    pub latched: bool,
}

impl LossState {
    /// A reset the agent has not acted on yet releases the latch and starts the count again
    /// at `now`, on the agent's clock (the command's stamp is on the wall clock, which the
    /// agent's may trail).
    pub fn after_resets(self, now: Millis) -> LossState {
        if self.reset_marker == self.reset_seen {
            return self;
        }
        LossState {
            reset_marker: self.reset_marker,
            reset_seen: self.reset_marker,
            since_ms: Some(now),
            latched: false,
        }
    }
}

/// What one daily loss check does: queue the alert (once per loss period), open the global
/// breaker, and latch it so that only the operator's reset lets entries open again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LossDecision {
    pub alert: Option<Alert>,
    pub trip: bool,
    pub latch: bool,
}

/// Facts of one daily loss check besides the limits and the results.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LossFacts {
    pub period_start: Millis,
    pub latched: bool,
    pub breaker_open: bool,
    /// Whether this period's alert was queued before.
    pub alerted: bool,
    pub protected_trades: u32,
    pub open_trades: u32,
}

/// A breach trips (and alerts, once per period); a latched trip holds the global breaker open
/// until the operator's reset, across midnight and whatever else closed it (the start-up
/// self-check closing a trip of its own that this one joined).
pub fn daily_loss_decision(
    limits: &RiskLimits,
    realized: &BTreeMap<String, Decimal>,
    facts: LossFacts,
) -> LossDecision {
    let Some(trip) = daily_loss_trip(limits, realized, facts) else {
        return LossDecision {
            alert: None,
            trip: facts.latched && !facts.breaker_open,
            latch: facts.latched,
        };
    };
    LossDecision {
        alert: (!facts.alerted).then_some(trip.alert),
        trip: !facts.breaker_open,
        latch: true,
    }
}

/// The trip a breach calls for, or `None` within the limits.
pub fn daily_loss_trip(
    limits: &RiskLimits,
    realized: &BTreeMap<String, Decimal>,
    facts: LossFacts,
) -> Option<LossTrip> {
    let breach = daily_loss_breach(limits, realized)?;
    let unsettled = facts.open_trades.saturating_sub(facts.protected_trades);
    let text = format!(
        "CRITICAL *: daily loss limit reached: {breach}.\nThe global breaker is OPEN: no new entries on any symbol. {} protected trades stay watched and protected; {unsettled} other open trades are still being resolved.\nTo do: review the day's trades (`fillguard status`), then `fillguard breaker reset '*'` to trade again; losses before the reset no longer count.",
        facts.protected_trades
    );
    Some(LossTrip {
        reason: DAILY_LOSS_REASON,
        alert: Alert {
            severity: Severity::Critical,
            key: format!("daily-loss:{}:{}", breach.quote, facts.period_start),
            text,
        },
    })
}

/// Where the loss period starts: the UTC midnight before `now`, or the later moment the agent
/// began counting again after an operator's reset (never later than `now`).
pub fn loss_period_start(now: Millis, since: Option<Millis>) -> Millis {
    let midnight = now - now.rem_euclid(DAY_MS);
    since.map_or(midnight, |since| since.min(now).max(midnight))
}

/// The net result of a trade that has ended, in its quote asset: what its exit and protective
/// fills brought in against what the entry cost (a SELL entry the other way round), less every
/// fee in the quote asset or in the base asset (valued at the fill's own price). A fee in a
/// third asset is not counted. A fill without a price (an exchange that left it out) is valued
/// at the order's limit or trigger price. `None` when nothing filled, a filled quantity has no
/// price at all, or the arithmetic overflows.
pub fn realized_result(view: &TradeView, base: &str, quote: &str) -> Option<Decimal> {
    let trade = &view.trade;
    if trade.filled_quantity <= Decimal::ZERO || trade.avg_price <= Decimal::ZERO {
        return None;
    }
    let direction = match trade.side {
        Side::Buy => Decimal::ONE,
        Side::Sell => Decimal::NEGATIVE_ONE,
    };
    let fee_value = |fee: Decimal, currency: Option<&str>, price: Decimal| match currency {
        Some(currency) if currency == quote => Some(fee),
        Some(currency) if currency == base => fee.checked_mul(price),
        _ => Some(Decimal::ZERO),
    };
    let entry_fee = fee_value(trade.fee, trade.fee_currency.as_deref(), trade.avg_price)?;
    let mut result = Decimal::ZERO.checked_sub(entry_fee)?;
    for order in view.orders.iter().filter(|order| order.role != Role::Entry) {
        if order.cumulative_quantity <= Decimal::ZERO {
            continue;
        }
        let price = [Some(order.avg_price), order.price, order.trigger_price]
            .into_iter()
            .flatten()
            .find(|price| *price > Decimal::ZERO)?;
        let moved = price.checked_sub(trade.avg_price)?;
        let gain = order
            .cumulative_quantity
            .checked_mul(moved)?
            .checked_mul(direction)?;
        let fee = fee_value(order.fee, order.fee_currency.as_deref(), price)?;
        result = result.checked_add(gain)?.checked_sub(fee)?;
    }
    Some(result)
}

#[cfg(test)]
mod tests;
