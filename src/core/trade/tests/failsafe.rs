//! Named scenarios of issue-level outcomes: the failsafe completes before it acts, a halt never
//! abandons a position that may exist (outages right after the entry, the protective send and
//! the failsafe's exit), a take-profit already passed, identities that are not ours, and a
//! stored trade that contradicts itself.

use super::*;

const X0: &str = "fg-7-X0";

fn flatten() -> Limits {
    Limits {
        flatten: true,
        ..limits()
    }
}

fn failed(oid: &str) -> Event {
    Event::Looked {
        client_oid: oid.into(),
        outcome: LookOutcome::Failed {
            message: "transport error: connection refused".into(),
        },
    }
}

fn exit_sends(actions: &[Action]) -> Vec<&Action> {
    actions
        .iter()
        .filter(|action| {
            matches!(action, Action::Send { client_oids, .. }
                if client_oids.iter().any(|oid| oid.contains("-X")))
        })
        .collect()
}

fn exit_quantity(view: &TradeView) -> Decimal {
    view.orders
        .iter()
        .rev()
        .find(|order| order.role == Role::Exit)
        .map(|order| order.quantity)
        .expect("an exit order")
}

fn alert_with(actions: &[Action], needle: &str) -> Option<Alert> {
    actions.iter().find_map(|action| match action {
        Action::Alert(alert) if alert.text.contains(needle) => Some(alert.clone()),
        _ => None,
    })
}

/// Protective legs are sent as one OCO whose answer is lost, and no read-back succeeds: the
/// failsafe starts with both legs `Unknown` and no ids.
fn ambiguous_oco_then_failsafe(limits: &Limits) -> (TradeView, Vec<Action>, Millis) {
    let mut view = filled_view(Side::Buy, ProtectionMode::Oco);
    let actions = step(&mut view, market("100", "10"), T0 + 400, limits);
    assert!(has_send(&actions));
    step(
        &mut view,
        ambiguous(&[S1, T1], "timed out"),
        T0 + 450,
        limits,
    );
    let mut now = T0 + 500;
    let mut actions = Vec::new();
    for _ in 0..VERIFY_ATTEMPTS_MAX + 2 {
        now += 200;
        actions = step(&mut view, failed(S1), now, limits);
        if view.trade.state != TradeState::Verifying {
            break;
        }
    }
    (view, actions, now)
}

#[test]
fn ambiguous_oco_then_failsafe_confirms_both_legs_gone_before_the_exit() {
    let limits = flatten();
    let (mut view, actions, now) = ambiguous_oco_then_failsafe(&limits);
    assert_eq!(view.trade.state, TradeState::Exiting);
    assert!(critical_alert(&actions).is_some());
    assert!(exit_sends(&actions).is_empty(), "{actions:?}");
    for oid in [S1, T1] {
        assert!(actions.contains(&Action::Lookup {
            client_oid: oid.into()
        }));
    }
    // Not found yet, inside the nonce window: the OCO may still appear. No exit.
    for oid in [S1, T1] {
        let actions = step(&mut view, not_found(oid), now + 100, &limits);
        assert!(exit_sends(&actions).is_empty());
    }
    // It did land: the stop is found resting, cancelled, and read back cancelled.
    let actions = step_looked(
        &mut view,
        (S1, VenueStatus::Pending, "0"),
        now + 200,
        &limits,
    );
    assert!(exit_sends(&actions).is_empty());
    let actions = step(&mut view, Event::Due, now + 1_000, &limits);
    assert!(actions.contains(&Action::Cancel {
        client_oid: S1.into()
    }));
    assert!(exit_sends(&actions).is_empty());
    let actions = step(&mut view, cancelled(S1, Ok(())), now + 1_100, &limits);
    assert_eq!(
        actions,
        vec![Action::Lookup {
            client_oid: S1.into()
        }]
    );
    step_looked(
        &mut view,
        (S1, VenueStatus::Canceled, "0"),
        now + 1_200,
        &limits,
    );
    let actions = step_looked(
        &mut view,
        (T1, VenueStatus::Canceled, "0"),
        now + 1_300,
        &limits,
    );
    // Only now, both legs confirmed gone, does the market exit go out, for the whole position.
    assert_eq!(exit_sends(&actions).len(), 1, "{actions:?}");
    assert_eq!(exit_quantity(&view), d("0.4995"));
}

#[test]
fn an_ambiguous_oco_that_never_landed_is_given_up_only_after_the_nonce_window() {
    let limits = flatten();
    let (mut view, _, now) = ambiguous_oco_then_failsafe(&limits);
    for oid in [S1, T1] {
        let actions = step(&mut view, not_found(oid), now + 30_000, &limits);
        assert!(exit_sends(&actions).is_empty(), "inside the window");
    }
    let after_window = T0 + 450 + UNKNOWN_WINDOW_MS + 1_000;
    step(&mut view, not_found(S1), after_window, &limits);
    let actions = step(&mut view, not_found(T1), after_window, &limits);
    assert_eq!(exit_sends(&actions).len(), 1, "{actions:?}");
    assert!(
        view.orders
            .iter()
            .all(|order| !order.role.is_protective() || order.status == OrderStatus::NotPlaced)
    );
}

/// A protected trade whose take-profit is cancelled outside fillguard, with no re-protection
/// left: the failsafe (flatten on) must clear the stop before it exits.
fn failsafe_with_a_live_stop() -> (TradeView, Limits) {
    let mut view = protected_view(Side::Buy, ProtectionMode::Oco);
    let limits = Limits {
        reprotect_max: 0,
        ..flatten()
    };
    let actions = step_looked(
        &mut view,
        (T1, VenueStatus::Expired, "0"),
        T0 + 5_000,
        &limits,
    );
    assert_eq!(view.trade.state, TradeState::Exiting);
    assert!(actions.contains(&Action::Cancel {
        client_oid: S1.into()
    }));
    assert!(exit_sends(&actions).is_empty(), "{actions:?}");
    step(&mut view, cancelled(S1, Ok(())), T0 + 5_100, &limits);
    (view, limits)
}

#[test]
fn a_leg_filling_during_the_cancel_shrinks_the_exit() {
    let (mut view, limits) = failsafe_with_a_live_stop();
    let actions = step_looked(
        &mut view,
        (S1, VenueStatus::Canceled, "0.2"),
        T0 + 5_200,
        &limits,
    );
    assert_eq!(exit_sends(&actions).len(), 1);
    // The net position: 0.5 filled − 0.0005 fee − 0.2 the stop sold.
    assert_eq!(exit_quantity(&view), d("0.2995"));
}

#[test]
fn a_leg_filling_in_full_during_the_cancel_closes_the_trade_by_that_leg() {
    let (mut view, limits) = failsafe_with_a_live_stop();
    let actions = step_looked(
        &mut view,
        (S1, VenueStatus::Filled, "0.4995"),
        T0 + 5_200,
        &limits,
    );
    assert!(exit_sends(&actions).is_empty());
    assert_eq!(view.trade.state, TradeState::Closed);
    assert_eq!(view.trade.close_reason.as_deref(), Some("stop_loss_filled"));
}

#[test]
fn a_refused_cancel_keeps_the_exit_back_and_the_trade_halts_without_it() {
    let (mut view, limits) = failsafe_with_a_live_stop();
    let mut all = Vec::new();
    let mut now = T0 + 5_200;
    while view.trade.state == TradeState::Exiting && now < T0 + 200_000 {
        all.extend(step_looked(
            &mut view,
            (S1, VenueStatus::Pending, "0"),
            now,
            &limits,
        ));
        now += 2_000;
        all.extend(step(&mut view, Event::Due, now, &limits));
        all.extend(step(&mut view, cancelled(S1, Err("refused")), now, &limits));
    }
    assert!(exit_sends(&all).is_empty(), "no exit beside a live stop");
    assert_recovering(&view);
    assert_eq!(view.trade.close_reason.as_deref(), Some("flatten_blocked"));
    let text = critical_alert(&all).unwrap();
    assert!(
        text.contains("no market exit was sent") && text.contains(S1),
        "{text}"
    );
}

#[test]
fn a_take_profit_already_passed_is_taken_at_market_when_flatten_is_on() {
    let limits = flatten();
    let mut view = filled_view(Side::Buy, ProtectionMode::Oco);
    // Entry at 100, target 2 % above: the price ran to 103 while the entry was polled.
    let actions = step(&mut view, market("103", "10"), T0 + 400, &limits);
    let alert = alert_with(&actions, "TAKE-PROFIT PASSED").expect("a warning");
    assert_eq!(alert.severity, Severity::Warning);
    assert!(!trips_breaker(&actions), "taking a profit is no failure");
    assert_eq!(exit_sends(&actions).len(), 1);
    assert_eq!(exit_quantity(&view), d("0.4995"));
    step(&mut view, ack(&[X0], Some("301"), None), T0 + 450, &limits);
    step_looked(
        &mut view,
        (X0, VenueStatus::Filled, "0.4995"),
        T0 + 700,
        &limits,
    );
    assert_eq!(view.trade.state, TradeState::Closed);
    assert_eq!(
        view.trade.close_reason.as_deref(),
        Some("flattened after take_profit_crossed")
    );
}

#[test]
fn a_take_profit_already_passed_leaves_the_stop_alone_without_flatten() {
    let limits = limits();
    let mut view = filled_view(Side::Buy, ProtectionMode::Oco);
    let actions = step(&mut view, market("103", "10"), T0 + 400, &limits);
    let alert = alert_with(&actions, "TAKE-PROFIT SKIPPED").expect("a warning");
    assert_eq!(alert.severity, Severity::Warning);
    assert!(actions.contains(&Action::Send {
        kind: SendKind::Single,
        client_oids: vec![S1.into()]
    }));
    assert!(!actions.iter().any(|action| matches!(action,
        Action::Send { client_oids, .. } if client_oids.contains(&T1.to_string()))));
    step(&mut view, ack(&[S1], Some("201"), None), T0 + 450, &limits);
    step_looked(
        &mut view,
        (S1, VenueStatus::Pending, "0"),
        T0 + 700,
        &limits,
    );
    assert_eq!(view.trade.state, TradeState::Protected);
}

/// An entry acknowledged, then no lookup answers: the trade recovers behind its breaker.
fn recovering_after_an_outage_right_after_the_entry() -> (TradeView, Vec<Action>, Millis) {
    let limits = limits();
    let mut view = new_view(Side::Buy, ProtectionMode::Oco);
    step(&mut view, Event::Due, T0, &limits);
    step(&mut view, ack(&[E], Some("111"), None), T0, &limits);
    let mut all = Vec::new();
    let mut now = T0;
    while view.trade.state == TradeState::AwaitingFill {
        now += 1_000;
        all.extend(step(&mut view, failed(E), now, &limits));
    }
    (view, all, now)
}

#[test]
fn an_outage_right_after_the_entry_recovers_and_protects_the_fill() {
    let limits = limits();
    let (mut view, actions, now) = recovering_after_an_outage_right_after_the_entry();
    assert_recovering(&view);
    assert!(trips_breaker(&actions) && critical_alert(&actions).is_some());
    // The exchange answers again: the trade is due, looks the entry up and protects the fill.
    let due = view.trade.due_ms.unwrap();
    assert!(due - now >= 10_000, "a slow cadence");
    let actions = step(&mut view, Event::Due, due, &limits);
    assert_eq!(
        actions,
        vec![Action::Lookup {
            client_oid: E.into()
        }]
    );
    let actions = step_looked(
        &mut view,
        (E, VenueStatus::Filled, "0.5"),
        due + 100,
        &limits,
    );
    assert_eq!(actions, vec![Action::FetchMarket]);
    step(&mut view, market("100", "10"), due + 200, &limits);
    step(
        &mut view,
        ack(&[S1, T1], None, Some("L1")),
        due + 300,
        &limits,
    );
    step_looked(
        &mut view,
        (S1, VenueStatus::Pending, "0"),
        due + 400,
        &limits,
    );
    let actions = step_looked(
        &mut view,
        (T1, VenueStatus::Active, "0"),
        due + 500,
        &limits,
    );
    assert_eq!(view.trade.state, TradeState::Protected);
    let resolved = alert_with(&actions, "RESOLVED").expect("a follow-up alert");
    assert!(
        resolved.text.contains(S1) && resolved.text.contains(T1),
        "{}",
        resolved.text
    );
    assert_eq!(view.trade.recovering_since_ms, None);
    assert_eq!(view.trade.close_reason, None);
}

#[test]
fn an_outage_right_after_the_protective_send_recovers_without_a_second_pair() {
    let limits = limits();
    let (mut view, actions, now) = ambiguous_oco_then_failsafe(&limits);
    assert_recovering(&view);
    assert!(trips_breaker(&actions));
    let due = view.trade.due_ms.unwrap();
    let mut all = step(&mut view, Event::Due, due, &limits);
    let next = view.trade.due_ms.unwrap();
    all.extend(step(&mut view, Event::Due, next, &limits));
    for oid in [S1, T1] {
        assert!(all.contains(&Action::Lookup {
            client_oid: oid.into()
        }));
    }
    all.extend(step_looked(
        &mut view,
        (S1, VenueStatus::Pending, "0"),
        due + 500,
        &limits,
    ));
    all.extend(step_looked(
        &mut view,
        (T1, VenueStatus::Active, "0"),
        due + 600,
        &limits,
    ));
    assert_eq!(view.trade.state, TradeState::Protected, "{:?}", view.trade);
    assert!(
        !has_send(&all),
        "the pair that landed is read back, never sent again"
    );
    assert!(alert_with(&all, "RESOLVED").is_some());
    assert!(now < due);
}

#[test]
fn an_outage_during_the_failsafe_exit_resolves_that_exit_before_anything_else() {
    let limits = flatten();
    let mut view = filled_view(Side::Buy, ProtectionMode::Oco);
    let actions = step(&mut view, market("103", "10"), T0 + 400, &limits);
    assert_eq!(exit_sends(&actions).len(), 1);
    step(&mut view, ambiguous(&[X0], "timed out"), T0 + 450, &limits);
    let mut now = T0 + 450;
    while view.trade.state == TradeState::Exiting {
        now += 5_000;
        step(&mut view, failed(X0), now, &limits);
    }
    assert_recovering(&view);
    assert_eq!(
        view.trade.close_reason.as_deref(),
        Some("flatten_unconfirmed")
    );
    let due = view.trade.due_ms.unwrap();
    let actions = step(&mut view, Event::Due, due, &limits);
    assert_eq!(
        actions,
        vec![Action::Lookup {
            client_oid: X0.into()
        }],
        "the exit that may exist is looked up, not sent again"
    );
    let actions = step_looked(
        &mut view,
        (X0, VenueStatus::Filled, "0.4995"),
        due + 100,
        &limits,
    );
    assert!(exit_sends(&actions).is_empty());
    assert_eq!(view.trade.state, TradeState::Closed);
    // The reason names the last halt; the events table keeps the whole story.
    assert_eq!(
        view.trade.close_reason.as_deref(),
        Some("flattened after flatten_unconfirmed")
    );
    assert!(alert_with(&actions, "RESOLVED").is_some());
}

#[test]
fn a_breaker_reset_by_the_operator_ends_the_recovery() {
    let limits = limits();
    let (mut view, _, _) = recovering_after_an_outage_right_after_the_entry();
    assert!(view.trade.breaker_tripped);
    let actions = step(&mut view, Event::BreakerReset, T0 + 100_000, &limits);
    assert!(actions.is_empty());
    assert_eq!(view.trade.state, TradeState::Halted);
    assert_eq!(
        view.trade.close_reason.as_deref(),
        Some("operator_released")
    );
    assert!(step(&mut view, Event::Due, T0 + 200_000, &limits).is_empty());
}

#[test]
fn a_report_of_another_order_under_the_entry_id_is_never_adopted() {
    let limits = limits();
    let mut view = new_view(Side::Buy, ProtectionMode::Oco);
    step(&mut view, Event::Due, T0, &limits);
    step(&mut view, ack(&[E], Some("111"), None), T0, &limits);
    let mut foreign = report(&view, E, VenueStatus::Filled, "0.7");
    foreign.quantity = d("0.7");
    foreign.order_id = "5550001".into();
    let event = Event::Looked {
        client_oid: E.into(),
        outcome: LookOutcome::Found(foreign),
    };
    let actions = step(&mut view, event, T0 + 300, &limits);
    assert_eq!(view.trade.state, TradeState::Halted);
    assert_eq!(
        view.trade.close_reason.as_deref(),
        Some("identity_mismatch")
    );
    let entry = &view.orders[0];
    assert_eq!(entry.status, OrderStatus::Sent, "not adopted");
    assert_eq!(entry.order_id.as_deref(), Some("111"));
    assert!(view.trade.filled_quantity.is_zero());
    assert!(trips_breaker(&actions));
    let text = critical_alert(&actions).unwrap();
    assert!(
        text.contains("5550001") && text.contains("quantity 0.7"),
        "{text}"
    );
}

#[test]
fn a_trade_without_its_entry_halts_instead_of_panicking() {
    let limits = limits();
    let mut view = protected_view(Side::Buy, ProtectionMode::Oco);
    view.orders.retain(|order| order.role != Role::Entry);
    let actions = step(&mut view, Event::Due, T0 + 10_000, &limits);
    assert_eq!(view.trade.state, TradeState::Halted);
    assert_eq!(
        view.trade.close_reason.as_deref(),
        Some("inconsistent_trade")
    );
    assert!(trips_breaker(&actions) && critical_alert(&actions).is_some());
}

#[test]
fn an_impossible_report_counts_as_a_failed_lookup() {
    let limits = limits();
    let mut view = new_view(Side::Buy, ProtectionMode::Oco);
    step(&mut view, Event::Due, T0, &limits);
    step(&mut view, ack(&[E], Some("111"), None), T0, &limits);
    // More filled than the order's quantity.
    let actions = step_looked(
        &mut view,
        (E, VenueStatus::Filled, "0.9"),
        T0 + 300,
        &limits,
    );
    assert!(actions.is_empty());
    assert_eq!(view.trade.state, TradeState::AwaitingFill);
    assert!(
        view.orders[0]
            .last_error
            .as_deref()
            .unwrap()
            .contains("above")
    );
}

#[test]
fn an_overflowing_fill_price_is_unprotectable_never_a_panic() {
    let limits = limits();
    let mut view = new_view(Side::Buy, ProtectionMode::Oco);
    step(&mut view, Event::Due, T0, &limits);
    step(&mut view, ack(&[E], Some("111"), None), T0, &limits);
    let mut huge = report(&view, E, VenueStatus::Filled, "0.5");
    huge.avg_price = Decimal::MAX;
    let event = Event::Looked {
        client_oid: E.into(),
        outcome: LookOutcome::Found(huge),
    };
    step(&mut view, event, T0 + 300, &limits);
    let actions = step(&mut view, market("100", "10"), T0 + 400, &limits);
    assert_eq!(view.trade.state, TradeState::Halted);
    assert_eq!(view.trade.close_reason.as_deref(), Some("unprotectable"));
    assert!(critical_alert(&actions).is_some());
}

/// Separate mode, protected; the take-profit is cancelled outside fillguard with no
/// re-protection left, so the failsafe exits. The stop has meanwhile filled: its cancel is
/// refused and every lookup says "not found" for a while (order detail lagging, no longer open,
/// not yet in history). The stop was seen live, so "not found" never makes it gone: no exit.
#[test]
fn a_leg_seen_live_then_not_found_is_never_taken_as_gone_by_the_exit() {
    let limits = Limits {
        reprotect_max: 0,
        ..flatten()
    };
    let mut view = protected_view(Side::Sell, ProtectionMode::Separate);
    let mut now = T0 + 10_000;
    let actions = step_looked(&mut view, (T1, VenueStatus::Canceled, "0"), now, &limits);
    assert_eq!(view.trade.state, TradeState::Exiting, "{actions:?}");
    let mut all = Vec::new();
    for _ in 0..60 {
        now += 100;
        all.extend(step(
            &mut view,
            cancelled(S1, Err("code 316: not open")),
            now,
            &limits,
        ));
        now += 100;
        all.extend(step(&mut view, not_found(S1), now, &limits));
        now += 5_000;
        all.extend(step(&mut view, Event::Due, now, &limits));
    }
    assert!(
        exit_sends(&all).is_empty(),
        "no exit while the stop's end was never read back"
    );
    assert_eq!(view.trade.close_reason.as_deref(), Some("flatten_blocked"));
}

/// The same in protection: a verified stop not found while it is cleared is never replaced.
#[test]
fn a_leg_seen_live_then_not_found_never_gets_a_second_generation() {
    let limits = limits();
    let mut view = protected_view(Side::Buy, ProtectionMode::Separate);
    let mut now = T0 + 10_000;
    step_looked(&mut view, (T1, VenueStatus::Canceled, "0"), now, &limits);
    assert_eq!(view.trade.state, TradeState::Protecting);
    let mut all = Vec::new();
    for _ in 0..20 {
        now += 100;
        all.extend(step(&mut view, cancelled(S1, Err("timeout")), now, &limits));
        now += 100;
        all.extend(step(&mut view, not_found(S1), now, &limits));
        now += 2_000;
        all.extend(step(&mut view, Event::Due, now, &limits));
    }
    assert!(!all.contains(&Action::FetchMarket), "{all:?}");
    assert!(!has_send(&all));
    // Halted and retrying behind the breaker, never with a second stop.
    assert!(view.trade.recovering_since_ms.is_some());
    assert_eq!(view.trade.close_reason.as_deref(), Some("protection_stuck"));
}

#[test]
fn a_protected_leg_never_found_again_is_escalated_not_watched_forever() {
    let limits = limits();
    let mut view = protected_view(Side::Buy, ProtectionMode::Oco);
    let mut now = T0 + 10_000;
    let mut all = Vec::new();
    for _ in 0..VERIFY_ATTEMPTS_MAX {
        now += limits.watch_interval_ms;
        all.extend(step(&mut view, not_found(S1), now, &limits));
    }
    assert!(critical_alert(&all).unwrap().contains("has not been found"));
    assert!(view.trade.recovering_since_ms.is_some(), "{:?}", view.trade);
    // A leg found again in between starts the count over.
    let mut view = protected_view(Side::Buy, ProtectionMode::Oco);
    for round in 0..VERIFY_ATTEMPTS_MAX * 2 {
        now += limits.watch_interval_ms;
        if round % 5 == 4 {
            step_looked(&mut view, (S1, VenueStatus::Pending, "0"), now, &limits);
        } else {
            step(&mut view, not_found(S1), now, &limits);
        }
    }
    assert_eq!(view.trade.state, TradeState::Protected);
}

/// An OTOCO filled in full whose legs were cancelled, then two rounds of protection refused:
/// the trade recovers with the latest pair known never placed.
fn otoco_recovering_after_refused_rounds() -> (TradeView, Limits) {
    let mut view = new_view(Side::Buy, ProtectionMode::Otoco);
    let limits = limits();
    step(&mut view, Event::Due, T0, &limits);
    step(
        &mut view,
        ack(&[E, "fg-7-S0", "fg-7-T0"], None, Some("L9")),
        T0,
        &limits,
    );
    step_looked(
        &mut view,
        (E, VenueStatus::Filled, "0.5"),
        T0 + 300,
        &limits,
    );
    assert_eq!(view.trade.state, TradeState::Verifying);
    let actions = step_looked(
        &mut view,
        ("fg-7-S0", VenueStatus::Canceled, "0"),
        T0 + 500,
        &limits,
    );
    // The exchange ends a cancelled leg's sibling itself: read back before any cancel.
    assert_eq!(
        actions,
        vec![Action::Lookup {
            client_oid: "fg-7-T0".into()
        }]
    );
    let actions = step_looked(
        &mut view,
        ("fg-7-T0", VenueStatus::Canceled, "0"),
        T0 + 600,
        &limits,
    );
    assert_eq!(actions, vec![Action::FetchMarket]);
    step(&mut view, market("100", "10"), T0 + 700, &limits);
    step(
        &mut view,
        rejected(&[S1, T1], 429, "rate limited"),
        T0 + 700,
        &limits,
    );
    assert_eq!(
        step(&mut view, Event::Due, T0 + 2_000, &limits),
        vec![Action::FetchMarket]
    );
    step(&mut view, market("100", "10"), T0 + 2_000, &limits);
    let pair = ["fg-7-S2", "fg-7-T2"];
    step(
        &mut view,
        rejected(&pair, 503, "server error"),
        T0 + 2_000,
        &limits,
    );
    assert_recovering(&view);
    for oid in pair {
        let leg = view.orders.iter().find(|o| o.client_oid == oid).unwrap();
        assert_eq!(leg.status, OrderStatus::NotPlaced);
    }
    (view, limits)
}

#[test]
fn a_recovering_otoco_whose_latest_pair_was_never_placed_is_protected_again() {
    // Seed 47613: the resume read back the refused pair (never placed, so never found) as if
    // it were the OTOCO's activated legs, halted as unverified and did so forever.
    let (mut view, limits) = otoco_recovering_after_refused_rounds();
    let due = view.trade.due_ms.unwrap();
    let actions = step(&mut view, Event::Due, due, &limits);
    assert_eq!(actions, vec![Action::FetchMarket], "{:?}", view.trade);
    assert_eq!(view.trade.state, TradeState::Protecting);
    let actions = step(&mut view, market("100", "10"), due + 100, &limits);
    let oids = vec!["fg-7-S3".to_string(), "fg-7-T3".to_string()];
    assert!(
        matches!(&actions[..], [Action::Send { kind: SendKind::Oco, client_oids }] if *client_oids == oids),
        "{actions:?}"
    );
    step(
        &mut view,
        ack(&["fg-7-S3", "fg-7-T3"], None, Some("L3")),
        due + 100,
        &limits,
    );
    step_looked(
        &mut view,
        ("fg-7-S3", VenueStatus::Pending, "0"),
        due + 300,
        &limits,
    );
    step_looked(
        &mut view,
        ("fg-7-T3", VenueStatus::Pending, "0"),
        due + 300,
        &limits,
    );
    assert_eq!(view.trade.state, TradeState::Protected);
    assert_eq!(view.trade.protect_quantity, Some(d("0.4995")));
}

/// An OTOCO whose entry send went unanswered and then expired part-filled: its legs, for the
/// full quantity, rest PENDING and will never arm; cancelling them fails until the trade
/// recovers as stuck.
fn otoco_partial_fill_stuck_legs() -> (TradeView, Limits) {
    let mut view = new_view(Side::Buy, ProtectionMode::Otoco);
    let limits = limits();
    let legs = ["fg-7-S0", "fg-7-T0"];
    step(&mut view, Event::Due, T0, &limits);
    step(
        &mut view,
        ambiguous(&[E, legs[0], legs[1]], "timed out"),
        T0,
        &limits,
    );
    let actions = step_looked(
        &mut view,
        (E, VenueStatus::Expired, "0.2"),
        T0 + 600,
        &limits,
    );
    assert_eq!(view.trade.state, TradeState::Protecting);
    assert_eq!(actions.len(), 2, "{actions:?}");
    for oid in legs {
        step_looked(
            &mut view,
            (oid, VenueStatus::Pending, "0"),
            T0 + 700,
            &limits,
        );
    }
    let mut now = T0 + 700;
    for _ in 0..20 {
        if view.trade.state == TradeState::Recovering {
            break;
        }
        now = view.trade.due_ms.unwrap().max(now);
        let actions = step(&mut view, Event::Due, now, &limits);
        for action in actions {
            if let Action::Cancel { client_oid } = action {
                let refused = cancelled(&client_oid, Err("transport error: connection refused"));
                step(&mut view, refused, now, &limits);
            }
        }
    }
    assert_recovering(&view);
    assert_eq!(view.trade.close_reason.as_deref(), Some("protection_stuck"));
    (view, limits)
}

#[test]
fn pending_legs_of_an_otoco_whose_entry_expired_part_filled_are_never_taken_as_protection() {
    // Seed 51047: the resume read S0/T0 back PENDING and matching their intent, and took them
    // as protection; on the exchange they never arm, since the entry did not fill in full.
    let (mut view, limits) = otoco_partial_fill_stuck_legs();
    let due = view.trade.due_ms.unwrap();
    let actions = step(&mut view, Event::Due, due, &limits);
    assert_eq!(view.trade.state, TradeState::Protecting, "{actions:?}");
    for oid in ["fg-7-S0", "fg-7-T0"] {
        assert!(
            actions.contains(&Action::Cancel {
                client_oid: oid.into()
            }),
            "{actions:?}"
        );
        step_looked(
            &mut view,
            (oid, VenueStatus::Pending, "0"),
            due + 100,
            &limits,
        );
        assert_ne!(view.trade.state, TradeState::Protected);
    }
    for oid in ["fg-7-S0", "fg-7-T0"] {
        step(&mut view, cancelled(oid, Ok(())), due + 200, &limits);
        step_looked(
            &mut view,
            (oid, VenueStatus::Canceled, "0"),
            due + 300,
            &limits,
        );
    }
    let actions = step(&mut view, market("100", "10"), due + 400, &limits);
    assert!(
        matches!(
            &actions[..],
            [Action::Send {
                kind: SendKind::Oco,
                ..
            }]
        ),
        "{actions:?}"
    );
    assert_eq!(view.trade.protect_quantity, Some(d("0.1998")));
}
