//! Helpers every phase uses: finding orders, new order intents, the open quantity, alert
//! text, and ending a trade (halt, close). Calls nothing above it.

use rust_decimal::Decimal;

use crate::core::domain::{Millis, OrderType, ProtectionMode, Side};
use crate::core::ids::{Role, client_oid};
use crate::core::normalize::{floor_to_tick, plain};

use super::types::*;
use super::window::*;

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
        &trade.epoch,
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
            &trade.epoch,
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
            &trade.epoch,
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
    epoch: &str,
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
        client_oid: client_oid(epoch, trade_id, role, generation),
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

/// The text of a CRITICAL alert about one trade, short lines for a phone: what happened first
/// (title, symbol, trade, reason), then side and filled quantity, why, every order with its
/// order id, client_oid, status and the exchange's code and message, the breaker, and what the
/// operator should do (`SYMBOL` in `operator_action` becomes the trade's symbol).
pub(super) fn alert_text(
    view: &TradeView,
    title: &str,
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
                "- {} order_id={} client_oid={} {}{}",
                order.role,
                order.order_id.as_deref().unwrap_or("-"),
                order.client_oid,
                order.status.as_str(),
                order
                    .last_error
                    .as_deref()
                    .map(|error| format!(": {error}"))
                    .unwrap_or_default()
            )
        })
        .collect();
    let breaker = if breaker_trips {
        format!("Breaker for {} OPEN (no new entries).", trade.symbol)
    } else {
        "Breaker unchanged (failsafe.on_protection_error = false).".to_string()
    };
    format!(
        "{title} {} trade {}: {reason}\n{} filled {} at {}\nWhy: {detail}\nOrders:\n{}\n{breaker}\nTo do: {}",
        trade.symbol,
        trade.id,
        trade.side,
        plain(trade.filled_quantity),
        plain(trade.avg_price),
        orders.join("\n"),
        operator_action.replace("SYMBOL", &trade.symbol)
    )
}

/// Halts the trade: CRITICAL alert with every order id and the symbol's breaker. A halt that
/// may leave a position unresolved or unprotected keeps the trade `Recovering`: it is resolved
/// again at a slow cadence (`recovery_delay`) until protected or closed; only the documented
/// final halts (`Reason::is_final_halt`) end it.
pub(super) fn halt(
    view: &mut TradeView,
    reason: Reason,
    detail: &str,
    now: Millis,
    actions: &mut Vec<Action>,
) {
    let recovering = !reason.is_final_halt();
    let operator_action = if recovering {
        "fillguard keeps resolving this trade every few minutes and protects (or flattens) the position once the exchange shows it; to take over instead, first `fillguard breaker reset SYMBOL` (fillguard then stops acting on this trade), then settle the position by hand"
    } else {
        "check the order on the exchange, settle the position by hand, then `fillguard breaker reset SYMBOL`"
    };
    let text = alert_text(
        view,
        "TRADE HALTED",
        reason.as_str(),
        detail,
        true,
        operator_action,
    );
    actions.push(Action::Alert(Alert {
        severity: Severity::Critical,
        key: format!("halt-{}-{reason}-{}", view.trade.id, episode(view, now)),
        text,
    }));
    trip_breaker(view, reason, actions);
    if recovering {
        return watch(view, reason, now, actions);
    }
    finish(view, TradeState::Halted, reason.as_str(), now);
    view.trade.recovering_since_ms = None;
}

/// Alerts of one halt are deduplicated within its recovery episode (from the first halt to its
/// resolution), never across episodes: the same failure a week later alerts again.
pub(super) fn episode(view: &TradeView, now: Millis) -> Millis {
    view.trade.recovering_since_ms.unwrap_or(now)
}

pub(super) fn trip_breaker(view: &mut TradeView, reason: Reason, actions: &mut Vec<Action>) {
    view.trade.breaker_tripped = true;
    actions.push(Action::TripBreaker {
        symbol: view.trade.symbol.clone(),
        reason: reason.as_str().to_string(),
    });
}

/// The first retry of a recovering trade comes this soon; later ones a quarter of the time
/// it has been recovering, up to `RECOVERY_DELAY_MAX_MS`.
pub const RECOVERY_DELAY_MIN_MS: Millis = 10_000;
pub const RECOVERY_DELAY_MAX_MS: Millis = 300_000;
const _: () = assert!(RECOVERY_DELAY_MIN_MS <= RECOVERY_DELAY_MAX_MS);

pub(super) fn recovery_delay(since: Millis, now: Millis) -> Millis {
    ((now - since) / 4).clamp(RECOVERY_DELAY_MIN_MS, RECOVERY_DELAY_MAX_MS)
}

/// Puts the trade in `Recovering` (or back into it after an attempt that did not resolve it).
/// After an attempt that saw the position but could not protect it, the operator is told once
/// that it is still unprotected.
pub(super) fn watch(view: &mut TradeView, reason: Reason, now: Millis, actions: &mut Vec<Action>) {
    let trade = &mut view.trade;
    let since = *trade.recovering_since_ms.get_or_insert(now);
    let retried = since < now;
    trade.state = TradeState::Recovering;
    trade.close_reason = Some(reason.as_str().to_string());
    trade.attempts = 0;
    trade.phase_started_ms = now;
    trade.due_ms = Some(now + recovery_delay(since, now));
    if retried && !trade.filled_quantity.is_zero() && reason.saw_the_position() {
        let text = format!(
            "STILL UNPROTECTED {} trade {} {} filled {}: the position is visible but could not be protected yet ({reason}); fillguard keeps trying every few minutes. Breaker for {} stays OPEN",
            trade.symbol,
            trade.id,
            trade.side,
            plain(trade.filled_quantity),
            trade.symbol
        );
        actions.push(Action::Alert(Alert {
            severity: Severity::Critical,
            key: format!("unprotected-{}-{since}", trade.id),
            text,
        }));
    }
}

/// A recovering trade reached protection or a close: the operator learns what happened.
pub(super) fn resolved(view: &mut TradeView, actions: &mut Vec<Action>) {
    let Some(since) = view.trade.recovering_since_ms.take() else {
        return;
    };
    if view.trade.state == TradeState::Protected {
        // The halt is over: a protected trade carries no close reason.
        view.trade.close_reason = None;
    }
    let trade = &view.trade;
    let outcome = if trade.state == TradeState::Protected {
        let legs: Vec<String> = protective_orders(view, trade.generation)
            .iter()
            .map(|leg| {
                format!(
                    "{} order_id={} client_oid={}",
                    leg.role,
                    leg.order_id.as_deref().unwrap_or("-"),
                    leg.client_oid
                )
            })
            .collect();
        format!("protected by [{}]", legs.join("; "))
    } else {
        format!(
            "{} ({})",
            trade.state.as_str(),
            trade.close_reason.as_deref().unwrap_or("no reason")
        )
    };
    let text = format!(
        "RESOLVED {} trade {} {} filled {}: {outcome}. The breaker for {} stays OPEN until `fillguard breaker reset {}`",
        trade.symbol,
        trade.id,
        trade.side,
        plain(trade.filled_quantity),
        trade.symbol,
        trade.symbol
    );
    actions.push(Action::Alert(Alert {
        severity: Severity::Warning,
        key: format!("resolved-{}-{since}", trade.id),
        text,
    }));
}

pub(super) fn close(
    view: &mut TradeView,
    reason: Reason,
    now: Millis,
    alert: Option<Alert>,
    actions: &mut Vec<Action>,
) {
    if let Some(alert) = alert {
        actions.push(Action::Alert(alert));
    }
    alert_overshoot(view, actions);
    finish(view, TradeState::Closed, reason.as_str(), now);
    resolved(view, actions);
}

/// In separate mode both legs are independent orders: when fillguard cannot cancel the
/// sibling in time (the exchange unreachable), both may fill and the account ends on the
/// opposite side. That position is nobody's: the operator is told at once.
fn alert_overshoot(view: &mut TradeView, actions: &mut Vec<Action>) {
    let sold: Decimal = view
        .orders
        .iter()
        .filter(|order| order.role != Role::Entry)
        .map(|order| order.cumulative_quantity)
        .sum();
    let overshoot = sold - (view.trade.filled_quantity - entry_fee_in_base(view));
    if overshoot <= Decimal::ZERO {
        return;
    }
    let trade = &view.trade;
    let text = format!(
        "OPPOSITE POSITION {} trade {} {}: its protective and exit orders filled {} against a position of {}, so the account now holds {} on the opposite side, unprotected. Breaker for {} OPEN. Operator: close {} by hand, then `fillguard breaker reset {}`",
        trade.symbol,
        trade.id,
        trade.side,
        plain(sold),
        plain(trade.filled_quantity - entry_fee_in_base(view)),
        plain(overshoot),
        trade.symbol,
        plain(overshoot),
        trade.symbol
    );
    actions.push(Action::Alert(Alert {
        severity: Severity::Critical,
        key: format!("overshoot-{}", trade.id),
        text,
    }));
    trip_breaker(view, Reason::ProtectionFilled, actions);
}

/// Closes the trade after the failsafe's exit: the failsafe's reason is kept, since why the
/// exit happened matters more.
pub(super) fn close_flattened(view: &mut TradeView, now: Millis, actions: &mut Vec<Action>) {
    let earlier = view
        .trade
        .close_reason
        .as_deref()
        .and_then(Reason::parse)
        .unwrap_or(Reason::ProtectionFailed);
    let text = format!("flattened after {earlier}");
    finish(view, TradeState::Closed, &text, now);
    resolved(view, actions);
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

/// The trade's entry order. `step` halts a trade without one before any phase runs, so the
/// phases may rely on it; the fallback only keeps this function total.
pub(super) fn entry_order(view: &TradeView) -> Order {
    view.orders
        .iter()
        .find(|order| order.role == Role::Entry)
        .cloned()
        .unwrap_or_else(|| missing_entry(view))
}

fn missing_entry(view: &TradeView) -> Order {
    let mut order = new_order(
        &view.trade.epoch,
        view.trade.id,
        Role::Entry,
        0,
        view.trade.side,
        OrderType::Market,
        Decimal::ZERO,
        None,
        None,
    );
    order.status = OrderStatus::NotPlaced;
    order
}

pub(super) fn entry_oid(view: &TradeView) -> String {
    entry_order(view).client_oid
}

/// The latest exit order, if the failsafe made one.
pub(super) fn latest_exit(view: &TradeView) -> Option<&Order> {
    view.orders
        .iter()
        .rev()
        .find(|order| order.role == Role::Exit)
}

/// Protective legs that may rest on the exchange now or later.
pub(super) fn live_legs(view: &TradeView) -> Vec<Order> {
    view.orders
        .iter()
        .filter(|order| order.role.is_protective() && order.status.is_live())
        .cloned()
        .collect()
}

pub(super) fn find_order<'a>(view: &'a TradeView, oid: &str) -> Option<&'a Order> {
    view.orders.iter().find(|order| order.client_oid == oid)
}

pub(super) fn find_order_mut<'a>(view: &'a mut TradeView, oid: &str) -> Option<&'a mut Order> {
    view.orders.iter_mut().find(|order| order.client_oid == oid)
}

/// When protective orders have sold (or bought back) the whole position, the leg that did most.
pub(super) fn closed_by_protection(view: &TradeView) -> Option<Reason> {
    let remaining = floor_to_tick(open_quantity(view), view.trade.quantity_tick);
    if !remaining.is_zero() {
        return None;
    }
    view.orders
        .iter()
        .filter(|order| order.role.is_protective() && !order.cumulative_quantity.is_zero())
        .max_by_key(|order| order.cumulative_quantity)
        .map(|order| match order.role {
            Role::StopLoss => Reason::StopLossFilled,
            _ => Reason::TakeProfitFilled,
        })
}

/// A leg being cleared is not found anywhere. Only an unacknowledged one can be given up, once
/// the nonce window has passed: then it never existed. A leg the exchange acknowledged or
/// showed is never taken as gone on "not found" alone — it may have just filled and be in no
/// list for a moment — so it stays live until a read-back shows it ended, and the phase's bound
/// halts the trade (which keeps recovering) instead.
pub(super) fn resolve_missing_leg(
    view: &mut TradeView,
    order: &Order,
    now: Millis,
    limits: &Limits,
) {
    let sent_at = order.sent_at_ms.unwrap_or(view.trade.phase_started_ms);
    let gone = match order.status {
        OrderStatus::Unknown | OrderStatus::Intent => {
            unknown_window_passed(sent_at, now, limits) || order.sent_at_ms.is_none()
        }
        OrderStatus::Sent | OrderStatus::Venue(_) | OrderStatus::NotPlaced => false,
    };
    if gone {
        if let Some(leg) = find_order_mut(view, &order.client_oid) {
            leg.status = OrderStatus::NotPlaced;
            leg.last_error = Some("not found on the exchange".into());
        }
    }
}

/// The requests that move live legs toward gone: a cancel for each acknowledged one, a lookup
/// for each whose existence is still unknown.
pub(super) fn clearing_actions(live: &[Order]) -> Vec<Action> {
    live.iter().map(clearing_action).collect()
}

/// The request that moves one live leg toward gone (see `clearing_actions`).
pub(super) fn clearing_action(order: &Order) -> Action {
    let acknowledged = order.order_id.is_some() || order.list_id.is_some();
    if acknowledged && order.status != OrderStatus::Unknown {
        Action::Cancel {
            client_oid: order.client_oid.clone(),
        }
    } else {
        Action::Lookup {
            client_oid: order.client_oid.clone(),
        }
    }
}
