//! The failsafe: CRITICAL alert, breaker trip, and — when configured — a market exit of the net
//! open position, sent only once every protective leg that may exist is confirmed gone
//! (cancelled and read back terminal, or proven never placed by the nonce window). A leg that
//! fills meanwhile shrinks the exit or closes the trade. When the legs cannot be confirmed gone
//! within the bound, the trade halts without an exit and keeps recovering.

use rust_decimal::Decimal;

use crate::core::domain::{Millis, OrderType};
use crate::core::ids::Role;
use crate::core::normalize::{floor_to_tick, plain};

use super::types::*;
use super::view::*;
use super::window::*;

/// Exit orders in one exiting phase: the first, and more for what a partial exit left (a
/// market order on a thin book may fill in part and expire), as long as they make progress.
pub const EXIT_ORDERS_MAX: usize = 20;
/// Exits in a row that filled nothing before the phase halts.
pub const EXIT_STALLS_MAX: usize = 3;
const _: () = assert!(EXIT_ORDERS_MAX >= EXIT_STALLS_MAX && EXIT_STALLS_MAX >= 1);

/// Whether the operator asked for market exits.
pub(super) fn exit_configured(limits: &Limits) -> bool {
    limits.flatten && limits.on_protection_error
}

/// The failsafe: CRITICAL alert with every order id, breaker trip, and a market exit of the
/// net open position when configured. Never gated by the breaker.
pub(super) fn failsafe(
    view: &mut TradeView,
    reason: Reason,
    detail: &str,
    now: Millis,
    limits: &Limits,
    actions: &mut Vec<Action>,
) {
    let position = floor_to_tick(open_quantity(view), view.trade.quantity_tick);
    let exit_possible = exit_configured(limits) && position > Decimal::ZERO;
    let operator_action = if exit_possible {
        "fillguard confirms every protective order gone, then market-exits the position; check the exit, then `fillguard breaker reset SYMBOL`"
    } else if reason.is_final_halt() {
        "protect or close the position on the exchange by hand, then `fillguard breaker reset SYMBOL`"
    } else {
        "fillguard retries protection every few minutes; to take over instead, first `fillguard breaker reset SYMBOL` (fillguard then stops acting on this trade), then protect or close the position by hand"
    };
    let text = alert_text(
        view,
        "PROTECTION FAILURE",
        reason.as_str(),
        detail,
        limits.on_protection_error,
        operator_action,
    );
    actions.push(Action::Alert(Alert {
        severity: Severity::Critical,
        key: format!(
            "protection-{}-{reason}-{}",
            view.trade.id,
            episode(view, now)
        ),
        text,
    }));
    if limits.on_protection_error {
        trip_breaker(view, reason, actions);
    }
    if exit_possible {
        view.trade.close_reason = Some(reason.as_str().to_string());
        return begin_exit(view, now, limits, actions);
    }
    if reason == Reason::ProtectionMismatch {
        // A leg that is not what was intended (a wrong quantity could oversell) goes at once;
        // the recovery's clearing confirms it gone before anything new is placed.
        cancel_acknowledged_legs(view, actions);
    }
    if reason.is_final_halt() {
        finish(view, TradeState::Halted, reason.as_str(), now);
        view.trade.recovering_since_ms = None;
        return;
    }
    watch(view, reason, now, actions);
}

fn cancel_acknowledged_legs(view: &TradeView, actions: &mut Vec<Action>) {
    for order in &view.orders {
        let acknowledged = order.order_id.is_some() || order.list_id.is_some();
        if order.role.is_protective() && order.status.is_live() && acknowledged {
            actions.push(Action::Cancel {
                client_oid: order.client_oid.clone(),
            });
        }
    }
}

/// Enters `Exiting`; the caller has set the reason.
pub(super) fn begin_exit(
    view: &mut TradeView,
    now: Millis,
    limits: &Limits,
    actions: &mut Vec<Action>,
) {
    let trade = &mut view.trade;
    trade.state = TradeState::Exiting;
    trade.attempts = 0;
    trade.phase_started_ms = now;
    advance_exit(view, now, limits, actions);
}

/// One step of `Exiting`: an exit already out is resolved first; then every protective leg
/// that may exist is cleared; only then is the net open position sent as a market exit.
pub(super) fn advance_exit(
    view: &mut TradeView,
    now: Millis,
    limits: &Limits,
    actions: &mut Vec<Action>,
) {
    if resolve_live_exit(view, now, limits, actions) {
        return;
    }
    drop_unsent_legs(view);
    let live = live_legs(view);
    if !live.is_empty() {
        return clear_before_exit(view, &live, now, limits, actions);
    }
    let position = floor_to_tick(open_quantity(view), view.trade.quantity_tick);
    if position.is_zero() {
        return close_without_exit(view, now, actions);
    }
    let this_phase: Vec<&Order> = view
        .orders
        .iter()
        .filter(|order| order.role == Role::Exit)
        .filter(|order| {
            order
                .sent_at_ms
                .is_some_and(|at| at >= view.trade.phase_started_ms)
        })
        .collect();
    let stalled = this_phase.len() >= EXIT_STALLS_MAX
        && this_phase
            .iter()
            .rev()
            .take(EXIT_STALLS_MAX)
            .all(|exit| exit.cumulative_quantity.is_zero());
    if stalled || this_phase.len() >= EXIT_ORDERS_MAX {
        let detail = format!(
            "{} market exits left {} of the position open",
            this_phase.len(),
            plain(position)
        );
        return halt(view, Reason::FlattenIncomplete, &detail, now, actions);
    }
    let trade = &view.trade;
    let generation = view
        .orders
        .iter()
        .filter(|order| order.role == Role::Exit)
        .count() as u32;
    let exit = new_order(
        &trade.epoch,
        trade.id,
        Role::Exit,
        generation,
        trade.side.opposite(),
        OrderType::Market,
        position,
        None,
        None,
    );
    let oid = exit.client_oid.clone();
    view.orders.push(exit);
    view.trade.due_ms = Some(now + poll_delay(0, limits));
    send_exit(view, &oid, now, actions);
}

/// An exit already out is resolved before anything else: looked up, or (never sent and still
/// right) sent. Returns whether it asked for something.
fn resolve_live_exit(
    view: &mut TradeView,
    now: Millis,
    limits: &Limits,
    actions: &mut Vec<Action>,
) -> bool {
    let Some(exit) = latest_exit(view)
        .filter(|exit| exit.status.is_live())
        .cloned()
    else {
        return false;
    };
    let never_sent = exit.status == OrderStatus::Intent && exit.sent_at_ms.is_none();
    view.trade.due_ms = Some(now + poll_delay(view.trade.attempts, limits));
    if !never_sent {
        actions.push(Action::Lookup {
            client_oid: exit.client_oid,
        });
        return true;
    }
    if exit_still_fits(view, &exit) {
        send_exit(view, &exit.client_oid, now, actions);
        return true;
    }
    // Never sent and no longer right: sized again by the caller.
    if let Some(order) = find_order_mut(view, &exit.client_oid) {
        order.status = OrderStatus::NotPlaced;
    }
    false
}

/// An exit intent may be (re)sent only while no protective leg may rest and its quantity is
/// still within the net open position (S8).
fn exit_still_fits(view: &TradeView, exit: &Order) -> bool {
    let position = floor_to_tick(open_quantity(view), view.trade.quantity_tick);
    live_legs(view).is_empty() && exit.quantity <= position
}

fn send_exit(view: &mut TradeView, oid: &str, now: Millis, actions: &mut Vec<Action>) {
    if let Some(order) = find_order_mut(view, oid) {
        mark_sending(order, now);
    }
    actions.push(Action::Send {
        kind: SendKind::Single,
        client_oids: vec![oid.to_string()],
    });
}

/// A protective intent never handed to the venue (no send time) cannot exist on the exchange.
fn drop_unsent_legs(view: &mut TradeView) {
    for order in view.orders.iter_mut() {
        let unsent = order.status == OrderStatus::Intent && order.sent_at_ms.is_none();
        if order.role.is_protective() && unsent {
            order.status = OrderStatus::NotPlaced;
        }
    }
}

fn clear_before_exit(
    view: &mut TradeView,
    live: &[Order],
    now: Millis,
    limits: &Limits,
    actions: &mut Vec<Action>,
) {
    view.trade.attempts += 1;
    let spent = view.trade.attempts > limits.poll_attempts_max + CANCEL_ATTEMPTS_MAX
        && now - view.trade.phase_started_ms >= UNKNOWN_WINDOW_MS;
    if spent {
        let legs: Vec<String> = live
            .iter()
            .map(|leg| format!("{} {} ({})", leg.role, leg.client_oid, leg.status.as_str()))
            .collect();
        let detail = format!(
            "protective orders {} could not be confirmed gone, so no market exit was sent",
            legs.join(", ")
        );
        return halt(view, Reason::FlattenBlocked, &detail, now, actions);
    }
    actions.extend(clearing_actions(live));
    view.trade.due_ms = Some(now + unknown_delay(view.trade.attempts, limits));
}

/// Nothing is left to sell (or buy back): a leg or an earlier exit closed the position.
fn close_without_exit(view: &mut TradeView, now: Millis, actions: &mut Vec<Action>) {
    let exited = view
        .orders
        .iter()
        .any(|order| order.role == Role::Exit && !order.cumulative_quantity.is_zero());
    if exited {
        return close_flattened(view, now, actions);
    }
    match closed_by_protection(view) {
        Some(reason) => close(view, reason, now, None, actions),
        None => {
            // Less than one quantity tick is held: nothing can be sent.
            let detail = "the position left is below the quantity tick; nothing to exit";
            halt(view, Reason::Unprotectable, detail, now, actions)
        }
    }
}

pub(super) fn exit_sent(
    view: &mut TradeView,
    outcome: &SendOutcome,
    now: Millis,
    limits: &Limits,
    actions: &mut Vec<Action>,
) {
    match outcome {
        SendOutcome::Rejected {
            reason: RejectReason::BelowMinimum,
            message,
        } => {
            // What is left is dust below the exchange's minimum: no exit can ever take it.
            let detail = format!(
                "the position left, {}, is below the exchange's minimum and cannot be exited ({message})",
                plain(open_quantity(view))
            );
            return halt(view, Reason::Unprotectable, &detail, now, actions);
        }
        SendOutcome::Rejected { message, .. } => {
            let detail = format!("failsafe exit rejected: {message}");
            return halt(view, Reason::FlattenFailed, &detail, now, actions);
        }
        _ => {}
    }
    view.trade.attempts = 0;
    view.trade.due_ms = Some(now + poll_delay(0, limits));
}

pub(super) fn exit_looked(
    view: &mut TradeView,
    outcome: &LookOutcome,
    now: Millis,
    limits: &Limits,
    actions: &mut Vec<Action>,
) {
    view.trade.attempts += 1;
    let Some(exit) = latest_exit(view).cloned() else {
        return advance_exit(view, now, limits, actions);
    };
    let sent_at = exit.sent_at_ms.unwrap_or(view.trade.phase_started_ms);
    let unacknowledged = matches!(exit.status, OrderStatus::Unknown | OrderStatus::Intent);
    match (outcome, exit.status) {
        (LookOutcome::Found(_), OrderStatus::Venue(status)) if status.is_terminal() => {
            // Filled, or ended with part of it: what is left is exited again or closes.
            advance_exit(view, now, limits, actions)
        }
        (LookOutcome::NotFound, _)
            if unacknowledged && unknown_window_passed(sent_at, now, limits) =>
        {
            if let Some(order) = find_order_mut(view, &exit.client_oid) {
                order.status = OrderStatus::NotPlaced;
                order.last_error = Some("not found on the exchange".into());
            }
            advance_exit(view, now, limits, actions)
        }
        (LookOutcome::NotFound, OrderStatus::Intent) => {
            // Stored as sent before a crash, and not visible (yet). A market exit is never
            // repeated on the hope that the exchange refuses a reused client_oid: it is
            // resolved like any unanswered send, and once the window has passed a new exit is
            // sized for what is left, after the legs are cleared.
            view.trade.due_ms = Some(now + unknown_delay(view.trade.attempts, limits));
            if let Some(order) = find_order_mut(view, &exit.client_oid) {
                order.status = OrderStatus::Unknown;
            }
        }
        _ if exit_unconfirmed(view, unacknowledged, now, limits) => {
            let detail = "the failsafe exit could not be confirmed".to_string();
            halt(view, Reason::FlattenUnconfirmed, &detail, now, actions);
        }
        _ if unacknowledged => {
            view.trade.due_ms = Some(now + unknown_delay(view.trade.attempts, limits));
        }
        _ => view.trade.due_ms = Some(now + poll_delay(view.trade.attempts, limits)),
    }
}

/// An unacknowledged exit is bounded by time (the nonce window and a deadline after it); an
/// acknowledged one by the poll budget.
fn exit_unconfirmed(view: &TradeView, unacknowledged: bool, now: Millis, limits: &Limits) -> bool {
    if unacknowledged {
        now - view.trade.phase_started_ms >= UNKNOWN_WINDOW_MS + limits.poll_deadline_ms
    } else {
        view.trade.attempts >= limits.poll_attempts_max + CANCEL_ATTEMPTS_MAX
    }
}
