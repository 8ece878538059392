//! Synchronous checks of one order request against an instrument, in the order Crypto.com
//! Exchange v1 reports them: shape (40004), quantity (213), price and trigger (308), minimums
//! (415), trigger side (229). Pure functions; balance (306) and duplicates (204) need engine
//! state and are checked by the engine.

use rust_decimal::Decimal;

use crate::core::domain::{Instrument, OrderRequest, OrderType, Side};

use super::engine::EngineReject;
use super::price::PRICE_MAX;

pub const CODE_DUPLICATE_CLIENT_OID: i64 = 204;
pub const CODE_INVALID_INSTRUMENT: i64 = 209;
pub const CODE_INVALID_ORDER_ID: i64 = 212;
pub const CODE_INVALID_QUANTITY: i64 = 213;
pub const CODE_INVALID_REFERENCE_PRICE: i64 = 229;
pub const CODE_INSUFFICIENT_BALANCE: i64 = 306;
pub const CODE_INVALID_PRICE: i64 = 308;
pub const CODE_NO_ACTIVE_ORDER: i64 = 316;
pub const CODE_TOO_MANY_ORDERS: i64 = 318;
pub const CODE_BELOW_MINIMUM: i64 = 415;
pub const CODE_INVALID_ARGUMENT: i64 = 40004;

/// Longest client_oid Crypto.com accepts.
pub const CLIENT_OID_LENGTH_MAX: usize = 36;
/// Largest quantity (and notional) accepted, so that quantity × price cannot overflow.
pub const QUANTITY_MAX: i64 = 1_000_000_000_000;

pub fn is_on_tick(value: Decimal, tick: Decimal) -> bool {
    assert!(tick > Decimal::ZERO);
    value.checked_rem(tick).is_some_and(|rest| rest.is_zero())
}

pub fn is_trigger(order_type: OrderType) -> bool {
    matches!(order_type, OrderType::StopLoss | OrderType::TakeProfit)
}

pub fn check_client_oid(client_oid: &str) -> Result<(), EngineReject> {
    if client_oid.is_empty() || client_oid.len() > CLIENT_OID_LENGTH_MAX {
        return Err(EngineReject::new(
            CODE_INVALID_ARGUMENT,
            format!("client_oid must be 1 to {CLIENT_OID_LENGTH_MAX} characters"),
        ));
    }
    Ok(())
}

/// Every check that needs only the request, the instrument and a reference price: the limit
/// price of a LIMIT order, else the price the trigger side and minimum notional are judged at.
pub fn check_request(
    request: &OrderRequest,
    instrument: &Instrument,
    reference_price: Decimal,
) -> Result<(), EngineReject> {
    check_shape(request)?;
    check_quantity(request, instrument)?;
    check_prices(request, instrument)?;
    check_minimums(request, instrument, reference_price)?;
    check_trigger_side(request, reference_price)
}

fn invalid_argument(message: &str) -> EngineReject {
    EngineReject::new(CODE_INVALID_ARGUMENT, message)
}

/// Which fields each order type requires and forbids.
fn check_shape(request: &OrderRequest) -> Result<(), EngineReject> {
    let by_notional = request.notional.is_some();
    match (request.quantity.is_some(), by_notional) {
        (true, true) => return Err(invalid_argument("give quantity or notional, not both")),
        (false, false) => return Err(invalid_argument("quantity is required")),
        _ => {}
    }
    let market_buy = request.order_type == OrderType::Market && request.side == Side::Buy;
    if by_notional && !market_buy {
        return Err(invalid_argument("notional is only for MARKET BUY orders"));
    }
    let wants_price = request.order_type == OrderType::Limit;
    if request.price.is_some() != wants_price {
        return Err(invalid_argument(
            "price is required for LIMIT orders and only for them",
        ));
    }
    let wants_trigger = is_trigger(request.order_type);
    if request.trigger_price.is_some() != wants_trigger {
        return Err(invalid_argument(
            "trigger_price is required for STOP_LOSS and TAKE_PROFIT and only for them",
        ));
    }
    if let Some(notional) = request.notional {
        if notional <= Decimal::ZERO || notional > Decimal::from(QUANTITY_MAX) {
            return Err(invalid_argument("notional out of range"));
        }
    }
    Ok(())
}

fn check_quantity(request: &OrderRequest, instrument: &Instrument) -> Result<(), EngineReject> {
    let Some(quantity) = request.quantity else {
        return Ok(());
    };
    if quantity <= Decimal::ZERO || quantity > Decimal::from(QUANTITY_MAX) {
        return Err(EngineReject::new(
            CODE_INVALID_QUANTITY,
            format!("quantity {quantity} out of range"),
        ));
    }
    if !is_on_tick(quantity, instrument.quantity_tick) {
        return Err(EngineReject::new(
            CODE_INVALID_QUANTITY,
            format!(
                "quantity {quantity} is not a multiple of {}",
                instrument.quantity_tick
            ),
        ));
    }
    Ok(())
}

fn check_prices(request: &OrderRequest, instrument: &Instrument) -> Result<(), EngineReject> {
    for price in [request.price, request.trigger_price].into_iter().flatten() {
        if price <= Decimal::ZERO || price > Decimal::from(PRICE_MAX) {
            return Err(EngineReject::new(
                CODE_INVALID_PRICE,
                format!("price {price} out of range"),
            ));
        }
        if !is_on_tick(price, instrument.price_tick) {
            return Err(EngineReject::new(
                CODE_INVALID_PRICE,
                format!(
                    "price {price} is not a multiple of {}",
                    instrument.price_tick
                ),
            ));
        }
    }
    Ok(())
}

fn check_minimums(
    request: &OrderRequest,
    instrument: &Instrument,
    reference_price: Decimal,
) -> Result<(), EngineReject> {
    let order_price = request
        .price
        .or(request.trigger_price)
        .unwrap_or(reference_price);
    let (quantity_ok, notional) = match (request.quantity, request.notional) {
        (Some(quantity), _) => (quantity >= instrument.min_quantity, quantity * order_price),
        (None, Some(notional)) => (true, notional),
        (None, None) => unreachable!("check_shape requires quantity or notional"),
    };
    if !quantity_ok || notional < instrument.min_notional {
        return Err(EngineReject::new(
            CODE_BELOW_MINIMUM,
            format!(
                "below minimum (quantity {}, notional {})",
                instrument.min_quantity, instrument.min_notional
            ),
        ));
    }
    Ok(())
}

/// SELL STOP_LOSS and BUY TAKE_PROFIT trigger below the market; SELL TAKE_PROFIT and BUY
/// STOP_LOSS above it.
fn check_trigger_side(
    request: &OrderRequest,
    reference_price: Decimal,
) -> Result<(), EngineReject> {
    let Some(trigger_price) = request.trigger_price else {
        return Ok(());
    };
    let must_be_below = matches!(
        (request.side, request.order_type),
        (Side::Sell, OrderType::StopLoss) | (Side::Buy, OrderType::TakeProfit)
    );
    let on_correct_side = if must_be_below {
        trigger_price < reference_price
    } else {
        trigger_price > reference_price
    };
    if !on_correct_side {
        return Err(EngineReject::new(
            CODE_INVALID_REFERENCE_PRICE,
            format!(
                "{} {} trigger {trigger_price} is on the wrong side of {reference_price}",
                request.side,
                request.order_type.as_str()
            ),
        ));
    }
    Ok(())
}
