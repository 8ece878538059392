//! The entry phase: sending the entry (or the OTOCO list), resolving an ambiguous send,
//! bounded fill polling, cancelling an entry that stayed open, and handing a fill to protection.

use crate::core::domain::{Millis, ProtectionMode, VenueStatus};
use crate::core::ids::{Role, client_oid};
use crate::core::normalize::plain;

use super::protection::*;
use super::types::*;
use super::view::*;
use super::window::*;

pub(super) fn on_entry_blocked(
    view: &mut TradeView,
    reason: &str,
    now: Millis,
    limits: &Limits,
    actions: &mut Vec<Action>,
) {
    if view.trade.state != TradeState::EntryPending {
        return;
    }
    let entry_oid = entry_oid(view);
    if find_order(view, &entry_oid).is_some_and(|entry| entry.status == OrderStatus::Unknown) {
        // A repeat of a send that may have reached the exchange before a crash: "not found"
        // inside the nonce window proves nothing, so the entry is resolved by lookup like any
        // unacknowledged send (and taken as never placed only after the window).
        view.trade.state = TradeState::EntryUnknown;
        view.trade.due_ms = Some(now + unknown_delay(view.trade.attempts, limits));
        return actions.push(Action::Lookup {
            client_oid: entry_oid,
        });
    }
    for order in view.orders.iter_mut() {
        if order.status == OrderStatus::Intent {
            order.status = OrderStatus::NotPlaced;
            order.last_error = Some(reason.to_string());
        }
    }
    close(view, Reason::EntryBlocked, now, None, actions);
}

pub(super) fn send_entry(view: &mut TradeView, now: Millis, actions: &mut Vec<Action>) {
    let trade = &view.trade;
    let mut oids = vec![client_oid(&trade.epoch, trade.id, Role::Entry, 0)];
    let kind = if trade.mode == ProtectionMode::Otoco {
        oids.push(client_oid(&trade.epoch, trade.id, Role::StopLoss, 0));
        oids.push(client_oid(&trade.epoch, trade.id, Role::TakeProfit, 0));
        SendKind::Otoco
    } else {
        SendKind::Single
    };
    for order in view.orders.iter_mut() {
        if oids.contains(&order.client_oid) {
            mark_sending(order, now);
        }
    }
    actions.push(Action::Send {
        kind,
        client_oids: oids,
    });
}

pub(super) fn entry_sent(
    view: &mut TradeView,
    outcome: &SendOutcome,
    now: Millis,
    limits: &Limits,
    actions: &mut Vec<Action>,
) {
    // A rejected repeat of a send that may have gone out before a crash proves nothing.
    let repeated = entry_order(view).status != OrderStatus::NotPlaced;
    let trade = &mut view.trade;
    trade.attempts = 0;
    trade.phase_started_ms = now;
    match outcome {
        SendOutcome::Ack { .. } => {
            trade.state = TradeState::AwaitingFill;
            trade.due_ms = Some(now + fill_poll_delay(0, limits));
        }
        SendOutcome::Rejected { .. } if repeated => {
            trade.state = TradeState::EntryUnknown;
            trade.due_ms = Some(now + poll_delay(0, limits));
        }
        SendOutcome::Duplicate | SendOutcome::Ambiguous { .. } => {
            trade.state = TradeState::EntryUnknown;
            trade.due_ms = Some(now + poll_delay(0, limits));
        }
        SendOutcome::Rejected { message, .. } => {
            close(
                view,
                Reason::EntryRejected,
                now,
                Some(Alert {
                    severity: Severity::Warning,
                    key: format!("entry-rejected-{}", view.trade.id),
                    text: format!(
                        "entry rejected: {} {} {} ({message}); no position was opened",
                        view.trade.symbol,
                        view.trade.side,
                        plain(view.trade.entry_quantity),
                    ),
                }),
                actions,
            );
        }
    }
}

pub(super) fn entry_looked(
    view: &mut TradeView,
    outcome: &LookOutcome,
    now: Millis,
    limits: &Limits,
    actions: &mut Vec<Action>,
) {
    view.trade.attempts += 1;
    let entry = entry_order(view);
    match (outcome, entry.status) {
        (LookOutcome::Found(_), OrderStatus::Venue(status)) if status.is_terminal() => {
            entry_finished(view, &entry, now, limits, actions)
        }
        (LookOutcome::Found(_), _) => {
            view.trade.entry_seen = true;
            entry_still_open(view, now, limits, actions)
        }
        (LookOutcome::NotFound, _) => entry_not_found(view, now, limits, actions),
        (LookOutcome::Failed { message }, _) => {
            if let Some(order) = find_order_mut(view, &entry.client_oid) {
                order.last_error = Some(message.clone());
            }
            entry_lookup_failed(view, now, limits, actions)
        }
    }
}

/// The entry reached a terminal status: protect what filled, or close.
pub(super) fn entry_finished(
    view: &mut TradeView,
    entry: &Order,
    now: Millis,
    limits: &Limits,
    actions: &mut Vec<Action>,
) {
    let trade = &mut view.trade;
    trade.filled_quantity = entry.cumulative_quantity;
    trade.avg_price = entry.avg_price;
    trade.fee = entry.fee;
    trade.fee_currency = entry.fee_currency.clone();
    if entry.cumulative_quantity.is_zero() {
        let reason = match entry.status {
            OrderStatus::Venue(VenueStatus::Rejected) => Reason::EntryRejected,
            OrderStatus::Venue(VenueStatus::Expired) => Reason::EntryExpired,
            _ => Reason::EntryNotFilled,
        };
        // OTOCO legs that never activated are cancelled and confirmed before the trade closes.
        trade.close_reason = Some(reason.as_str().to_string());
        trade.state = TradeState::Closing;
        trade.attempts = 0;
        return advance_clearing(view, now, limits, actions);
    }
    trade.filled_at_ms.get_or_insert(now);
    let fully_filled = entry.status == OrderStatus::Venue(VenueStatus::Filled);
    // Only the OTOCO's own pair is read back, and only while it may rest: once a later
    // generation was sized, or the pair is known ended, there is nothing of the list to verify
    // and the position is protected anew (a leg whose fate is unknown is cleared first).
    let otoco_legs_may_rest = trade.generation == 0
        && protective_orders(view, 0)
            .iter()
            .any(|leg| leg.status.is_live());
    if view.trade.mode == ProtectionMode::Otoco && fully_filled && otoco_legs_may_rest {
        // The exchange activated the OTOCO legs: read them back.
        let leg_quantity = protective_orders(view, 0).first().map(|o| o.quantity);
        view.trade.protect_quantity = leg_quantity;
        enter_verifying(view, now, limits);
        return;
    }
    // A partial fill never activates OTOCO legs: the protection round cancels them first and
    // protects the filled part as an OCO.
    start_protection_round(view, now, limits, actions);
}

pub(super) fn entry_still_open(
    view: &mut TradeView,
    now: Millis,
    limits: &Limits,
    actions: &mut Vec<Action>,
) {
    let trade = &mut view.trade;
    let budget_spent = fill_polls_spent(trade.attempts, now - trade.phase_started_ms, limits);
    match trade.state {
        TradeState::CancellingEntry => retry_entry_cancel(view, now, limits, actions),
        // EntryPending: the repeat of a send lost in a crash was blocked by a breaker and the
        // lookup made instead found the entry resting.
        TradeState::EntryPending | TradeState::EntryUnknown | TradeState::AwaitingFill
            if budget_spent =>
        {
            begin_entry_cancel(view, now, actions)
        }
        TradeState::EntryPending | TradeState::EntryUnknown | TradeState::AwaitingFill => {
            trade.state = TradeState::AwaitingFill;
            trade.due_ms = Some(now + fill_poll_delay(trade.attempts, limits));
        }
        _ => {}
    }
}

pub(super) fn begin_entry_cancel(view: &mut TradeView, now: Millis, actions: &mut Vec<Action>) {
    let trade = &mut view.trade;
    trade.state = TradeState::CancellingEntry;
    trade.attempts = 0;
    trade.phase_started_ms = now;
    actions.push(Action::Cancel {
        client_oid: entry_oid(view),
    });
}

pub(super) fn retry_entry_cancel(
    view: &mut TradeView,
    now: Millis,
    limits: &Limits,
    actions: &mut Vec<Action>,
) {
    if view.trade.attempts < CANCEL_ATTEMPTS_MAX {
        actions.push(Action::Cancel {
            client_oid: entry_oid(view),
        });
        view.trade.due_ms = Some(now + limits.poll_interval_ms);
    } else {
        let detail = "the entry stayed open after every cancel attempt".to_string();
        halt(view, Reason::EntryCancelFailed, &detail, now, actions);
    }
}

pub(super) fn entry_not_found(
    view: &mut TradeView,
    now: Millis,
    limits: &Limits,
    actions: &mut Vec<Action>,
) {
    let entry = entry_order(view);
    let sent_at = entry.sent_at_ms.unwrap_or(view.trade.created_ms);
    match entry.status {
        OrderStatus::Intent => {
            // Never sent, or lost in a crash before the send: same client_oid, safe to send.
            view.trade.state = TradeState::EntryPending;
            send_entry(view, now, actions);
        }
        OrderStatus::Unknown if unknown_window_passed(sent_at, now, limits) => {
            if let Some(order) = find_order_mut(view, &entry.client_oid) {
                order.status = OrderStatus::NotPlaced;
            }
            if view.trade.mode == ProtectionMode::Otoco {
                mark_not_placed(view, 0);
            }
            close(view, Reason::EntryNotPlaced, now, None, actions);
        }
        OrderStatus::Unknown => {
            view.trade.due_ms = Some(now + unknown_delay(view.trade.attempts, limits));
        }
        _ if !fill_polls_spent(
            view.trade.attempts,
            now - view.trade.phase_started_ms,
            limits,
        ) =>
        {
            // Acknowledged orders can take a moment to become visible.
            let attempts = view.trade.attempts;
            let delay = if view.trade.state == TradeState::AwaitingFill {
                fill_poll_delay(attempts, limits)
            } else {
                poll_delay(attempts, limits)
            };
            view.trade.due_ms = Some(now + delay);
        }
        _ => {
            let detail = if view.trade.entry_seen {
                "the entry was seen open earlier but is now not found anywhere"
            } else {
                "the exchange acknowledged the entry but it was never found in order detail, open orders or history"
            };
            halt(view, Reason::EntryNotFound, detail, now, actions);
        }
    }
}

pub(super) fn entry_lookup_failed(
    view: &mut TradeView,
    now: Millis,
    limits: &Limits,
    actions: &mut Vec<Action>,
) {
    // While the entry is unresolved the bound is time (the nonce window and a deadline after
    // it): its lookups also count the "not found yet" answers of the window.
    let unknown = view.trade.state == TradeState::EntryUnknown;
    let spent = if unknown {
        now - view.trade.phase_started_ms >= UNKNOWN_WINDOW_MS + limits.poll_deadline_ms
    } else {
        // Attempts beyond the poll's (the span's extra polls) count only once the span passed.
        view.trade.attempts >= limits.poll_attempts_max + CANCEL_ATTEMPTS_MAX
            && now - view.trade.phase_started_ms >= fill_poll_span(limits)
    };
    if spent {
        let detail = "the entry's state could not be read from the exchange";
        halt(view, Reason::EntryStateUnknown, detail, now, actions);
    } else if unknown {
        view.trade.due_ms = Some(now + unknown_delay(view.trade.attempts, limits));
    } else {
        view.trade.due_ms = Some(now + poll_delay(view.trade.attempts, limits));
    }
}
