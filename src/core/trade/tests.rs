//! Table-style tests of `step`: each names one outcome of DESIGN §1 and feeds the events a venue
//! would produce, checking the actions and the resulting state. Scenarios read top to bottom,
//! so some are longer than production functions may be.
#![allow(clippy::too_many_lines)]

use rust_decimal::Decimal;

use super::*;
use crate::core::breaker::Breaker;
use crate::core::domain::{
    Instrument, Millis, OrderReport, OrderType, ProtectionMode, Side, VenueStatus,
};
use crate::core::entry::{EntryContext, EntryRequest, EntrySize, plan_entry};
use crate::core::ids::Role;

const T0: Millis = 1_700_000_000_000;

fn d(text: &str) -> Decimal {
    text.parse().unwrap()
}

/// BTC_USDT with 0.01 price and 0.0001 quantity ticks and a 0.1 % taker fee; also the risk
/// tests' instrument.
pub(crate) fn instrument() -> Instrument {
    Instrument {
        symbol: "BTC_USDT".into(),
        base: "BTC".into(),
        quote: "USDT".into(),
        price_tick: d("0.01"),
        quantity_tick: d("0.0001"),
        min_quantity: d("0.0001"),
        min_notional: d("1"),
        taker_fee_rate: d("0.001"),
    }
}

fn limits() -> Limits {
    Limits {
        poll_attempts_max: 4,
        poll_interval_ms: 1_000,
        poll_deadline_ms: 30_000,
        protect_attempts_max: 2,
        reprotect_max: 1,
        watch_interval_ms: 5_000,
        on_protection_error: true,
        flatten: false,
        steady_since_ms: 0,
        // The adaptive schedule of the earlier default (200 ms, doubling), which the tests'
        // times were written for.
        poll: PollPolicy {
            schedule: PollSchedule::Adaptive,
            source: PollSource::Detail,
            first_delay_ms: 200,
            growth_percent: 200,
        },
    }
}

fn new_view(side: Side, mode: ProtectionMode) -> TradeView {
    let instrument = instrument();
    let request = EntryRequest {
        symbol: "BTC_USDT".into(),
        side,
        size: EntrySize::Quantity(d("0.5")),
        stop_loss_pct: d("1"),
        take_profit_pct: d("2"),
        mode,
        signal_id: None,
    };
    let context = EntryContext {
        epoch: "",
        instrument: &instrument,
        last_price: d("100"),
        free_base: d("10"),
        free_quote: d("100000"),
        symbol_breaker: None,
        global_breaker: None,
        open_trade_on_symbol: false,
        allow_concurrent_trades: false,
    };
    plan_entry(7, &request, &context, T0).expect("a valid entry")
}

/// A venue report for one of the view's orders.
fn report(view: &TradeView, oid: &str, status: VenueStatus, filled: &str) -> OrderReport {
    let order = view.orders.iter().find(|o| o.client_oid == oid).unwrap();
    let filled = d(filled);
    let fee = if order.role == Role::Entry && order.side == Side::Buy {
        filled * d("0.001")
    } else {
        Decimal::ZERO
    };
    OrderReport {
        order_id: format!("900{}", order.client_oid.len()),
        client_oid: oid.to_string(),
        symbol: "BTC_USDT".into(),
        side: order.side,
        order_type: order.order_type,
        status,
        quantity: order.quantity,
        price: order.price,
        trigger_price: order.trigger_price,
        cumulative_quantity: filled,
        avg_price: if filled.is_zero() {
            Decimal::ZERO
        } else {
            d("100")
        },
        cumulative_fee: fee,
        fee_currency: if order.side == Side::Buy {
            "BTC"
        } else {
            "USDT"
        }
        .into(),
        list_id: order.list_id.clone(),
        reason: None,
        update_time_ms: T0,
    }
}

fn market(last: &str, free_base: &str) -> Event {
    Event::Market(MarketOutcome::Ready(Market {
        instrument: instrument(),
        last_price: d(last),
        free_base: Some(d(free_base)),
    }))
}

fn looked(view: &TradeView, oid: &str, status: VenueStatus, filled: &str) -> Event {
    Event::Looked {
        client_oid: oid.into(),
        outcome: LookOutcome::Found(report(view, oid, status, filled)),
    }
}

fn not_found(oid: &str) -> Event {
    Event::Looked {
        client_oid: oid.into(),
        outcome: LookOutcome::NotFound,
    }
}

fn ack(oids: &[&str], order_id: Option<&str>, list_id: Option<&str>) -> Event {
    Event::Sent {
        client_oids: oids.iter().map(|s| s.to_string()).collect(),
        outcome: SendOutcome::Ack {
            order_id: order_id.map(str::to_string),
            list_id: list_id.map(str::to_string),
        },
    }
}

fn ambiguous(oids: &[&str], message: &str) -> Event {
    Event::Sent {
        client_oids: oids.iter().map(|s| s.to_string()).collect(),
        outcome: SendOutcome::Ambiguous {
            message: message.into(),
        },
    }
}

fn rejected(oids: &[&str], code: i64, message: &str) -> Event {
    Event::Sent {
        client_oids: oids.iter().map(|s| s.to_string()).collect(),
        // The venue translates the exchange's duplicate-client_oid code (204) into its own
        // outcome; every other refusal keeps its code in the message.
        outcome: match code {
            204 => SendOutcome::Duplicate,
            415 => SendOutcome::Rejected {
                reason: RejectReason::BelowMinimum,
                message: format!("code {code}: {message}"),
            },
            _ => SendOutcome::Rejected {
                reason: RejectReason::Refused,
                message: format!("code {code}: {message}"),
            },
        },
    }
}

fn cancelled(oid: &str, outcome: Result<(), &str>) -> Event {
    Event::Cancelled {
        client_oid: oid.into(),
        outcome: outcome.map_err(str::to_string),
    }
}

/// Steps with a lookup result built from the view itself.
fn step_looked(
    view: &mut TradeView,
    (oid, status, filled): (&str, VenueStatus, &str),
    now: Millis,
    limits: &Limits,
) -> Vec<Action> {
    let event = looked(view, oid, status, filled);
    step(view, event, now, limits)
}

/// Halted with a position that may exist: breaker open, and resolved again later.
fn assert_recovering(view: &TradeView) {
    assert_eq!(view.trade.state, TradeState::Recovering, "{:?}", view.trade);
    assert!(
        view.trade.due_ms.is_some(),
        "a recovering trade is due again"
    );
    assert!(view.trade.recovering_since_ms.is_some());
}

fn has_send(actions: &[Action]) -> bool {
    actions.iter().any(|a| matches!(a, Action::Send { .. }))
}

fn critical_alert(actions: &[Action]) -> Option<String> {
    actions.iter().find_map(|a| match a {
        Action::Alert(alert) if alert.severity == Severity::Critical => Some(alert.text.clone()),
        _ => None,
    })
}

fn trips_breaker(actions: &[Action]) -> bool {
    actions
        .iter()
        .any(|a| matches!(a, Action::TripBreaker { symbol, .. } if symbol == "BTC_USDT"))
}

const E: &str = "fg-7-E0";
const S1: &str = "fg-7-S1";
const T1: &str = "fg-7-T1";

/// Entry sent, acknowledged and reported FILLED: the trade is waiting for market data.
fn filled_view(side: Side, mode: ProtectionMode) -> TradeView {
    let mut view = new_view(side, mode);
    let limits = limits();
    let actions = step(&mut view, Event::Due, T0, &limits);
    assert!(
        matches!(&actions[..], [Action::Send { kind: SendKind::Single, client_oids }] if client_oids == &vec![E.to_string()])
    );
    step(&mut view, ack(&[E], Some("111"), None), T0 + 10, &limits);
    assert_eq!(view.trade.state, TradeState::AwaitingFill);
    let event = looked(&view, E, VenueStatus::Filled, "0.5");
    let actions = step(&mut view, event, T0 + 300, &limits);
    assert_eq!(actions, vec![Action::FetchMarket]);
    assert_eq!(view.trade.state, TradeState::Protecting);
    view
}

/// A trade with a verified OCO (or separate pair) resting.
fn protected_view(side: Side, mode: ProtectionMode) -> TradeView {
    let mut view = filled_view(side, mode);
    let limits = limits();
    let actions = step(&mut view, market("100", "10"), T0 + 400, &limits);
    assert!(has_send(&actions));
    let acks = if mode == ProtectionMode::Separate {
        vec![ack(&[S1], Some("201"), None), ack(&[T1], Some("202"), None)]
    } else {
        vec![ack(&[S1, T1], None, Some("L1"))]
    };
    for event in acks {
        step(&mut view, event, T0 + 450, &limits);
    }
    assert_eq!(view.trade.state, TradeState::Verifying);
    step_looked(
        &mut view,
        (S1, VenueStatus::Pending, "0"),
        T0 + 700,
        &limits,
    );
    step_looked(&mut view, (T1, VenueStatus::Active, "0"), T0 + 700, &limits);
    assert_eq!(view.trade.state, TradeState::Protected);
    view
}

#[test]
fn immediate_fill_is_protected_by_one_oco_with_fee_deducted() {
    let mut view = filled_view(Side::Buy, ProtectionMode::Oco);
    let actions = step(&mut view, market("100", "10"), T0 + 400, &limits());
    let [
        Action::Send {
            kind: SendKind::Oco,
            client_oids,
        },
    ] = &actions[..]
    else {
        panic!("expected one OCO send, got {actions:?}");
    };
    assert_eq!(client_oids, &vec![S1.to_string(), T1.to_string()]);
    // 0.5 filled less 0.0005 BTC fee, floored to 0.0001.
    assert_eq!(view.trade.protect_quantity, Some(d("0.4995")));
    let stop = view.orders.iter().find(|o| o.client_oid == S1).unwrap();
    assert_eq!(
        (stop.side, stop.order_type),
        (Side::Sell, OrderType::StopLoss)
    );
    assert_eq!(stop.trigger_price, Some(d("99")));
    let profit = view.orders.iter().find(|o| o.client_oid == T1).unwrap();
    assert_eq!(
        (profit.order_type, profit.price),
        (OrderType::Limit, Some(d("102")))
    );
}

#[test]
fn sell_entry_is_protected_above_and_below() {
    let view = protected_view(Side::Sell, ProtectionMode::Oco);
    let stop = view.orders.iter().find(|o| o.client_oid == S1).unwrap();
    assert_eq!((stop.side, stop.trigger_price), (Side::Buy, Some(d("101"))));
    assert_eq!(view.trade.protect_quantity, Some(d("0.5")));
}

#[test]
fn fill_after_several_polls_backs_off_up_to_the_interval() {
    let mut view = new_view(Side::Buy, ProtectionMode::Oco);
    let limits = limits();
    step(&mut view, Event::Due, T0, &limits);
    step(&mut view, ack(&[E], Some("111"), None), T0, &limits);
    assert_eq!(view.trade.due_ms, Some(T0 + 200));
    let mut delays = Vec::new();
    for _ in 0..3 {
        let now = view.trade.due_ms.unwrap();
        assert_eq!(
            step(&mut view, Event::Due, now, &limits),
            vec![Action::Lookup {
                client_oid: E.into()
            }]
        );
        step_looked(&mut view, (E, VenueStatus::Active, "0"), now, &limits);
        delays.push(view.trade.due_ms.unwrap() - now);
    }
    assert_eq!(delays, vec![400, 800, 1_000]);
    let actions = step_looked(
        &mut view,
        (E, VenueStatus::Filled, "0.5"),
        T0 + 3_000,
        &limits,
    );
    assert_eq!(actions, vec![Action::FetchMarket]);
}

#[test]
fn poll_budget_spent_with_entry_open_cancels_then_protects_what_filled() {
    let mut view = new_view(Side::Buy, ProtectionMode::Oco);
    let limits = limits();
    step(&mut view, Event::Due, T0, &limits);
    step(&mut view, ack(&[E], Some("111"), None), T0, &limits);
    let mut actions = Vec::new();
    for attempt in 0..limits.poll_attempts_max {
        actions = step_looked(
            &mut view,
            (E, VenueStatus::Active, "0.2"),
            T0 + fill_poll_span(&limits) + i64::from(attempt),
            &limits,
        );
    }
    assert_eq!(
        actions,
        vec![Action::Cancel {
            client_oid: E.into()
        }]
    );
    assert_eq!(view.trade.state, TradeState::CancellingEntry);
    let actions = step(&mut view, cancelled(E, Ok(())), T0 + 10, &limits);
    assert_eq!(
        actions,
        vec![Action::Lookup {
            client_oid: E.into()
        }]
    );
    let actions = step_looked(
        &mut view,
        (E, VenueStatus::Canceled, "0.2"),
        T0 + 20,
        &limits,
    );
    assert_eq!(actions, vec![Action::FetchMarket]);
    assert_eq!(view.trade.filled_quantity, d("0.2"));
}

#[test]
fn poll_budget_spent_with_nothing_filled_closes_without_protection() {
    let mut view = new_view(Side::Buy, ProtectionMode::Oco);
    let limits = limits();
    step(&mut view, Event::Due, T0, &limits);
    step(&mut view, ack(&[E], Some("111"), None), T0, &limits);
    for _ in 0..limits.poll_attempts_max {
        step_looked(&mut view, (E, VenueStatus::Active, "0"), T0, &limits);
    }
    step(&mut view, cancelled(E, Ok(())), T0, &limits);
    let actions = step_looked(&mut view, (E, VenueStatus::Canceled, "0"), T0, &limits);
    assert!(actions.is_empty(), "{actions:?}");
    assert_eq!(view.trade.state, TradeState::Closed);
    assert_eq!(view.trade.close_reason.as_deref(), Some("entry_not_filled"));
}

#[test]
fn entry_never_seen_anywhere_halts_with_breaker_and_alert() {
    let mut view = new_view(Side::Buy, ProtectionMode::Oco);
    let limits = limits();
    step(&mut view, Event::Due, T0, &limits);
    step(&mut view, ack(&[E], Some("111"), None), T0, &limits);
    let mut actions = Vec::new();
    // The polls' span passed (the adaptive schedule makes its attempts sooner).
    let late = T0 + fill_poll_span(&limits);
    for _ in 0..limits.poll_attempts_max {
        actions = step(&mut view, not_found(E), late, &limits);
    }
    // The entry may exist: the trade keeps being resolved behind its open breaker.
    assert_recovering(&view);
    assert_eq!(view.trade.close_reason.as_deref(), Some("entry_not_found"));
    assert!(trips_breaker(&actions));
    let text = critical_alert(&actions).expect("a critical alert");
    assert!(text.contains("never found"), "{text}");
}

/// However soon the adaptive schedule makes its attempts, an open entry is polled on, a
/// `poll.interval` apart, until the fixed schedule's span has passed: an entry slow to fill
/// is not cancelled sooner than before the schedule was tuned.
#[test]
fn an_open_entry_is_polled_until_the_span_of_its_attempts_at_the_interval() {
    let mut view = new_view(Side::Buy, ProtectionMode::Oco);
    let limits = limits();
    step(&mut view, Event::Due, T0, &limits);
    step(&mut view, ack(&[E], Some("111"), None), T0, &limits);
    let span = fill_poll_span(&limits);
    assert_eq!(span, 4_000);
    let mut actions = Vec::new();
    for attempt in 0..limits.poll_attempts_max + 2 {
        let now = T0 + 100 * i64::from(attempt);
        actions = step_looked(&mut view, (E, VenueStatus::Active, "0"), now, &limits);
    }
    assert!(actions.is_empty(), "{actions:?}");
    assert_eq!(view.trade.state, TradeState::AwaitingFill);
    let now = T0 + 100 * i64::from(limits.poll_attempts_max + 1);
    assert_eq!(view.trade.due_ms, Some(now + limits.poll_interval_ms));
    let actions = step_looked(&mut view, (E, VenueStatus::Active, "0"), T0 + span, &limits);
    assert_eq!(
        actions,
        vec![Action::Cancel {
            client_oid: E.into()
        }]
    );
}

#[test]
fn entry_seen_open_but_not_filled_is_cancelled_not_halted() {
    let mut view = new_view(Side::Buy, ProtectionMode::Oco);
    let limits = limits();
    step(&mut view, Event::Due, T0, &limits);
    step(&mut view, ack(&[E], Some("111"), None), T0, &limits);
    step_looked(&mut view, (E, VenueStatus::New, "0"), T0, &limits);
    assert!(view.trade.entry_seen);
    let mut actions = Vec::new();
    let late = T0 + fill_poll_span(&limits);
    for _ in 1..limits.poll_attempts_max {
        actions = step_looked(&mut view, (E, VenueStatus::Active, "0"), late, &limits);
    }
    assert_eq!(
        actions,
        vec![Action::Cancel {
            client_oid: E.into()
        }]
    );
    assert!(critical_alert(&actions).is_none());
}

#[test]
fn filled_with_zero_cumulative_quantity_is_not_a_fill() {
    let mut view = new_view(Side::Buy, ProtectionMode::Oco);
    let limits = limits();
    step(&mut view, Event::Due, T0, &limits);
    step(&mut view, ack(&[E], Some("111"), None), T0, &limits);
    let actions = step_looked(&mut view, (E, VenueStatus::Filled, "0"), T0, &limits);
    assert!(!actions.contains(&Action::FetchMarket));
    assert_eq!(view.trade.state, TradeState::AwaitingFill);
    let entry = view.orders.iter().find(|o| o.client_oid == E).unwrap();
    assert!(
        entry
            .last_error
            .as_deref()
            .unwrap()
            .contains("cumulative_quantity 0")
    );
    let mut actions = Vec::new();
    let late = T0 + fill_poll_span(&limits);
    for _ in 0..10 {
        actions = step_looked(&mut view, (E, VenueStatus::Filled, "0"), late, &limits);
        if view.trade.state == TradeState::Recovering {
            break;
        }
    }
    assert_recovering(&view);
    assert!(trips_breaker(&actions));
}

#[test]
fn partial_fill_then_expired_protects_the_filled_part() {
    let mut view = new_view(Side::Buy, ProtectionMode::Oco);
    let limits = limits();
    step(&mut view, Event::Due, T0, &limits);
    step(&mut view, ack(&[E], Some("111"), None), T0, &limits);
    let actions = step_looked(&mut view, (E, VenueStatus::Expired, "0.3"), T0, &limits);
    assert_eq!(actions, vec![Action::FetchMarket]);
    step(&mut view, market("100", "10"), T0, &limits);
    // 0.3 less 0.0003 fee.
    assert_eq!(view.trade.protect_quantity, Some(d("0.2997")));
}

#[test]
fn ambiguous_send_is_resolved_by_client_oid_and_never_resent() {
    let mut view = new_view(Side::Buy, ProtectionMode::Oco);
    let limits = limits();
    step(&mut view, Event::Due, T0, &limits);
    let timeout = ambiguous(&[E], "timed out");
    step(&mut view, timeout, T0 + 10, &limits);
    assert_eq!(view.trade.state, TradeState::EntryUnknown);
    for now in [T0 + 1_000, T0 + 30_000, T0 + 64_000] {
        let actions = step(&mut view, Event::Due, now, &limits);
        assert_eq!(
            actions,
            vec![Action::Lookup {
                client_oid: E.into()
            }]
        );
        let actions = step(&mut view, not_found(E), now, &limits);
        assert!(
            !has_send(&actions),
            "resent inside the nonce window: {actions:?}"
        );
    }
    let actions = step(&mut view, not_found(E), T0 + 66_000, &limits);
    assert!(!has_send(&actions));
    assert_eq!(view.trade.close_reason.as_deref(), Some("entry_not_placed"));
}

/// An ambiguous entry send, then a restart whose system clock reads `restart_at`.
fn unknown_entry_after_a_restart(restart_at: Millis) -> (TradeView, Limits) {
    let mut view = new_view(Side::Buy, ProtectionMode::Oco);
    step(&mut view, Event::Due, T0, &limits());
    let timeout = ambiguous(&[E], "timed out");
    step(&mut view, timeout, T0 + 10, &limits());
    assert_eq!(view.trade.state, TradeState::EntryUnknown);
    let restarted = Limits {
        steady_since_ms: restart_at,
        ..limits()
    };
    (view, restarted)
}

#[test]
fn a_clock_stepped_forward_across_a_restart_does_not_cut_the_nonce_window_short() {
    // Down for a second, but the clock now reads 3 minutes later: the order may still appear
    // while the exchange settles what the earlier run sent.
    let restart = T0 + 180_000;
    let (mut view, limits) = unknown_entry_after_a_restart(restart);
    for now in [
        restart + 1_000,
        restart + 10_000,
        restart + RESTART_SETTLE_MS - 1,
    ] {
        step(&mut view, not_found(E), now, &limits);
        assert_eq!(view.trade.state, TradeState::EntryUnknown, "at {now}");
    }
    step(
        &mut view,
        not_found(E),
        restart + RESTART_SETTLE_MS,
        &limits,
    );
    assert_eq!(view.trade.close_reason.as_deref(), Some("entry_not_placed"));
}

#[test]
fn after_a_restart_without_a_clock_step_the_nonce_window_still_counts_from_the_send() {
    let restart = T0 + 30_000;
    let (mut view, limits) = unknown_entry_after_a_restart(restart);
    step(&mut view, not_found(E), T0 + 64_000, &limits);
    assert_eq!(view.trade.state, TradeState::EntryUnknown);
    step(&mut view, not_found(E), T0 + 66_000, &limits);
    assert_eq!(view.trade.close_reason.as_deref(), Some("entry_not_placed"));
}

#[test]
fn a_clock_stepped_back_across_a_restart_counts_the_window_from_the_restart() {
    // The clock now reads 10 minutes before the send: only this run's time counts.
    let restart = T0 - 600_000;
    let (mut view, limits) = unknown_entry_after_a_restart(restart);
    step(&mut view, not_found(E), restart + 64_000, &limits);
    assert_eq!(view.trade.state, TradeState::EntryUnknown);
    step(&mut view, not_found(E), restart + 66_000, &limits);
    assert_eq!(view.trade.close_reason.as_deref(), Some("entry_not_placed"));
}

#[test]
fn ambiguous_send_found_later_continues_to_fill_polling() {
    let mut view = new_view(Side::Buy, ProtectionMode::Oco);
    let limits = limits();
    step(&mut view, Event::Due, T0, &limits);
    let lost = ambiguous(&[E], "connection reset");
    step(&mut view, lost, T0, &limits);
    step_looked(&mut view, (E, VenueStatus::Active, "0"), T0 + 500, &limits);
    assert_eq!(view.trade.state, TradeState::AwaitingFill);
    let actions = step_looked(
        &mut view,
        (E, VenueStatus::Filled, "0.5"),
        T0 + 900,
        &limits,
    );
    assert_eq!(actions, vec![Action::FetchMarket]);
}

#[test]
fn duplicate_client_oid_on_resend_means_the_entry_exists() {
    let mut view = new_view(Side::Buy, ProtectionMode::Oco);
    let limits = limits();
    step(&mut view, Event::Due, T0, &limits);
    let duplicate = rejected(&[E], 204, "DUPLICATE_CLORDID");
    step(&mut view, duplicate, T0, &limits);
    assert_eq!(view.trade.state, TradeState::EntryUnknown);
    assert_eq!(
        step(&mut view, Event::Due, T0 + 200, &limits),
        vec![Action::Lookup {
            client_oid: E.into()
        }]
    );
}

#[test]
fn entry_rejected_closes_with_a_warning() {
    let mut view = new_view(Side::Buy, ProtectionMode::Oco);
    let limits = limits();
    step(&mut view, Event::Due, T0, &limits);
    let rejected = rejected(&[E], 306, "INSUFFICIENT_AVAILABLE_BALANCE");
    let actions = step(&mut view, rejected, T0, &limits);
    assert_eq!(view.trade.close_reason.as_deref(), Some("entry_rejected"));
    assert!(matches!(&actions[..], [Action::Alert(alert)] if alert.severity == Severity::Warning));
}

#[test]
fn unprotectable_dust_trips_the_breaker_and_alerts() {
    let mut view = filled_view(Side::Buy, ProtectionMode::Oco);
    // The free balance left is dust: 0.00005 floors to zero.
    let actions = step(&mut view, market("100", "0.00005"), T0, &limits());
    assert_eq!(view.trade.state, TradeState::Halted);
    assert_eq!(view.trade.close_reason.as_deref(), Some("unprotectable"));
    assert!(trips_breaker(&actions));
    assert!(!has_send(&actions));
}

#[test]
fn crossed_stop_goes_straight_to_the_exit_when_flatten_is_on() {
    let mut view = filled_view(Side::Buy, ProtectionMode::Oco);
    let limits = Limits {
        flatten: true,
        ..limits()
    };
    let actions = step(&mut view, market("98.5", "10"), T0, &limits);
    assert_eq!(view.trade.state, TradeState::Exiting);
    let exit = view.orders.iter().find(|o| o.role == Role::Exit).unwrap();
    assert_eq!(
        (exit.side, exit.order_type, exit.quantity),
        (Side::Sell, OrderType::Market, d("0.4995"))
    );
    assert!(matches!(
        &actions[..],
        [
            Action::Alert(_),
            Action::TripBreaker { .. },
            Action::Send { .. }
        ]
    ));
    step(
        &mut view,
        ack(&["fg-7-X0"], Some("301"), None),
        T0 + 10,
        &limits,
    );
    step_looked(
        &mut view,
        ("fg-7-X0", VenueStatus::Filled, "0.4995"),
        T0 + 300,
        &limits,
    );
    assert_eq!(view.trade.state, TradeState::Closed);
    assert_eq!(
        view.trade.close_reason.as_deref(),
        Some("flattened after stop_crossed")
    );
}

#[test]
fn crossed_stop_without_flatten_halts_and_places_no_stop() {
    let mut view = filled_view(Side::Sell, ProtectionMode::Oco);
    let actions = step(&mut view, market("101.5", "10"), T0, &limits());
    assert_eq!(view.trade.state, TradeState::Halted);
    assert!(!has_send(&actions));
    assert!(
        critical_alert(&actions)
            .unwrap()
            .contains("already crossed")
    );
}

#[test]
fn rejected_protection_is_retried_then_fails_safe_with_every_order_id() {
    let mut view = filled_view(Side::Buy, ProtectionMode::Oco);
    let limits = limits();
    step(&mut view, market("100", "10"), T0, &limits);
    let rejected = |oids: [&str; 2]| rejected(&oids, 229, "INVALID_REF_PRICE");
    step(&mut view, rejected([S1, T1]), T0, &limits);
    assert_eq!(view.trade.state, TradeState::Protecting);
    assert_eq!(
        step(&mut view, Event::Due, T0 + 500, &limits),
        vec![Action::FetchMarket]
    );
    step(&mut view, market("100", "10"), T0 + 500, &limits);
    let actions = step(
        &mut view,
        rejected(["fg-7-S2", "fg-7-T2"]),
        T0 + 600,
        &limits,
    );
    // Protection is retried at a slow cadence behind the open breaker.
    assert_recovering(&view);
    assert!(trips_breaker(&actions));
    let text = critical_alert(&actions).unwrap();
    for needle in [
        "BTC_USDT",
        "BUY",
        "filled 0.5",
        "order_id=9007",
        "fg-7-S1",
        "fg-7-T2",
        "code 229",
        "OPEN",
        "breaker reset BTC_USDT",
    ] {
        assert!(text.contains(needle), "alert lacks {needle}: {text}");
    }
    // Short lines for a phone: what happened first, then the position, every order, the fix.
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0], "PROTECTION FAILURE BTC_USDT trade 7: protection_rejected",
        "{text}"
    );
    assert_eq!(lines[1], "BUY filled 0.5 at 100", "{text}");
    let order_lines: Vec<&&str> = lines.iter().filter(|line| line.starts_with("- ")).collect();
    assert_eq!(order_lines.len(), view.orders.len(), "{text}");
    for order in &view.orders {
        assert!(
            order_lines
                .iter()
                .any(|line| line.contains(&order.client_oid)),
            "{text}"
        );
    }
    assert!(lines.last().unwrap().starts_with("To do: "), "{text}");
    assert!(!text.contains("SYMBOL"), "{text}");
}

#[test]
fn separate_mode_leg_fill_closes_after_cancelling_the_sibling() {
    let mut view = protected_view(Side::Buy, ProtectionMode::Separate);
    let limits = limits();
    let actions = step_looked(
        &mut view,
        (S1, VenueStatus::Filled, "0.4995"),
        T0 + 9_000,
        &limits,
    );
    assert_eq!(
        actions,
        vec![Action::Cancel {
            client_oid: T1.into()
        }]
    );
    assert_eq!(view.trade.state, TradeState::Closing);
    step(&mut view, cancelled(T1, Ok(())), T0 + 9_010, &limits);
    step_looked(
        &mut view,
        (T1, VenueStatus::Canceled, "0"),
        T0 + 9_020,
        &limits,
    );
    assert_eq!(view.trade.state, TradeState::Closed);
    assert_eq!(view.trade.close_reason.as_deref(), Some("stop_loss_filled"));
}

#[test]
fn oco_take_profit_fill_closes_once_the_sibling_is_seen_cancelled() {
    let mut view = protected_view(Side::Buy, ProtectionMode::Oco);
    let limits = limits();
    step_looked(
        &mut view,
        (T1, VenueStatus::Filled, "0.4995"),
        T0 + 9_000,
        &limits,
    );
    step_looked(
        &mut view,
        (S1, VenueStatus::Canceled, "0"),
        T0 + 9_010,
        &limits,
    );
    assert_eq!(view.trade.state, TradeState::Closed);
    assert_eq!(
        view.trade.close_reason.as_deref(),
        Some("take_profit_filled")
    );
}

#[test]
fn leg_cancelled_outside_fillguard_is_reprotected_once_then_fails_safe() {
    let mut view = protected_view(Side::Buy, ProtectionMode::Separate);
    let limits = limits();
    let actions = step_looked(
        &mut view,
        (S1, VenueStatus::Canceled, "0"),
        T0 + 9_000,
        &limits,
    );
    // The sibling is cancelled and confirmed before a new stop is placed (S1).
    assert_eq!(
        actions,
        vec![Action::Cancel {
            client_oid: T1.into()
        }]
    );
    step(&mut view, cancelled(T1, Ok(())), T0 + 9_010, &limits);
    let actions = step_looked(
        &mut view,
        (T1, VenueStatus::Canceled, "0"),
        T0 + 9_020,
        &limits,
    );
    assert_eq!(actions, vec![Action::FetchMarket]);
    let actions = step(&mut view, market("100", "10"), T0 + 9_030, &limits);
    assert_eq!(actions.len(), 2, "two separate sends: {actions:?}");
    assert_eq!(view.trade.generation, 2);
    step(
        &mut view,
        ack(&["fg-7-S2"], Some("401"), None),
        T0 + 9_040,
        &limits,
    );
    step(
        &mut view,
        ack(&["fg-7-T2"], Some("402"), None),
        T0 + 9_040,
        &limits,
    );
    step_looked(
        &mut view,
        ("fg-7-S2", VenueStatus::Pending, "0"),
        T0 + 9_100,
        &limits,
    );
    step_looked(
        &mut view,
        ("fg-7-T2", VenueStatus::Pending, "0"),
        T0 + 9_100,
        &limits,
    );
    assert_eq!(view.trade.state, TradeState::Protected);
    let actions = step_looked(
        &mut view,
        ("fg-7-S2", VenueStatus::Expired, "0"),
        T0 + 20_000,
        &limits,
    );
    assert_eq!(view.trade.reprotects, 1);
    assert_recovering(&view);
    // The live take-profit is left alone: partial protection beats none, and the recovery's
    // clearing confirms it gone before anything new is placed.
    assert!(
        !actions
            .iter()
            .any(|action| matches!(action, Action::Cancel { .. })),
        "{actions:?}"
    );
    assert!(
        critical_alert(&actions)
            .unwrap()
            .contains("reprotect_exhausted")
    );
    let actions = step_looked(
        &mut view,
        ("fg-7-S2", VenueStatus::Expired, "0"),
        T0 + 20_000,
        &limits,
    );
    assert!(
        actions.is_empty(),
        "a recovering trade records late answers and acts only when due"
    );
    assert_eq!(view.trade.state, TradeState::Recovering);
}

#[test]
fn partial_take_profit_with_stop_cancelled_reprotects_the_remainder() {
    let mut view = protected_view(Side::Buy, ProtectionMode::Oco);
    let limits = limits();
    step_looked(
        &mut view,
        (T1, VenueStatus::Active, "0.2"),
        T0 + 9_000,
        &limits,
    );
    let actions = step_looked(
        &mut view,
        (S1, VenueStatus::Canceled, "0"),
        T0 + 9_000,
        &limits,
    );
    // The sibling of a leg that ended is read back first (the exchange may have ended it)...
    assert_eq!(
        actions,
        vec![Action::Lookup {
            client_oid: T1.into()
        }]
    );
    step_looked(
        &mut view,
        (T1, VenueStatus::Active, "0.2"),
        T0 + 9_005,
        &limits,
    );
    // ...and, still resting, cancelled at once on the next turn.
    assert_eq!(view.trade.due_ms, Some(T0 + 9_000));
    let actions = step(&mut view, Event::Due, T0 + 9_006, &limits);
    assert_eq!(
        actions,
        vec![Action::Cancel {
            client_oid: T1.into()
        }]
    );
    step(&mut view, cancelled(T1, Ok(())), T0 + 9_010, &limits);
    step_looked(
        &mut view,
        (T1, VenueStatus::Canceled, "0.2"),
        T0 + 9_020,
        &limits,
    );
    step(&mut view, market("100", "10"), T0 + 9_030, &limits);
    assert_eq!(view.trade.protect_quantity, Some(d("0.2995")));
}

#[test]
fn read_back_mismatch_fails_safe_and_cancels_the_wrong_order() {
    let mut view = filled_view(Side::Buy, ProtectionMode::Oco);
    let limits = limits();
    step(&mut view, market("100", "10"), T0, &limits);
    step(&mut view, ack(&[S1, T1], None, Some("L1")), T0, &limits);
    let mut wrong = report(&view, S1, VenueStatus::Pending, "0");
    wrong.side = Side::Buy;
    let event = Event::Looked {
        client_oid: S1.into(),
        outcome: LookOutcome::Found(wrong),
    };
    let actions = step(&mut view, event, T0 + 200, &limits);
    assert_recovering(&view);
    assert!(actions.contains(&Action::Cancel {
        client_oid: S1.into()
    }));
    assert!(
        critical_alert(&actions)
            .unwrap()
            .contains("side BUY instead of SELL")
    );
}

#[test]
fn otoco_full_fill_reads_back_the_exchange_activated_legs() {
    let mut view = new_view(Side::Buy, ProtectionMode::Otoco);
    let limits = limits();
    let actions = step(&mut view, Event::Due, T0, &limits);
    assert!(
        matches!(&actions[..], [Action::Send { kind: SendKind::Otoco, client_oids }] if client_oids.len() == 3)
    );
    step(
        &mut view,
        ack(&[E, "fg-7-S0", "fg-7-T0"], None, Some("L9")),
        T0,
        &limits,
    );
    let actions = step_looked(
        &mut view,
        (E, VenueStatus::Filled, "0.5"),
        T0 + 300,
        &limits,
    );
    assert!(actions.is_empty());
    assert_eq!(view.trade.state, TradeState::Verifying);
    step_looked(
        &mut view,
        ("fg-7-S0", VenueStatus::Pending, "0"),
        T0 + 600,
        &limits,
    );
    step_looked(
        &mut view,
        ("fg-7-T0", VenueStatus::Pending, "0"),
        T0 + 600,
        &limits,
    );
    assert_eq!(view.trade.state, TradeState::Protected);
    assert_eq!(view.trade.protect_quantity, Some(d("0.4995")));
}

#[test]
fn otoco_partial_fill_cancels_the_list_and_protects_as_oco() {
    let mut view = new_view(Side::Buy, ProtectionMode::Otoco);
    let limits = limits();
    step(&mut view, Event::Due, T0, &limits);
    step(
        &mut view,
        ack(&[E, "fg-7-S0", "fg-7-T0"], None, Some("L9")),
        T0,
        &limits,
    );
    let actions = step_looked(
        &mut view,
        (E, VenueStatus::Expired, "0.2"),
        T0 + 300,
        &limits,
    );
    assert_eq!(
        actions,
        vec![
            Action::Cancel {
                client_oid: "fg-7-S0".into()
            },
            Action::Cancel {
                client_oid: "fg-7-T0".into()
            },
        ]
    );
    step_looked(
        &mut view,
        ("fg-7-S0", VenueStatus::Canceled, "0"),
        T0 + 400,
        &limits,
    );
    let actions = step_looked(
        &mut view,
        ("fg-7-T0", VenueStatus::Canceled, "0"),
        T0 + 400,
        &limits,
    );
    assert_eq!(actions, vec![Action::FetchMarket]);
    let actions = step(&mut view, market("100", "10"), T0 + 500, &limits);
    assert!(matches!(
        &actions[..],
        [Action::Send {
            kind: SendKind::Oco,
            ..
        }]
    ));
    assert_eq!(view.trade.protect_quantity, Some(d("0.1998")));
}

#[test]
fn crash_before_protective_send_resends_the_same_client_oids() {
    let mut view = filled_view(Side::Buy, ProtectionMode::Oco);
    let limits = limits();
    step(&mut view, market("100", "10"), T0, &limits);
    // The process died here: intents stored, send never answered. After restart:
    let actions = step(&mut view, Event::Due, T0 + 5_000, &limits);
    assert_eq!(actions.len(), 2);
    let actions = step(&mut view, not_found(S1), T0 + 5_000, &limits);
    assert_eq!(
        actions,
        vec![Action::Send {
            kind: SendKind::Oco,
            client_oids: vec![S1.into(), T1.into()]
        }]
    );
}

/// Seed 96989: the protective send of an earlier run was never answered, and the clock was
/// stepped forward across the restart, so by the clock its window had long passed. The first
/// "not found" of the restart repeated the send; a second "not found", read before that repeat,
/// must not give up the pair the repeat may just have placed.
#[test]
fn a_pair_repeated_after_a_restart_counts_its_window_from_the_repeat() {
    let mut view = filled_view(Side::Buy, ProtectionMode::Oco);
    step(&mut view, market("100", "10"), T0, &limits());
    // Restart 374 s later by a clock stepped forward; the new run has settled for 21 s.
    let restarted = Limits {
        steady_since_ms: T0 + 374_000,
        ..limits()
    };
    let now = T0 + 395_000;
    let actions = step(&mut view, Event::Due, now, &restarted);
    assert_eq!(actions.len(), 2, "{actions:?}");
    let actions = step(&mut view, not_found(S1), now, &restarted);
    assert_eq!(
        actions,
        vec![Action::Send {
            kind: SendKind::Oco,
            client_oids: vec![S1.into(), T1.into()]
        }]
    );
    let actions = step(&mut view, not_found(T1), now, &restarted);
    assert!(!has_send(&actions), "{actions:?}");
    assert!(!actions.contains(&Action::FetchMarket), "{actions:?}");
    assert_eq!(view.trade.state, TradeState::Verifying);
    assert_eq!(view.trade.generation, 1);
    for leg in [S1, T1] {
        let order = view.orders.iter().find(|o| o.client_oid == leg).unwrap();
        assert_eq!(order.status, OrderStatus::Unknown, "{order:?}");
        assert_eq!(order.sent_at_ms, Some(now));
    }
    // The repeat created the pair after all: it is verified, and nothing else is sent.
    step(
        &mut view,
        ack(&[S1, T1], None, Some("L1")),
        now + 10,
        &restarted,
    );
    step_looked(
        &mut view,
        (S1, VenueStatus::Active, "0"),
        now + 500,
        &restarted,
    );
    let actions = step_looked(
        &mut view,
        (T1, VenueStatus::Active, "0"),
        now + 500,
        &restarted,
    );
    assert!(!has_send(&actions), "{actions:?}");
    assert_eq!(view.trade.state, TradeState::Protected);
}

#[test]
fn blocked_entry_that_never_reached_the_exchange_closes() {
    let mut view = new_view(Side::Buy, ProtectionMode::Oco);
    let actions = step(
        &mut view,
        Event::EntryBlocked {
            reason: "breaker open".into(),
        },
        T0,
        &limits(),
    );
    assert!(actions.is_empty());
    assert_eq!(view.trade.close_reason.as_deref(), Some("entry_blocked"));
    assert_eq!(view.orders[0].status, OrderStatus::NotPlaced);
}

#[test]
fn blocked_repeat_of_an_entry_that_may_have_been_sent_waits_out_the_nonce_window() {
    // Sent, then a crash before the result was stored; the breaker opened meanwhile and the
    // exchange does not show the order yet (seed 434 of the simulation).
    let mut view = new_view(Side::Buy, ProtectionMode::Oco);
    let limits = limits();
    step(&mut view, Event::Due, T0, &limits);
    let actions = step(&mut view, Event::Due, T0 + 1_000, &limits);
    assert!(has_send(&actions), "the intent is sent again: {actions:?}");
    let blocked = Event::EntryBlocked {
        reason: "breaker open".into(),
    };
    step(&mut view, blocked, T0 + 1_000, &limits);
    assert_eq!(view.trade.state, TradeState::EntryUnknown);
    assert!(view.trade.due_ms.is_some());
    // It appears, filled: it is protected like any other fill.
    let filled = looked(&view, E, VenueStatus::Filled, "0.5");
    let actions = step(&mut view, filled, T0 + 2_000, &limits);
    assert_eq!(view.trade.state, TradeState::Protecting);
    assert_eq!(actions, vec![Action::FetchMarket], "protection begins");
}

#[test]
fn terminal_trades_ignore_every_event() {
    let mut view = new_view(Side::Buy, ProtectionMode::Oco);
    step(
        &mut view,
        Event::EntryBlocked { reason: "x".into() },
        T0,
        &limits(),
    );
    let before = view.clone();
    let actions = step(
        &mut view,
        looked(&before, E, VenueStatus::Filled, "0.5"),
        T0 + 1,
        &limits(),
    );
    assert!(actions.is_empty());
    assert_eq!(view.trade.state, before.trade.state);
}

#[test]
fn open_breaker_refuses_the_entry_before_any_intent() {
    let instrument = instrument();
    let mut breaker = Breaker::closed("BTC_USDT");
    breaker.trip("protection_failed", T0);
    let request = EntryRequest {
        symbol: "BTC_USDT".into(),
        side: Side::Buy,
        size: EntrySize::Notional(d("50")),
        stop_loss_pct: d("1"),
        take_profit_pct: d("2"),
        mode: ProtectionMode::Oco,
        signal_id: Some(1),
    };
    let mut context = EntryContext {
        epoch: "",
        instrument: &instrument,
        last_price: d("100"),
        free_base: d("0"),
        free_quote: d("1000"),
        symbol_breaker: Some(&breaker),
        global_breaker: None,
        open_trade_on_symbol: false,
        allow_concurrent_trades: false,
    };
    assert!(
        plan_entry(1, &request, &context, T0)
            .unwrap_err()
            .contains("breaker")
    );
    context.symbol_breaker = None;
    let view = plan_entry(1, &request, &context, T0).unwrap();
    assert_eq!(view.trade.entry_quantity, d("0.5"));
    context.open_trade_on_symbol = true;
    assert!(
        plan_entry(1, &request, &context, T0)
            .unwrap_err()
            .contains("open trade")
    );
}

#[test]
fn entry_that_would_be_unprotectable_or_unaffordable_is_refused() {
    let instrument = Instrument {
        min_notional: d("10"),
        ..instrument()
    };
    let request = EntryRequest {
        symbol: "BTC_USDT".into(),
        side: Side::Buy,
        size: EntrySize::Notional(d("10")),
        stop_loss_pct: d("5"),
        take_profit_pct: d("2"),
        mode: ProtectionMode::Oco,
        signal_id: None,
    };
    let context = EntryContext {
        epoch: "",
        instrument: &instrument,
        last_price: d("100"),
        free_base: d("0"),
        free_quote: d("1000"),
        symbol_breaker: None,
        global_breaker: None,
        open_trade_on_symbol: false,
        allow_concurrent_trades: false,
    };
    let refusal = plan_entry(1, &request, &context, T0).unwrap_err();
    assert!(refusal.contains("unprotectable"), "{refusal}");
    let rich = EntryRequest {
        size: EntrySize::Notional(d("5000")),
        ..request
    };
    assert!(
        plan_entry(1, &rich, &context, T0)
            .unwrap_err()
            .contains("insufficient USDT")
    );
}

#[test]
fn stop_seen_cancelled_before_the_filled_take_profit_still_closes() {
    let mut view = protected_view(Side::Buy, ProtectionMode::Oco);
    let limits = limits();
    // The exchange cancelled the stop because the take-profit filled; the stop is read first.
    let actions = step_looked(
        &mut view,
        (S1, VenueStatus::Canceled, "0"),
        T0 + 9_000,
        &limits,
    );
    // Read back, not cancelled: a cancel of the finished list would be refused (316).
    assert_eq!(
        actions,
        vec![Action::Lookup {
            client_oid: T1.into()
        }]
    );
    let actions = step_looked(
        &mut view,
        (T1, VenueStatus::Filled, "0.4995"),
        T0 + 9_020,
        &limits,
    );
    assert!(
        actions.is_empty(),
        "no new protection for a closed position: {actions:?}"
    );
    assert_eq!(view.trade.state, TradeState::Closed);
    assert_eq!(
        view.trade.close_reason.as_deref(),
        Some("take_profit_filled")
    );
}

#[test]
fn failed_lookups_inside_the_unknown_window_do_not_halt_early() {
    let mut view = new_view(Side::Buy, ProtectionMode::Oco);
    let limits = limits();
    step(&mut view, Event::Due, T0, &limits);
    let lost = ambiguous(&[E], "503");
    step(&mut view, lost, T0, &limits);
    let failed = || Event::Looked {
        client_oid: E.into(),
        outcome: LookOutcome::Failed {
            message: "429".into(),
        },
    };
    for second in 1..60 {
        step(&mut view, not_found(E), T0 + second * 500, &limits);
        step(&mut view, failed(), T0 + second * 500 + 1, &limits);
    }
    assert_eq!(view.trade.state, TradeState::EntryUnknown);
    let next = view.trade.due_ms.unwrap() - (T0 + 59 * 500 + 1);
    assert!(
        next >= 1_000,
        "lookups slow down inside the window: {next} ms"
    );
    step(
        &mut view,
        failed(),
        T0 + UNKNOWN_WINDOW_MS + 30_000,
        &limits,
    );
    assert_recovering(&view);
}

#[test]
fn a_rejected_repeat_of_a_send_lost_in_a_crash_is_resolved_by_lookup() {
    let mut view = filled_view(Side::Buy, ProtectionMode::Oco);
    let limits = limits();
    step(&mut view, market("100", "10"), T0, &limits);
    // Crash before the answer was stored; after the restart the legs are not visible yet.
    step(&mut view, Event::Due, T0 + 5_000, &limits);
    let actions = step(&mut view, not_found(S1), T0 + 5_000, &limits);
    assert!(has_send(&actions));
    let rejected = rejected(&[S1, T1], 229, "INVALID_REF_PRICE");
    let actions = step(&mut view, rejected, T0 + 5_010, &limits);
    assert!(
        !has_send(&actions),
        "no second generation while the first may exist"
    );
    assert_eq!(view.trade.state, TradeState::Verifying);
    assert!(
        view.orders
            .iter()
            .filter(|o| o.role.is_protective())
            .all(|o| o.status == OrderStatus::Unknown)
    );
    // The first attempt did reach the exchange: the lookup finds it and it is verified.
    step_looked(
        &mut view,
        (S1, VenueStatus::Pending, "0"),
        T0 + 6_000,
        &limits,
    );
    step_looked(
        &mut view,
        (T1, VenueStatus::Active, "0"),
        T0 + 6_000,
        &limits,
    );
    assert_eq!(view.trade.state, TradeState::Protected);
    assert_eq!(view.trade.generation, 1);
}

#[test]
fn a_rejected_repeat_of_an_entry_lost_in_a_crash_is_not_taken_as_no_entry() {
    let mut view = new_view(Side::Buy, ProtectionMode::Oco);
    let limits = limits();
    step(&mut view, Event::Due, T0, &limits);
    // Crash: the send's answer was never stored. After the restart the entry is sent again.
    let actions = step(&mut view, Event::Due, T0 + 5_000, &limits);
    assert!(has_send(&actions));
    let rejected = rejected(&[E], 306, "INSUFFICIENT_AVAILABLE_BALANCE");
    step(&mut view, rejected, T0 + 5_010, &limits);
    assert_eq!(
        view.trade.state,
        TradeState::EntryUnknown,
        "{:?}",
        view.trade.close_reason
    );
    step_looked(
        &mut view,
        (E, VenueStatus::Filled, "0.5"),
        T0 + 5_500,
        &limits,
    );
    assert_eq!(view.trade.state, TradeState::Protecting);
}

#[test]
fn a_duplicate_client_oid_answer_proves_the_entry_exists_whatever_lookups_say() {
    // Simulation seed 574: the repeat after a crash was refused as a duplicate, then a lagging
    // read did not show the order past the window; it was taken as never placed, and filled.
    let mut view = new_view(Side::Buy, ProtectionMode::Oco);
    let limits = limits();
    step(&mut view, Event::Due, T0, &limits);
    let duplicate = rejected(&[E], 204, "duplicate client_oid");
    step(&mut view, duplicate, T0 + 10, &limits);
    step(&mut view, not_found(E), T0 + 100_000, &limits);
    assert_ne!(view.trade.close_reason.as_deref(), Some("entry_not_placed"));
    assert_ne!(view.trade.state, TradeState::Closed);
}

#[test]
fn a_refused_repeat_never_marks_a_leg_the_exchange_already_showed_as_not_placed() {
    // Simulation seed 7865 (separate mode): the answers to both legs were lost; the stop's
    // lookup found nothing, so both legs were sent again; then the take-profit's lookup found
    // it resting, and only after that came its repeat's 429. Taking that 429 as "not placed"
    // started a new round beside the live take-profit: two live take-profits.
    let mut view = filled_view(Side::Buy, ProtectionMode::Separate);
    let limits = limits();
    step(&mut view, market("100", "10"), T0 + 400, &limits);
    let actions = step(&mut view, Event::Due, T0 + 1_400, &limits);
    assert_eq!(actions.len(), 2, "both legs looked up: {actions:?}");
    let actions = step(&mut view, not_found(S1), T0 + 1_400, &limits);
    assert!(has_send(&actions));
    step_looked(
        &mut view,
        (T1, VenueStatus::Pending, "0"),
        T0 + 1_400,
        &limits,
    );
    let refused = rejected(&[T1], 42901, "rate limited");
    let actions = step(&mut view, refused, T0 + 1_400, &limits);
    let take_profit = view.orders.iter().find(|o| o.client_oid == T1).unwrap();
    assert_eq!(take_profit.status, OrderStatus::Venue(VenueStatus::Pending));
    assert_eq!(view.trade.state, TradeState::Verifying);
    assert!(!has_send(&actions));
    assert_eq!(
        view.trade.generation, 1,
        "no second round beside the live leg"
    );
}

#[test]
fn a_blocked_repeat_whose_lookup_finds_the_entry_resting_keeps_polling_it() {
    // Simulation seed 11552: the entry went out, storing its ack failed, a breaker opened, and
    // the repeat was replaced by a lookup that found it open. The trade was left with nothing
    // due, and the entry filled unwatched.
    let mut view = new_view(Side::Buy, ProtectionMode::Oco);
    let limits = limits();
    step(&mut view, Event::Due, T0, &limits);
    let actions = step(&mut view, Event::Due, T0 + 1_000, &limits);
    assert!(has_send(&actions));
    let resting = looked(&view, E, VenueStatus::New, "0");
    step(&mut view, resting, T0 + 1_000, &limits);
    assert_eq!(view.trade.state, TradeState::AwaitingFill);
    assert!(view.trade.due_ms.is_some(), "the entry is polled");
    let filled = looked(&view, E, VenueStatus::Filled, "0.5");
    let actions = step(&mut view, filled, T0 + 2_000, &limits);
    assert_eq!(
        actions,
        vec![Action::FetchMarket],
        "and protected once filled"
    );
}

#[test]
fn an_acknowledged_leg_not_visible_yet_is_never_taken_as_gone() {
    // Simulation seed 14123 (separate mode): the stop was acknowledged, the take-profit
    // refused; clearing the half-placed pair, the stop's cancel met 429s and its lookups
    // "not found" (the exchange did not show it yet). Taken as gone, a second stop went up.
    let mut view = filled_view(Side::Buy, ProtectionMode::Separate);
    let limits = limits();
    step(&mut view, market("100", "10"), T0 + 400, &limits);
    step(&mut view, ack(&[S1], Some("201"), None), T0 + 450, &limits);
    let refused = rejected(&[T1], 229, "INVALID_REF_PRICE");
    step(&mut view, refused, T0 + 450, &limits);
    assert_eq!(view.trade.state, TradeState::Protecting);
    for attempt in 1..=6 {
        let now = T0 + 1_000 * attempt;
        step(&mut view, Event::Due, now, &limits);
        let actions = step(&mut view, not_found(S1), now, &limits);
        assert!(
            !has_send(&actions),
            "a new round beside the stop: {actions:?}"
        );
    }
    let stop = view.orders.iter().find(|o| o.client_oid == S1).unwrap();
    assert_ne!(stop.status, OrderStatus::NotPlaced);
}

mod deferred;
mod failsafe;
mod poll;
