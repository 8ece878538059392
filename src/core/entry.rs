//! Turning a signal into a new trade: the guards that come before any entry (breaker, one open
//! trade per symbol, sizing that stays protectable after fees, balance) and the trade's first
//! view with its intent rows. Pure.

use rust_decimal::Decimal;

use crate::core::breaker::{Breaker, entry_block_reason};
use crate::core::domain::{Instrument, Millis, OrderType, ProtectionMode, Side};
use crate::core::ids::{Role, TRADE_ID_MAX, is_valid_epoch};
use crate::core::normalize::{check_minimums, floor_to_tick, plain, protective_prices};
use crate::core::trade::{Trade, TradeState, TradeView, new_order, protective_intents};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntrySize {
    Quantity(Decimal),
    /// Value in the quote asset.
    Notional(Decimal),
}

/// What a signal asks for, with the watchlist's protection settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryRequest {
    pub symbol: String,
    pub side: Side,
    pub size: EntrySize,
    pub stop_loss_pct: Decimal,
    pub take_profit_pct: Decimal,
    pub mode: ProtectionMode,
    pub signal_id: Option<i64>,
}

/// What the guards look at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryContext<'a> {
    /// The database's client_oid epoch (`ids`), carried by every order of the new trade.
    pub epoch: &'a str,
    pub instrument: &'a Instrument,
    pub last_price: Decimal,
    pub free_base: Decimal,
    pub free_quote: Decimal,
    pub symbol_breaker: Option<&'a Breaker>,
    pub global_breaker: Option<&'a Breaker>,
    pub open_trade_on_symbol: bool,
    pub allow_concurrent_trades: bool,
}

/// Checks every guard and returns the new trade with its entry intent (and, in OTOCO mode, the
/// two protective legs), or the reason the signal is refused.
pub fn plan_entry(
    trade_id: i64,
    request: &EntryRequest,
    context: &EntryContext<'_>,
    now: Millis,
) -> Result<TradeView, String> {
    if let Some(reason) = entry_block_reason(context.symbol_breaker, context.global_breaker) {
        return Err(reason);
    }
    if !(1..=TRADE_ID_MAX).contains(&trade_id) || !is_valid_epoch(context.epoch) {
        return Err(format!(
            "trade id {trade_id} or epoch {:?} cannot form a client_oid",
            context.epoch
        ));
    }
    if context.open_trade_on_symbol && !context.allow_concurrent_trades {
        return Err(format!("{} already has an open trade", request.symbol));
    }
    let instrument = context.instrument;
    let quantity = entry_quantity(request.size, context.last_price, instrument.quantity_tick)?;
    check_minimums(instrument, quantity, &[context.last_price])
        .map_err(|problem| format!("entry size: {problem}"))?;
    let protect = expected_protect_quantity(request.side, quantity, instrument);
    let (stop, profit) = protective_prices(
        request.side,
        context.last_price,
        request.stop_loss_pct,
        request.take_profit_pct,
        instrument.price_tick,
    );
    check_minimums(instrument, protect, &[stop, profit])
        .map_err(|problem| format!("position would be unprotectable: {problem}"))?;
    check_balance(request.side, quantity, context)?;
    Ok(new_trade_view(
        context.epoch,
        trade_id,
        request,
        instrument,
        quantity,
        protect,
        stop,
        profit,
        now,
    ))
}

fn entry_quantity(size: EntrySize, last_price: Decimal, tick: Decimal) -> Result<Decimal, String> {
    let raw = match size {
        EntrySize::Quantity(quantity) => quantity,
        EntrySize::Notional(notional) => {
            if last_price <= Decimal::ZERO {
                return Err("no positive last price to size a notional entry".into());
            }
            notional
                .checked_div(last_price)
                .ok_or("notional divided by the last price overflows")?
        }
    };
    if raw <= Decimal::ZERO {
        return Err(format!("entry size must be positive, got {}", plain(raw)));
    }
    Ok(floor_to_tick(raw, tick))
}

/// A BUY pays its fee in the base asset, so less than the fill can be sold back.
fn expected_protect_quantity(side: Side, quantity: Decimal, instrument: &Instrument) -> Decimal {
    match side {
        // A fee rate is below 1, so the product never exceeds the quantity.
        Side::Buy => floor_to_tick(
            quantity.saturating_mul(Decimal::ONE - instrument.taker_fee_rate),
            instrument.quantity_tick,
        ),
        Side::Sell => quantity,
    }
}

fn check_balance(side: Side, quantity: Decimal, context: &EntryContext<'_>) -> Result<(), String> {
    let instrument = context.instrument;
    match side {
        Side::Buy => {
            let cost = quantity
                .checked_mul(context.last_price)
                .and_then(|value| value.checked_mul(Decimal::ONE + instrument.taker_fee_rate))
                .ok_or("the entry's cost overflows")?;
            if cost > context.free_quote {
                return Err(format!(
                    "insufficient {}: need about {}, free {}",
                    instrument.quote,
                    plain(cost.round_dp(8)),
                    plain(context.free_quote)
                ));
            }
        }
        Side::Sell => {
            if quantity > context.free_base {
                return Err(format!(
                    "insufficient {}: need {}, free {}",
                    instrument.base,
                    plain(quantity),
                    plain(context.free_base)
                ));
            }
        }
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn new_trade_view(
    epoch: &str,
    trade_id: i64,
    request: &EntryRequest,
    instrument: &Instrument,
    quantity: Decimal,
    protect: Decimal,
    stop: Decimal,
    profit: Decimal,
    now: Millis,
) -> TradeView {
    let otoco = request.mode == ProtectionMode::Otoco;
    let trade = Trade {
        id: trade_id,
        symbol: request.symbol.clone(),
        side: request.side,
        mode: request.mode,
        state: TradeState::EntryPending,
        signal_id: request.signal_id,
        entry_quantity: quantity,
        quantity_tick: instrument.quantity_tick,
        price_tick: instrument.price_tick,
        stop_loss_pct: request.stop_loss_pct,
        take_profit_pct: request.take_profit_pct,
        filled_quantity: Decimal::ZERO,
        avg_price: Decimal::ZERO,
        fee: Decimal::ZERO,
        fee_currency: None,
        protect_quantity: otoco.then_some(protect),
        stop_loss_price: otoco.then_some(stop),
        take_profit_price: otoco.then_some(profit),
        attempts: 0,
        phase_started_ms: now,
        due_ms: Some(now),
        generation: 0,
        protect_attempts: 0,
        reprotects: 0,
        entry_seen: false,
        filled_at_ms: None,
        protected_at_ms: None,
        close_reason: None,
        epoch: epoch.to_string(),
        recovering_since_ms: None,
        breaker_tripped: false,
        created_ms: now,
        updated_ms: now,
    };
    let entry = new_order(
        epoch,
        trade_id,
        Role::Entry,
        0,
        request.side,
        OrderType::Market,
        quantity,
        None,
        None,
    );
    let mut view = TradeView {
        trade,
        orders: vec![entry],
    };
    if otoco {
        let (stop_order, profit_order) = protective_intents(&view, 0, protect, stop, profit);
        view.orders.push(stop_order);
        view.orders.push(profit_order);
    }
    view
}
