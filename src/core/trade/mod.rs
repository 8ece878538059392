//! The trade state machine: `step(view, event, now, limits) -> actions`. One trade's lifecycle
//! from the entry intent to a terminal state, with every outcome of DESIGN §1 distinct. Pure:
//! it reads no clock (time arrives as `now`), does no IO and returns what the shell must do.
//! The shell stores the new view and the intents before it executes any action.

mod entry;
mod failsafe;
mod protection;
mod types;
mod view;
pub use view::RECOVERY_DELAY_MAX_MS;
mod window;

pub use types::*;
pub use view::{new_order, open_quantity, protective_intents};
pub use window::{
    CANCEL_ATTEMPTS_MAX, POLL_FIRST_DELAY_DEFAULT_MS, POLL_FIRST_DELAY_MS,
    POLL_GROWTH_DEFAULT_PERCENT, POLL_GROWTH_MAX_PERCENT, POLL_GROWTH_MIN_PERCENT,
    POLL_STEP_MIN_MS, PollPolicy, PollSchedule, PollSource, RESTART_SETTLE_MS, UNKNOWN_WINDOW_MS,
    VERIFY_ATTEMPTS_MAX, fill_poll_delay, fill_poll_span, poll_delay,
};

use entry::*;
use failsafe::*;
use protection::*;
use view::*;

use rust_decimal::Decimal;

use crate::core::domain::{Millis, OrderReport, ProtectionMode, VenueStatus};
use crate::core::ids::{GENERATION_MAX, Role, TRADE_ID_MAX, is_valid_epoch};
use crate::core::normalize::plain;

/// Advances one trade by one event. Never panics on bad venue data or a stored trade that
/// contradicts itself: a report that cannot be trusted is recorded and retried within the
/// phase's bounds, an order that is not ours is never adopted, and an inconsistent trade halts
/// with its breaker while every other trade goes on.
pub fn step(view: &mut TradeView, event: Event, now: Millis, limits: &Limits) -> Vec<Action> {
    let mut actions = Vec::new();
    view.trade.updated_ms = now;
    if view.trade.state.is_terminal() {
        return actions;
    }
    if let Err(problem) = check_consistent(view) {
        halt(view, Reason::Inconsistent, &problem, now, &mut actions);
        return actions;
    }
    if let Event::Deferred { client_oids } = &event {
        on_deferred(view, client_oids, now);
        return actions;
    }
    if view.trade.state == TradeState::Recovering
        && !matches!(event, Event::Due | Event::BreakerReset)
    {
        // Answers to requests made before the halt: kept, and acted on when the trade is due.
        record_only(view, event, now);
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
        Event::BreakerReset => on_breaker_reset(view, now),
        Event::Deferred { .. } => {}
    }
    actions
}

/// An action that was not carried out (the turn's time budget was spent) changes nothing but
/// when the trade is due: at once, so the next turn derives the action again, as after a crash
/// before the send. A send that was not made is undone exactly: an intent marked as being sent
/// for the first time is again one that was never sent (`mark_sending` then counts the next
/// attempt as the first, so a send that never left is never taken as ambiguous), while an
/// order that an earlier attempt may have placed keeps its status and send time.
fn on_deferred(view: &mut TradeView, client_oids: &[String], now: Millis) {
    for oid in client_oids {
        if let Some(order) = find_order_mut(view, oid) {
            if order.status == OrderStatus::Intent {
                order.sent_at_ms = None;
            }
        }
    }
    let due = view.trade.due_ms.map_or(now, |due| due.min(now));
    view.trade.due_ms = Some(due);
}

fn record_only(view: &mut TradeView, event: Event, now: Millis) {
    match event {
        Event::Sent {
            client_oids,
            outcome,
        } => {
            for oid in &client_oids {
                if let Some(order) = find_order_mut(view, oid) {
                    order.sent_at_ms.get_or_insert(now);
                    apply_send_outcome(order, &outcome);
                }
            }
        }
        Event::Looked {
            client_oid,
            outcome: LookOutcome::Found(report),
        } => {
            let checked = find_order(view, &client_oid)
                .is_some_and(|order| check_report(view, order, &report).is_ok());
            if checked {
                adopt_report(view, &client_oid, &report);
            }
        }
        Event::Cancelled {
            client_oid,
            outcome: Err(message),
        } => {
            if let Some(order) = find_order_mut(view, &client_oid) {
                order.last_error = Some(format!("cancel failed: {message}"));
            }
        }
        _ => {}
    }
}

/// What every phase relies on: exactly one entry order, and ids that fit the exchange's limit.
fn check_consistent(view: &TradeView) -> Result<(), String> {
    let trade = &view.trade;
    let entries = view
        .orders
        .iter()
        .filter(|order| order.role == Role::Entry)
        .count();
    if entries != 1 {
        return Err(format!("the trade has {entries} entry orders instead of 1"));
    }
    if !(1..=TRADE_ID_MAX).contains(&trade.id)
        || trade.generation > GENERATION_MAX
        || !is_valid_epoch(&trade.epoch)
    {
        return Err("the trade's id, generation or epoch is out of range".into());
    }
    if trade.filled_quantity < Decimal::ZERO || trade.fee < Decimal::ZERO {
        return Err("negative filled quantity or fee".into());
    }
    Ok(())
}

fn on_due(view: &mut TradeView, now: Millis, limits: &Limits, actions: &mut Vec<Action>) {
    let trade = &mut view.trade;
    trade.due_ms = None;
    match trade.state {
        TradeState::EntryPending => send_entry(view, now, actions),
        TradeState::AwaitingFill if limits.poll.source == PollSource::OpenThenHistory => {
            // An acknowledged entry only: an ambiguous send or a cancel is always resolved
            // through the whole lookup chain.
            let oid = entry_oid(view);
            actions.push(Action::LookupListed { client_oid: oid });
        }
        TradeState::EntryUnknown | TradeState::AwaitingFill | TradeState::CancellingEntry => {
            let oid = entry_oid(view);
            actions.push(Action::Lookup { client_oid: oid });
        }
        TradeState::Exiting => advance_exit(view, now, limits, actions),
        TradeState::Protecting | TradeState::Closing => {
            advance_clearing(view, now, limits, actions)
        }
        TradeState::Verifying | TradeState::Protected => {
            let generation = view.trade.generation;
            if !never_sent_protection(view).is_empty() {
                // The whole round's send never left (the turn's budget deferred it): send it
                // again at once; reading back orders that were never sent would spend the
                // next budget on look-ups and defer the send once more.
                return resend_generation(view, now, actions);
            }
            // A separate leg whose own send was deferred while its sibling's was made is read
            // back with it first: sent now, its answer could be stepped after a sibling's
            // "not placed" that also covers it, or land on a position the sibling closed.
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
        TradeState::Recovering => resume(view, now, limits, actions),
        TradeState::Closed | TradeState::Halted => {}
    }
}

/// Protective legs of the current round that were never sent (an intent whose send mark a
/// deferral undid): only while the round is being verified, and never an OTOCO's first pair,
/// which went out with the entry. Only a whole round counts (the caller resends it); a round
/// partly sent is read back as after a crash.
fn never_sent_protection(view: &TradeView) -> Vec<String> {
    let generation = view.trade.generation;
    if view.trade.state != TradeState::Verifying
        || (view.trade.mode == ProtectionMode::Otoco && generation == 0)
    {
        return Vec::new();
    }
    let legs = protective_orders(view, generation);
    let unsent: Vec<String> = legs
        .iter()
        .filter(|order| order.status == OrderStatus::Intent && order.sent_at_ms.is_none())
        .map(|order| order.client_oid.clone())
        .collect();
    if unsent.len() != legs.len() {
        return Vec::new();
    }
    unsent
}

/// The operator reset the breaker this trade opened: a recovering trade is theirs now.
fn on_breaker_reset(view: &mut TradeView, now: Millis) {
    if view.trade.state == TradeState::Recovering {
        finish(
            view,
            TradeState::Halted,
            Reason::OperatorReleased.as_str(),
            now,
        );
        view.trade.recovering_since_ms = None;
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
        SendOutcome::Rejected { message, .. } if known => {
            order.last_error = Some(format!(
                "repeated send rejected ({message}); the order exists"
            ));
        }
        SendOutcome::Ambiguous { message } if known => {
            order.last_error = Some(format!("repeated send unanswered: {message}"));
        }
        SendOutcome::Duplicate => {
            // An earlier attempt of this very intent exists. That is an acknowledgement: a
            // later "not found" is a lagging read, never proof of absence.
            if !known {
                order.status = OrderStatus::Sent;
            }
            order.last_error = Some("duplicate client_oid: earlier attempt exists".into());
        }
        SendOutcome::Rejected { message, .. } if order.status == OrderStatus::Unknown => {
            order.last_error = Some(format!(
                "repeated send rejected ({message}); the first may exist"
            ));
        }
        SendOutcome::Rejected { message, .. } => {
            order.status = OrderStatus::NotPlaced;
            order.last_error = Some(message.clone());
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
    let Some(order) = find_order(view, oid).cloned() else {
        return;
    };
    if let LookOutcome::Found(report) = &outcome {
        match check_report(view, &order, report) {
            Ok(()) => adopt_report(view, oid, report),
            Err(Refusal::NotOurs(problem)) => {
                return not_ours(view, &order, report, &problem, now, actions);
            }
            Err(Refusal::Unusable(problem)) => {
                let outcome = LookOutcome::Failed { message: problem };
                return dispatch_look(view, order.role, oid, outcome, now, limits, actions);
            }
        }
    }
    dispatch_look(view, order.role, oid, outcome, now, limits, actions);
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

/// Why a report was not copied into its order.
enum Refusal {
    /// Another order carries this client_oid (an earlier database's): never adopted.
    NotOurs(String),
    /// The report is ours but cannot be trusted; it counts as a failed lookup.
    Unusable(String),
}

/// A report is adopted only when it is about this very order: its client_oid and, for an
/// entry or an exit, its symbol, side and quantity match the intent (a protective leg's
/// read-back is checked field by field in `verify_leg`, and a mismatch there fails safe), and
/// its figures are sane.
fn check_report(view: &TradeView, order: &Order, report: &OrderReport) -> Result<(), Refusal> {
    if report.client_oid != order.client_oid {
        return Err(Refusal::Unusable(format!(
            "report for client_oid {} while looking up {}",
            report.client_oid, order.client_oid
        )));
    }
    if !order.role.is_protective() {
        check_identity(view, order, report).map_err(Refusal::NotOurs)?;
    }
    if report.cumulative_quantity < Decimal::ZERO || report.cumulative_fee < Decimal::ZERO {
        return Err(Refusal::Unusable(
            "negative cumulative quantity or fee".into(),
        ));
    }
    if report.cumulative_quantity > report.quantity {
        return Err(Refusal::Unusable(
            "cumulative quantity above the order's quantity".into(),
        ));
    }
    if report.status == VenueStatus::Filled && report.cumulative_quantity.is_zero() {
        return Err(Refusal::Unusable(
            "status FILLED with cumulative_quantity 0 is not a fill".into(),
        ));
    }
    Ok(())
}

fn check_identity(view: &TradeView, order: &Order, report: &OrderReport) -> Result<(), String> {
    let mut problems = Vec::new();
    if report.symbol != view.trade.symbol {
        problems.push(format!(
            "symbol {} instead of {}",
            report.symbol, view.trade.symbol
        ));
    }
    if report.side != order.side {
        problems.push(format!("side {} instead of {}", report.side, order.side));
    }
    if report.quantity != order.quantity {
        problems.push(format!(
            "quantity {} instead of {}",
            plain(report.quantity),
            plain(order.quantity)
        ));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join(", "))
    }
}

/// Copies a checked venue report into its order.
fn adopt_report(view: &mut TradeView, oid: &str, report: &OrderReport) {
    let Some(order) = find_order_mut(view, oid) else {
        return;
    };
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
}

/// The order on the exchange under this entry's or exit's client_oid is not what was
/// intended: another database's order, or one the exchange changed. It is never adopted,
/// cancelled or counted; the trade halts for the operator with a CRITICAL alert and its
/// breaker, since acting on either reading could trade twice.
fn not_ours(
    view: &mut TradeView,
    order: &Order,
    report: &OrderReport,
    problem: &str,
    now: Millis,
    actions: &mut Vec<Action>,
) {
    let detail = format!(
        "order {} (order_id {}) on the exchange carries this trade's client_oid {} but is not its {}: {problem}; it was not adopted and is left alone",
        report.symbol, report.order_id, order.client_oid, order.role
    );
    if let Some(ours) = find_order_mut(view, &order.client_oid) {
        ours.last_error = Some(format!("another order under this client_oid: {problem}"));
    }
    if order.role == Role::Exit {
        // The position is still held: the trade keeps recovering (and the operator can take
        // over with a breaker reset) rather than ending with it.
        return halt(view, Reason::FlattenUnconfirmed, &detail, now, actions);
    }
    halt(view, Reason::IdentityMismatch, &detail, now, actions);
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
        TradeState::Protecting | TradeState::Closing | TradeState::Exiting
    );
    if clearing && role.is_some_and(Role::is_protective) {
        // Whatever the cancel said, only a read-back proves the leg is gone.
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
                failsafe(
                    view,
                    Reason::ProtectionFailed,
                    &detail,
                    now,
                    limits,
                    actions,
                );
            }
            return;
        }
    };
    if !live_legs(view).is_empty() {
        // A leg taken as gone was seen again after the market data was asked for: clear it
        // first (S1: never a new leg beside a live one).
        return advance_clearing(view, now, limits, actions);
    }
    place_protection(view, &market, now, limits, actions);
}

/// Whether every leg of the current generation may still rest, so a read-back may find the
/// position protected. A mismatched leg is never read back into protection: it is cleared.
/// Neither is an OTOCO's own pair unless its entry filled in full: the exchange arms those
/// legs only then, so after a partial fill they rest PENDING for the whole entry quantity
/// and can never trigger.
fn legs_may_stand(view: &TradeView, reason: Option<Reason>) -> bool {
    let generation = view.trade.generation;
    let legs = protective_orders(view, generation);
    let armed =
        generation > 0 || entry_order(view).status == OrderStatus::Venue(VenueStatus::Filled);
    !view.trade.filled_quantity.is_zero()
        && !legs.is_empty()
        && armed
        && legs.iter().all(|leg| leg.status.is_live())
        && reason != Some(Reason::ProtectionMismatch)
}

/// A recovering trade is due: resolve it again with fresh budgets, from the phase its orders
/// call for. An exit that may exist is resolved first; then an entry whose state is unknown;
/// then the position is protected (or flattened when the halt was the failsafe's exit). An
/// attempt that fails comes back here through `halt`, later each time.
fn resume(view: &mut TradeView, now: Millis, limits: &Limits, actions: &mut Vec<Action>) {
    let trade = &mut view.trade;
    trade.recovering_since_ms.get_or_insert(now);
    trade.attempts = 0;
    trade.protect_attempts = 0;
    trade.reprotects = 0;
    trade.phase_started_ms = now;
    let reason = trade.close_reason.as_deref().and_then(Reason::parse);
    let exit_live = latest_exit(view).is_some_and(|exit| exit.status.is_live());
    // An exit that may exist is resolved whatever the configuration says now; a new exit only
    // while exits are still configured (else the position is protected instead).
    let exit_halt = reason.is_some_and(Reason::is_exit_halt) && exit_configured(limits);
    if exit_live || exit_halt {
        return begin_exit(view, now, limits, actions);
    }
    let entry = entry_order(view);
    match entry.status {
        OrderStatus::Venue(status) if status.is_terminal() => {
            if legs_may_stand(view, reason) {
                // Protection may be in place: read it back before anything is cancelled.
                return enter_verifying(view, now, limits);
            }
            return entry_finished(view, &entry, now, limits, actions);
        }
        OrderStatus::NotPlaced => {
            return close(view, Reason::EntryNotPlaced, now, None, actions);
        }
        OrderStatus::Intent | OrderStatus::Unknown => {
            // Never re-sent from here: an intent may have reached the exchange.
            if let Some(order) = find_order_mut(view, &entry.client_oid) {
                order.status = OrderStatus::Unknown;
                order.sent_at_ms.get_or_insert(now);
            }
            view.trade.state = TradeState::EntryUnknown;
        }
        OrderStatus::Sent | OrderStatus::Venue(_) => {
            view.trade.state = TradeState::AwaitingFill;
        }
    }
    actions.push(Action::Lookup {
        client_oid: entry.client_oid,
    });
}

#[cfg(test)]
pub(crate) mod tests;
