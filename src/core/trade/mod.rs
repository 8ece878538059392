//! The trade state machine: `step(view, event, now, limits) -> actions`. One trade's lifecycle
//! from the entry intent to a terminal state, with every outcome of DESIGN §1 distinct. Pure:
//! it reads no clock (time arrives as `now`), does no IO and returns what the shell must do.
//! The shell stores the new view and the intents before it executes any action.

mod entry;
mod failsafe;
mod protection;
mod types;
mod view;
mod window;

pub use types::*;
pub use view::{new_order, open_quantity, protective_intents};
pub use window::{
    CANCEL_ATTEMPTS_MAX, POLL_FIRST_DELAY_MS, RESTART_SETTLE_MS, UNKNOWN_WINDOW_MS,
    VERIFY_ATTEMPTS_MAX, poll_delay,
};

use entry::*;
use failsafe::*;
use protection::*;
use view::*;

use rust_decimal::Decimal;

use crate::core::domain::{Millis, OrderReport, VenueStatus};
use crate::core::ids::Role;

/// Advances one trade by one event. Never panics on bad venue data: a report that cannot be
/// trusted is recorded and retried within the phase's bounds.
pub fn step(view: &mut TradeView, event: Event, now: Millis, limits: &Limits) -> Vec<Action> {
    let mut actions = Vec::new();
    view.trade.updated_ms = now;
    if view.trade.state.is_terminal() {
        return actions;
    }
    match event {
        Event::Due => on_due(view, now, limits, &mut actions),
        Event::Sent {
            client_oids,
            outcome,
        } => on_sent(view, &client_oids, outcome, now, limits, &mut actions),
        Event::Looked {
            client_oid,
            outcome,
        } => on_looked(view, &client_oid, outcome, now, limits, &mut actions),
        Event::Cancelled {
            client_oid,
            outcome,
        } => on_cancelled(view, &client_oid, outcome, now, &mut actions),
        Event::Market(outcome) => on_market(view, outcome, now, limits, &mut actions),
        Event::EntryBlocked { reason } => {
            on_entry_blocked(view, &reason, now, limits, &mut actions)
        }
    }
    actions
}

fn on_due(view: &mut TradeView, now: Millis, limits: &Limits, actions: &mut Vec<Action>) {
    let trade = &mut view.trade;
    trade.due_ms = None;
    match trade.state {
        TradeState::EntryPending => send_entry(view, now, actions),
        TradeState::EntryUnknown | TradeState::AwaitingFill | TradeState::CancellingEntry => {
            let oid = entry_oid(view);
            actions.push(Action::Lookup { client_oid: oid });
        }
        TradeState::Exiting => lookup_exit_or_send(view, actions),
        TradeState::Protecting | TradeState::Closing => {
            advance_clearing(view, now, limits, actions)
        }
        TradeState::Verifying | TradeState::Protected => {
            let generation = view.trade.generation;
            for order in protective_orders(view, generation) {
                if order.status.is_live() || !order.verified {
                    actions.push(Action::Lookup {
                        client_oid: order.client_oid.clone(),
                    });
                }
            }
            if actions.is_empty() {
                // Nothing left to read back: size a new round of protection.
                start_protection_round(view, now, limits, actions);
            }
        }
        TradeState::Closed | TradeState::Halted => {}
    }
}

fn on_sent(
    view: &mut TradeView,
    client_oids: &[String],
    outcome: SendOutcome,
    now: Millis,
    limits: &Limits,
    actions: &mut Vec<Action>,
) {
    let role = client_oids
        .first()
        .and_then(|oid| find_order(view, oid))
        .map(|order| order.role);
    for oid in client_oids {
        if let Some(order) = find_order_mut(view, oid) {
            order.sent_at_ms.get_or_insert(now);
            apply_send_outcome(order, &outcome);
        }
    }
    match role {
        Some(Role::Entry) => entry_sent(view, &outcome, now, limits, actions),
        Some(Role::StopLoss) | Some(Role::TakeProfit) => {
            protection_sent(view, client_oids, &outcome, now, limits, actions)
        }
        Some(Role::Exit) => exit_sent(view, &outcome, now, limits, actions),
        None => {}
    }
}

fn apply_send_outcome(order: &mut Order, outcome: &SendOutcome) {
    // A repeat can be answered after a lookup of the same drive already found the order: a
    // refusal or a lost answer to the repeat says nothing about an order the exchange showed.
    let known = matches!(order.status, OrderStatus::Sent | OrderStatus::Venue(_));
    match outcome {
        SendOutcome::Ack { order_id, list_id } => {
            if order.status == OrderStatus::Intent || order.status == OrderStatus::Unknown {
                order.status = OrderStatus::Sent;
            }
            // A list ack names the list; each leg's order id comes from its read-back.
            if order.role == Role::Entry || list_id.is_none() {
                if let Some(id) = order_id {
                    order.order_id = Some(id.clone());
                }
            }
            if list_id.is_some() {
                order.list_id = list_id.clone();
            }
        }
        SendOutcome::Rejected { code, message } if known => {
            order.last_error = Some(format!(
                "repeated send rejected ({}); the order exists",
                error_text(*code, message)
            ));
        }
        SendOutcome::Ambiguous { message } if known => {
            order.last_error = Some(format!("repeated send unanswered: {message}"));
        }
        SendOutcome::Rejected {
            code: Some(204), ..
        } => {
            // Duplicate client_oid: an earlier attempt of this very intent exists. That is an
            // acknowledgement: a later "not found" is a lagging read, never proof of absence.
            order.status = OrderStatus::Sent;
            order.last_error = Some("duplicate client_oid: earlier attempt exists".into());
        }
        SendOutcome::Rejected { code, message } if order.status == OrderStatus::Unknown => {
            order.last_error = Some(format!(
                "repeated send rejected ({}); the first may exist",
                error_text(*code, message)
            ));
        }
        SendOutcome::Rejected { code, message } => {
            order.status = OrderStatus::NotPlaced;
            order.last_error = Some(error_text(*code, message));
        }
        SendOutcome::Ambiguous { message } => {
            order.status = OrderStatus::Unknown;
            order.last_error = Some(format!("ambiguous send: {message}"));
        }
    }
}

fn on_looked(
    view: &mut TradeView,
    oid: &str,
    outcome: LookOutcome,
    now: Millis,
    limits: &Limits,
    actions: &mut Vec<Action>,
) {
    let Some(role) = find_order(view, oid).map(|order| order.role) else {
        return;
    };
    if let LookOutcome::Found(report) = &outcome {
        if let Err(problem) = apply_report(view, oid, report) {
            let outcome = LookOutcome::Failed { message: problem };
            return dispatch_look(view, role, oid, outcome, now, limits, actions);
        }
    }
    dispatch_look(view, role, oid, outcome, now, limits, actions);
}

fn dispatch_look(
    view: &mut TradeView,
    role: Role,
    oid: &str,
    outcome: LookOutcome,
    now: Millis,
    limits: &Limits,
    actions: &mut Vec<Action>,
) {
    match role {
        Role::Entry => entry_looked(view, &outcome, now, limits, actions),
        Role::StopLoss | Role::TakeProfit => {
            protective_looked(view, oid, &outcome, now, limits, actions)
        }
        Role::Exit => exit_looked(view, &outcome, now, limits, actions),
    }
}

/// Copies a venue report into the order after checking it is about this order and sane.
fn apply_report(view: &mut TradeView, oid: &str, report: &OrderReport) -> Result<(), String> {
    if report.client_oid != oid {
        return Err(format!(
            "report for client_oid {} while looking up {oid}",
            report.client_oid
        ));
    }
    if report.cumulative_quantity < Decimal::ZERO || report.cumulative_fee < Decimal::ZERO {
        return Err("negative cumulative quantity or fee".into());
    }
    if report.status == VenueStatus::Filled && report.cumulative_quantity.is_zero() {
        return Err("status FILLED with cumulative_quantity 0 is not a fill".into());
    }
    let order = find_order_mut(view, oid).expect("caller checked the order exists");
    order.status = OrderStatus::Venue(report.status);
    order.order_id = Some(report.order_id.clone());
    if report.list_id.is_some() {
        order.list_id = report.list_id.clone();
    }
    order.cumulative_quantity = report.cumulative_quantity;
    order.avg_price = report.avg_price;
    order.fee = report.cumulative_fee;
    order.fee_currency = Some(report.fee_currency.clone());
    order.last_error = None;
    Ok(())
}

fn on_cancelled(
    view: &mut TradeView,
    oid: &str,
    outcome: Result<(), String>,
    now: Millis,
    actions: &mut Vec<Action>,
) {
    if let (Err(message), Some(order)) = (&outcome, find_order_mut(view, oid)) {
        order.last_error = Some(format!("cancel failed: {message}"));
    }
    let role = find_order(view, oid).map(|order| order.role);
    let clearing = matches!(
        view.trade.state,
        TradeState::Protecting | TradeState::Closing
    );
    if clearing && role.is_some_and(Role::is_protective) {
        actions.push(Action::Lookup {
            client_oid: oid.to_string(),
        });
        return;
    }
    if view.trade.state == TradeState::CancellingEntry && role == Some(Role::Entry) {
        // Whatever the cancel said, the truth is in the order's state: read it.
        actions.push(Action::Lookup {
            client_oid: oid.to_string(),
        });
        view.trade.due_ms = Some(now + POLL_FIRST_DELAY_MS);
    }
}

fn on_market(
    view: &mut TradeView,
    outcome: MarketOutcome,
    now: Millis,
    limits: &Limits,
    actions: &mut Vec<Action>,
) {
    if view.trade.state != TradeState::Protecting {
        return;
    }
    let market = match outcome {
        MarketOutcome::Ready(market) => market,
        MarketOutcome::Failed { message } => {
            view.trade.protect_attempts += 1;
            view.trade.due_ms = Some(now + limits.poll_interval_ms);
            if view.trade.protect_attempts >= limits.protect_attempts_max {
                let detail = format!("market data for sizing protection unavailable: {message}");
                failsafe(view, "protection_failed", &detail, now, limits, actions);
            }
            return;
        }
    };
    place_protection(view, &market, now, limits, actions);
}

#[cfg(test)]
mod tests;
