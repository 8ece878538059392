//! The fill-poll policy (`Limits::poll`): the fixed schedule and the open-orders-then-history
//! source of the design fillguard replaces, the adaptive schedule's first delay and growth, and
//! the round trips saved between a fill and its protection and at the close of an OCO.

use super::*;

fn with_policy(schedule: PollSchedule, source: PollSource) -> Limits {
    Limits {
        poll: PollPolicy {
            schedule,
            source,
            first_delay_ms: 0,
            growth_percent: 150,
        },
        ..limits()
    }
}

/// The entry sent and acknowledged under `limits`.
fn acknowledged(limits: &Limits) -> TradeView {
    let mut view = new_view(Side::Buy, ProtectionMode::Separate);
    step(&mut view, Event::Due, T0, limits);
    step(&mut view, ack(&[E], Some("111"), None), T0, limits);
    view
}

#[test]
fn fixed_schedule_polls_every_interval_from_the_ack_within_its_attempts() {
    let limits = with_policy(PollSchedule::Fixed, PollSource::Detail);
    let mut view = acknowledged(&limits);
    assert_eq!(
        view.trade.due_ms,
        Some(T0 + 1_000),
        "first check one interval after the ack"
    );
    let mut actions = Vec::new();
    for attempt in 1..=limits.poll_attempts_max {
        let now = view.trade.due_ms.unwrap();
        assert_eq!(now, T0 + 1_000 * i64::from(attempt));
        step(&mut view, Event::Due, now, &limits);
        actions = step_looked(&mut view, (E, VenueStatus::Active, "0"), now, &limits);
    }
    // At most max_attempts polls: then the entry is cancelled.
    assert_eq!(
        actions,
        vec![Action::Cancel {
            client_oid: E.into()
        }]
    );
}

#[test]
fn adaptive_schedule_takes_its_first_delay_and_growth_from_the_policy() {
    let limits = with_policy(PollSchedule::Adaptive, PollSource::Detail);
    let delays: Vec<Millis> = (0..8).map(|n| fill_poll_delay(n, &limits)).collect();
    // At once, then from 50 ms growing by half each time, up to the 1 s interval.
    assert_eq!(delays, vec![0, 75, 112, 168, 252, 378, 567, 850]);
    assert_eq!(fill_poll_delay(9, &limits), 1_000);
    assert_eq!(fill_poll_delay(u32::MAX, &limits), 1_000);
    let doubling = Limits {
        poll: PollPolicy {
            first_delay_ms: 200,
            growth_percent: 200,
            ..limits.poll
        },
        ..limits.clone()
    };
    let delays: Vec<Millis> = (0..4).map(|n| fill_poll_delay(n, &doubling)).collect();
    assert_eq!(delays, vec![200, 400, 800, 1_000], "the earlier default");
    let flat = Limits {
        poll: PollPolicy {
            first_delay_ms: 100,
            growth_percent: 100,
            ..limits.poll
        },
        ..limits.clone()
    };
    assert_eq!(
        fill_poll_delay(30, &flat),
        100,
        "growth 1 stays at the first delay"
    );
    let view = acknowledged(&limits);
    assert_eq!(
        view.trade.due_ms,
        Some(T0),
        "polled as soon as the ack is in"
    );
}

#[test]
fn open_then_history_source_polls_an_acknowledged_entry_through_the_lists() {
    let limits = with_policy(PollSchedule::Fixed, PollSource::OpenThenHistory);
    let mut view = acknowledged(&limits);
    let now = view.trade.due_ms.unwrap();
    assert_eq!(
        step(&mut view, Event::Due, now, &limits),
        vec![Action::LookupListed {
            client_oid: E.into()
        }]
    );
    // Not in the lists yet: polled again on the schedule, like a detail poll.
    step(&mut view, not_found(E), now, &limits);
    assert_eq!(view.trade.state, TradeState::AwaitingFill);
    assert_eq!(view.trade.due_ms, Some(now + 1_000));
    let actions = step_looked(
        &mut view,
        (E, VenueStatus::Filled, "0.5"),
        now + 1_000,
        &limits,
    );
    assert_eq!(actions, vec![Action::FetchMarket]);
}

#[test]
fn open_then_history_source_resolves_an_ambiguous_entry_through_the_whole_chain() {
    let limits = with_policy(PollSchedule::Fixed, PollSource::OpenThenHistory);
    let mut view = new_view(Side::Buy, ProtectionMode::Oco);
    step(&mut view, Event::Due, T0, &limits);
    step(&mut view, ambiguous(&[E], "timeout"), T0, &limits);
    assert_eq!(view.trade.state, TradeState::EntryUnknown);
    let now = view.trade.due_ms.unwrap();
    assert_eq!(
        step(&mut view, Event::Due, now, &limits),
        vec![Action::Lookup {
            client_oid: E.into()
        }]
    );
}

#[test]
fn closing_oco_reads_the_sibling_back_before_any_cancel() {
    let mut view = protected_view(Side::Buy, ProtectionMode::Oco);
    let limits = limits();
    // The stop was read (still active) just before the take-profit filled.
    let actions = step_looked(
        &mut view,
        (T1, VenueStatus::Filled, "0.4995"),
        T0 + 9_000,
        &limits,
    );
    assert_eq!(view.trade.state, TradeState::Closing);
    assert_eq!(
        actions,
        vec![Action::Lookup {
            client_oid: S1.into()
        }],
        "the exchange cancels an OCO sibling itself: no cancel of a list already done"
    );
    // Still open at the next attempt (the exchange is slow to cancel it): cancelled then.
    step_looked(
        &mut view,
        (S1, VenueStatus::Active, "0"),
        T0 + 9_010,
        &limits,
    );
    let due = view.trade.due_ms.unwrap();
    assert_eq!(
        step(&mut view, Event::Due, due, &limits),
        vec![Action::Cancel {
            client_oid: S1.into()
        }]
    );
    step(&mut view, cancelled(S1, Ok(())), due, &limits);
    step_looked(
        &mut view,
        (S1, VenueStatus::Canceled, "0"),
        due + 10,
        &limits,
    );
    assert_eq!(view.trade.state, TradeState::Closed);
    assert_eq!(
        view.trade.close_reason.as_deref(),
        Some("take_profit_filled")
    );
}

#[test]
fn sell_protection_needs_no_base_balance_and_a_buy_without_one_is_unprotectable() {
    let limits = limits();
    let mut sell = filled_view(Side::Sell, ProtectionMode::Oco);
    let no_balance = Event::Market(MarketOutcome::Ready(Market {
        instrument: instrument(),
        last_price: d("100"),
        free_base: None,
    }));
    let actions = step(&mut sell, no_balance.clone(), T0 + 400, &limits);
    assert!(has_send(&actions), "{actions:?}");
    assert!(sell.trade.protect_quantity.is_some());
    let mut buy = filled_view(Side::Buy, ProtectionMode::Oco);
    let actions = step(&mut buy, no_balance, T0 + 400, &limits);
    assert!(
        !has_send(&actions),
        "a BUY is never protected for more than it holds"
    );
    assert!(critical_alert(&actions).is_some(), "{actions:?}");
    assert!(buy.trade.protect_quantity.is_none());
}
