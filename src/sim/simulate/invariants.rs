//! The invariants of DESIGN §4, checked against the exchange's book (the engine) and the
//! agent's database after every loop turn of a simulation. Each returns what it found wrong.

use std::collections::BTreeMap;

use rust_decimal::Decimal;

use crate::core::domain::{Millis, OrderReport, VenueStatus};
use crate::core::ids::{Role, parse_client_oid};
use crate::core::trade::{TradeState, TradeView};
use crate::store::{self, Store};

/// How long after a fill is first seen on the book the trade must have been protected, closed
/// by its protection, or halted with its breaker open and a CRITICAL alert (S3).
pub const PROTECTION_BOUND_MS: Millis = 300_000;

fn ours(report: &OrderReport) -> Option<(i64, Role)> {
    parse_client_oid(&report.client_oid).map(|parsed| (parsed.trade_id, parsed.role))
}

/// S1 (one live SL and one live TP per trade), S2 (live protection ≤ the position),
/// S6 (one entry per trade).
pub fn check_book(book: &[OrderReport]) -> Vec<String> {
    let mut problems = Vec::new();
    let mut live: BTreeMap<(i64, Role), (usize, Decimal)> = BTreeMap::new();
    let mut entries: BTreeMap<i64, (usize, Decimal)> = BTreeMap::new();
    // OTOCO legs cannot trigger until their entry has completely filled.
    let mut dormant_lists: Vec<&str> = Vec::new();
    for report in book {
        let Some((trade, role)) = ours(report) else {
            continue;
        };
        if role == Role::Entry {
            let entry = entries.entry(trade).or_default();
            entry.0 += 1;
            entry.1 += report.cumulative_quantity;
            if let (Some(list), false) = (&report.list_id, report.status == VenueStatus::Filled) {
                dormant_lists.push(list);
            }
        }
    }
    for report in book {
        let Some((trade, role)) = ours(report) else {
            continue;
        };
        let dormant = report
            .list_id
            .as_deref()
            .is_some_and(|list| dormant_lists.contains(&list));
        if role.is_protective() && !report.status.is_terminal() && !dormant {
            let slot = live.entry((trade, role)).or_default();
            slot.0 += 1;
            slot.1 += report.quantity - report.cumulative_quantity;
        }
    }
    for ((trade, role), (count, quantity)) in &live {
        if *count > 1 {
            problems.push(format!("S1: trade {trade} has {count} live {role} orders"));
        }
        let position = entries.get(trade).map(|e| e.1).unwrap_or_default();
        if *quantity > position {
            problems.push(format!(
                "S2: trade {trade} live {role} quantity {quantity} exceeds the position {position}"
            ));
        }
    }
    for (trade, (count, _)) in &entries {
        if *count > 1 {
            problems.push(format!("S6: trade {trade} has {count} entry orders"));
        }
    }
    problems
}

/// S5: every order on the book with fillguard's prefix is known to the store.
pub fn check_known(book: &[OrderReport], store: &Store) -> Vec<String> {
    let known = known_client_oids(store);
    book.iter()
        .filter(|report| ours(report).is_some())
        .filter(|report| !known.contains(&report.client_oid))
        .map(|report| {
            format!(
                "S5: order {} is on the book but not in the store",
                report.client_oid
            )
        })
        .collect()
}

fn known_client_oids(store: &Store) -> std::collections::BTreeSet<String> {
    let Ok(mut statement) = store.conn().prepare("SELECT client_oid FROM orders") else {
        return Default::default();
    };
    let rows = statement.query_map([], |row| row.get::<_, String>(0));
    rows.map(|rows| rows.filter_map(Result::ok).collect())
        .unwrap_or_default()
}

/// Time each trade's entry was first seen filled on the book.
pub fn note_fills(book: &[OrderReport], now: Millis, first_fill: &mut BTreeMap<i64, Millis>) {
    for report in book {
        let filled = !report.cumulative_quantity.is_zero();
        if let (Some((trade, Role::Entry)), true) = (ours(report), filled) {
            first_fill.entry(trade).or_insert(now);
        }
    }
}

fn halted_with_breaker_and_alert(view: &TradeView, store: &Store) -> bool {
    let trade = &view.trade;
    let breaker_open = store::breaker(store.conn(), &trade.symbol)
        .ok()
        .flatten()
        .is_some_and(|breaker| breaker.open);
    let key = format!("-{}-", trade.id);
    let alerted = store::all_alerts(store.conn())
        .unwrap_or_default()
        .iter()
        .any(|alert| alert.severity == "CRITICAL" && alert.key.contains(&key));
    trade.state == TradeState::Halted && alerted && breaker_open
}

fn closed_by_protection(view: &TradeView) -> bool {
    let reason = view.trade.close_reason.as_deref().unwrap_or_default();
    view.trade.state == TradeState::Closed
        && (matches!(reason, "stop_loss_filled" | "take_profit_filled")
            || reason.starts_with("flattened"))
}

/// S3: every fill seen at least `PROTECTION_BOUND_MS` ago is protected (now or before), closed
/// by its protection, or halted with breaker and alert.
pub fn check_protected(
    store: &Store,
    first_fill: &mut BTreeMap<i64, Millis>,
    now: Millis,
) -> Vec<String> {
    let mut problems = Vec::new();
    let mut settled = Vec::new();
    for (trade_id, seen) in first_fill.iter() {
        let Ok(view) = store::load_view(store.conn(), *trade_id) else {
            problems.push(format!(
                "S3: trade {trade_id} filled on the book but missing from the store"
            ));
            continue;
        };
        let trade = &view.trade;
        let wrongly_closed = trade.state == TradeState::Closed && !closed_by_protection(&view);
        let late = now - seen >= PROTECTION_BOUND_MS
            && trade.protected_at_ms.is_none()
            && !closed_by_protection(&view)
            && !halted_with_breaker_and_alert(&view, store);
        let protected_once = trade.protected_at_ms.is_some() && trade.state != TradeState::Closed;
        if closed_by_protection(&view) || protected_once {
            // Protected once or closed by its protection: S3 is met for good (S1/S2 still
            // watch the orders).
            settled.push(*trade_id);
        }
        if wrongly_closed || late {
            problems.push(format!(
                "S3: trade {trade_id} filled {} s ago is {} ({})",
                (now - seen) / 1000,
                trade.state.as_str(),
                trade.close_reason.as_deref().unwrap_or("no reason")
            ));
        }
    }
    for trade_id in settled {
        first_fill.remove(&trade_id);
    }
    problems
}

/// L1: after the calm phase every trade is protected or finished.
pub fn check_settled(store: &Store) -> Vec<String> {
    let ids = store::all_trade_ids(store.conn()).unwrap_or_default();
    ids.into_iter()
        .filter_map(|id| store::load_view(store.conn(), id).ok())
        .filter(|view| !view.trade.state.is_terminal() && view.trade.state != TradeState::Protected)
        .map(|view| {
            format!(
                "L1: trade {} still {} after the calm phase",
                view.trade.id,
                view.trade.state.as_str()
            )
        })
        .collect()
}
