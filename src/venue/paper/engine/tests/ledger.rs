//! Amendment, cancel-all and the fill ledger with fees.

use super::*;

fn amend(order_id: &str, price: &str, quantity: &str) -> AmendRequest {
    AmendRequest {
        order_id: order_id.to_string(),
        new_client_oid: None,
        new_price: decimal(price),
        new_quantity: decimal(quantity),
    }
}

#[test]
fn amend_keeps_the_order_id_and_moves_price_quantity_and_reservation() {
    let mut engine = engine();
    let request = order("limit", Side::Buy, OrderType::Limit, "1", Some("90"));
    let ack = engine.create_order(0, &request).expect("accepted");
    assert_eq!(engine.free_balance("USD"), decimal("9909.91"));
    let mut change = amend(&ack.order_id, "80", "2");
    change.new_client_oid = Some("limit-2".to_string());
    let amended = engine.amend_order(100, &change).expect("amended");
    assert_eq!(amended.order_id, ack.order_id);
    assert_eq!(amended.client_oid, "limit-2");
    let report = engine.order_by_id(&ack.order_id).expect("known");
    assert_eq!(
        (report.price, report.quantity, report.status),
        (Some(decimal("80")), decimal("2"), VenueStatus::Active)
    );
    assert_eq!(engine.free_balance("USD"), decimal("9839.84"));
    assert_eq!(
        engine
            .order_by_client_oid("limit")
            .expect("still known")
            .order_id,
        ack.order_id,
        "the replaced client_oid stays taken"
    );
    hooks(&mut engine)
        .set_price("BTC_USD", decimal("85"), 1_000)
        .expect("price");
    assert_eq!(
        status(&engine, "limit-2"),
        VenueStatus::Active,
        "80 not crossed"
    );
    hooks(&mut engine)
        .set_price("BTC_USD", decimal("79"), 2_000)
        .expect("price");
    let filled = report_of(&engine, &ack.order_id);
    assert_eq!(
        (filled.status, filled.avg_price),
        (VenueStatus::Filled, decimal("80"))
    );
    assert_eq!(engine.free_balance("USD"), decimal("9840"));
    engine.check_invariants();
}

fn report_of(engine: &Engine, order_id: &str) -> OrderReport {
    engine.order_by_id(order_id).expect("known order")
}

#[test]
fn amend_errors_follow_the_exchange() {
    let mut engine = engine_with_coins();
    let limit = order("limit", Side::Sell, OrderType::Limit, "0.5", Some("120"));
    let ack = engine.create_order(1_000, &limit).expect("accepted");
    let code =
        |engine: &mut Engine, change: AmendRequest| reject_code(engine.amend_order(1_000, &change));
    assert_eq!(
        code(&mut engine, amend("42", "120", "1")),
        CODE_INVALID_ORDER_ID
    );
    assert_eq!(
        code(&mut engine, amend(&ack.order_id, "120", "0.5")),
        CODE_INVALID_ARGUMENT,
        "nothing changes"
    );
    assert_eq!(
        code(&mut engine, amend(&ack.order_id, "120.005", "0.5")),
        CODE_INVALID_PRICE
    );
    assert_eq!(
        code(&mut engine, amend(&ack.order_id, "120", "0.00005")),
        CODE_INVALID_QUANTITY
    );
    assert_eq!(
        code(&mut engine, amend(&ack.order_id, "120", "2")),
        CODE_INSUFFICIENT_BALANCE,
        "only 1 BTC"
    );
    let market_ack = engine
        .create_order(1_000, &market("market", Side::Buy, "0.1"))
        .expect("accepted");
    assert_eq!(
        code(&mut engine, amend(&market_ack.order_id, "100", "0.2")),
        CODE_INVALID_ARGUMENT,
        "only LIMIT orders"
    );
    engine.cancel_order(1_000, &ack.order_id).expect("cancel");
    assert_eq!(
        code(&mut engine, amend(&ack.order_id, "121", "0.5")),
        CODE_INVALID_ORDER_ID,
        "no longer open"
    );
    engine.check_invariants();
}

#[test]
fn cancel_all_cancels_only_what_the_filter_selects() {
    let mut engine = engine_with_coins();
    for (client_oid, price) in [("a", "90"), ("b", "91")] {
        let request = order(client_oid, Side::Buy, OrderType::Limit, "1", Some(price));
        engine.create_order(1_000, &request).expect("accepted");
    }
    engine
        .create_oco(
            1_000,
            &stop_loss("sl", "0.5", "90"),
            &take_profit("tp", "0.5", "110"),
        )
        .expect("oco");
    let canceled = engine.cancel_all(1_100, |report| report.list_id.is_none());
    let names: Vec<&str> = canceled.iter().map(|r| r.client_oid.as_str()).collect();
    assert_eq!(names, ["a", "b"]);
    assert!(canceled.iter().all(|r| r.status == VenueStatus::Canceled));
    assert_eq!(engine.free_balance("USD"), decimal("10000"));
    assert_eq!(engine.open_orders().len(), 2, "the OCO legs stay");
    assert!(engine.cancel_all(1_200, |_| false).is_empty());
    engine.check_invariants();
}

#[test]
fn every_fill_is_in_the_ledger_with_its_fee() {
    let mut engine = engine();
    hooks(&mut engine).set_behavior(
        "BTC_USD",
        FillBehavior {
            partial_fill_fraction: Some(decimal("0.4")),
            ..FillBehavior::default()
        },
    );
    engine
        .create_order(0, &market("buy", Side::Buy, "1"))
        .expect("accepted");
    engine.advance_to(1_000);
    assert_eq!(status(&engine, "buy"), VenueStatus::Filled);
    hooks(&mut engine).set_behavior("BTC_USD", FillBehavior::default());
    let limit = order("sell", Side::Sell, OrderType::Limit, "0.5", Some("110"));
    engine.create_order(1_000, &limit).expect("accepted");
    hooks(&mut engine)
        .set_price("BTC_USD", decimal("110"), 2_000)
        .expect("price");
    let fills = engine.fills();
    let summary: Vec<String> = fills
        .iter()
        .map(|fill| {
            format!(
                "{} {} at {} fee {} {} {} at {}",
                fill.client_oid,
                fill.quantity.normalize(),
                fill.price.normalize(),
                fill.fee.normalize(),
                fill.fee_currency,
                fill.liquidity.as_str(),
                fill.time_ms
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            "buy 0.4 at 100 fee 0.0004 BTC TAKER at 500",
            "buy 0.6 at 100 fee 0.0006 BTC TAKER at 1000",
            "sell 0.5 at 110 fee 0.055 USD MAKER at 2000",
        ]
    );
    let trade_ids: Vec<String> = fills.iter().map(|fill| fill.trade_id.clone()).collect();
    assert_eq!(trade_ids[0], TRADE_ID_FIRST.to_string());
    assert!(trade_ids.windows(2).all(|pair| pair[0] < pair[1]));
    let fee_total: Decimal = fills[..2].iter().map(|fill| fill.fee).sum();
    assert_eq!(fee_total, report(&engine, "buy").cumulative_fee);
}
