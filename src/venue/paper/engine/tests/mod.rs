//! The engine's tests, one per behaviour: fills, codes, time and prices here; lists and the
//! ledger (amend, cancel-all, fills with fees) in their own files.

mod ledger;
mod lists;

use std::time::Duration;

use super::*;
use crate::core::domain::{ListAck, OrderReport, OrderRequest, OrderType, Side, VenueStatus};
use crate::venue::paper::settings::{PaperInstrumentSettings, PaperSettings};

fn decimal(text: &str) -> Decimal {
    Decimal::from_str_exact(text).expect("test decimal")
}

/// BTC_USD at 100 with a flat price path (volatility 0): prices move only by `set_price`.
fn config() -> PaperSettings {
    PaperSettings {
        seed: 1,
        balances: [
            ("USD".to_string(), decimal("10000")),
            ("BTC".to_string(), decimal("0")),
        ]
        .into_iter()
        .collect(),
        instruments: vec![PaperInstrumentSettings {
            symbol: "BTC_USD".to_string(),
            base: "BTC".to_string(),
            quote: "USD".to_string(),
            price_tick: decimal("0.01"),
            quantity_tick: decimal("0.0001"),
            min_quantity: decimal("0.001"),
            min_notional: decimal("1"),
            start_price: decimal("100"),
        }],
        fill_delay: Duration::from_millis(500),
        taker_fee_rate: decimal("0.001"),
        step: Duration::from_secs(1),
        volatility: Decimal::ZERO,
        candles_csv: None,
        lookback: None,
    }
}

fn hooks(engine: &mut Engine) -> TestHooks<'_> {
    TestHooks::new(engine)
}

fn engine() -> Engine {
    Engine::new(&config(), 0).expect("engine")
}

fn order(
    client_oid: &str,
    side: Side,
    order_type: OrderType,
    quantity: &str,
    price: Option<&str>,
) -> OrderRequest {
    let (limit_price, trigger_price) = match order_type {
        OrderType::Limit => (price.map(decimal), None),
        OrderType::StopLoss | OrderType::TakeProfit => (None, price.map(decimal)),
        OrderType::Market => (None, None),
    };
    OrderRequest {
        client_oid: client_oid.to_string(),
        symbol: "BTC_USD".to_string(),
        side,
        order_type,
        quantity: Some(decimal(quantity)),
        notional: None,
        price: limit_price,
        trigger_price,
    }
}

fn market(client_oid: &str, side: Side, quantity: &str) -> OrderRequest {
    order(client_oid, side, OrderType::Market, quantity, None)
}

fn stop_loss(client_oid: &str, quantity: &str, trigger: &str) -> OrderRequest {
    order(
        client_oid,
        Side::Sell,
        OrderType::StopLoss,
        quantity,
        Some(trigger),
    )
}

fn take_profit(client_oid: &str, quantity: &str, trigger: &str) -> OrderRequest {
    order(
        client_oid,
        Side::Sell,
        OrderType::TakeProfit,
        quantity,
        Some(trigger),
    )
}

fn report(engine: &Engine, client_oid: &str) -> OrderReport {
    engine.order_by_client_oid(client_oid).expect("known order")
}

fn status(engine: &Engine, client_oid: &str) -> VenueStatus {
    report(engine, client_oid).status
}

fn reject_code<T: std::fmt::Debug>(result: Result<T, EngineReject>) -> i64 {
    result.expect_err("expected a rejection").code
}

/// An engine holding 10000 USD and 1 BTC, at time 1_000.
fn engine_with_coins() -> Engine {
    let mut engine = engine();
    let mut config = config();
    config.balances.insert("BTC".to_string(), decimal("1"));
    engine.balances = config.balances;
    engine.advance_to(1_000);
    engine
}

#[test]
fn market_buy_fills_after_delay_with_base_fee() {
    let mut engine = engine();
    let ack = engine
        .create_order(0, &market("buy-1", Side::Buy, "1"))
        .expect("accepted");
    assert_eq!(ack.order_id, ORDER_ID_FIRST.to_string());
    let created = report(&engine, "buy-1");
    assert_eq!(created.status, VenueStatus::New);
    assert_eq!(created.cumulative_quantity, Decimal::ZERO);
    assert_eq!(engine.free_balance("USD"), decimal("9899.9"));
    engine.advance_to(499);
    assert_eq!(status(&engine, "buy-1"), VenueStatus::New);
    engine.advance_to(500);
    let filled = report(&engine, "buy-1");
    assert_eq!(filled.status, VenueStatus::Filled);
    assert_eq!(filled.cumulative_quantity, decimal("1"));
    assert_eq!(filled.avg_price, decimal("100"));
    assert_eq!(filled.cumulative_fee, decimal("0.001"));
    assert_eq!(filled.fee_currency, "BTC");
    assert_eq!(filled.update_time_ms, 500);
    assert_eq!(engine.balances()["BTC"], decimal("0.999"));
    assert_eq!(engine.free_balance("USD"), decimal("9900"));
    engine.check_invariants();
}

#[test]
fn market_sell_pays_fee_in_quote() {
    let mut engine = engine_with_coins();
    engine
        .create_order(1_000, &market("sell-1", Side::Sell, "1"))
        .expect("accepted");
    assert_eq!(engine.free_balance("BTC"), Decimal::ZERO);
    engine.advance_to(1_500);
    let filled = report(&engine, "sell-1");
    assert_eq!(filled.status, VenueStatus::Filled);
    assert_eq!(filled.cumulative_fee, decimal("0.1"));
    assert_eq!(filled.fee_currency, "USD");
    assert_eq!(engine.balances()["USD"], decimal("10099.9"));
    assert_eq!(engine.balances()["BTC"], Decimal::ZERO);
    engine.check_invariants();
}

#[test]
fn market_buy_by_notional_floors_quantity_at_fill_price() {
    let mut engine = engine();
    let mut request = market("notional-1", Side::Buy, "1");
    request.quantity = None;
    request.notional = Some(decimal("250"));
    engine.create_order(0, &request).expect("accepted");
    assert_eq!(report(&engine, "notional-1").quantity, Decimal::ZERO);
    hooks(&mut engine)
        .set_price("BTC_USD", decimal("30"), 100)
        .expect("price");
    engine.advance_to(500);
    let filled = report(&engine, "notional-1");
    assert_eq!(filled.status, VenueStatus::Filled);
    assert_eq!(filled.quantity, decimal("8.3333"));
    assert_eq!(
        engine.balances()["USD"],
        decimal("10000") - decimal("249.999")
    );
    engine.check_invariants();
}

#[test]
fn limit_buy_rests_then_fills_at_limit_price() {
    let mut engine = engine();
    let request = order("limit-1", Side::Buy, OrderType::Limit, "2", Some("90"));
    engine.create_order(0, &request).expect("accepted");
    assert_eq!(status(&engine, "limit-1"), VenueStatus::Active);
    hooks(&mut engine)
        .set_price("BTC_USD", decimal("90.01"), 1_000)
        .expect("price");
    assert_eq!(status(&engine, "limit-1"), VenueStatus::Active);
    hooks(&mut engine)
        .set_price("BTC_USD", decimal("89.5"), 2_000)
        .expect("price");
    let filled = report(&engine, "limit-1");
    assert_eq!(filled.status, VenueStatus::Filled);
    assert_eq!(filled.avg_price, decimal("90"));
    assert_eq!(engine.balances()["USD"], decimal("9820"));
    assert_eq!(engine.free_balance("USD"), decimal("9820"));
    engine.check_invariants();
}

#[test]
fn stop_loss_sell_triggers_when_price_falls() {
    let mut engine = engine_with_coins();
    engine
        .create_order(1_000, &stop_loss("sl-1", "1", "95"))
        .expect("accepted");
    assert_eq!(status(&engine, "sl-1"), VenueStatus::Pending);
    assert_eq!(
        engine.free_balance("BTC"),
        decimal("1"),
        "trigger orders reserve nothing"
    );
    hooks(&mut engine)
        .set_price("BTC_USD", decimal("95.01"), 2_000)
        .expect("price");
    assert_eq!(status(&engine, "sl-1"), VenueStatus::Pending);
    hooks(&mut engine)
        .set_price("BTC_USD", decimal("94.5"), 3_000)
        .expect("price");
    let filled = report(&engine, "sl-1");
    assert_eq!(filled.status, VenueStatus::Filled);
    assert_eq!(filled.avg_price, decimal("94.5"));
    assert_eq!(filled.update_time_ms, 3_000);
    engine.check_invariants();
}

#[test]
fn take_profit_sell_triggers_when_price_rises() {
    let mut engine = engine_with_coins();
    engine
        .create_order(1_000, &take_profit("tp-1", "1", "110"))
        .expect("accepted");
    hooks(&mut engine)
        .set_price("BTC_USD", decimal("109.99"), 2_000)
        .expect("price");
    assert_eq!(status(&engine, "tp-1"), VenueStatus::Pending);
    hooks(&mut engine)
        .set_price("BTC_USD", decimal("110"), 3_000)
        .expect("price");
    assert_eq!(status(&engine, "tp-1"), VenueStatus::Filled);
}

#[test]
fn duplicate_client_oid_rejected_204() {
    let mut engine = engine();
    engine
        .create_order(0, &market("same", Side::Buy, "1"))
        .expect("accepted");
    engine.advance_to(1_000);
    assert_eq!(status(&engine, "same"), VenueStatus::Filled);
    let again = engine.create_order(1_000, &market("same", Side::Buy, "1"));
    assert_eq!(reject_code(again), CODE_DUPLICATE_CLIENT_OID);
    let within_list = engine.create_oco(
        1_000,
        &stop_loss("x", "0.5", "95"),
        &take_profit("x", "0.5", "110"),
    );
    assert_eq!(reject_code(within_list), CODE_DUPLICATE_CLIENT_OID);
    let too_long = market(&"y".repeat(37), Side::Buy, "1");
    assert_eq!(
        reject_code(engine.create_order(1_000, &too_long)),
        CODE_INVALID_ARGUMENT
    );
    assert_eq!(engine.book().len(), 1);
}

#[test]
fn off_tick_quantity_rejected_213() {
    let mut engine = engine();
    let off_tick = engine.create_order(0, &market("a", Side::Buy, "0.00015"));
    assert_eq!(reject_code(off_tick), CODE_INVALID_QUANTITY);
    let negative = engine.create_order(0, &market("b", Side::Buy, "-1"));
    assert_eq!(reject_code(negative), CODE_INVALID_QUANTITY);
    let huge = engine.create_order(0, &market("c", Side::Buy, "79228162514264337593543950335"));
    assert_eq!(reject_code(huge), CODE_INVALID_QUANTITY);
}

#[test]
fn off_tick_price_rejected_308() {
    let mut engine = engine_with_coins();
    let limit = order("a", Side::Buy, OrderType::Limit, "1", Some("90.005"));
    assert_eq!(
        reject_code(engine.create_order(1_000, &limit)),
        CODE_INVALID_PRICE
    );
    let trigger = stop_loss("b", "1", "95.001");
    assert_eq!(
        reject_code(engine.create_order(1_000, &trigger)),
        CODE_INVALID_PRICE
    );
    let zero = order("c", Side::Buy, OrderType::Limit, "1", Some("0"));
    assert_eq!(
        reject_code(engine.create_order(1_000, &zero)),
        CODE_INVALID_PRICE
    );
}

#[test]
fn below_minimum_rejected_415() {
    let mut engine = engine();
    let small_quantity = engine.create_order(0, &market("a", Side::Buy, "0.0009"));
    assert_eq!(reject_code(small_quantity), CODE_BELOW_MINIMUM);
    let small_notional = order("b", Side::Buy, OrderType::Limit, "0.009", Some("100"));
    assert_eq!(
        reject_code(engine.create_order(0, &small_notional)),
        CODE_BELOW_MINIMUM
    );
    let mut small_spend = market("c", Side::Buy, "1");
    small_spend.quantity = None;
    small_spend.notional = Some(decimal("0.99"));
    assert_eq!(
        reject_code(engine.create_order(0, &small_spend)),
        CODE_BELOW_MINIMUM
    );
    let enough = order("d", Side::Buy, OrderType::Limit, "0.01", Some("100"));
    engine
        .create_order(0, &enough)
        .expect("notional 1 at the limit price");
}

#[test]
fn missing_or_extra_fields_rejected_40004() {
    let mut engine = engine();
    let mut no_quantity = market("a", Side::Buy, "1");
    no_quantity.quantity = None;
    assert_eq!(
        reject_code(engine.create_order(0, &no_quantity)),
        CODE_INVALID_ARGUMENT
    );
    let mut sell_by_notional = market("b", Side::Sell, "1");
    sell_by_notional.quantity = None;
    sell_by_notional.notional = Some(decimal("10"));
    assert_eq!(
        reject_code(engine.create_order(0, &sell_by_notional)),
        CODE_INVALID_ARGUMENT
    );
    let limit_without_price = order("c", Side::Buy, OrderType::Limit, "1", None);
    assert_eq!(
        reject_code(engine.create_order(0, &limit_without_price)),
        CODE_INVALID_ARGUMENT
    );
    let mut unknown = market("d", Side::Buy, "1");
    unknown.symbol = "DOGE_USD".to_string();
    assert_eq!(
        reject_code(engine.create_order(0, &unknown)),
        CODE_INVALID_INSTRUMENT
    );
}

#[test]
fn insufficient_balance_rejected_306() {
    let mut engine = engine();
    let too_big = engine.create_order(0, &market("a", Side::Buy, "100"));
    assert_eq!(
        reject_code(too_big),
        CODE_INSUFFICIENT_BALANCE,
        "10010 USD with the fee buffer"
    );
    let sell = engine.create_order(0, &market("b", Side::Sell, "1"));
    assert_eq!(reject_code(sell), CODE_INSUFFICIENT_BALANCE);
    engine
        .create_order(0, &market("c", Side::Buy, "60"))
        .expect("accepted");
    let second = engine.create_order(0, &market("d", Side::Buy, "40"));
    assert_eq!(
        reject_code(second),
        CODE_INSUFFICIENT_BALANCE,
        "the first one reserved"
    );
    engine.check_invariants();
}

#[test]
fn trigger_on_wrong_side_rejected_229() {
    let mut engine = engine_with_coins();
    let stop_above = engine.create_order(1_000, &stop_loss("a", "1", "101"));
    assert_eq!(reject_code(stop_above), CODE_INVALID_REFERENCE_PRICE);
    let stop_at = engine.create_order(1_000, &stop_loss("b", "1", "100"));
    assert_eq!(reject_code(stop_at), CODE_INVALID_REFERENCE_PRICE);
    let profit_below = engine.create_order(1_000, &take_profit("c", "1", "99"));
    assert_eq!(reject_code(profit_below), CODE_INVALID_REFERENCE_PRICE);
    let mut buy_stop = stop_loss("d", "1", "99");
    buy_stop.side = Side::Buy;
    assert_eq!(
        reject_code(engine.create_order(1_000, &buy_stop)),
        CODE_INVALID_REFERENCE_PRICE
    );
    buy_stop.trigger_price = Some(decimal("101"));
    engine
        .create_order(1_000, &buy_stop)
        .expect("BUY STOP_LOSS above the market");
}

#[test]
fn stop_without_funds_at_trigger_is_rejected() {
    let mut engine = engine();
    engine
        .create_order(0, &stop_loss("sl", "1", "95"))
        .expect("trigger orders are not checked against the balance");
    hooks(&mut engine)
        .set_price("BTC_USD", decimal("94"), 1_000)
        .expect("price");
    let rejected = report(&engine, "sl");
    assert_eq!(rejected.status, VenueStatus::Rejected);
    assert_eq!(rejected.reason, Some(CODE_INSUFFICIENT_BALANCE));
    assert_eq!(rejected.cumulative_quantity, Decimal::ZERO);
    assert_eq!(engine.balances()["BTC"], Decimal::ZERO);
    engine.check_invariants();
}

#[test]
fn market_buy_rejected_at_fill_when_price_outruns_funds() {
    let mut engine = engine();
    engine.balances.insert("USD".to_string(), decimal("150"));
    engine
        .create_order(0, &market("buy", Side::Buy, "1"))
        .expect("accepted");
    hooks(&mut engine)
        .set_price("BTC_USD", decimal("200"), 100)
        .expect("price");
    engine.advance_to(500);
    let rejected = report(&engine, "buy");
    assert_eq!(rejected.status, VenueStatus::Rejected);
    assert_eq!(rejected.reason, Some(CODE_INSUFFICIENT_BALANCE));
    assert_eq!(engine.free_balance("USD"), decimal("150"));
    engine.check_invariants();
}

#[test]
fn partial_fill_then_expired() {
    let mut engine = engine();
    hooks(&mut engine).set_behavior(
        "BTC_USD",
        FillBehavior {
            partial_fill_fraction: Some(decimal("0.4")),
            expire_after_partial: true,
            ..FillBehavior::default()
        },
    );
    engine
        .create_order(0, &market("buy", Side::Buy, "1"))
        .expect("accepted");
    engine.advance_to(500);
    let expired = report(&engine, "buy");
    assert_eq!(expired.status, VenueStatus::Expired);
    assert_eq!(expired.cumulative_quantity, decimal("0.4"));
    assert_eq!(expired.cumulative_fee, decimal("0.0004"));
    assert_eq!(
        engine.free_balance("USD"),
        decimal("9960"),
        "rest of the reservation released"
    );
    assert_eq!(engine.order_history("BTC_USD").expect("history").len(), 1);
    engine.check_invariants();
}

#[test]
fn partial_fill_then_rest_after_another_delay() {
    let mut engine = engine();
    hooks(&mut engine).set_behavior(
        "BTC_USD",
        FillBehavior {
            partial_fill_fraction: Some(decimal("0.4")),
            fill_delay_ms: Some(2_000),
            ..FillBehavior::default()
        },
    );
    engine
        .create_order(0, &market("buy", Side::Buy, "1"))
        .expect("accepted");
    engine.advance_to(1_999);
    assert_eq!(status(&engine, "buy"), VenueStatus::New);
    engine.advance_to(2_000);
    assert_eq!(status(&engine, "buy"), VenueStatus::Active);
    engine.advance_to(4_000);
    let filled = report(&engine, "buy");
    assert_eq!(filled.status, VenueStatus::Filled);
    assert_eq!(filled.cumulative_quantity, decimal("1"));
    engine.check_invariants();
}

#[test]
fn reject_protective_rejects_stops_and_lists() {
    let mut engine = engine_with_coins();
    let reject = EngineReject::new(50001, "internal error");
    hooks(&mut engine).set_behavior(
        "BTC_USD",
        FillBehavior {
            reject_protective: Some(reject.clone()),
            ..FillBehavior::default()
        },
    );
    let single = engine.create_order(1_000, &stop_loss("a", "1", "95"));
    assert_eq!(single.expect_err("rejected"), reject);
    let list = engine.create_oco(
        1_000,
        &stop_loss("b", "1", "95"),
        &take_profit("c", "1", "110"),
    );
    assert_eq!(list.expect_err("rejected"), reject);
    engine
        .create_order(1_000, &market("d", Side::Sell, "1"))
        .expect("plain orders are unaffected");
}

#[test]
fn cancel_unknown_is_212_and_closed_is_316() {
    let mut engine = engine();
    assert_eq!(
        reject_code(engine.cancel_order(0, "123")),
        CODE_INVALID_ORDER_ID
    );
    assert_eq!(
        reject_code(engine.cancel_list(0, "123")),
        CODE_INVALID_ORDER_ID
    );
    let ack = engine
        .create_order(0, &market("a", Side::Buy, "1"))
        .expect("accepted");
    engine.advance_to(500);
    assert_eq!(
        reject_code(engine.cancel_order(500, &ack.order_id)),
        CODE_NO_ACTIVE_ORDER
    );
}

#[test]
fn cancel_externally_cancels_only_that_oco_leg() {
    let mut engine = engine_with_coins();
    engine
        .create_oco(
            1_000,
            &stop_loss("sl", "1", "95"),
            &take_profit("tp", "1", "110"),
        )
        .expect("accepted");
    let stop_id = report(&engine, "sl").order_id;
    hooks(&mut engine)
        .cancel_externally(&stop_id, 1_500)
        .expect("cancel");
    assert_eq!(status(&engine, "sl"), VenueStatus::Canceled);
    assert_eq!(report(&engine, "sl").update_time_ms, 1_500);
    assert_eq!(status(&engine, "tp"), VenueStatus::Pending);
    hooks(&mut engine)
        .set_price("BTC_USD", decimal("111"), 2_000)
        .expect("price");
    assert_eq!(status(&engine, "tp"), VenueStatus::Filled);
}

#[test]
fn open_orders_and_history_split_by_status() {
    let mut engine = engine_with_coins();
    engine
        .create_order(1_000, &market("m", Side::Buy, "1"))
        .expect("accepted");
    engine
        .create_order(1_000, &stop_loss("s", "0.5", "90"))
        .expect("accepted");
    let limit = order("l", Side::Buy, OrderType::Limit, "1", Some("50"));
    engine.create_order(1_000, &limit).expect("accepted");
    let open: Vec<String> = engine
        .open_orders()
        .into_iter()
        .map(|report| report.client_oid)
        .collect();
    assert_eq!(open, ["m", "s", "l"]);
    engine.advance_to(2_000);
    let open: Vec<String> = engine
        .open_orders()
        .into_iter()
        .map(|report| report.client_oid)
        .collect();
    assert_eq!(open, ["s", "l"]);
    let history = engine.order_history("BTC_USD").expect("history");
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].client_oid, "m");
    let ids: Vec<String> = engine
        .book()
        .into_iter()
        .map(|report| report.order_id)
        .collect();
    assert_eq!(
        ids,
        [
            "6530219599900000000",
            "6530219599900000001",
            "6530219599900000002"
        ]
    );
}

fn walking_engine(seed: u64) -> Engine {
    let mut config = config();
    config.seed = seed;
    config.volatility = decimal("0.01");
    let mut engine = Engine::new(&config, 0).expect("engine");
    engine.advance_to(600_000);
    engine
}

#[test]
fn same_seed_same_price_path() {
    let first = walking_engine(9);
    let second = walking_engine(9);
    let other = walking_engine(10);
    let candles = |engine: &Engine| engine.candles("BTC_USD", 60, 10).expect("candles");
    assert_eq!(candles(&first), candles(&second));
    assert_ne!(candles(&first), candles(&other));
    assert_eq!(candles(&first).len(), 10);
    assert_ne!(
        first.last_price("BTC_USD"),
        Ok(decimal("100")),
        "the walk moved"
    );
}

#[test]
fn candles_aggregate_steps() {
    let mut engine = engine();
    for (time_ms, price) in [
        (10_000, "101"),
        (20_000, "97"),
        (59_000, "99"),
        (61_000, "105"),
    ] {
        hooks(&mut engine)
            .set_price("BTC_USD", decimal(price), time_ms)
            .expect("price");
    }
    engine.advance_to(125_000);
    let candles = engine.candles("BTC_USD", 60, 5).expect("candles");
    assert_eq!(
        candles.len(),
        2,
        "the candle starting at 120 s is still open"
    );
    let first = &candles[0];
    assert_eq!(first.open_time_ms, 0);
    assert_eq!(
        [first.open, first.high, first.low, first.close],
        [decimal("100"), decimal("101"), decimal("97"), decimal("99")]
    );
    let second = &candles[1];
    assert_eq!(second.open_time_ms, 60_000);
    assert_eq!(
        [second.open, second.high, second.low, second.close],
        [decimal("99"), decimal("105"), decimal("99"), decimal("105")]
    );
    assert_eq!(
        reject_code(engine.candles("BTC_USD", 60, 301)),
        CODE_INVALID_ARGUMENT
    );
    assert_eq!(
        reject_code(engine.candles("X", 60, 1)),
        CODE_INVALID_INSTRUMENT
    );
}

#[test]
fn csv_candles_replayed() {
    let directory = tempfile::tempdir().expect("tempdir");
    let path = directory.path().join("candles.csv");
    let text = "symbol,open_time_ms,open,high,low,close\n\
                BTC_USD,0,100,104,98,102\n\
                BTC_USD,60000,102,103,95.5,96\n";
    std::fs::write(&path, text).expect("write csv");
    let mut config = config();
    config.step = Duration::from_secs(15);
    config.candles_csv = Some(path.clone());
    let mut engine = Engine::new(&config, 0).expect("engine");
    engine.advance_to(120_000);
    let candles = engine.candles("BTC_USD", 60, 2).expect("candles");
    let ohlc: Vec<[Decimal; 4]> = candles
        .iter()
        .map(|candle| [candle.open, candle.high, candle.low, candle.close])
        .collect();
    let expected = [["100", "104", "98", "102"], ["102", "103", "95.5", "96"]];
    let expected: Vec<[Decimal; 4]> = expected.iter().map(|row| row.map(decimal)).collect();
    assert_eq!(ohlc, expected);
    std::fs::write(
        &path,
        "symbol,open_time_ms,open,high,low,close\nBTC_USD,0,1,1,1\n",
    )
    .expect("write");
    let error = Engine::new(&config, 0).expect_err("bad row");
    assert!(error.contains("candles.csv:2:"), "{error}");
}

#[test]
fn advance_is_bounded_for_huge_gaps() {
    let mut config = config();
    config.volatility = decimal("0.001");
    let mut engine = Engine::new(&config, 0).expect("engine");
    engine
        .create_order(0, &market("buy", Side::Buy, "1"))
        .expect("accepted");
    engine.advance_to(1_000_000_000_000);
    assert_eq!(engine.now_ms(), 1_000_000_000_000);
    assert_eq!(status(&engine, "buy"), VenueStatus::Filled);
    engine.advance_to(5);
    assert_eq!(engine.now_ms(), 1_000_000_000_000, "time never goes back");
}
