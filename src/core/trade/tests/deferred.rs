//! `Event::Deferred`: an action the shell did not carry out for want of time in its loop turn.
//! A create that never left is never ambiguous (its first send mark is undone, so the next
//! attempt is a first attempt again), a repeat of a send that may exist keeps its standing, and
//! a deferred lookup is never "not found": the trade is due again at once and derives the
//! action anew.

use super::*;

fn deferred(client_oids: &[&str]) -> Event {
    Event::Deferred {
        client_oids: client_oids.iter().map(|oid| oid.to_string()).collect(),
    }
}

fn entry(view: &TradeView) -> &Order {
    view.orders.iter().find(|o| o.client_oid == E).unwrap()
}

#[test]
fn a_deferred_entry_is_sent_next_turn_as_a_first_attempt() {
    let mut view = new_view(Side::Buy, ProtectionMode::Oco);
    let limits = limits();
    let actions = step(&mut view, Event::Due, T0, &limits);
    assert!(has_send(&actions), "{actions:?}");
    assert_eq!(entry(&view).sent_at_ms, Some(T0));
    let actions = step(&mut view, deferred(&[E]), T0 + 10, &limits);
    assert!(actions.is_empty(), "{actions:?}");
    assert_eq!(view.trade.state, TradeState::EntryPending);
    assert_eq!(entry(&view).status, OrderStatus::Intent);
    assert_eq!(entry(&view).sent_at_ms, None, "never sent");
    assert_eq!(view.trade.due_ms, Some(T0 + 10), "due at once");
    // Next turn: the same client_oid is sent, still an intent (not UNKNOWN), marked anew.
    let actions = step(&mut view, Event::Due, T0 + 4_000, &limits);
    assert_eq!(
        actions,
        vec![Action::Send {
            kind: SendKind::Single,
            client_oids: vec![E.into()]
        }]
    );
    assert_eq!(entry(&view).status, OrderStatus::Intent);
    assert_eq!(entry(&view).sent_at_ms, Some(T0 + 4_000));
    // Its ambiguous answer counts the nonce window from this real send.
    step(&mut view, ambiguous(&[E], "timeout"), T0 + 4_100, &limits);
    assert_eq!(entry(&view).status, OrderStatus::Unknown);
    assert_eq!(entry(&view).sent_at_ms, Some(T0 + 4_000));
}

#[test]
fn a_deferred_repeat_of_a_send_that_may_exist_stays_unknown() {
    let mut view = new_view(Side::Buy, ProtectionMode::Oco);
    let limits = limits();
    step(&mut view, Event::Due, T0, &limits);
    // The process died before the answer; the restart repeats the send.
    step(&mut view, Event::Due, T0 + 5_000, &limits);
    assert_eq!(entry(&view).status, OrderStatus::Unknown);
    step(&mut view, deferred(&[E]), T0 + 5_010, &limits);
    assert_eq!(entry(&view).status, OrderStatus::Unknown, "it may exist");
    assert_eq!(entry(&view).sent_at_ms, Some(T0 + 5_000));
}

#[test]
fn a_deferred_lookup_is_not_an_answer() {
    let mut view = filled_view(Side::Buy, ProtectionMode::Oco);
    let limits = limits();
    step(&mut view, market("100", "10"), T0, &limits);
    let before = view.clone();
    let actions = step(&mut view, Event::Due, T0 + 5_000, &limits);
    assert_eq!(actions.len(), 2, "both legs looked up: {actions:?}");
    let attempts = view.trade.attempts;
    let actions = step(&mut view, deferred(&[]), T0 + 5_010, &limits);
    assert!(actions.is_empty(), "{actions:?}");
    assert_eq!(view.trade.state, before.trade.state);
    assert_eq!(
        view.trade.attempts, attempts,
        "not counted as a failed read"
    );
    assert_eq!(view.trade.due_ms, Some(T0 + 5_010));
    for leg in [S1, T1] {
        let order = view.orders.iter().find(|o| o.client_oid == leg).unwrap();
        assert_eq!(order.status, OrderStatus::Intent, "not taken as not placed");
    }
}

#[test]
fn a_deferred_protective_pair_is_sent_again_without_becoming_unknown() {
    let mut view = filled_view(Side::Buy, ProtectionMode::Oco);
    let limits = limits();
    let actions = step(&mut view, market("100", "10"), T0, &limits);
    assert!(has_send(&actions), "{actions:?}");
    step(&mut view, deferred(&[S1, T1]), T0 + 10, &limits);
    for leg in [S1, T1] {
        let order = view.orders.iter().find(|o| o.client_oid == leg).unwrap();
        assert_eq!(
            (order.status, order.sent_at_ms),
            (OrderStatus::Intent, None)
        );
    }
    // Next turn the pair is sent again at once under the same client_oids, as a first
    // attempt: no read-back of orders that were never sent, which on a slow exchange would
    // spend that turn's budget and defer the send again, turn after turn.
    let actions = step(&mut view, Event::Due, T0 + 4_000, &limits);
    assert_eq!(
        actions,
        vec![Action::Send {
            kind: SendKind::Oco,
            client_oids: vec![S1.into(), T1.into()]
        }]
    );
    for leg in [S1, T1] {
        let order = view.orders.iter().find(|o| o.client_oid == leg).unwrap();
        assert_eq!(order.status, OrderStatus::Intent, "{order:?}");
    }
}

#[test]
fn a_separate_leg_whose_send_was_deferred_is_read_back_with_its_sibling_before_any_send() {
    let mut view = filled_view(Side::Buy, ProtectionMode::Separate);
    let limits = limits();
    let actions = step(&mut view, market("100", "10"), T0, &limits);
    assert!(has_send(&actions), "{actions:?}");
    // The stop-loss went out and was acknowledged; the take-profit's send was deferred.
    step(&mut view, ack(&[S1], Some("sl-1"), None), T0 + 5, &limits);
    step(&mut view, deferred(&[T1]), T0 + 10, &limits);
    // Both legs are read back first: a take-profit sent beside the stop-loss's read-back
    // could be answered after a "not placed" that covers it, or land on a position the stop
    // closed meanwhile. Not found, it is then sent as a first attempt.
    let actions = step(&mut view, Event::Due, T0 + 4_000, &limits);
    assert_eq!(
        actions,
        vec![
            Action::Lookup {
                client_oid: S1.into()
            },
            Action::Lookup {
                client_oid: T1.into()
            }
        ]
    );
    let take_profit = view.orders.iter().find(|o| o.client_oid == T1).unwrap();
    assert_eq!(
        (take_profit.status, take_profit.sent_at_ms),
        (OrderStatus::Intent, None)
    );
    let actions = step(&mut view, not_found(T1), T0 + 4_000, &limits);
    assert_eq!(
        actions,
        vec![Action::Send {
            kind: SendKind::Single,
            client_oids: vec![T1.into()]
        }]
    );
    let take_profit = view.orders.iter().find(|o| o.client_oid == T1).unwrap();
    assert_eq!(take_profit.status, OrderStatus::Intent, "never ambiguous");
}
