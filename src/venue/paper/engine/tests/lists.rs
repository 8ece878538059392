//! OCO and OTOCO lists: sibling cancellation, shared reservations, legs armed by the entry.

use super::*;

#[test]
fn oco_leg_fill_cancels_sibling() {
    let mut engine = engine_with_coins();
    let ack = engine
        .create_oco(
            1_000,
            &stop_loss("sl", "1", "95"),
            &take_profit("tp", "1", "110"),
        )
        .expect("accepted");
    assert_eq!(ack.list_id, LIST_ID_FIRST.to_string());
    assert_eq!(report(&engine, "sl").list_id, Some(ack.list_id.clone()));
    assert_eq!(report(&engine, "tp").list_id, Some(ack.list_id.clone()));
    hooks(&mut engine)
        .set_price("BTC_USD", decimal("111"), 2_000)
        .expect("price");
    assert_eq!(status(&engine, "tp"), VenueStatus::Filled);
    assert_eq!(status(&engine, "sl"), VenueStatus::Canceled);
    hooks(&mut engine)
        .set_price("BTC_USD", decimal("90"), 3_000)
        .expect("price");
    assert_eq!(status(&engine, "sl"), VenueStatus::Canceled);
    engine.check_invariants();
}

#[test]
fn oco_stop_fires_using_the_limit_legs_reservation() {
    let mut engine = engine_with_coins();
    let limit = order("tp", Side::Sell, OrderType::Limit, "1", Some("110"));
    engine
        .create_oco(1_000, &stop_loss("sl", "1", "95"), &limit)
        .expect("accepted");
    assert_eq!(status(&engine, "tp"), VenueStatus::Active);
    assert_eq!(engine.free_balance("BTC"), Decimal::ZERO);
    hooks(&mut engine)
        .set_price("BTC_USD", decimal("94"), 2_000)
        .expect("price");
    assert_eq!(status(&engine, "sl"), VenueStatus::Filled);
    assert_eq!(status(&engine, "tp"), VenueStatus::Canceled);
    assert_eq!(engine.balances()["BTC"], Decimal::ZERO);
    engine.check_invariants();
}

#[test]
fn oco_checks_balance_once_for_the_larger_leg() {
    let mut engine = engine_with_coins();
    let too_much = engine.create_oco(
        1_000,
        &stop_loss("sl", "1", "95"),
        &take_profit("tp", "1.1", "110"),
    );
    assert_eq!(reject_code(too_much), CODE_INSUFFICIENT_BALANCE);
    assert!(engine.book().is_empty(), "all or nothing");
    engine
        .create_oco(
            1_000,
            &stop_loss("sl", "1", "95"),
            &take_profit("tp", "1", "110"),
        )
        .expect("both legs sell the same coin once");
}

#[test]
fn oco_rejects_wrong_leg_types_and_sides() {
    let mut engine = engine_with_coins();
    let swapped = engine.create_oco(
        1_000,
        &take_profit("a", "1", "110"),
        &stop_loss("b", "1", "95"),
    );
    assert_eq!(reject_code(swapped), CODE_INVALID_ARGUMENT);
    let mut buy_leg = take_profit("c", "1", "90");
    buy_leg.side = Side::Buy;
    let mixed = engine.create_oco(1_000, &stop_loss("d", "1", "95"), &buy_leg);
    assert_eq!(reject_code(mixed), CODE_INVALID_ARGUMENT);
    let bad_second = engine.create_oco(
        1_000,
        &stop_loss("e", "1", "95"),
        &take_profit("f", "1", "99"),
    );
    assert_eq!(reject_code(bad_second), CODE_INVALID_REFERENCE_PRICE);
    assert!(engine.book().is_empty());
}

fn create_protected_buy(engine: &mut Engine, now_ms: Millis) -> ListAck {
    engine
        .create_otoco(
            now_ms,
            &market("entry", Side::Buy, "1"),
            &stop_loss("sl", "0.999", "95"),
            &take_profit("tp", "0.999", "110"),
        )
        .expect("accepted")
}

#[test]
fn otoco_legs_wait_for_complete_entry_fill() {
    let mut engine = engine();
    hooks(&mut engine).set_behavior(
        "BTC_USD",
        FillBehavior {
            partial_fill_fraction: Some(decimal("0.5")),
            ..FillBehavior::default()
        },
    );
    create_protected_buy(&mut engine, 0);
    assert_eq!(status(&engine, "sl"), VenueStatus::Pending);
    engine.advance_to(500);
    assert_eq!(status(&engine, "entry"), VenueStatus::Active);
    assert_eq!(report(&engine, "entry").cumulative_quantity, decimal("0.5"));
    hooks(&mut engine)
        .set_price("BTC_USD", decimal("94"), 600)
        .expect("price");
    assert_eq!(
        status(&engine, "sl"),
        VenueStatus::Pending,
        "entry not complete yet"
    );
    hooks(&mut engine)
        .set_price("BTC_USD", decimal("100"), 700)
        .expect("price");
    engine.advance_to(1_000);
    assert_eq!(status(&engine, "entry"), VenueStatus::Filled);
    assert_eq!(status(&engine, "sl"), VenueStatus::Pending);
    hooks(&mut engine)
        .set_price("BTC_USD", decimal("94"), 1_100)
        .expect("price");
    assert_eq!(status(&engine, "sl"), VenueStatus::Filled);
    assert_eq!(status(&engine, "tp"), VenueStatus::Canceled);
    engine.check_invariants();
}

#[test]
fn otoco_partial_entry_then_expired_legs_never_activate() {
    let mut engine = engine();
    hooks(&mut engine).set_behavior(
        "BTC_USD",
        FillBehavior {
            partial_fill_fraction: Some(decimal("0.3")),
            expire_after_partial: true,
            ..FillBehavior::default()
        },
    );
    let ack = create_protected_buy(&mut engine, 0);
    engine.advance_to(500);
    let entry = report(&engine, "entry");
    assert_eq!(entry.status, VenueStatus::Expired);
    assert_eq!(entry.cumulative_quantity, decimal("0.3"));
    hooks(&mut engine)
        .set_price("BTC_USD", decimal("90"), 1_000)
        .expect("price");
    hooks(&mut engine)
        .set_price("BTC_USD", decimal("120"), 2_000)
        .expect("price");
    assert_eq!(status(&engine, "sl"), VenueStatus::Pending);
    assert_eq!(status(&engine, "tp"), VenueStatus::Pending);
    assert_eq!(engine.open_orders().len(), 2);
    engine
        .cancel_list(3_000, &ack.list_id)
        .expect("cancel list");
    assert_eq!(status(&engine, "sl"), VenueStatus::Canceled);
    assert_eq!(status(&engine, "tp"), VenueStatus::Canceled);
    assert_eq!(
        reject_code(engine.cancel_list(3_000, &ack.list_id)),
        CODE_NO_ACTIVE_ORDER
    );
    engine.check_invariants();
}

#[test]
fn otoco_cancelling_entry_cancels_only_it() {
    let mut engine = engine();
    hooks(&mut engine).set_behavior(
        "BTC_USD",
        FillBehavior {
            never_fill: true,
            ..FillBehavior::default()
        },
    );
    create_protected_buy(&mut engine, 0);
    engine.advance_to(10_000);
    assert_eq!(status(&engine, "entry"), VenueStatus::New);
    let entry_id = report(&engine, "entry").order_id;
    engine.cancel_order(10_000, &entry_id).expect("cancel");
    assert_eq!(status(&engine, "entry"), VenueStatus::Canceled);
    assert_eq!(status(&engine, "sl"), VenueStatus::Pending);
    assert_eq!(engine.free_balance("USD"), decimal("10000"));
    engine.check_invariants();
}

#[test]
fn otoco_legs_are_judged_against_the_limit_entry_price() {
    let mut engine = engine();
    let entry = order("entry", Side::Buy, OrderType::Limit, "1", Some("80"));
    let rejected = engine.create_otoco(
        0,
        &entry,
        &stop_loss("sl", "1", "85"),
        &take_profit("tp", "1", "90"),
    );
    assert_eq!(reject_code(rejected), CODE_INVALID_REFERENCE_PRICE);
    engine
        .create_otoco(
            0,
            &entry,
            &stop_loss("sl", "1", "75"),
            &take_profit("tp", "1", "90"),
        )
        .expect("legs on the right side of the entry price");
}
