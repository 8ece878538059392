//! The protection phase: clearing earlier legs, sizing and placing stop-loss and take-profit,
//! reading them back, watching them, and re-protecting a leg that ended outside fillguard.

use rust_decimal::Decimal;

use crate::core::domain::{Millis, OrderReport, ProtectionMode, Side};
use crate::core::ids::Role;
use crate::core::normalize::{
    check_minimums, plain, protect_quantity, protective_prices, stop_already_crossed,
};

use super::failsafe::*;
use super::types::*;
use super::view::*;
use super::window::*;

/// Begins a protection round: fetch what sizing needs. Bounded by `protect_attempts_max`.
pub(super) fn start_protection_round(
    view: &mut TradeView,
    now: Millis,
    limits: &Limits,
    actions: &mut Vec<Action>,
) {
    let trade = &mut view.trade;
    if trade.protect_attempts >= limits.protect_attempts_max {
        let detail = format!(
            "protection could not be placed after {} attempts",
            trade.protect_attempts
        );
        return failsafe(
            view,
            Reason::ProtectionFailed,
            &detail,
            now,
            limits,
            actions,
        );
    }
    trade.state = TradeState::Protecting;
    trade.attempts = 0;
    trade.phase_started_ms = now;
    advance_clearing(view, now, limits, actions);
}

/// Protecting and Closing first make sure no protective order is live (S1: a new stop is
/// never placed while an earlier one may still rest). When none is, Protecting fetches what
/// sizing needs and Closing closes the trade. Bounded by the poll budget.
pub(super) fn advance_clearing(
    view: &mut TradeView,
    now: Millis,
    limits: &Limits,
    actions: &mut Vec<Action>,
) {
    let live = live_legs(view);
    if live.is_empty() {
        view.trade.due_ms = Some(now + limits.poll_interval_ms);
        if view.trade.state == TradeState::Closing {
            let reason = view
                .trade
                .close_reason
                .as_deref()
                .and_then(Reason::parse)
                .unwrap_or(Reason::ProtectionFilled);
            return close(view, reason, now, None, actions);
        }
        if let Some(reason) = closed_by_protection(view) {
            // The legs were read in an order that looked like a cancel, but they sold it all.
            return close(view, reason, now, None, actions);
        }
        actions.push(Action::FetchMarket);
        return;
    }
    view.trade.attempts += 1;
    if view.trade.attempts > limits.poll_attempts_max + CANCEL_ATTEMPTS_MAX {
        let oids: Vec<&str> = live.iter().map(|order| order.client_oid.as_str()).collect();
        let detail = format!(
            "protective orders {} could not be cancelled or resolved",
            oids.join(", ")
        );
        return halt(view, Reason::ProtectionStuck, &detail, now, actions);
    }
    if view.trade.attempts == 1 && live.iter().any(|order| list_member_ended(view, order)) {
        // A leg of the list ended (filled, cancelled, expired): the exchange ends its sibling
        // itself, so the sibling is read back before any cancel (a cancel of a list already
        // done is refused, and a cancel is read back anyway). One still open is cancelled on
        // the next turn: due at once, so a leg that does rest costs one round trip more.
        let first_round: Vec<Action> = live
            .iter()
            .map(|order| {
                if list_member_ended(view, order) && order.status != OrderStatus::Unknown {
                    Action::Lookup {
                        client_oid: order.client_oid.clone(),
                    }
                } else {
                    clearing_action(order)
                }
            })
            .collect();
        actions.extend(first_round);
        view.trade.due_ms = Some(now);
        return;
    } else {
        actions.extend(clearing_actions(&live));
    }
    view.trade.due_ms = Some(now + poll_delay(view.trade.attempts, limits));
}

/// Whether another protective member of `order`'s exchange list has ended, so the exchange
/// has ended (or is ending) `order` too. An OTOCO's entry is not counted: its legs outlive it.
fn list_member_ended(view: &TradeView, order: &Order) -> bool {
    let Some(list_id) = order.list_id.as_deref() else {
        return false;
    };
    view.orders.iter().any(|other| {
        other.client_oid != order.client_oid
            && other.role.is_protective()
            && other.list_id.as_deref() == Some(list_id)
            && matches!(other.status, OrderStatus::Venue(status) if status.is_terminal())
    })
}

pub(super) fn place_protection(
    view: &mut TradeView,
    market: &Market,
    now: Millis,
    limits: &Limits,
    actions: &mut Vec<Action>,
) {
    let trade = &view.trade;
    let instrument = &market.instrument;
    // A BUY's protection sells what the account holds: a balance the shell did not read
    // counts as none (unprotectable, never more than is there).
    let free = (trade.side == Side::Buy).then(|| market.free_base.unwrap_or(Decimal::ZERO));
    let quantity = protect_quantity(
        open_quantity(view),
        Decimal::ZERO,
        free,
        instrument.quantity_tick,
    );
    let (stop, profit) = protective_prices(
        trade.side,
        trade.avg_price,
        trade.stop_loss_pct,
        trade.take_profit_pct,
        instrument.price_tick,
    );
    if let Err(problem) = check_minimums(instrument, quantity, &[stop, profit]) {
        let detail = format!("unprotectable: {problem}");
        return failsafe(view, Reason::Unprotectable, &detail, now, limits, actions);
    }
    if stop_already_crossed(trade.side, stop, market.last_price) {
        let detail = format!(
            "stop-loss trigger {} already crossed by the last price {}",
            plain(stop),
            plain(market.last_price)
        );
        return failsafe(view, Reason::StopCrossed, &detail, now, limits, actions);
    }
    let target_crossed = target_already_crossed(trade.side, profit, market.last_price);
    if target_crossed && exit_configured(limits) {
        return take_crossed_profit(view, profit, market.last_price, now, limits, actions);
    }
    let trade = &mut view.trade;
    trade.generation += 1;
    trade.protect_quantity = Some(quantity);
    trade.stop_loss_price = Some(stop);
    trade.take_profit_price = Some(profit);
    let generation = trade.generation;
    let (stop_order, profit_order) = protective_intents(view, generation, quantity, stop, profit);
    let mut legs = vec![stop_order];
    if target_crossed {
        // The target is behind the price: a take-profit would be refused or fill at once.
        actions.push(Action::Alert(target_skipped_alert(
            view,
            profit,
            market.last_price,
        )));
    } else {
        legs.push(profit_order);
    }
    let oids: Vec<String> = legs.iter().map(|leg| leg.client_oid.clone()).collect();
    for mut order in legs {
        mark_sending(&mut order, now);
        view.orders.push(order);
    }
    view.trade.state = TradeState::Verifying;
    view.trade.attempts = 0;
    view.trade.phase_started_ms = now;
    view.trade.due_ms = Some(now + limits.poll_interval_ms);
    send_legs(view.trade.mode, oids, actions);
}

/// One OCO list for a pair, or each leg on its own (separate mode, or a stop alone).
fn send_legs(mode: ProtectionMode, oids: Vec<String>, actions: &mut Vec<Action>) {
    if mode == ProtectionMode::Separate || oids.len() == 1 {
        for oid in oids {
            actions.push(Action::Send {
                kind: SendKind::Single,
                client_oids: vec![oid],
            });
        }
    } else {
        actions.push(Action::Send {
            kind: SendKind::Oco,
            client_oids: oids,
        });
    }
}

pub(super) fn protection_sent(
    view: &mut TradeView,
    client_oids: &[String],
    outcome: &SendOutcome,
    now: Millis,
    limits: &Limits,
    actions: &mut Vec<Action>,
) {
    if !matches!(
        view.trade.state,
        TradeState::Verifying | TradeState::Protecting
    ) {
        // A late answer to a send of an earlier phase (the failsafe began meanwhile): the
        // order's status is recorded, and the phase under way clears any leg it made live.
        return;
    }
    // Only a first send that was refused is NotPlaced; any other order may exist or does.
    let repeated = client_oids
        .iter()
        .filter_map(|oid| find_order(view, oid))
        .any(|order| order.status != OrderStatus::NotPlaced);
    match outcome {
        SendOutcome::Rejected { message, .. } if !repeated => {
            view.trade.protect_attempts += 1;
            // A half-placed separate pair is cancelled by the next round's clearing step.
            if view.trade.protect_attempts >= limits.protect_attempts_max {
                let detail = format!("protective order rejected: {message}");
                return failsafe(
                    view,
                    Reason::ProtectionRejected,
                    &detail,
                    now,
                    limits,
                    actions,
                );
            }
            view.trade.state = TradeState::Protecting;
            view.trade.due_ms = Some(now + poll_delay(view.trade.protect_attempts, limits));
        }
        _ => enter_verifying(view, now, limits),
    }
}

pub(super) fn enter_verifying(view: &mut TradeView, now: Millis, limits: &Limits) {
    let trade = &mut view.trade;
    if trade.state != TradeState::Verifying {
        trade.attempts = 0;
        trade.phase_started_ms = now;
    }
    trade.state = TradeState::Verifying;
    trade.due_ms = Some(now + POLL_FIRST_DELAY_MS.min(limits.poll_interval_ms));
}

pub(super) fn protective_looked(
    view: &mut TradeView,
    oid: &str,
    outcome: &LookOutcome,
    now: Millis,
    limits: &Limits,
    actions: &mut Vec<Action>,
) {
    let Some(order) = find_order(view, oid).cloned() else {
        return;
    };
    if matches!(
        view.trade.state,
        TradeState::Protecting | TradeState::Closing | TradeState::Exiting
    ) {
        if *outcome == LookOutcome::NotFound {
            resolve_missing_leg(view, &order, now, limits);
        }
        // The next round waits for the trade's deadline while legs remain, so one answer
        // never fans out into a new request per leg.
        if !live_legs(view).is_empty() {
            return;
        }
        if view.trade.state == TradeState::Exiting {
            return advance_exit(view, now, limits, actions);
        }
        return advance_clearing(view, now, limits, actions);
    }
    if order.generation != view.trade.generation {
        return;
    }
    match outcome {
        LookOutcome::Found(report) => {
            if !order.verified {
                if let Err(mismatch) = verify_leg(&order, report) {
                    let detail = format!("protective order {oid} does not match: {mismatch}");
                    return failsafe(
                        view,
                        Reason::ProtectionMismatch,
                        &detail,
                        now,
                        limits,
                        actions,
                    );
                }
                if let Some(leg) = find_order_mut(view, oid) {
                    leg.verified = true;
                }
            }
            settle_protection(view, now, limits, actions);
        }
        LookOutcome::NotFound => protective_missing(view, &order, now, limits, actions),
        LookOutcome::Failed { message } => {
            if let Some(leg) = find_order_mut(view, oid) {
                leg.last_error = Some(message.clone());
            }
            count_verify_attempt(view, now, limits, actions);
        }
    }
}

/// Checks the read-back against the intent: side, type, quantity and prices.
pub(super) fn verify_leg(order: &Order, report: &OrderReport) -> Result<(), String> {
    let mut problems = Vec::new();
    if report.side != order.side {
        problems.push(format!("side {} instead of {}", report.side, order.side));
    }
    if report.order_type != order.order_type {
        problems.push(format!(
            "type {} instead of {}",
            report.order_type.as_str(),
            order.order_type.as_str()
        ));
    }
    if report.quantity != order.quantity {
        problems.push(format!(
            "quantity {} instead of {}",
            plain(report.quantity),
            plain(order.quantity)
        ));
    }
    if order.trigger_price.is_some() && report.trigger_price != order.trigger_price {
        problems.push("trigger price differs".to_string());
    }
    if order.price.is_some() && report.price != order.price {
        problems.push("limit price differs".to_string());
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join(", "))
    }
}

/// After a read-back: decide between verified, closed by a leg, and re-protection.
pub(super) fn settle_protection(
    view: &mut TradeView,
    now: Millis,
    limits: &Limits,
    actions: &mut Vec<Action>,
) {
    let generation = view.trade.generation;
    let legs: Vec<Order> = protective_orders(view, generation)
        .into_iter()
        .cloned()
        .collect();
    let protected_quantity = view.trade.protect_quantity.unwrap_or_default();
    let filled: Decimal = legs.iter().map(|leg| leg.cumulative_quantity).sum();
    if filled >= protected_quantity && !filled.is_zero() {
        let reason = legs
            .iter()
            .filter(|leg| !leg.cumulative_quantity.is_zero())
            .max_by_key(|leg| leg.cumulative_quantity)
            .map(|leg| match leg.role {
                Role::StopLoss => Reason::StopLossFilled,
                _ => Reason::TakeProfitFilled,
            })
            .unwrap_or(Reason::ProtectionFilled);
        view.trade.close_reason = Some(reason.as_str().to_string());
        view.trade.state = TradeState::Closing;
        view.trade.attempts = 0;
        return advance_clearing(view, now, limits, actions);
    }
    let leg_ended = legs
        .iter()
        .any(|leg| matches!(leg.status, OrderStatus::Venue(status) if status.is_terminal()));
    if leg_ended {
        return reprotect(view, now, limits, actions);
    }
    let all_verified = legs.iter().all(|leg| leg.verified);
    if all_verified && view.trade.state == TradeState::Verifying {
        view.trade.state = TradeState::Protected;
        view.trade.protected_at_ms.get_or_insert(now);
        view.trade.protect_attempts = 0;
        resolved(view, actions);
    }
    if view.trade.state == TradeState::Protected {
        // Seen: the count of watches that found nothing starts again.
        view.trade.attempts = 0;
        view.trade.due_ms = Some(now + limits.watch_interval_ms);
    } else {
        count_verify_attempt(view, now, limits, actions);
    }
}

/// A protective leg ended without closing the position (cancelled outside fillguard, expired,
/// rejected at trigger, or partly filled with its sibling cancelled): protect the rest again.
pub(super) fn reprotect(
    view: &mut TradeView,
    now: Millis,
    limits: &Limits,
    actions: &mut Vec<Action>,
) {
    if view.trade.reprotects >= limits.reprotect_max {
        let detail = format!(
            "protection ended outside fillguard {} times; no more re-protection",
            view.trade.reprotects
        );
        return failsafe(
            view,
            Reason::ReprotectExhausted,
            &detail,
            now,
            limits,
            actions,
        );
    }
    view.trade.reprotects += 1;
    view.trade.protect_attempts = 0;
    start_protection_round(view, now, limits, actions);
}

pub(super) fn protective_missing(
    view: &mut TradeView,
    order: &Order,
    now: Millis,
    limits: &Limits,
    actions: &mut Vec<Action>,
) {
    let sent_at = order.sent_at_ms.unwrap_or(view.trade.phase_started_ms);
    let unknown_expired = matches!(order.status, OrderStatus::Unknown | OrderStatus::Intent)
        && unknown_window_passed(sent_at, now, limits);
    let otoco_legs = view.trade.mode == ProtectionMode::Otoco && order.generation == 0;
    if order.status == OrderStatus::Intent
        && view.trade.state == TradeState::Verifying
        && !otoco_legs
    {
        // Crash between storing the intent and sending it: send the same client_oids again.
        return resend_generation(view, now, actions);
    }
    if unknown_expired {
        mark_not_placed(view, order.generation);
        view.trade.protect_attempts += 1;
        return start_protection_round(view, now, limits, actions);
    }
    if order.status == OrderStatus::Unknown && view.trade.state == TradeState::Verifying {
        // Bounded by the window, not by a count of "not found yet" answers.
        view.trade.due_ms = Some(now + unknown_delay(view.trade.attempts, limits));
        view.trade.attempts += 1;
        return;
    }
    if view.trade.state == TradeState::Protected {
        // A live leg no longer found anywhere (not in order detail, open orders or the history
        // read back) may have filled or been removed unseen: after a bound the operator is told
        // and the trade recovers, instead of watching nothing forever.
        view.trade.attempts += 1;
        if view.trade.attempts >= VERIFY_ATTEMPTS_MAX {
            let detail = format!(
                "protective order {} has not been found on the exchange for {} watches",
                order.client_oid, view.trade.attempts
            );
            return failsafe(
                view,
                Reason::ProtectionUnverified,
                &detail,
                now,
                limits,
                actions,
            );
        }
    }
    count_verify_attempt(view, now, limits, actions);
}

pub(super) fn resend_generation(view: &mut TradeView, now: Millis, actions: &mut Vec<Action>) {
    let generation = view.trade.generation;
    let oids: Vec<String> = protective_orders(view, generation)
        .iter()
        .filter(|order| order.status == OrderStatus::Intent)
        .map(|order| order.client_oid.clone())
        .collect();
    for order in view.orders.iter_mut() {
        if oids.contains(&order.client_oid) {
            mark_sending(order, now);
        }
    }
    let kind = match view.trade.mode {
        ProtectionMode::Separate => SendKind::Single,
        // A generation of one leg: the stop alone, its target skipped.
        _ if protective_orders(view, generation).len() == 1 => SendKind::Single,
        _ => SendKind::Oco,
    };
    if kind == SendKind::Single {
        for oid in oids {
            actions.push(Action::Send {
                kind: SendKind::Single,
                client_oids: vec![oid],
            });
        }
    } else if oids.len() == 2 {
        actions.push(Action::Send {
            kind,
            client_oids: oids,
        });
    }
}

pub(super) fn count_verify_attempt(
    view: &mut TradeView,
    now: Millis,
    limits: &Limits,
    actions: &mut Vec<Action>,
) {
    if view.trade.state == TradeState::Protected {
        view.trade.due_ms = Some(now + limits.watch_interval_ms);
        return;
    }
    view.trade.attempts += 1;
    if view.trade.attempts >= VERIFY_ATTEMPTS_MAX {
        let detail = "protective orders could not be read back and verified".to_string();
        return failsafe(
            view,
            Reason::ProtectionUnverified,
            &detail,
            now,
            limits,
            actions,
        );
    }
    view.trade.due_ms = Some(now + poll_delay(view.trade.attempts, limits));
}

/// Whether the last price has already passed the take-profit target, so a take-profit order
/// would be refused (a trigger on the wrong side) or fill at once.
fn target_already_crossed(side: Side, target: Decimal, last_price: Decimal) -> bool {
    match side {
        Side::Buy => last_price >= target,
        Side::Sell => last_price <= target,
    }
}

/// The target was passed while the entry was polled or the agent was down: with exits
/// configured, the profit is taken at market (after the usual confirmation that no leg rests).
fn take_crossed_profit(
    view: &mut TradeView,
    target: Decimal,
    last_price: Decimal,
    now: Millis,
    limits: &Limits,
    actions: &mut Vec<Action>,
) {
    let trade = &view.trade;
    let text = format!(
        "TAKE-PROFIT PASSED {} trade {} {} filled {} at {}: the target {} is behind the last price {}; taking the profit at market (failsafe.flatten)",
        trade.symbol,
        trade.id,
        trade.side,
        plain(trade.filled_quantity),
        plain(trade.avg_price),
        plain(target),
        plain(last_price)
    );
    actions.push(Action::Alert(Alert {
        severity: Severity::Warning,
        key: format!("target-passed-{}", trade.id),
        text,
    }));
    view.trade.close_reason = Some(Reason::TakeProfitCrossed.as_str().to_string());
    begin_exit(view, now, limits, actions);
}

fn target_skipped_alert(view: &TradeView, target: Decimal, last_price: Decimal) -> Alert {
    let trade = &view.trade;
    Alert {
        severity: Severity::Warning,
        key: format!("target-skipped-{}-{}", trade.id, trade.generation),
        text: format!(
            "TAKE-PROFIT SKIPPED {} trade {} {} filled {} at {}: the target {} is behind the last price {}; the stop-loss is placed alone. Operator: close the position by hand to take the profit, or leave it to the stop",
            trade.symbol,
            trade.id,
            trade.side,
            plain(trade.filled_quantity),
            plain(trade.avg_price),
            plain(target),
            plain(last_price)
        ),
    }
}
