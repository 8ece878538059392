//! Helpers every phase uses: finding orders, new order intents, the open quantity, alert
//! text, and ending a trade (halt, close). Calls nothing above it.

use rust_decimal::Decimal;

use crate::core::domain::{Millis, OrderType, ProtectionMode, Side};
use crate::core::ids::{Role, client_oid};
use crate::core::normalize::plain;

use super::types::*;
/// Records that an order is about to be sent. An intent that was already decided once may have
/// reached the exchange before a crash: it is `Unknown` from now on, so that a rejection of the
/// repeated send (which says nothing about the first) is resolved by lookup, never taken as
/// proof that no order exists.
///
/// The send time becomes `now` on every send, first or repeated: the latest send is the one the
/// exchange may still accept, so the nonce window counts from it. (Counting from an earlier
/// send once gave up a repeat made seconds before, after a restart on a clock stepped forward,
/// and a second stop went up beside the first.)
pub(super) fn mark_sending(order: &mut Order, now: Millis) {
    if order.sent_at_ms.is_some() && order.status == OrderStatus::Intent {
        order.status = OrderStatus::Unknown;
    }
    order.sent_at_ms = Some(now);
}

pub(super) fn error_text(code: Option<i64>, message: &str) -> String {
    match code {
        Some(code) => format!("code {code}: {message}"),
        None => message.to_string(),
    }
}

/// The quantity still held by this trade: protected quantity (or fill) less what protective
/// and exit orders already sold.
pub fn open_quantity(view: &TradeView) -> Decimal {
    let closed: Decimal = view
        .orders
        .iter()
        .filter(|order| order.role != Role::Entry)
        .map(|order| order.cumulative_quantity)
        .sum();
    let base = view.trade.filled_quantity - entry_fee_in_base(view);
    (base - closed).max(Decimal::ZERO)
}

pub(super) fn entry_fee_in_base(view: &TradeView) -> Decimal {
    let trade = &view.trade;
    let base = trade.symbol.split('_').next().unwrap_or_default();
    match (trade.side, trade.fee_currency.as_deref()) {
        (Side::Buy, Some(currency)) if currency == base => trade.fee,
        _ => Decimal::ZERO,
    }
}

/// Intent rows for one generation of protection. In OCO mode the take-profit is a LIMIT
/// (Crypto.com's OCO pairs a LIMIT with a trigger); otherwise a TAKE_PROFIT trigger.
pub fn protective_intents(
    view: &TradeView,
    generation: u32,
    quantity: Decimal,
    stop: Decimal,
    profit: Decimal,
) -> (Order, Order) {
    let trade = &view.trade;
    let exit_side = trade.side.opposite();
    let stop_order = new_order(
        trade.id,
        Role::StopLoss,
        generation,
        exit_side,
        OrderType::StopLoss,
        quantity,
        None,
        Some(stop),
    );
    let profit_order = if trade.mode == ProtectionMode::Oco {
        new_order(
            trade.id,
            Role::TakeProfit,
            generation,
            exit_side,
            OrderType::Limit,
            quantity,
            Some(profit),
            None,
        )
    } else {
        new_order(
            trade.id,
            Role::TakeProfit,
            generation,
            exit_side,
            OrderType::TakeProfit,
            quantity,
            None,
            Some(profit),
        )
    };
    (stop_order, profit_order)
}

#[allow(clippy::too_many_arguments)]
pub fn new_order(
    trade_id: i64,
    role: Role,
    generation: u32,
    side: Side,
    order_type: OrderType,
    quantity: Decimal,
    price: Option<Decimal>,
    trigger_price: Option<Decimal>,
) -> Order {
    Order {
        client_oid: client_oid(trade_id, role, generation),
        role,
        generation,
        side,
        order_type,
        quantity,
        price,
        trigger_price,
        status: OrderStatus::Intent,
        order_id: None,
        list_id: None,
        cumulative_quantity: Decimal::ZERO,
        avg_price: Decimal::ZERO,
        fee: Decimal::ZERO,
        fee_currency: None,
        last_error: None,
        sent_at_ms: None,
        verified: false,
    }
}

pub(super) fn alert_text(
    view: &TradeView,
    reason: &str,
    detail: &str,
    breaker_trips: bool,
    operator_action: &str,
) -> String {
    let trade = &view.trade;
    let orders: Vec<String> = view
        .orders
        .iter()
        .map(|order| {
            format!(
                "{} client_oid={} order_id={} status={}{}",
                order.role,
                order.client_oid,
                order.order_id.as_deref().unwrap_or("-"),
                order.status.as_str(),
                order
                    .last_error
                    .as_deref()
                    .map(|error| format!(" error=\"{error}\""))
                    .unwrap_or_default()
            )
        })
        .collect();
    let breaker = if breaker_trips {
        format!("breaker for {} OPEN (no new entries)", trade.symbol)
    } else {
        "breaker unchanged (failsafe.on_protection_error = false)".to_string()
    };
    format!(
        "PROTECTION FAILURE {} trade {} {} filled {} at {}: {reason}: {detail}. Orders: [{}]. {breaker}. Operator: {operator_action}",
        trade.symbol,
        trade.id,
        trade.side,
        plain(trade.filled_quantity),
        plain(trade.avg_price),
        orders.join("; ")
    )
}

pub(super) fn halt(
    view: &mut TradeView,
    reason: &str,
    detail: &str,
    now: Millis,
    actions: &mut Vec<Action>,
) {
    let operator_action = "check the order on the exchange, settle the position by hand, then `fillguard breaker reset SYMBOL`";
    let text = alert_text(view, reason, detail, true, operator_action);
    actions.push(Action::Alert(Alert {
        severity: Severity::Critical,
        key: format!("halt-{}-{reason}", view.trade.id),
        text,
    }));
    actions.push(Action::TripBreaker {
        symbol: view.trade.symbol.clone(),
        reason: reason.to_string(),
    });
    finish(view, TradeState::Halted, reason, now);
}

pub(super) fn close(
    view: &mut TradeView,
    reason: &str,
    now: Millis,
    alert: Option<Alert>,
    actions: &mut Vec<Action>,
) {
    if let Some(alert) = alert {
        actions.push(Action::Alert(alert));
    }
    let reason = match view.trade.close_reason.as_deref() {
        // A flatten keeps the failsafe's reason: why the exit happened matters more.
        Some(earlier) if reason == "flattened" => format!("flattened after {earlier}"),
        _ => reason.to_string(),
    };
    finish(view, TradeState::Closed, &reason, now);
}

pub(super) fn finish(view: &mut TradeView, state: TradeState, reason: &str, now: Millis) {
    let trade = &mut view.trade;
    trade.state = state;
    trade.close_reason = Some(reason.to_string());
    trade.due_ms = None;
    trade.updated_ms = now;
}

pub(super) fn mark_not_placed(view: &mut TradeView, generation: u32) {
    for order in view.orders.iter_mut() {
        let unresolved = matches!(order.status, OrderStatus::Unknown | OrderStatus::Intent);
        if order.role.is_protective() && order.generation == generation && unresolved {
            order.status = OrderStatus::NotPlaced;
        }
    }
}

pub(super) fn protective_orders(view: &TradeView, generation: u32) -> Vec<&Order> {
    view.orders
        .iter()
        .filter(|order| order.role.is_protective() && order.generation == generation)
        .collect()
}

pub(super) fn entry_order(view: &TradeView) -> &Order {
    view.orders
        .iter()
        .find(|order| order.role == Role::Entry)
        .expect("every trade has an entry order")
}

pub(super) fn entry_oid(view: &TradeView) -> String {
    entry_order(view).client_oid.clone()
}

pub(super) fn find_order<'a>(view: &'a TradeView, oid: &str) -> Option<&'a Order> {
    view.orders.iter().find(|order| order.client_oid == oid)
}

pub(super) fn find_order_mut<'a>(view: &'a mut TradeView, oid: &str) -> Option<&'a mut Order> {
    view.orders.iter_mut().find(|order| order.client_oid == oid)
}
