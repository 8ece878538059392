//! Private methods of the simulator, called after the envelope was verified: order entry and
//! cancellation (plain and advanced), order queries and balances. Plain orders (MARKET and
//! LIMIT outside lists) and advanced orders (STOP_LOSS / TAKE_PROFIT and every list member)
//! live in separate namespaces, as on Crypto.com: each family of methods sees only its own.

use serde_json::{Map, Value, json};

use crate::core::domain::{Millis, OrderReport, OrderRequest, OrderType};
use crate::venue::paper::engine::{CODE_INVALID_ARGUMENT, CODE_INVALID_ORDER_ID};

use super::exchange::{Envelope, Simulator};
use super::wire::{self, ApiError, CODE_INVALID_REQUEST, CODE_NOT_FOUND, OrderContext};

/// Orders one history call returns at most (and by default), as on Crypto.com.
pub const HISTORY_LIMIT_MAX: u64 = 100;
/// History covers this long before `end_time` when `start_time` is not given.
const HISTORY_SPAN_DEFAULT_MS: Millis = 24 * 60 * 60 * 1_000;
/// Times above this are nanoseconds (ms values stay far below it until the year 5138).
const NANOSECOND_TIMES_ABOVE: u64 = 100_000_000_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Namespace {
    Plain,
    Advanced,
}

fn namespace_of(report: &OrderReport) -> Namespace {
    let trigger = matches!(
        report.order_type,
        OrderType::StopLoss | OrderType::TakeProfit
    );
    if trigger || report.list_id.is_some() {
        Namespace::Advanced
    } else {
        Namespace::Plain
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ListKind {
    Oco,
    Otoco,
}

impl ListKind {
    fn legs(self) -> usize {
        match self {
            ListKind::Oco => 2,
            ListKind::Otoco => 3,
        }
    }

    fn name(self) -> &'static str {
        match self {
            ListKind::Oco => "OCO",
            ListKind::Otoco => "OTOCO",
        }
    }
}

fn invalid(message: &str) -> ApiError {
    ApiError::new(CODE_INVALID_ARGUMENT, message)
}

impl Simulator {
    pub(super) fn dispatch_private(
        &mut self,
        method: &str,
        envelope: &Envelope,
        now_ms: Millis,
    ) -> Result<Value, ApiError> {
        use Namespace::{Advanced, Plain};
        let params = &envelope.params;
        let nonce = envelope.nonce.to_string();
        match method {
            "private/create-order" => self.create_single(params, &nonce, now_ms, false),
            "private/advanced/create-order" => self.create_single(params, &nonce, now_ms, true),
            "private/advanced/create-oco" => {
                self.create_list(params, &nonce, now_ms, ListKind::Oco)
            }
            "private/advanced/create-otoco" => {
                self.create_list(params, &nonce, now_ms, ListKind::Otoco)
            }
            "private/cancel-order" => self.cancel(params, Plain, now_ms),
            "private/advanced/cancel-order" => self.cancel(params, Advanced, now_ms),
            "private/advanced/cancel-oco" | "private/advanced/cancel-otoco" => {
                self.cancel_list(params, now_ms)
            }
            "private/get-order-detail" => self.detail(params, Plain, now_ms),
            "private/advanced/get-order-detail" => self.detail(params, Advanced, now_ms),
            "private/get-open-orders" => self.open_orders(params, Plain, now_ms),
            "private/advanced/get-open-orders" => self.open_orders(params, Advanced, now_ms),
            "private/get-order-history" => self.history(params, Plain, now_ms),
            "private/advanced/get-order-history" => self.history(params, Advanced, now_ms),
            "private/user-balance" => Ok(self.user_balance()),
            _ => unreachable!("the method table lists only these private methods"),
        }
    }

    /// `create-order` takes every simulated type (old clients send STOP_LOSS there too);
    /// `advanced/create-order` only STOP_LOSS and TAKE_PROFIT.
    fn create_single(
        &mut self,
        params: &Map<String, Value>,
        nonce: &str,
        now_ms: Millis,
        triggers_only: bool,
    ) -> Result<Value, ApiError> {
        let request = wire::order_request(params, nonce)?;
        let trigger = matches!(
            request.order_type,
            OrderType::StopLoss | OrderType::TakeProfit
        );
        if triggers_only && !trigger {
            return Err(invalid(
                "advanced/create-order takes STOP_LOSS or TAKE_PROFIT",
            ));
        }
        let ack = self.engine.create_order(now_ms, &request)?;
        self.created_ms.insert(ack.order_id.clone(), now_ms);
        Ok(json!({"order_id": ack.order_id, "client_oid": ack.client_oid}))
    }

    fn create_list(
        &mut self,
        params: &Map<String, Value>,
        nonce: &str,
        now_ms: Millis,
        kind: ListKind,
    ) -> Result<Value, ApiError> {
        let legs = order_list(params, nonce, kind.legs())?;
        let stop_loss = pick(&legs, &[OrderType::StopLoss])?;
        let ack = match kind {
            ListKind::Oco => {
                let take_profit = pick(&legs, &[OrderType::TakeProfit, OrderType::Limit])?;
                self.engine.create_oco(now_ms, stop_loss, take_profit)?
            }
            ListKind::Otoco => {
                let entry = pick(&legs, &[OrderType::Market, OrderType::Limit])?;
                let take_profit = pick(&legs, &[OrderType::TakeProfit])?;
                self.engine
                    .create_otoco(now_ms, entry, stop_loss, take_profit)?
            }
        };
        for leg in &legs {
            if let Some(report) = self.engine.order_by_client_oid(&leg.client_oid) {
                self.created_ms.insert(report.order_id, now_ms);
            }
        }
        self.list_types.insert(ack.list_id.clone(), kind.name());
        Ok(json!({"list_id": ack.list_id}))
    }

    /// The order named by `order_id` or `client_oid`, if it exists in `namespace`.
    fn find_order(
        &self,
        params: &Map<String, Value>,
        namespace: Namespace,
    ) -> Result<Option<OrderReport>, ApiError> {
        let report = if let Some(order_id) = wire::id_param(params, "order_id")? {
            self.engine.order_by_id(&order_id)
        } else if let Some(client_oid) = wire::string_param(params, "client_oid")? {
            self.engine.order_by_client_oid(client_oid)
        } else {
            return Err(invalid("order_id or client_oid is required"));
        };
        Ok(report.filter(|report| namespace_of(report) == namespace))
    }

    fn cancel(
        &mut self,
        params: &Map<String, Value>,
        namespace: Namespace,
        now_ms: Millis,
    ) -> Result<Value, ApiError> {
        let report = self
            .find_order(params, namespace)?
            .ok_or_else(|| ApiError::new(CODE_INVALID_ORDER_ID, "unknown order"))?;
        self.engine.cancel_order(now_ms, &report.order_id)?;
        Ok(json!({"order_id": report.order_id, "client_oid": report.client_oid}))
    }

    fn cancel_list(
        &mut self,
        params: &Map<String, Value>,
        now_ms: Millis,
    ) -> Result<Value, ApiError> {
        let list_id =
            wire::id_param(params, "list_id")?.ok_or_else(|| invalid("list_id is required"))?;
        self.engine.cancel_list(now_ms, &list_id)?;
        Ok(json!({"list_id": list_id}))
    }

    fn detail(
        &self,
        params: &Map<String, Value>,
        namespace: Namespace,
        now_ms: Millis,
    ) -> Result<Value, ApiError> {
        let report = self
            .find_order(params, namespace)?
            .filter(|report| self.is_visible(report, now_ms))
            .ok_or_else(|| ApiError::new(CODE_NOT_FOUND, "NOT_FOUND"))?;
        Ok(self.order_object(&report))
    }

    fn open_orders(
        &self,
        params: &Map<String, Value>,
        namespace: Namespace,
        now_ms: Millis,
    ) -> Result<Value, ApiError> {
        let symbol = wire::string_param(params, "instrument_name")?;
        if let Some(symbol) = symbol {
            self.engine.instrument(symbol)?;
        }
        let rows: Vec<Value> = self
            .engine
            .open_orders()
            .iter()
            .filter(|report| namespace_of(report) == namespace)
            .filter(|report| symbol.is_none_or(|symbol| report.symbol == symbol))
            .filter(|report| self.is_visible(report, now_ms))
            .map(|report| self.order_object(report))
            .collect();
        Ok(json!({"data": rows}))
    }

    /// The most recent `limit` terminal orders created in [start_time, end_time), newest first.
    fn history(
        &self,
        params: &Map<String, Value>,
        namespace: Namespace,
        now_ms: Millis,
    ) -> Result<Value, ApiError> {
        let limit = history_limit(params)?;
        let symbol = wire::string_param(params, "instrument_name")?;
        if let Some(symbol) = symbol {
            self.engine.instrument(symbol)?;
        }
        let end_ms = time_param(params, "end_time")?.unwrap_or(now_ms + 1);
        let start_ms =
            time_param(params, "start_time")?.unwrap_or(end_ms - HISTORY_SPAN_DEFAULT_MS);
        let mut rows: Vec<(Millis, u64, OrderReport)> = self
            .engine
            .book()
            .into_iter()
            .filter(|report| report.status.is_terminal() && namespace_of(report) == namespace)
            .filter(|report| symbol.is_none_or(|symbol| report.symbol == symbol))
            .filter(|report| self.is_visible(report, now_ms))
            .map(|report| {
                let created_ms = self.create_time_ms(&report);
                let order_number = report.order_id.parse::<u64>().unwrap_or(0);
                (created_ms, order_number, report)
            })
            .filter(|(created_ms, _, _)| (start_ms..end_ms).contains(created_ms))
            .collect();
        rows.sort_by_key(|row| std::cmp::Reverse((row.0, row.1)));
        let data: Vec<Value> = rows
            .iter()
            .take(usize::try_from(limit).unwrap_or(usize::MAX))
            .map(|(_, _, report)| self.order_object(report))
            .collect();
        Ok(json!({"data": data}))
    }

    /// One aggregate row whose `position_balances` hold every asset: `quantity` the total,
    /// `reserved_qty` what open orders reserve.
    fn user_balance(&self) -> Value {
        let positions: Vec<Value> = self
            .engine
            .balances()
            .into_iter()
            .map(|(asset, total)| {
                let free = self.engine.free_balance(&asset);
                json!({
                    "instrument_name": asset,
                    "quantity": wire::decimal_text(total),
                    "reserved_qty": wire::decimal_text(total - free),
                    "max_withdrawal_balance": wire::decimal_text(free),
                })
            })
            .collect();
        json!({"data": [{"instrument_name": "USD", "position_balances": positions}]})
    }

    fn create_time_ms(&self, report: &OrderReport) -> Millis {
        self.created_ms
            .get(&report.order_id)
            .copied()
            .unwrap_or(report.update_time_ms)
    }

    fn order_object(&self, report: &OrderReport) -> Value {
        let taker_fee_rate = self
            .engine
            .instrument(&report.symbol)
            .map(|instrument| instrument.taker_fee_rate)
            .unwrap_or_default();
        let contingency_type = report
            .list_id
            .as_ref()
            .and_then(|list_id| self.list_types.get(list_id).copied());
        let context = OrderContext {
            create_time_ms: self.create_time_ms(report),
            taker_fee_rate,
            contingency_type,
        };
        wire::order_json(report, &context)
    }
}

/// The `order_list` legs; a leg without `client_oid` gets `<nonce>-<index>`.
fn order_list(
    params: &Map<String, Value>,
    nonce: &str,
    count: usize,
) -> Result<Vec<OrderRequest>, ApiError> {
    let Some(Value::Array(items)) = params.get("order_list") else {
        return Err(invalid("order_list is required"));
    };
    if items.len() != count {
        return Err(invalid(&format!("order_list needs exactly {count} orders")));
    }
    let mut legs = Vec::with_capacity(count);
    for (index, item) in items.iter().enumerate() {
        let Value::Object(leg) = item else {
            return Err(invalid("order_list items must be objects"));
        };
        legs.push(wire::order_request(leg, &format!("{nonce}-{index}"))?);
    }
    Ok(legs)
}

/// The one leg whose type is among `types`.
fn pick<'a>(legs: &'a [OrderRequest], types: &[OrderType]) -> Result<&'a OrderRequest, ApiError> {
    let mut matching = legs.iter().filter(|leg| types.contains(&leg.order_type));
    match (matching.next(), matching.next()) {
        (Some(leg), None) => Ok(leg),
        _ => Err(invalid(
            "unexpected combination of order types in order_list",
        )),
    }
}

/// `limit` must be a JSON number (a string is 40003, as observed live); at most 100.
fn history_limit(params: &Map<String, Value>) -> Result<u64, ApiError> {
    match params.get("limit") {
        None | Some(Value::Null) => Ok(HISTORY_LIMIT_MAX),
        Some(Value::Number(number)) => number
            .as_u64()
            .map(|limit| limit.min(HISTORY_LIMIT_MAX))
            .ok_or_else(|| ApiError::new(CODE_INVALID_REQUEST, "limit must be a whole number")),
        Some(_) => Err(ApiError::new(
            CODE_INVALID_REQUEST,
            "limit must be a JSON number",
        )),
    }
}

/// A time in ms or ns, as a JSON number or a digit string; returned in ms.
fn time_param(params: &Map<String, Value>, name: &str) -> Result<Option<Millis>, ApiError> {
    let value = match params.get(name) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Number(number)) => number.as_u64(),
        Some(Value::String(text)) => text.parse::<u64>().ok(),
        Some(_) => None,
    };
    let value = value.ok_or_else(|| invalid(&format!("{name} must be a time in ms or ns")))?;
    let ms = if value > NANOSECOND_TIMES_ABOVE {
        value / 1_000_000
    } else {
        value
    };
    Ok(Some(Millis::try_from(ms).unwrap_or(Millis::MAX)))
}
