//! The failsafe: CRITICAL alert, breaker trip, and (when configured) a market exit of the
//! position once every protective leg that may exist is confirmed gone.

use rust_decimal::Decimal;

use crate::core::domain::{Millis, OrderType, VenueStatus};
use crate::core::ids::Role;
use crate::core::normalize::{floor_to_tick, plain};

use super::types::*;
use super::view::*;
use super::window::*;
pub(super) fn lookup_exit_or_send(view: &mut TradeView, actions: &mut Vec<Action>) {
    let exit = view
        .orders
        .iter()
        .rev()
        .find(|order| order.role == Role::Exit)
        .map(|order| (order.client_oid.clone(), order.status));
    match exit {
        Some((oid, OrderStatus::Intent)) => actions.push(Action::Send {
            kind: SendKind::Single,
            client_oids: vec![oid],
        }),
        Some((oid, _)) => actions.push(Action::Lookup { client_oid: oid }),
        None => {}
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
        SendOutcome::Rejected { code, message } if *code != Some(204) => {
            let detail = format!("failsafe exit rejected: {}", error_text(*code, message));
            halt(view, "flatten_failed", &detail, now, actions);
        }
        _ => {
            view.trade.attempts = 0;
            view.trade.phase_started_ms = now;
            view.trade.due_ms = Some(now + poll_delay(0, limits));
        }
    }
}

pub(super) fn exit_looked(
    view: &mut TradeView,
    outcome: &LookOutcome,
    now: Millis,
    limits: &Limits,
    actions: &mut Vec<Action>,
) {
    view.trade.attempts += 1;
    let exit = view
        .orders
        .iter()
        .rev()
        .find(|order| order.role == Role::Exit)
        .cloned()
        .expect("an exiting trade has an exit order");
    let bound_reached = view.trade.attempts >= limits.poll_attempts_max + CANCEL_ATTEMPTS_MAX;
    match (outcome, exit.status) {
        (LookOutcome::Found(_), OrderStatus::Venue(VenueStatus::Filled)) => {
            close(view, "flattened", now, None, actions)
        }
        (LookOutcome::Found(_), OrderStatus::Venue(status)) if status.is_terminal() => {
            let detail = format!(
                "failsafe exit ended {} with {} of {} filled",
                status.as_str(),
                plain(exit.cumulative_quantity),
                plain(exit.quantity)
            );
            halt(view, "flatten_incomplete", &detail, now, actions);
        }
        _ if bound_reached => {
            let detail = "the failsafe exit could not be confirmed".to_string();
            halt(view, "flatten_unconfirmed", &detail, now, actions);
        }
        (LookOutcome::NotFound, OrderStatus::Intent) => {
            lookup_exit_or_send(view, actions);
        }
        _ => view.trade.due_ms = Some(now + poll_delay(view.trade.attempts, limits)),
    }
}

/// The failsafe: CRITICAL alert with every order id, breaker trip, and a market exit of the
/// unprotected quantity when configured. Never gated by the breaker.
pub(super) fn failsafe(
    view: &mut TradeView,
    reason: &str,
    detail: &str,
    now: Millis,
    limits: &Limits,
    actions: &mut Vec<Action>,
) {
    // No protective order may outlive the failsafe: a lone leg could oversell after an exit.
    cancel_live_protection(view, actions);
    let quantity = floor_to_tick(open_quantity(view), view.trade.quantity_tick);
    let exit_possible = limits.flatten && limits.on_protection_error && quantity > Decimal::ZERO;
    let operator_action = if exit_possible {
        "fillguard is market-exiting the unprotected quantity; check the exit, then `fillguard breaker reset SYMBOL`"
    } else {
        "protect or close the position on the exchange by hand, then `fillguard breaker reset SYMBOL`"
    };
    let text = alert_text(
        view,
        reason,
        detail,
        limits.on_protection_error,
        operator_action,
    );
    actions.push(Action::Alert(Alert {
        severity: Severity::Critical,
        key: format!("protection-{}-{reason}", view.trade.id),
        text,
    }));
    if limits.on_protection_error {
        actions.push(Action::TripBreaker {
            symbol: view.trade.symbol.clone(),
            reason: reason.to_string(),
        });
    }
    if !exit_possible {
        return finish(view, TradeState::Halted, reason, now);
    }
    let trade = &view.trade;
    let exit_generation = view
        .orders
        .iter()
        .filter(|order| order.role == Role::Exit)
        .count() as u32;
    let exit = new_order(
        trade.id,
        Role::Exit,
        exit_generation,
        trade.side.opposite(),
        OrderType::Market,
        quantity,
        None,
        None,
    );
    let oid = exit.client_oid.clone();
    view.orders.push(exit);
    let trade = &mut view.trade;
    trade.state = TradeState::Exiting;
    trade.close_reason = Some(reason.to_string());
    trade.attempts = 0;
    trade.phase_started_ms = now;
    trade.due_ms = Some(now + limits.poll_interval_ms);
    actions.push(Action::Send {
        kind: SendKind::Single,
        client_oids: vec![oid],
    });
}

/// Cancels every live protective order of the current and earlier generations.
pub(super) fn cancel_live_protection(view: &mut TradeView, actions: &mut Vec<Action>) {
    for order in view.orders.iter() {
        let acknowledged = order.order_id.is_some() || order.list_id.is_some();
        if order.role.is_protective() && order.status.is_live() && acknowledged {
            actions.push(Action::Cancel {
                client_oid: order.client_oid.clone(),
            });
        }
    }
}
