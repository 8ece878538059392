//! What a step writes besides the trade's view, inside the step's transaction: the actions
//! that only touch the store (alerts, breaker trips), the start-up policies' actions, the audit
//! row of a state change, and the event that tells the core an operator reset its breaker.
//! Plain functions on a connection; no venue, no clock.

use crate::core::breaker::Breaker;
use crate::core::domain::Millis;
use crate::core::startup::StartupAction;
use crate::core::trade::{Action, Event, TradeState, TradeView};
use crate::store;

use super::observe::Trip;

/// A recovering trade whose symbol's breaker the operator reset after the trade began
/// recovering is theirs: the core is told so. (A reset is recorded even where no breaker was
/// open, as with `failsafe.on_protection_error = false`.)
pub(super) fn breaker_reset_event(
    conn: &rusqlite::Connection,
    view: &TradeView,
    event: Event,
) -> store::Result<Event> {
    let since = match (view.trade.state, view.trade.recovering_since_ms) {
        (TradeState::Recovering, Some(since)) if event == Event::Due => since,
        _ => return Ok(event),
    };
    let reset_after =
        store::breaker_reset_at(conn, &view.trade.symbol)?.is_some_and(|reset_at| reset_at > since);
    Ok(if reset_after {
        Event::BreakerReset
    } else {
        event
    })
}

/// Applies what a start-up policy decided, inside the caller's transaction.
pub(super) fn apply_startup_actions(
    conn: &rusqlite::Connection,
    actions: &[StartupAction],
    now: Millis,
    trips: &mut Vec<Trip>,
) -> store::Result<()> {
    // A close that did not happen takes its announcement with it.
    let mut kept_open = false;
    for action in actions {
        match action {
            StartupAction::TripBreaker { symbol, reason } => {
                if trip_breaker(conn, symbol, reason, now)? {
                    trips.push(Trip {
                        symbol: symbol.clone(),
                        reason: reason.clone(),
                    });
                }
                let detail = format!("breaker tripped: {reason}");
                store::record_event(conn, now, None, Some(symbol), "breaker", &detail)?;
            }
            StartupAction::CloseBreaker {
                symbol,
                reason,
                trip_count,
            } => {
                // Read again inside this transaction: a trip since the policy looked wins.
                let Some(mut breaker) = store::breaker(conn, symbol)? else {
                    continue;
                };
                let unchanged = breaker.open
                    && breaker.reason.as_deref() == Some(reason.as_str())
                    && breaker.trip_count == *trip_count;
                if unchanged {
                    breaker.reset();
                    store::save_breaker(conn, &breaker, Some((now, "fillguard: self-check")))?;
                    store::record_event(conn, now, None, Some(symbol), "breaker", "closed")?;
                } else {
                    kept_open = true;
                }
            }
            StartupAction::Alert(_) if kept_open => {}
            StartupAction::Alert(alert) => {
                store::enqueue_alert(conn, alert, None, None, now)?;
            }
        }
    }
    Ok(())
}

/// Applies the actions that only touch the store, inside the step's transaction.
pub(super) fn apply_local_action(
    conn: &rusqlite::Connection,
    view: &TradeView,
    action: &Action,
    now: Millis,
    trips: &mut Vec<Trip>,
) -> store::Result<()> {
    let trade = &view.trade;
    match action {
        Action::Alert(alert) => {
            store::enqueue_alert(conn, alert, Some(trade.id), Some(&trade.symbol), now)?;
            store::record_event(
                conn,
                now,
                Some(trade.id),
                Some(&trade.symbol),
                "alert",
                &alert.text,
            )
        }
        Action::TripBreaker { symbol, reason } => {
            if trip_breaker(conn, symbol, reason, now)? {
                trips.push(Trip {
                    symbol: symbol.clone(),
                    reason: reason.clone(),
                });
            }
            let detail = format!("breaker tripped: {reason}");
            store::record_event(conn, now, Some(trade.id), Some(symbol), "breaker", &detail)
        }
        _ => Ok(()),
    }
}

/// Trips `symbol`'s breaker; returns whether this opened it (it was closed).
pub fn trip_breaker(
    conn: &rusqlite::Connection,
    symbol: &str,
    reason: &str,
    now: Millis,
) -> store::Result<bool> {
    let mut breaker = store::breaker(conn, symbol)?.unwrap_or_else(|| Breaker::closed(symbol));
    let opened = !breaker.open;
    breaker.trip(reason, now);
    store::save_breaker(conn, &breaker, None)?;
    Ok(opened)
}

/// The audit row of a step that changed the trade's state.
pub(super) fn record_state_change(
    conn: &rusqlite::Connection,
    before: TradeState,
    view: &TradeView,
    event_text: &str,
    now: Millis,
) -> store::Result<()> {
    let trade = &view.trade;
    let detail = format!(
        "{} -> {} on {event_text}{}",
        before.as_str(),
        trade.state.as_str(),
        trade
            .close_reason
            .as_deref()
            .map(|reason| format!(" ({reason})"))
            .unwrap_or_default()
    );
    store::record_event(
        conn,
        now,
        Some(trade.id),
        Some(&trade.symbol),
        "state",
        &detail,
    )
}

/// Whether `error` came from the database (any refusal, transient or not).
pub(super) fn is_store_error(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause.downcast_ref::<store::StoreError>().is_some()
            || cause.downcast_ref::<rusqlite::Error>().is_some()
    })
}

pub(super) fn describe_event(event: &Event) -> String {
    match event {
        Event::Due => "due".into(),
        Event::Sent { outcome, .. } => format!("send result {outcome:?}"),
        Event::Looked {
            client_oid,
            outcome,
        } => match outcome {
            crate::core::trade::LookOutcome::Found(report) => format!(
                "lookup {client_oid}: {} filled {}",
                report.status.as_str(),
                report.cumulative_quantity
            ),
            other => format!("lookup {client_oid}: {other:?}"),
        },
        Event::Cancelled {
            client_oid,
            outcome,
        } => format!("cancel {client_oid}: {outcome:?}"),
        Event::Market(_) => "market data".into(),
        Event::EntryBlocked { reason } => format!("entry blocked: {reason}"),
        Event::BreakerReset => "breaker reset by the operator".into(),
        Event::Deferred { .. } => "deferred to the next turn".into(),
    }
}
