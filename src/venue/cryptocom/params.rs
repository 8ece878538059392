//! Request parameters of the order endpoints, built from fillguard's `OrderRequest`. Every decimal
//! is a plain string (reference §2.1); no list leg ever holds an array (reference §2.2 step 3).
//! A request that cannot be expressed is refused here, before anything is sent.

use rust_decimal::Decimal;
use serde_json::{Map, Value};

use super::history::{HISTORY_LIMIT, HistoryRequest};
use super::wire::CODE_INVALID_ARGUMENT;
use crate::core::domain::{OrderRequest, OrderType};
use crate::core::normalize::plain;
use crate::venue::VenueError;

fn invalid(order: &OrderRequest, what: &str) -> VenueError {
    VenueError::Rejected {
        code: CODE_INVALID_ARGUMENT,
        message: format!("order {}: {what}", order.client_oid),
    }
}

fn text(value: impl Into<String>) -> Value {
    Value::String(value.into())
}

fn decimal(value: Decimal) -> Value {
    Value::String(plain(value))
}

/// True for the trigger types, which go to the advanced API with `ref_price`.
pub(super) fn is_trigger(order_type: OrderType) -> bool {
    matches!(order_type, OrderType::StopLoss | OrderType::TakeProfit)
}

/// The parameters of one order: `private/create-order`, `private/advanced/create-order`, or
/// one leg of an OCO / OTOCO `order_list`.
pub(super) fn order_params(order: &OrderRequest) -> Result<Map<String, Value>, VenueError> {
    if order.client_oid.is_empty() {
        return Err(invalid(order, "no client_oid"));
    }
    let mut params = Map::new();
    params.insert("instrument_name".into(), text(&order.symbol));
    params.insert("side".into(), text(order.side.as_str()));
    params.insert("type".into(), text(order.order_type.as_str()));
    params.insert("client_oid".into(), text(&order.client_oid));
    match (order.quantity, order.notional) {
        (Some(quantity), None) => params.insert("quantity".into(), decimal(quantity)),
        (None, Some(notional)) => params.insert("notional".into(), decimal(notional)),
        _ => {
            return Err(invalid(
                order,
                "exactly one of quantity and notional must be set",
            ));
        }
    };
    match order.order_type {
        OrderType::Market => {}
        OrderType::Limit => {
            let price = order
                .price
                .ok_or_else(|| invalid(order, "LIMIT without price"))?;
            params.insert("price".into(), decimal(price));
        }
        OrderType::StopLoss | OrderType::TakeProfit => {
            let trigger = order
                .trigger_price
                .ok_or_else(|| invalid(order, "trigger order without trigger price"))?;
            params.insert("ref_price".into(), decimal(trigger));
        }
    }
    Ok(params)
}

/// `{"order_list": [leg, ...]}` for create-oco and create-otoco.
pub(super) fn list_params(legs: &[&OrderRequest]) -> Result<Map<String, Value>, VenueError> {
    let legs = legs
        .iter()
        .map(|leg| order_params(leg).map(Value::Object))
        .collect::<Result<Vec<_>, _>>()?;
    let mut params = Map::new();
    params.insert("order_list".into(), Value::Array(legs));
    Ok(params)
}

pub(super) fn one(key: &str, value: &str) -> Map<String, Value> {
    let mut params = Map::new();
    params.insert(key.into(), text(value));
    params
}

/// `{instrument_name, start_time, end_time, limit}` of the history endpoints: times in ms
/// (`end_time` exclusive) and `limit` as JSON numbers, which both accept (reference §2.1, §4.8).
pub(super) fn history(symbol: &str, request: HistoryRequest) -> Map<String, Value> {
    let mut params = one("instrument_name", symbol);
    params.insert("start_time".into(), Value::from(request.start_ms));
    params.insert("end_time".into(), Value::from(request.end_ms));
    params.insert("limit".into(), Value::from(HISTORY_LIMIT));
    params
}
