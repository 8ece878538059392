//! Private methods of the simulator, called after the envelope was verified: order entry,
//! amendment and cancellation (plain and advanced) and order queries; history and trades are in
//! `history`, balances and fee rates in `account`. Plain orders (MARKET and LIMIT outside lists)
//! and advanced orders (STOP_LOSS / TAKE_PROFIT and every list member) live in separate
//! namespaces, as on Crypto.com: each family of methods sees only its own.

use serde_json::{Map, Value, json};

use crate::core::domain::{Millis, OrderReport, OrderRequest, OrderType};
use crate::venue::paper::engine::{
    AmendRequest, CODE_INVALID_ARGUMENT, CODE_INVALID_ORDER_ID, CODE_INVALID_PRICE,
    CODE_INVALID_QUANTITY,
};

use super::envelope::Envelope;
use super::exchange::{NANOS_PER_MILLI, Simulator};
use super::wire::{self, ApiError, CODE_NOT_FOUND, OrderContext};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Namespace {
    Plain,
    Advanced,
}

pub(super) fn namespace_of(report: &OrderReport) -> Namespace {
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

pub(super) fn invalid(message: &str) -> ApiError {
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
            "private/amend-order" => self.amend(params, now_ms),
            "private/cancel-order" => self.cancel(params, Plain, now_ms),
            "private/cancel-all-orders" => self.cancel_all(params, Plain, now_ms),
            "private/advanced/cancel-all-orders" => self.cancel_all(params, Advanced, now_ms),
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
            "private/get-trades" => self.trades(params, now_ms),
            "private/user-balance" => Ok(self.user_balance()),
            "private/get-fee-rate" => Ok(self.fee_rate()),
            "private/get-instrument-fee-rate" => self.instrument_fee_rate(params),
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
        self.record_created(&ack.order_id, now_ms);
        self.draw_fill_delay(&ack.client_oid, now_ms);
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
                self.record_created(&report.order_id, now_ms);
            }
            self.draw_fill_delay(&leg.client_oid, now_ms);
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

    /// `amend-order`: a plain LIMIT order named by `order_id` (preferred) or `orig_client_oid`
    /// gets `new_price` and `new_quantity` (both required, as strings) and optionally a new
    /// `client_oid`; the answer carries the order's ids after the change.
    fn amend(&mut self, params: &Map<String, Value>, now_ms: Millis) -> Result<Value, ApiError> {
        let report = if let Some(order_id) = wire::id_param(params, "order_id")? {
            self.engine.order_by_id(&order_id)
        } else if let Some(client_oid) = wire::string_param(params, "orig_client_oid")? {
            self.engine.order_by_client_oid(client_oid)
        } else {
            return Err(invalid("order_id or orig_client_oid is required"));
        };
        let new_price =
            wire::decimal_param(params, "new_price", CODE_INVALID_PRICE, CODE_INVALID_PRICE)?;
        let new_quantity = wire::decimal_param(
            params,
            "new_quantity",
            CODE_INVALID_QUANTITY,
            CODE_INVALID_QUANTITY,
        )?;
        let (Some(new_price), Some(new_quantity)) = (new_price, new_quantity) else {
            return Err(invalid("new_price and new_quantity are both required"));
        };
        let report = report
            .filter(|report| namespace_of(report) == Namespace::Plain)
            .ok_or_else(|| ApiError::new(CODE_INVALID_ORDER_ID, "unknown order"))?;
        let amend = AmendRequest {
            order_id: report.order_id,
            new_client_oid: wire::string_param(params, "client_oid")?.map(str::to_string),
            new_price,
            new_quantity,
        };
        let ack = self.engine.amend_order(now_ms, &amend)?;
        Ok(json!({"client_oid": ack.client_oid, "order_id": ack.order_id}))
    }

    /// `cancel-all-orders`: every open order of the namespace, of `instrument_name` when given,
    /// of `type` `LIMIT`, `TRIGGER` or `ALL` (the default). Answered without a result block.
    fn cancel_all(
        &mut self,
        params: &Map<String, Value>,
        namespace: Namespace,
        now_ms: Millis,
    ) -> Result<Value, ApiError> {
        let symbol = wire::string_param(params, "instrument_name")?.map(str::to_string);
        if let Some(symbol) = &symbol {
            self.engine.instrument(symbol)?;
        }
        let types: &[OrderType] = match wire::string_param(params, "type")? {
            None | Some("ALL") => &[
                OrderType::Market,
                OrderType::Limit,
                OrderType::StopLoss,
                OrderType::TakeProfit,
            ],
            Some("LIMIT") => &[OrderType::Limit],
            Some("TRIGGER") => &[OrderType::StopLoss, OrderType::TakeProfit],
            Some(_) => return Err(invalid("type must be LIMIT, TRIGGER or ALL")),
        };
        self.engine.cancel_all(now_ms, |report| {
            namespace_of(report) == namespace
                && symbol
                    .as_ref()
                    .is_none_or(|symbol| report.symbol == *symbol)
                && types.contains(&report.order_type)
        });
        Ok(Value::Null)
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

    pub(super) fn create_time_ns(&self, report: &OrderReport) -> u64 {
        self.created_ns
            .get(&report.order_id)
            .copied()
            .unwrap_or_else(|| u64::try_from(report.update_time_ms).unwrap_or(0) * NANOS_PER_MILLI)
    }

    pub(super) fn order_object(&self, report: &OrderReport) -> Value {
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
            create_time_ns: self.create_time_ns(report),
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
