//! End-to-end tests of the client against a tiny HTTP responder on 127.0.0.1: one thread that
//! answers a fixed script of canned responses, one connection each, and stops by itself after
//! the script or a deadline.

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::rc::Rc;
use std::str::FromStr;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rust_decimal::Decimal;
use serde_json::{Value, json};

use super::history::{HISTORY_CLOCK_MARGIN_MS, HISTORY_WINDOW_MS, HistoryWalk};
use super::{CryptoComSettings, CryptoComVenue, sign};
use crate::core::clock::Clock;
use crate::core::domain::{Millis, OrderRequest, OrderType, Side, VenueStatus};
use crate::venue::{Venue, VenueError};

/// The responder gives up waiting for a connection after this long.
const RESPONDER_DEADLINE: Duration = Duration::from_secs(30);
/// Most bytes of one request the responder reads.
const REQUEST_BYTES_MAX: usize = 64 * 1024;
const SECRET: &str = "secretKey";
const API_KEY: &str = "token";

pub(super) enum Canned {
    Reply {
        status: u16,
        body: String,
    },
    /// Reads the request and holds the connection open without answering.
    Silent(Duration),
}

pub(super) fn reply(status: u16, body: Value) -> Canned {
    Canned::Reply {
        status,
        body: body.to_string(),
    }
}

pub(super) fn ok(result: Value) -> Canned {
    reply(
        200,
        json!({"id": 1, "method": "m", "code": 0, "result": result}),
    )
}

pub(super) struct Captured {
    head: String,
    body: String,
}

impl Captured {
    pub(super) fn request_line(&self) -> &str {
        self.head.lines().next().unwrap_or_default()
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap()
    }
}

pub(super) struct Responder {
    pub(super) base_url: String,
    handle: JoinHandle<Vec<Captured>>,
}

impl Responder {
    pub(super) fn start(script: Vec<Canned>) -> Responder {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let handle = std::thread::spawn(move || serve(&listener, script));
        Responder {
            base_url: format!("http://127.0.0.1:{port}/exchange/v1"),
            handle,
        }
    }

    pub(super) fn requests(self) -> Vec<Captured> {
        self.handle.join().unwrap()
    }
}

fn serve(listener: &TcpListener, script: Vec<Canned>) -> Vec<Captured> {
    let deadline = Instant::now() + RESPONDER_DEADLINE;
    let mut captured = Vec::new();
    for canned in script {
        let Some(mut stream) = accept_until(listener, deadline) else {
            break;
        };
        captured.push(read_request(&mut stream));
        match canned {
            Canned::Reply { status, body } => {
                let answer = format!(
                    "HTTP/1.1 {status} Canned\r\nContent-Type: application/json\r\n\
                     Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(answer.as_bytes());
            }
            Canned::Silent(hold) => std::thread::sleep(hold),
        }
    }
    captured
}

fn accept_until(listener: &TcpListener, deadline: Instant) -> Option<TcpStream> {
    while Instant::now() < deadline {
        match listener.accept() {
            Ok((stream, _)) => {
                stream.set_nonblocking(false).unwrap();
                stream
                    .set_read_timeout(Some(Duration::from_secs(2)))
                    .unwrap();
                return Some(stream);
            }
            Err(error) if error.kind() == ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(2));
            }
            Err(_) => return None,
        }
    }
    None
}

/// Head and body of one request (body by Content-Length).
fn read_request(stream: &mut TcpStream) -> Captured {
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 4096];
    while bytes.len() < REQUEST_BYTES_MAX {
        let text = String::from_utf8_lossy(&bytes).to_string();
        if let Some(end) = text.find("\r\n\r\n") {
            let head = text[..end].to_string();
            let length = content_length(&head);
            if bytes.len() >= end + 4 + length {
                let body = text[end + 4..end + 4 + length].to_string();
                return Captured { head, body };
            }
        }
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(read) => bytes.extend_from_slice(&chunk[..read]),
        }
    }
    Captured {
        head: String::from_utf8_lossy(&bytes).to_string(),
        body: String::new(),
    }
}

fn content_length(head: &str) -> usize {
    head.lines()
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, value)| value.trim().parse().ok())
        .unwrap_or(0)
}

/// The system clock, as the shell gives it to the client.
struct TestWall;

impl Clock for TestWall {
    fn now_ms(&self) -> Millis {
        wall_now_ms()
    }

    fn sleep(&self, duration: Duration) {
        std::thread::sleep(duration);
    }
}

fn wall_now_ms() -> Millis {
    let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    Millis::try_from(since_epoch.as_millis()).unwrap()
}

pub(super) fn venue_at(base_url: &str, timeout: Duration) -> CryptoComVenue {
    CryptoComVenue::new(CryptoComSettings {
        base_url: base_url.to_string(),
        api_key: API_KEY.into(),
        api_secret: SECRET.into(),
        timeout,
        min_notional_fallback: Decimal::from(5),
        taker_fee_rate: Decimal::from_str("0.001").unwrap(),
        wall: Rc::new(TestWall),
    })
    .unwrap()
}

pub(super) fn venue(responder: &Responder) -> CryptoComVenue {
    venue_at(&responder.base_url, Duration::from_secs(3))
}

pub(super) fn market_sell() -> OrderRequest {
    OrderRequest {
        client_oid: "agent-0001".into(),
        symbol: "BTC_USDT".into(),
        side: Side::Sell,
        order_type: OrderType::Market,
        quantity: Some(Decimal::from_str("0.00120").unwrap()),
        notional: None,
        price: None,
        trigger_price: None,
    }
}

#[test]
fn create_order_sends_a_signed_body_with_string_params() {
    let responder = Responder::start(vec![ok(
        json!({"client_oid": "agent-0001", "order_id": "6142909896902261394"}),
    )]);
    let ack = venue(&responder).create_order(&market_sell()).unwrap();
    assert_eq!(ack.order_id, "6142909896902261394");
    assert_eq!(ack.client_oid, "agent-0001");

    let requests = responder.requests();
    let request = &requests[0];
    assert_eq!(
        request.request_line(),
        "POST /exchange/v1/private/create-order HTTP/1.1"
    );
    assert!(
        request
            .head
            .to_ascii_lowercase()
            .contains("content-type: application/json")
    );
    let body = request.json();
    let params = json!({"instrument_name": "BTC_USDT", "side": "SELL", "type": "MARKET",
        "quantity": "0.0012", "client_oid": "agent-0001"});
    assert_eq!(body["params"], params);
    assert_eq!(body["method"], "private/create-order");
    assert_eq!(body["api_key"], API_KEY);
    let id = body["id"].as_u64().expect("id is a JSON integer");
    let nonce = body["nonce"].as_u64().expect("nonce is a JSON integer");
    let now = u64::try_from(wall_now_ms()).unwrap();
    assert!(now.abs_diff(nonce) < 60_000, "nonce is wall-clock ms");
    let expected = sign::signature(SECRET, "private/create-order", id, API_KEY, &params, nonce);
    assert_eq!(body["sig"], expected);
    assert!(!request.body.contains(SECRET));
}

#[test]
fn public_calls_are_gets_with_a_query() {
    let responder = Responder::start(vec![
        ok(json!({"data": [{"i": "BTC_USDT", "a": "73375.26"}]})),
        ok(json!({"data": [{"t": 0, "o": "1", "h": "1", "l": "1", "c": "1"}]})),
    ]);
    let mut venue = venue(&responder);
    let price = venue.last_price("BTC_USDT").unwrap();
    assert_eq!(price, Decimal::from_str("73375.26").unwrap());
    let candles = venue.candles("BTC_USDT", 3600, 2).unwrap();
    assert_eq!(candles.len(), 1);
    let requests = responder.requests();
    assert_eq!(
        requests[0].request_line(),
        "GET /exchange/v1/public/get-tickers?instrument_name=BTC_USDT HTTP/1.1"
    );
    assert_eq!(
        requests[1].request_line(),
        "GET /exchange/v1/public/get-candlestick?instrument_name=BTC_USDT&timeframe=1h&count=3 HTTP/1.1"
    );
}

#[test]
fn a_server_that_never_answers_is_a_timeout_within_the_timeout() {
    let responder = Responder::start(vec![Canned::Silent(Duration::from_millis(1500))]);
    let mut venue = venue_at(&responder.base_url, Duration::from_millis(300));
    let started = Instant::now();
    let error = venue.create_order(&market_sell()).unwrap_err();
    assert!(matches!(error, VenueError::Timeout(_)), "{error:?}");
    assert!(error.is_ambiguous());
    assert!(started.elapsed() < Duration::from_millis(1000));
    responder.requests();
}

#[test]
fn a_refused_connection_is_a_transport_error() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut venue = venue_at(
        &format!("http://127.0.0.1:{port}/exchange/v1"),
        Duration::from_secs(2),
    );
    let error = venue.create_order(&market_sell()).unwrap_err();
    assert!(matches!(error, VenueError::Transport(_)), "{error:?}");
}

#[test]
fn http_429_is_rate_limited_and_only_reads_are_retried() {
    let too_many = || reply(429, json!({"code": 42901, "message": "TOO_MANY_REQUESTS"}));
    let responder = Responder::start(vec![too_many(), too_many(), too_many(), too_many()]);
    let mut venue = venue(&responder);
    let error = venue.create_order(&market_sell()).unwrap_err();
    assert!(matches!(error, VenueError::RateLimited(_)), "{error:?}");
    let error = venue.free_balance("BTC").unwrap_err();
    assert!(matches!(error, VenueError::RateLimited(_)), "{error:?}");
    let requests = responder.requests();
    assert_eq!(
        requests.len(),
        4,
        "one create, then a read tried three times"
    );
    assert!(requests[0].request_line().contains("create-order"));
    assert!(requests[3].request_line().contains("user-balance"));
}

#[test]
fn unreadable_answers() {
    let responder = Responder::start(vec![
        Canned::Reply {
            status: 500,
            body: "<html>Internal Server Error</html>".into(),
        },
        Canned::Reply {
            status: 200,
            body: "{\"code\":0,\"result\":".into(),
        },
    ]);
    let mut venue = venue(&responder);
    let error = venue.create_order(&market_sell()).unwrap_err();
    assert!(
        matches!(error, VenueError::Server { status: 500, .. }),
        "{error:?}"
    );
    let error = venue.create_order(&market_sell()).unwrap_err();
    assert!(matches!(error, VenueError::Malformed(_)), "{error:?}");
    responder.requests();
}

#[test]
fn a_client_oid_unknown_to_both_apis_is_none() {
    let not_found = json!({"id": 1, "code": 40401, "message": "NOT_FOUND"});
    let responder = Responder::start(vec![reply(200, not_found.clone()), reply(404, not_found)]);
    assert_eq!(venue(&responder).order_by_client_oid("oid-9"), Ok(None));
    let requests = responder.requests();
    assert!(
        requests[0]
            .request_line()
            .contains(" /exchange/v1/private/get-order-detail ")
    );
    assert!(
        requests[1]
            .request_line()
            .contains("/private/advanced/get-order-detail")
    );
    assert_eq!(requests[1].json()["params"], json!({"client_oid": "oid-9"}));
}

fn stop_loss_row() -> Value {
    json!({"order_id": "77", "client_oid": "sl-1", "instrument_name": "BTC_USDT", "side": "SELL",
        "order_type": "STOP_LOSS", "status": "PENDING", "quantity": "0.1", "ref_price": "80000",
        "cumulative_quantity": "0", "list_id": 6_498_090_546_073_120_100u64, "update_time": 3})
}

#[test]
fn a_trigger_leg_is_found_on_the_advanced_api() {
    let responder = Responder::start(vec![
        reply(200, json!({"code": 40401, "message": "NOT_FOUND"})),
        ok(stop_loss_row()),
    ]);
    let report = venue(&responder)
        .order_by_client_oid("sl-1")
        .unwrap()
        .unwrap();
    assert_eq!(report.status, VenueStatus::Pending);
    assert_eq!(report.list_id.as_deref(), Some("6498090546073120100"));
    responder.requests();
}

#[test]
fn a_protective_leg_is_read_back_from_plain_order_detail_first_then_the_advanced_one() {
    // A fired trigger leg's market order may carry the client_oid in the plain family, and
    // that report holds the fills: plain first for every role, the advanced family when the
    // plain one does not know the order.
    let not_found = json!({"id": 1, "code": 40401, "message": "NOT_FOUND"});
    let mut row = stop_loss_row();
    row["client_oid"] = json!("fg-0a1b2c3d-12-S1");
    let responder = Responder::start(vec![reply(200, not_found.clone()), ok(row)]);
    let report = venue(&responder)
        .order_by_client_oid("fg-0a1b2c3d-12-S1")
        .unwrap()
        .unwrap();
    assert_eq!(report.status, VenueStatus::Pending);
    let lines: Vec<String> = responder
        .requests()
        .iter()
        .map(|request| request.request_line().to_string())
        .collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(
        lines[0].contains(" /exchange/v1/private/get-order-detail "),
        "{lines:?}"
    );
    assert!(
        lines[1].contains("/private/advanced/get-order-detail"),
        "{lines:?}"
    );
    // Known to the plain family: its report is taken, the advanced family is not asked.
    let mut known = stop_loss_row();
    known["client_oid"] = json!("fg-0a1b2c3d-12-T1");
    known["status"] = json!("ACTIVE");
    let responder = Responder::start(vec![ok(known)]);
    let report = venue(&responder)
        .order_by_client_oid("fg-0a1b2c3d-12-T1")
        .unwrap()
        .unwrap();
    assert_eq!(report.status, VenueStatus::Active);
    assert_eq!(responder.requests().len(), 1);
}

#[test]
fn open_orders_merge_plain_and_advanced() {
    let mut duplicate = stop_loss_row();
    duplicate["status"] = json!("ACTIVE");
    let responder = Responder::start(vec![
        ok(json!({"data": [duplicate]})),
        ok(json!({"data": [stop_loss_row()]})),
    ]);
    let reports = venue(&responder).open_orders().unwrap();
    assert_eq!(reports.len(), 1, "deduplicated by order_id");
    let requests = responder.requests();
    assert_eq!(requests[0].json()["params"], json!({}));
    assert!(
        requests[1]
            .request_line()
            .contains("/private/advanced/get-open-orders")
    );
}

#[test]
fn instruments_are_cached_with_the_minimum_notional() {
    let instruments = json!({"data": [{"symbol": "BTC_USDT", "base_ccy": "BTC",
        "quote_ccy": "USDT", "price_tick_size": "0.01", "qty_tick_size": "0.00001"},
        {"symbol": "CRO_USDT", "base_ccy": "CRO", "quote_ccy": "USDT",
        "price_tick_size": "0.00001", "qty_tick_size": "1"}]});
    let risk = json!({"base_currency_config": [
        {"instrument_name": "BTC", "min_order_notional_usd": "1.0"}]});
    let responder = Responder::start(vec![ok(instruments), ok(risk)]);
    let mut venue = venue(&responder);
    let btc = venue.instrument("BTC_USDT").unwrap();
    assert_eq!(btc.min_notional, Decimal::ONE);
    assert_eq!(btc.min_quantity, Decimal::from_str("0.00001").unwrap());
    assert_eq!(btc.taker_fee_rate, Decimal::from_str("0.001").unwrap());
    let cro = venue.instrument("CRO_USDT").unwrap();
    assert_eq!(cro.min_notional, Decimal::from(5), "configured fallback");
    let error = venue.instrument("NOPE_USDT").unwrap_err();
    assert!(matches!(error, VenueError::Rejected { code: 209, .. }));
    assert_eq!(
        responder.requests().len(),
        2,
        "one fetch of each, then the cache"
    );
}

/// The watchlist's start-up check: every symbol the exchange lists, from the same cached
/// `get-instruments` answer the orders use; a row marked not tradable is left out.
#[test]
fn listed_symbols_come_from_the_instrument_cache_without_untradable_rows() {
    let instruments = json!({"data": [{"symbol": "BTC_USDT", "base_ccy": "BTC",
        "quote_ccy": "USDT", "price_tick_size": "0.01", "qty_tick_size": "0.00001",
        "tradable": true},
        {"symbol": "OLD_USDT", "base_ccy": "OLD", "quote_ccy": "USDT",
        "price_tick_size": "0.01", "qty_tick_size": "1", "tradable": false},
        {"symbol": "ODD_USDT", "base_ccy": "ODD"}]});
    let risk = json!({"base_currency_config": []});
    let responder = Responder::start(vec![ok(instruments), ok(risk)]);
    let mut venue = venue(&responder);
    let listed = venue.listed_symbols().unwrap();
    let names: Vec<&str> = listed.iter().map(String::as_str).collect();
    assert_eq!(names, ["BTC_USDT", "ODD_USDT"]);
    assert!(venue.instrument("BTC_USDT").is_ok());
    assert_eq!(responder.requests().len(), 2, "one fetch of each");
}

#[test]
fn self_check_names_the_failing_call() {
    let responder = Responder::start(vec![
        ok(json!({"data": []})),
        reply(401, json!({"code": 40101, "message": "UNAUTHORIZED"})),
    ]);
    let error = venue(&responder).self_check().unwrap_err();
    match error {
        VenueError::Auth { code, message } => {
            assert_eq!(code, 40101);
            assert!(message.contains("private/user-balance"), "{message}");
        }
        other => panic!("expected Auth, got {other:?}"),
    }
    responder.requests();
}

#[test]
fn lists_and_cancels_use_the_advanced_api() {
    let responder = Responder::start(vec![
        ok(json!({"list_id": 6_498_090_546_073_120_100u64})),
        reply(200, json!({"code": 40401, "message": "NOT_FOUND"})),
        ok(Value::Null),
        reply(500, json!({"code": 212, "message": "INVALID_ORDERID"})),
        ok(json!({"order_id": "77", "client_oid": "sl-1"})),
    ]);
    let mut venue = venue(&responder);
    let mut stop = market_sell();
    stop.order_type = OrderType::StopLoss;
    stop.trigger_price = Some(Decimal::from(80_000));
    let mut profit = market_sell();
    profit.client_oid = "agent-0002".into();
    profit.order_type = OrderType::Limit;
    profit.price = Some(Decimal::from(108_000));
    let ack = venue.create_oco(&stop, &profit).unwrap();
    assert_eq!(ack.list_id, "6498090546073120100");
    venue.cancel_list("BTC_USDT", &ack.list_id).unwrap();
    venue.cancel_order("BTC_USDT", "77").unwrap();

    let requests = responder.requests();
    let lines: Vec<&str> = requests.iter().map(Captured::request_line).collect();
    assert!(lines[0].contains("/private/advanced/create-oco "));
    assert!(lines[1].contains("/private/advanced/cancel-oco "));
    assert!(lines[2].contains("/private/advanced/cancel-otoco "));
    assert!(lines[3].contains("/private/cancel-order "));
    assert!(lines[4].contains("/private/advanced/cancel-order "));
    let legs = requests[0].json()["params"]["order_list"].clone();
    assert_eq!(legs[0]["ref_price"], "80000");
    assert_eq!(legs[1]["price"], "108000");
    assert_eq!(
        requests[1].json()["params"],
        json!({"list_id": "6498090546073120100"})
    );
}

#[test]
fn otoco_sends_three_legs_entry_first_and_signs_them() {
    let responder = Responder::start(vec![ok(json!({"list_id": "6498090546073120100"}))]);
    let mut entry = market_sell();
    entry.client_oid = "entry".into();
    entry.side = Side::Buy;
    entry.order_type = OrderType::Limit;
    entry.price = Some(Decimal::from(93_000));
    let mut stop = market_sell();
    stop.client_oid = "sl".into();
    stop.order_type = OrderType::StopLoss;
    stop.trigger_price = Some(Decimal::from(80_000));
    let mut profit = market_sell();
    profit.client_oid = "tp".into();
    profit.order_type = OrderType::TakeProfit;
    profit.trigger_price = Some(Decimal::from(108_000));
    let ack = venue(&responder)
        .create_otoco(&entry, &stop, &profit)
        .unwrap();
    assert_eq!(ack.list_id, "6498090546073120100");

    let body = responder.requests()[0].json();
    let legs = body["params"]["order_list"].as_array().unwrap().clone();
    let oids: Vec<&str> = legs
        .iter()
        .map(|leg| leg["client_oid"].as_str().unwrap())
        .collect();
    assert_eq!(oids, ["entry", "sl", "tp"]);
    assert_eq!(legs[2]["type"], "TAKE_PROFIT");
    assert!(
        legs.iter()
            .flat_map(|leg| leg.as_object().unwrap().values())
            .all(Value::is_string),
        "no arrays or numbers inside legs"
    );
    let id = body["id"].as_u64().unwrap();
    let nonce = body["nonce"].as_u64().unwrap();
    let method = "private/advanced/create-otoco";
    let expected = sign::signature(SECRET, method, id, API_KEY, &body["params"], nonce);
    assert_eq!(body["sig"], expected);
}

/// A walk over both history endpoints back to `since_ms`, answered by `pages`, one
/// `(plain, advanced)` pair per round, then by empty pages up to `requests` answers: returns the
/// orders and the requests.
fn history_since(
    since_ms: Millis,
    pages: Vec<(Value, Value)>,
    requests: usize,
) -> (Vec<crate::core::domain::OrderReport>, Vec<Captured>) {
    let mut script: Vec<Canned> = pages
        .into_iter()
        .flat_map(|(plain, advanced)| [ok(plain), ok(advanced)])
        .collect();
    while script.len() < requests {
        script.push(ok(json!({"data": []})));
    }
    let responder = Responder::start(script);
    let reports = venue(&responder)
        .order_history("BTC_USDT", since_ms)
        .unwrap();
    (reports, responder.requests())
}

/// `history_since` for an order as old as the walk's seven-day bound or older.
fn history_with(
    pages: Vec<(Value, Value)>,
    requests: usize,
) -> (Vec<crate::core::domain::OrderReport>, Vec<Captured>) {
    history_since(0, pages, requests)
}

/// The `(start_time, end_time)` of a history request.
fn window_of(request: &Captured) -> (Millis, Millis) {
    let params = request.json()["params"].clone();
    let start = params["start_time"].as_i64().expect("start_time");
    let end = params["end_time"].as_i64().expect("end_time");
    (start, end)
}

/// A filled order's history row created at `created_ms`.
fn filled_row(order_id: &str, created_ms: Millis) -> Value {
    let mut row = stop_loss_row();
    row["order_id"] = json!(order_id);
    row["status"] = json!("FILLED");
    row["create_time"] = json!(created_ms);
    row["create_time_ns"] = json!(format!("{created_ms}000000"));
    row
}

/// An order sent a minute ago costs one request per endpoint: one window from the margin
/// before it to the margin after now.
#[test]
fn order_history_of_an_order_sent_a_minute_ago_is_one_request_per_endpoint() {
    let since = wall_now_ms() - 60_000;
    let started = Instant::now();
    let pages = vec![(json!({"data": []}), json!({"data": []}))];
    let (reports, requests) = history_since(since, pages, 2);
    assert!(reports.is_empty());
    assert_eq!(requests.len(), 2, "one window on 2 endpoints");
    assert!(
        requests[0]
            .request_line()
            .contains(" /exchange/v1/private/get-order-history ")
    );
    assert!(
        requests[1]
            .request_line()
            .contains("/private/advanced/get-order-history ")
    );
    let (start, end) = window_of(&requests[0]);
    assert_eq!(window_of(&requests[1]), (start, end), "same window on both");
    assert_eq!(start, since - HISTORY_CLOCK_MARGIN_MS);
    assert!(end >= since + 60_000 + HISTORY_CLOCK_MARGIN_MS);
    assert!(end <= wall_now_ms() + HISTORY_CLOCK_MARGIN_MS);
    println!(
        "history of an order sent a minute ago: {} requests in {} ms",
        requests.len(),
        started.elapsed().as_millis()
    );
}

/// An order sent three days ago is walked back to in day windows, and no further.
#[test]
fn order_history_walks_back_to_an_order_sent_three_days_ago() {
    let since = wall_now_ms() - 3 * HISTORY_WINDOW_MS;
    let empty = || (json!({"data": []}), json!({"data": []}));
    let pages = vec![
        empty(),
        empty(),
        empty(),
        (
            json!({"data": [filled_row("300", since + 2_000)]}),
            json!({"data": []}),
        ),
    ];
    let (reports, requests) = history_since(since, pages, 8);
    assert_eq!(requests.len(), 8, "4 windows on 2 endpoints");
    let (start, end) = window_of(&requests[6]);
    assert!(
        (start..end).contains(&(since + 2_000)),
        "the row's window was asked for"
    );
    assert_eq!(
        start,
        since - HISTORY_CLOCK_MARGIN_MS,
        "the oldest window ends the walk"
    );
    let ids: Vec<&str> = reports
        .iter()
        .map(|report| report.order_id.as_str())
        .collect();
    assert_eq!(ids, ["300"]);
}

/// The earliest creation time is by the agent's clock: an order the exchange stamped five
/// minutes before it is still read.
#[test]
fn order_history_reads_the_clock_margin_before_since() {
    let since = wall_now_ms() - 60_000;
    let created = since - 5 * 60_000;
    let pages = vec![(
        json!({"data": [filled_row("301", created)]}),
        json!({"data": []}),
    )];
    let (reports, requests) = history_since(since, pages, 2);
    assert_eq!(requests.len(), 2);
    let (start, end) = window_of(&requests[0]);
    assert!(
        (start..end).contains(&created),
        "the row's window was asked for"
    );
    assert_eq!(reports.len(), 1, "found");
    let walk = HistoryWalk::new(since, since);
    let first = walk.next_request().expect("a request");
    assert_eq!(first.start_ms, since - HISTORY_CLOCK_MARGIN_MS);
    assert_eq!(first.end_ms, since + HISTORY_CLOCK_MARGIN_MS);
}

/// A `since_ms` older than the seven-day bound walks seven windows, like no bound at all.
#[test]
fn history_walk_is_bounded_by_seven_days_whatever_since() {
    let now = 1_700_000_000_000;
    let mut walk = HistoryWalk::new(now, now - 30 * HISTORY_WINDOW_MS);
    let mut windows = Vec::new();
    while let Some(request) = walk.next_request() {
        windows.push(request);
        let page = super::history::HistoryPage {
            reports: Vec::new(),
            rows: 0,
            oldest_created_ms: None,
        };
        walk.record(page, "test").unwrap();
    }
    assert_eq!(windows.len(), 7);
    let oldest = windows.last().unwrap();
    assert_eq!(
        oldest.start_ms,
        now + HISTORY_CLOCK_MARGIN_MS - 7 * HISTORY_WINDOW_MS
    );
    assert!(walk.finish("test").unwrap().is_empty());
}

#[test]
fn order_history_merges_both_apis_sorted_by_update_time() {
    let mut filled = stop_loss_row();
    filled["order_id"] = json!("78");
    filled["status"] = json!("ACTIVE");
    filled["update_time"] = json!(9);
    let mut cancelled = stop_loss_row();
    cancelled["status"] = json!("CANCELED");
    let pages = vec![(json!({"data": [filled]}), json!({"data": [cancelled]}))];
    let (reports, requests) = history_with(pages, 14);
    let ids: Vec<&str> = reports
        .iter()
        .map(|report| report.order_id.as_str())
        .collect();
    assert_eq!(ids, ["77", "78"]);
    for request in &requests {
        let params = &request.json()["params"];
        assert_eq!(params["limit"], json!(100), "limit is a JSON number");
        assert_eq!(params["instrument_name"], "BTC_USDT");
    }
    assert!(
        requests[1]
            .request_line()
            .contains("/private/advanced/get-order-history")
    );
}

/// The walk for an order older than its bound reads seven one-day windows back from now on both
/// endpoints, interleaved, each request a signed POST through the rate limiter (one per second
/// per endpoint).
#[test]
fn order_history_walks_seven_days_back_in_day_windows() {
    let before = wall_now_ms();
    let started = Instant::now();
    let (reports, requests) = history_with(Vec::new(), 14);
    assert!(reports.is_empty());
    assert_eq!(requests.len(), 14, "7 windows on 2 endpoints");
    assert!(
        started.elapsed() >= Duration::from_secs(5),
        "history calls are paced at one per second per endpoint"
    );
    let mut previous_start: Option<i64> = None;
    for (index, pair) in requests.chunks(2).enumerate() {
        assert!(
            pair[0]
                .request_line()
                .contains(" /exchange/v1/private/get-order-history ")
        );
        assert!(
            pair[1]
                .request_line()
                .contains("/private/advanced/get-order-history ")
        );
        let params = pair[0].json()["params"].clone();
        assert_eq!(params, pair[1].json()["params"], "same window on both");
        let start = params["start_time"]
            .as_i64()
            .expect("start_time is a JSON number");
        let end = params["end_time"]
            .as_i64()
            .expect("end_time is a JSON number");
        assert_eq!(end - start, HISTORY_WINDOW_MS, "window {index}");
        match previous_start {
            None => assert!(
                end >= before + HISTORY_CLOCK_MARGIN_MS
                    && end <= wall_now_ms() + HISTORY_CLOCK_MARGIN_MS,
                "the first ends the clock margin after now"
            ),
            Some(previous) => assert_eq!(end, previous, "windows adjoin"),
        }
        previous_start = Some(start);
    }
    println!(
        "history walk: {} requests in {} ms",
        requests.len(),
        started.elapsed().as_millis()
    );
}

/// A full page is followed, in the same window, by one ending just after its oldest row; rows
/// read twice are dropped by order id.
#[test]
fn a_full_history_page_is_followed_by_the_next_page_of_its_window() {
    let now = wall_now_ms();
    let row = |index: i64| {
        let mut row = stop_loss_row();
        row["order_id"] = json!(format!("{}", 1000 + index));
        row["status"] = json!("FILLED");
        row["create_time"] = json!(now - 1_000 * index);
        row["create_time_ns"] = json!(format!("{}000000", now - 1_000 * index));
        row
    };
    let first: Vec<Value> = (0..100).map(row).collect();
    let second: Vec<Value> = (99..130).map(row).collect();
    let pages = vec![
        (json!({"data": first}), json!({"data": []})),
        (json!({"data": second}), json!({"data": []})),
    ];
    let (reports, requests) = history_with(pages, 15);
    assert_eq!(reports.len(), 130, "the boundary row once");
    let plain: Vec<Value> = requests
        .iter()
        .filter(|request| {
            request
                .request_line()
                .contains(" /exchange/v1/private/get-order-history ")
        })
        .map(|request| request.json()["params"].clone())
        .collect();
    assert_eq!(
        plain[1]["start_time"], plain[0]["start_time"],
        "same window"
    );
    assert_eq!(
        plain[1]["end_time"],
        json!(now - 99_000 + 1),
        "just after the oldest row"
    );
    assert_eq!(
        plain[2]["end_time"], plain[0]["start_time"],
        "then the previous window"
    );
    assert_eq!(requests.len(), 15, "one extra page on the plain endpoint");
}

#[test]
fn history_walk_stops_at_its_request_bound() {
    let mut walk = HistoryWalk::new(1_700_000_000_000, 0);
    let mut sent = 0;
    while let Some(request) = walk.next_request() {
        sent += 1;
        let full = (0..100)
            .map(|index| stop_loss_report(&format!("{sent}-{index}")))
            .collect();
        let page = super::history::HistoryPage {
            reports: full,
            rows: 100,
            oldest_created_ms: Some(request.end_ms - 10),
        };
        walk.record(page, "test").unwrap();
    }
    assert_eq!(
        u64::try_from(sent).unwrap(),
        super::history::HISTORY_PAGES_MAX
    );
    let error = walk.finish("private/get-order-history").unwrap_err();
    assert!(matches!(error, VenueError::RateLimited(_)), "{error:?}");
    println!("{error}");
}

fn stop_loss_report(order_id: &str) -> crate::core::domain::OrderReport {
    let mut row = stop_loss_row();
    row["order_id"] = json!(order_id);
    super::wire::order_report(&row).unwrap()
}
