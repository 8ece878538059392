//! Parser and mapping tests on the published docs samples and hand-made edge cases.

use std::str::FromStr;
use std::time::Duration;

use rust_decimal::Decimal;
use serde_json::{Value, json};

use super::params;
use super::wire::{self, parse_envelope};
use crate::core::clock::Clock;
use crate::core::domain::{Millis, OrderRequest, OrderType, Side, VenueStatus};
use crate::venue::VenueError;

/// A wall clock that stays at one instant.
struct FixedWall(Millis);

impl Clock for FixedWall {
    fn now_ms(&self) -> Millis {
        self.0
    }

    fn sleep(&self, _duration: std::time::Duration) {}
}

fn decimal(text: &str) -> Decimal {
    Decimal::from_str(text).unwrap()
}

/// The response sample of the docs sample whose name ends with `name`.
fn sample(name: &str) -> Value {
    let text = include_str!("../../../tests/fixtures/cryptocom-examples.json");
    let examples: Value = serde_json::from_str(text).unwrap();
    let samples = examples["samples"].as_array().unwrap();
    let found = samples
        .iter()
        .find(|sample| sample["name"].as_str().unwrap().ends_with(name))
        .unwrap_or_else(|| panic!("no sample {name}"));
    found["data"]["response_sample"].clone()
}

/// `result` of a sample, through the envelope parser (HTTP 200).
fn sample_result(name: &str) -> Value {
    parse_envelope(200, &sample(name).to_string(), None).unwrap()
}

#[test]
fn order_detail_sample_parses() {
    let result = sample_result("): private/get-order-detail");
    let report = wire::order_report(&wire::single(&result, "detail").unwrap()).unwrap();
    assert_eq!(report.order_id, "19848525");
    assert_eq!(report.client_oid, "1613571154900");
    assert_eq!(report.symbol, "BTCUSD-PERP");
    assert_eq!(report.side, Side::Buy);
    assert_eq!(report.order_type, OrderType::Limit);
    assert_eq!(report.status, VenueStatus::Active);
    assert_eq!(report.quantity, decimal("0.01"));
    assert_eq!(report.price, Some(decimal("50000")));
    assert_eq!(report.trigger_price, None);
    assert_eq!(report.cumulative_quantity, Decimal::ZERO);
    assert_eq!(report.avg_price, Decimal::ZERO, "avg_price \"0.0\"");
    assert_eq!(report.fee_currency, "USD");
    assert_eq!(report.list_id, None);
    assert_eq!(report.reason, Some(43012));
    assert_eq!(report.update_time_ms, 1_613_575_617_173);
}

#[test]
fn open_orders_sample_parses() {
    let result = sample_result("): private/get-open-orders");
    let reports = wire::order_reports(&result, "open").unwrap().0;
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0].status, VenueStatus::Active);
    assert_eq!(reports[0].reason, None);
}

#[test]
fn order_history_sample_parses() {
    let result = sample_result("): private/get-order-history");
    let reports = wire::order_reports(&result, "history").unwrap().0;
    assert_eq!(reports.len(), 2);
    assert_eq!(reports[0].status, VenueStatus::Canceled);
    let filled = &reports[1];
    assert_eq!(filled.status, VenueStatus::Filled);
    assert_eq!(filled.cumulative_quantity, decimal("0.05"));
    assert_eq!(filled.avg_price, decimal("51278.5"));
    assert_eq!(filled.cumulative_fee, decimal("1.02557"));
    assert_eq!(filled.update_time_ms, 1_613_570_791_060);
}

#[test]
fn advanced_order_detail_sample_keeps_a_numeric_list_id_exact() {
    let result = sample_result("): private/advanced/get-order-detail");
    let report = wire::order_report(&wire::single(&result, "detail").unwrap()).unwrap();
    assert_eq!(report.list_id.as_deref(), Some("6498090546073120199"));
    assert_eq!(report.symbol, "BTCUSD");
}

#[test]
fn advanced_open_orders_sample_with_stringified_scalars_parses() {
    // The 2026 OpenAPI sample: code "0", id "1", times as strings.
    let result = sample_result("2026 OpenAPI): private/advanced/get-open-orders");
    let reports = wire::order_reports(&result, "advanced open").unwrap().0;
    assert_eq!(reports.len(), 3);
    assert_eq!(reports[0].order_type, OrderType::Limit);
    assert_eq!(reports[1].order_type, OrderType::StopLoss);
    assert_eq!(reports[1].trigger_price, Some(decimal("45000")));
    assert_eq!(reports[1].price, None);
    assert_eq!(reports[2].order_type, OrderType::TakeProfit);
    assert_eq!(reports[2].trigger_price, Some(decimal("55000")));
    assert_eq!(reports[2].update_time_ms, 1_613_575_617_173);
    for report in &reports {
        assert_eq!(report.list_id.as_deref(), Some("6498090546073120100"));
    }
}

#[test]
fn order_list_detail_sample_reads_zero_prices_as_none() {
    let result = sample_result("private/advanced/get-order-list-detail");
    let reports = wire::order_reports(&result, "list detail").unwrap().0;
    assert_eq!(reports[1].status, VenueStatus::Pending);
    assert_eq!(reports[1].price, None, "limit_price \"0.00\"");
    assert_eq!(reports[1].trigger_price, Some(decimal("90000")));
    assert_eq!(reports[0].cumulative_fee, decimal("-2.5"));
}

#[test]
fn create_otoco_list_id_as_number_and_as_string() {
    let numeric = sample_result("(v1, Nov-2025 scrape): private/advanced/create-otoco");
    assert_eq!(wire::list_id(&numeric).unwrap(), "6498090546073120100");
    let text = sample_result("(v1, 2026 OpenAPI): private/advanced/create-otoco");
    assert_eq!(wire::list_id(&text).unwrap(), "6498090546073120100");
}

#[test]
fn create_and_cancel_order_samples_parse() {
    let created = sample_result("): private/create-order");
    let (order_id, client_oid) = wire::order_ack(&created, "other").unwrap();
    assert_eq!(order_id, "18342311");
    assert_eq!(client_oid, "c5f682ed-7108-4f1c-b755-972fcdca0f02");
    let cancelled = sample_result("): private/cancel-order");
    assert!(wire::order_ack(&cancelled, "x").is_ok());
}

#[test]
fn instruments_sample_parses() {
    let result = sample_result("): public/get-instruments");
    let rows = wire::rows(&result, "instruments").unwrap();
    let row = wire::instrument_row(&rows[0]).unwrap();
    assert_eq!(row.symbol, "BTCUSD-PERP");
    assert_eq!((row.base.as_str(), row.quote.as_str()), ("BTC", "USD"));
    assert_eq!(row.price_tick, decimal("0.5"));
    assert_eq!(row.quantity_tick, decimal("0.0001"));
}

#[test]
fn numeric_order_id_and_decimals_are_read_by_their_text() {
    let row = json!({"order_id": 6142909896902261394u64, "client_oid": "a", "instrument_name": "X_Y",
        "side": "sell", "type": "MARKET", "status": "FILLED", "quantity": 1.5,
        "cumulative_quantity": "1.5", "avg_price": 0.61877, "reason": "306", "create_time": "5"});
    let report = wire::order_report(&row).unwrap();
    assert_eq!(report.order_id, "6142909896902261394");
    assert_eq!(report.order_type, OrderType::Market, "`type` accepted");
    assert_eq!(report.side, Side::Sell);
    assert_eq!(report.quantity, decimal("1.5"));
    assert_eq!(report.avg_price, decimal("0.61877"));
    assert_eq!(report.reason, Some(306));
    assert_eq!(
        report.update_time_ms, 5,
        "create_time when update_time is absent"
    );
}

fn order_row() -> Value {
    json!({"order_id": "1", "client_oid": "c", "instrument_name": "BTC_USDT", "side": "BUY",
        "order_type": "LIMIT", "status": "ACTIVE", "quantity": "0.1", "limit_price": "10",
        "cumulative_quantity": "0", "update_time": 1})
}

fn malformed_message(row: &Value) -> String {
    match wire::order_report(row) {
        Err(VenueError::Malformed(message)) => message,
        other => panic!("expected Malformed, got {other:?}"),
    }
}

#[test]
fn unknown_status_is_malformed_naming_the_status() {
    let mut row = order_row();
    row["status"] = json!("PARTIALLY_FILLED");
    assert!(malformed_message(&row).contains("PARTIALLY_FILLED"));
}

#[test]
fn unsafe_fields_are_strict() {
    let mut row = order_row();
    row["quantity"] = json!("0.1.2");
    assert!(malformed_message(&row).contains("quantity"));
    let mut row = order_row();
    row["limit_price"] = json!("ten");
    assert!(malformed_message(&row).contains("limit_price"));
    let mut row = order_row();
    row.as_object_mut().unwrap().remove("order_id");
    assert!(malformed_message(&row).contains("order_id"));
    let mut row = order_row();
    row["side"] = json!("LONG");
    assert!(malformed_message(&row).contains("LONG"));
    let mut row = order_row();
    row["order_type"] = json!("STOP_LIMIT");
    assert!(malformed_message(&row).contains("STOP_LIMIT"));
    let mut row = order_row();
    row.as_object_mut().unwrap().remove("cumulative_quantity");
    assert!(malformed_message(&row).contains("cumulative_quantity"));
}

#[test]
fn code_and_id_as_strings_are_accepted() {
    let body = r#"{"id":"1747503246658","code":"0","result":{"data":[]},"extra":true}"#;
    assert_eq!(
        parse_envelope(200, body, None).unwrap(),
        json!({"data": []})
    );
    let body = r#"{"id":"7","code":"40401","message":"NOT_FOUND"}"#;
    assert_eq!(parse_envelope(200, body, None), Err(VenueError::NotFound));
}

fn error_of(http_status: u16, code: i64) -> VenueError {
    let body = json!({"id": 1, "code": code, "message": "TEXT"}).to_string();
    parse_envelope(http_status, &body, Some("oid-1")).unwrap_err()
}

#[test]
fn every_code_of_the_error_mapping() {
    assert!(matches!(error_of(429, 42901), VenueError::RateLimited(_)));
    assert!(matches!(error_of(200, 42901), VenueError::RateLimited(_)));
    assert_eq!(error_of(200, 40401), VenueError::NotFound);
    assert_eq!(error_of(404, 40401), VenueError::NotFound);
    assert_eq!(
        error_of(400, 204),
        VenueError::DuplicateClientOid("oid-1".into())
    );
    // BELOW_MIN_ORDER_SIZE: no retry of the same order can pass.
    assert_eq!(
        error_of(500, 415),
        VenueError::BelowMinimum {
            code: 415,
            message: "TEXT".into()
        }
    );
    for code in [40101, 40102, 40103, 40104] {
        let error = error_of(401, code);
        assert_eq!(
            error,
            VenueError::Auth {
                code,
                message: "TEXT".into()
            }
        );
        assert!(!error.is_ambiguous());
    }
    for (http_status, code) in [
        (400, 213),
        (400, 308),
        (500, 306),
        (400, 229),
        (400, 50007),
        (400, 140001),
        (500, 212),
        (400, 40004),
    ] {
        let error = error_of(http_status, code);
        assert_eq!(
            error,
            VenueError::Rejected {
                code,
                message: "TEXT".into()
            }
        );
        assert!(!error.is_ambiguous());
    }
    // Ambiguous outcomes: the exchange's own request timeout, and unknown codes on 5xx.
    assert!(matches!(error_of(408, 40801), VenueError::Timeout(_)));
    assert!(matches!(
        error_of(503, 999_999),
        VenueError::Server { status: 503, .. }
    ));
    assert!(matches!(
        error_of(400, 999_999),
        VenueError::Rejected { code: 999_999, .. }
    ));
}

#[test]
fn answers_without_an_envelope() {
    assert!(matches!(
        parse_envelope(429, "slow down", None),
        Err(VenueError::RateLimited(_))
    ));
    assert!(matches!(
        parse_envelope(502, "<html>bad gateway</html>", None),
        Err(VenueError::Server { status: 502, .. })
    ));
    assert!(matches!(
        parse_envelope(403, "forbidden", None),
        Err(VenueError::Server { status: 403, .. })
    ));
    assert!(matches!(
        parse_envelope(200, "{\"code\":0,", None),
        Err(VenueError::Malformed(_))
    ));
    assert!(matches!(
        parse_envelope(200, "[1]", None),
        Err(VenueError::Malformed(_))
    ));
    assert!(matches!(
        parse_envelope(200, "{\"result\":{}}", None),
        Err(VenueError::Malformed(_))
    ));
    assert!(matches!(
        parse_envelope(500, r#"{"code":0}"#, None),
        Err(VenueError::Server { status: 500, .. })
    ));
}

#[test]
fn tickers_candles_balances_and_risk_parameters() {
    let tickers = json!({"data": [{"i": "BTC_USDT", "a": "73375.26", "t": 1}]});
    assert_eq!(
        wire::last_price(&tickers, "BTC_USDT").unwrap(),
        decimal("73375.26")
    );
    let no_trade = json!({"data": [{"i": "BTC_USDT", "a": null}]});
    let error = wire::last_price(&no_trade, "BTC_USDT").unwrap_err();
    assert!(matches!(error, VenueError::Malformed(message) if message.contains("no last price")));

    let candles = json!({"interval": "1m", "data": [
        {"t": 120_000, "o": "3", "h": "4", "l": "2", "c": "3.5", "v": "1"},
        {"t": 0, "o": "1", "h": "2", "l": "0.5", "c": "1.5", "v": "1"},
        {"t": 60_000, "o": 2, "h": "3", "l": "1", "c": "2.5", "v": "1"}]});
    let closed = wire::closed_candles(&candles, 60_000, 150_000).unwrap();
    assert_eq!(closed.len(), 2, "the open candle at 120000 is dropped");
    assert_eq!(closed[0].open_time_ms, 0);
    assert_eq!(closed[1].open, decimal("2"));
    assert_eq!(
        wire::closed_candles(&candles, 60_000, 180_000)
            .unwrap()
            .len(),
        3
    );

    let balance = json!({"data": [{"instrument_name": "USD", "position_balances": [
        {"instrument_name": "USDT", "quantity": "94.34", "reserved_qty": "11"}]}]});
    assert_eq!(
        wire::free_balance(&balance, "USDT").unwrap(),
        decimal("83.34")
    );
    assert_eq!(wire::free_balance(&balance, "BTC").unwrap(), Decimal::ZERO);

    let risk = json!({"base_currency_config": [{"instrument_name": "1INCH", "order_limit": "1"},
        {"instrument_name": "AAVE", "min_order_notional_usd": "1.0"}]});
    assert_eq!(
        wire::min_notionals(&risk).unwrap(),
        vec![("AAVE".to_string(), decimal("1"))]
    );
}

fn request(order_type: OrderType) -> OrderRequest {
    OrderRequest {
        client_oid: "oid".into(),
        symbol: "BTC_USDT".into(),
        side: Side::Sell,
        order_type,
        quantity: Some(decimal("0.00120")),
        notional: None,
        price: None,
        trigger_price: None,
    }
}

#[test]
fn order_params_are_plain_strings() {
    let mut limit = request(OrderType::Limit);
    limit.price = Some(decimal("93000.50"));
    assert_eq!(
        Value::Object(params::order_params(&limit).unwrap()),
        json!({"instrument_name": "BTC_USDT", "side": "SELL", "type": "LIMIT",
            "quantity": "0.0012", "price": "93000.5", "client_oid": "oid"})
    );
    let mut stop = request(OrderType::StopLoss);
    stop.trigger_price = Some(decimal("8E+4"));
    let stop_params = params::order_params(&stop).unwrap();
    assert_eq!(stop_params["ref_price"], json!("80000"));
    assert!(stop_params.get("price").is_none());
    let mut buy = request(OrderType::Market);
    buy.quantity = None;
    buy.notional = Some(decimal("50.00"));
    assert_eq!(params::order_params(&buy).unwrap()["notional"], json!("50"));
    let list = params::list_params(&[&stop, &limit]).unwrap();
    assert_eq!(list["order_list"].as_array().unwrap().len(), 2);
    let window = super::history::HistoryRequest {
        start_ms: 1_700_000_000_000,
        end_ms: 1_700_086_400_000,
    };
    assert_eq!(
        Value::Object(params::history("BTC_USDT", window)),
        json!({"instrument_name": "BTC_USDT", "start_time": 1_700_000_000_000_i64,
            "end_time": 1_700_086_400_000_i64, "limit": 100})
    );
}

#[test]
fn inexpressible_orders_are_refused_before_sending() {
    let limit_without_price = request(OrderType::Limit);
    let stop_without_trigger = request(OrderType::StopLoss);
    let mut both = request(OrderType::Market);
    both.notional = Some(decimal("1"));
    for order in [limit_without_price, stop_without_trigger, both] {
        assert!(matches!(
            params::order_params(&order),
            Err(VenueError::Rejected { code: 40004, .. })
        ));
    }
}

#[test]
fn settings_debug_masks_the_secrets() {
    let settings = super::CryptoComSettings {
        base_url: "https://api.crypto.com/exchange/v1".into(),
        api_key: "key-visible".into(),
        api_secret: "secret-visible".into(),
        timeout: std::time::Duration::from_secs(5),
        min_notional_fallback: Decimal::ONE,
        taker_fee_rate: decimal("0.001"),
        wall: std::rc::Rc::new(FixedWall(1_700_000_000_000)),
    };
    let text = format!("{settings:?}");
    assert!(!text.contains("secret-visible") && !text.contains("key-visible"));
    assert!(text.contains("api.crypto.com"));
}

/// Decimals sent as JSON numbers are read from their text: 0.1 and a 20-digit price stay exact.
#[test]
fn json_number_decimals_decode_exactly() {
    let body = r#"{"id": 1, "code": 0, "result": {"order_id": "1", "client_oid": "fg-1-E1",
        "instrument_name": "BTC_USDT", "side": "BUY", "order_type": "LIMIT", "status": "ACTIVE",
        "quantity": 0.1, "limit_price": 12345.678901234567890, "cumulative_quantity": 0,
        "avg_price": 0.0, "update_time": 1700000000000}}"#;
    let result = parse_envelope(200, body, None).unwrap();
    let report = wire::order_report(&wire::single(&result, "detail").unwrap()).unwrap();
    assert_eq!(report.quantity, decimal("0.1"));
    assert_eq!(report.quantity.to_string(), "0.1");
    let price = report.price.unwrap();
    assert_eq!(price, decimal("12345.678901234567890"));
    assert_eq!(
        price.to_string(),
        "12345.678901234567890",
        "every digit kept"
    );
    println!("quantity {} price {price}", report.quantity);
}

/// Numbers `Decimal` cannot hold exactly are malformed, naming the field; nothing panics.
#[test]
fn json_numbers_out_of_range_are_malformed() {
    for (number, field) in [
        ("1e400", "quantity"),
        ("1.5e-30", "quantity"),
        ("-1e400", "limit_price"),
        ("1e15000000000000000000", "cumulative_quantity"),
        ("0.00000000000000000000000000001", "limit_price"),
    ] {
        let mut fields = json!({"quantity": "1", "limit_price": "2", "cumulative_quantity": "0"});
        fields[field] = json!("PLACEHOLDER");
        let row = format!(
            r#"{{"order_id": "1", "client_oid": "fg-1-E1", "instrument_name": "BTC_USDT",
            "side": "BUY", "order_type": "LIMIT", "status": "ACTIVE", "update_time": 1,
            "quantity": {}, "limit_price": {}, "cumulative_quantity": {}}}"#,
            fields["quantity"], fields["limit_price"], fields["cumulative_quantity"]
        )
        .replace("\"PLACEHOLDER\"", number);
        let body = format!(r#"{{"id": 1, "code": 0, "result": {row}}}"#);
        let result = parse_envelope(200, &body, None).unwrap();
        let error = wire::order_report(&result).unwrap_err();
        match &error {
            VenueError::Malformed(message) => assert!(message.contains(field), "{message}"),
            other => panic!("expected Malformed, got {other:?}"),
        }
        println!("{number}: {error}");
    }
}

/// The documented order object with the types fillguard never places (reference §4), as an
/// order placed by hand would show in get-open-orders.
fn manual_row(order_id: &str, order_type: &str) -> Value {
    json!({"account_id": "52e7c00f-1324-5a6z-bfgt-de445bde21a5", "order_id": order_id,
        "client_oid": "1613571154795", "order_type": order_type, "time_in_force": "GOOD_TILL_CANCEL",
        "side": "SELL", "exec_inst": [], "quantity": "0.0100", "limit_price": "49000.00",
        "order_value": "490.00", "maker_fee_rate": "0.000250", "taker_fee_rate": "0.000400",
        "avg_price": "0.00", "ref_price": "49500.00", "ref_price_type": "MARK_PRICE",
        "cumulative_quantity": "0.0000", "cumulative_value": "0.00", "cumulative_fee": "0.00",
        "status": "PENDING", "update_user_id": "fd797356-55db-48c2-a44d-157aabf702e8",
        "order_date": "2021-02-17", "instrument_name": "BTC_USDT", "fee_instrument_name": "USDT",
        "create_time": 1_613_575_617_173_i64, "create_time_ns": "1613575617173123456",
        "update_time": 1_613_575_617_173_i64})
}

fn our_stop_row() -> Value {
    json!({"order_id": "77", "client_oid": "fg-12-S1", "instrument_name": "BTC_USDT",
        "side": "SELL", "order_type": "STOP_LOSS", "status": "PENDING", "quantity": "0.1",
        "ref_price": "80000", "cumulative_quantity": "0", "update_time": 3})
}

#[test]
fn orders_of_types_fillguard_does_not_place_are_left_alone() {
    let rows = json!({"data": [
        manual_row("501", "STOP_LIMIT"),
        our_stop_row(),
        manual_row("502", "TAKE_PROFIT_LIMIT"),
        manual_row("503", "TRAILING_STOP"),
        manual_row("504", "LIMIT"),
    ]});
    let (reports, skipped) = wire::order_reports(&rows, "open").unwrap();
    let ids: Vec<&str> = reports.iter().map(|r| r.order_id.as_str()).collect();
    assert_eq!(ids, ["77", "504"], "ours and the readable manual LIMIT");
    assert_eq!(skipped, 3);
    let page = wire::history_page(&rows, "history").unwrap();
    assert_eq!((page.reports.len(), page.rows), (2, 5));
    assert_eq!(page.oldest_created_ms, Some(3), "update_time of ours");
    println!("kept {ids:?}, left out {skipped}");
}

#[test]
fn a_malformed_row_that_could_be_ours_still_fails_the_list() {
    let mut ours = manual_row("601", "STOP_LIMIT");
    ours["client_oid"] = json!("fg-12-S2");
    let mut no_client_oid = manual_row("602", "STOP_LIMIT");
    no_client_oid.as_object_mut().unwrap().remove("client_oid");
    let mut bad_quantity = our_stop_row();
    bad_quantity["quantity"] = json!("lots");
    for row in [ours, no_client_oid, bad_quantity] {
        let rows = json!({"data": [manual_row("501", "STOP_LIMIT"), row]});
        let error = wire::order_reports(&rows, "open").unwrap_err();
        assert!(matches!(error, VenueError::Malformed(_)), "{error:?}");
        println!("{error}");
    }
}

/// `WatchdogSec=` of the unit file, in seconds (`3min`, `180`, `180s`).
fn unit_watchdog() -> Duration {
    let unit = include_str!("../../../systemd/fillguard.service");
    let value = unit
        .lines()
        .find_map(|line| line.strip_prefix("WatchdogSec="))
        .expect("WatchdogSec= in the unit");
    let seconds = match value.trim().strip_suffix("min") {
        Some(minutes) => minutes.parse::<u64>().unwrap() * 60,
        None => value.trim().trim_end_matches('s').parse::<u64>().unwrap(),
    };
    Duration::from_secs(seconds)
}

#[test]
fn the_units_watchdog_is_twice_the_longest_unit_at_the_defaults() {
    use crate::config::{TURN_BUDGET_DEFAULT, VENUE_TIMEOUT_DEFAULT};
    // 60 s of budget plus one request of 10 s and its 1 s rate-limit wait.
    let longest = super::longest_unit(TURN_BUDGET_DEFAULT, VENUE_TIMEOUT_DEFAULT);
    assert_eq!(longest, Duration::from_secs(71));
    assert_eq!(
        super::turn_budget_min(VENUE_TIMEOUT_DEFAULT),
        Duration::from_secs(22)
    );
    assert!(TURN_BUDGET_DEFAULT >= super::turn_budget_min(VENUE_TIMEOUT_DEFAULT));
    let watchdog = unit_watchdog();
    assert!(
        watchdog >= longest * 2 && watchdog <= Duration::from_secs(5 * 60),
        "WatchdogSec {watchdog:?} against a longest unit of {longest:?}"
    );
}
