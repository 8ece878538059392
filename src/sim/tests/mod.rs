//! End-to-end tests of the simulator over loopback HTTP, with ureq as the client and requests
//! signed by `venue::cryptocom::sign`, as a real client would.

mod methods;
mod timeline;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rust_decimal::Decimal;
use serde_json::{Value, json};

use super::exchange::wall_now_ms;
use super::{FaultSpec, SimOptions, SimServer};
use crate::config::{PaperConfig, PaperInstrument};
use crate::venue::cryptocom::sign;

const API_KEY: &str = "test-key";
const API_SECRET: &str = "test-secret";
/// Polls for a fill at most this many times, `POLL_INTERVAL` apart.
const POLL_ATTEMPTS_MAX: u32 = 60;
const POLL_INTERVAL: Duration = Duration::from_millis(25);

fn decimal(text: &str) -> Decimal {
    Decimal::from_str_exact(text).expect("test decimal")
}

/// BTC_USD at 100 with a flat price path; 10000 USD and 1 BTC; fills 100 ms after acceptance.
fn paper() -> PaperConfig {
    PaperConfig {
        seed: 0,
        speed: 1,
        balances: [
            ("USD".to_string(), decimal("10000")),
            ("BTC".to_string(), decimal("1")),
        ]
        .into_iter()
        .collect::<BTreeMap<_, _>>(),
        instruments: vec![PaperInstrument {
            symbol: "BTC_USD".to_string(),
            base: "BTC".to_string(),
            quote: "USD".to_string(),
            price_tick: decimal("0.01"),
            quantity_tick: decimal("0.0001"),
            min_quantity: decimal("0.001"),
            min_notional: decimal("1"),
            start_price: decimal("100"),
        }],
        fill_delay: Duration::from_millis(100),
        taker_fee_rate: decimal("0.001"),
        step: Duration::from_secs(1),
        volatility: Decimal::ZERO,
        candles_csv: None,
    }
}

fn options(seed: u64, faults: &str) -> SimOptions {
    SimOptions {
        listen: "127.0.0.1:0".parse().expect("address"),
        seed,
        faults: faults.parse::<FaultSpec>().expect("fault spec"),
        api_key: API_KEY.to_string(),
        api_secret: API_SECRET.to_string(),
        paper: paper(),
        speed: 1,
        fill_delay: None,
    }
}

fn start(seed: u64, faults: &str) -> (SimServer, Client) {
    start_with(options(seed, faults))
}

fn start_with(options: SimOptions) -> (SimServer, Client) {
    let (server, address) = SimServer::start(options).expect("server starts");
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .new_agent();
    let client = Client {
        agent,
        base: format!("http://{address}"),
        next_id: std::cell::Cell::new(1),
    };
    (server, client)
}

struct Client {
    agent: ureq::Agent,
    base: String,
    next_id: std::cell::Cell<u64>,
}

/// Status and raw body of one answered request.
type Answer = (u16, String);

impl Client {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn read(
        response: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<Answer, ureq::Error> {
        let mut response = response?;
        let status = response.status().as_u16();
        let body = response.body_mut().read_to_string()?;
        Ok((status, body))
    }

    fn envelope(&self, method: &str, params: Value, nonce: u64, secret: &str) -> Value {
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        let sig = sign::signature(secret, method, id, API_KEY, &params, nonce);
        json!({"id": id, "method": method, "api_key": API_KEY, "params": params,
               "nonce": nonce, "sig": sig})
    }

    fn post_raw(&self, path: &str, body: &Value) -> Result<Answer, ureq::Error> {
        let request = self.agent.post(self.url(path));
        let request = request.header("Content-Type", "application/json");
        Self::read(request.send(body.to_string()))
    }

    fn try_private(&self, method: &str, params: Value) -> Result<Answer, ureq::Error> {
        let nonce = u64::try_from(wall_now_ms()).expect("after 1970");
        let body = self.envelope(method, params, nonce, API_SECRET);
        self.post_raw(&format!("/exchange/v1/{method}"), &body)
    }

    /// Status and parsed body of a signed private call.
    fn private(&self, method: &str, params: Value) -> (u16, Value) {
        let (status, body) = self.try_private(method, params).expect("answered");
        (status, serde_json::from_str(&body).expect("JSON body"))
    }

    fn public_raw(&self, method_and_query: &str) -> Answer {
        let url = self.url(&format!("/exchange/v1/{method_and_query}"));
        Self::read(self.agent.get(url).call()).expect("answered")
    }

    fn public(&self, method_and_query: &str) -> (u16, Value) {
        let (status, body) = self.public_raw(method_and_query);
        (status, serde_json::from_str(&body).expect("JSON body"))
    }

    fn book(&self) -> Vec<Value> {
        let (status, body) =
            Self::read(self.agent.get(self.url("/sim/book")).call()).expect("book");
        assert_eq!(status, 200);
        serde_json::from_str(&body).expect("book JSON")
    }

    fn book_entry(&self, client_oid: &str) -> Option<Value> {
        self.book()
            .into_iter()
            .find(|entry| entry["client_oid"] == client_oid)
    }

    /// Polls advanced or plain order detail until the order is terminal.
    fn wait_terminal(&self, method: &str, client_oid: &str) -> Value {
        for _ in 0..POLL_ATTEMPTS_MAX {
            let (_, body) = self.private(method, json!({"client_oid": client_oid}));
            let status = body["result"]["status"].as_str().unwrap_or("");
            if ["FILLED", "CANCELED", "REJECTED", "EXPIRED"].contains(&status) {
                return body["result"].clone();
            }
            std::thread::sleep(POLL_INTERVAL);
        }
        panic!("{client_oid} did not finish");
    }
}

fn market_buy(client_oid: &str, quantity: &str) -> Value {
    json!({"instrument_name": "BTC_USD", "side": "BUY", "type": "MARKET",
           "quantity": quantity, "client_oid": client_oid})
}

fn trigger(client_oid: &str, order_type: &str, ref_price: &str) -> Value {
    json!({"instrument_name": "BTC_USD", "side": "SELL", "type": order_type,
           "quantity": "0.5", "ref_price": ref_price, "client_oid": client_oid})
}

fn oco_params() -> Value {
    json!({"order_list": [
        {"instrument_name": "BTC_USD", "side": "SELL", "type": "LIMIT", "quantity": "0.5",
         "price": "110", "client_oid": "tp"},
        trigger("sl", "STOP_LOSS", "90"),
    ]})
}

fn code(body: &Value) -> i64 {
    body["code"].as_i64().expect("numeric code")
}

#[test]
fn bad_signature_and_unknown_key_are_40101() {
    let (_server, client) = start(1, "none");
    let nonce = u64::try_from(wall_now_ms()).unwrap();
    let body = client.envelope("private/user-balance", json!({}), nonce, "wrong-secret");
    let (status, text) = client
        .post_raw("/exchange/v1/private/user-balance", &body)
        .expect("answered");
    let answer: Value = serde_json::from_str(&text).unwrap();
    assert_eq!((status, code(&answer)), (401, 40101));
    assert_eq!(answer["id"], body["id"], "id echoed");
    let mut unknown_key = client.envelope("private/user-balance", json!({}), nonce, API_SECRET);
    unknown_key["api_key"] = json!("someone-else");
    let (status, _) = client
        .post_raw("/exchange/v1/private/user-balance", &unknown_key)
        .expect("answered");
    assert_eq!(status, 401);
}

#[test]
fn stale_nonce_is_40102_and_string_ids_are_accepted() {
    let (_server, client) = start(1, "none");
    let stale = u64::try_from(wall_now_ms() - 61_000).unwrap();
    let body = client.envelope("private/user-balance", json!({}), stale, API_SECRET);
    let (status, text) = client
        .post_raw("/exchange/v1/private/user-balance", &body)
        .unwrap();
    let answer: Value = serde_json::from_str(&text).unwrap();
    assert_eq!((status, code(&answer)), (400, 40102));
    let nonce = u64::try_from(wall_now_ms()).unwrap();
    let mut strings = client.envelope("private/user-balance", json!({}), nonce, API_SECRET);
    strings["id"] = json!(strings["id"].to_string());
    strings["nonce"] = json!(nonce.to_string());
    let (status, text) = client
        .post_raw("/exchange/v1/private/user-balance", &strings)
        .unwrap();
    assert_eq!(status, 200, "{text}");
}

#[test]
fn market_order_fills_and_detail_has_string_decimals() {
    let (_server, client) = start(1, "none");
    let (status, body) = client.private("private/create-order", market_buy("buy-1", "0.5"));
    assert_eq!((status, code(&body)), (200, 0), "{body}");
    assert!(body["result"]["order_id"].is_string());
    assert_eq!(body["result"]["client_oid"], "buy-1");
    let order = client.wait_terminal("private/get-order-detail", "buy-1");
    assert_eq!(order["status"], "FILLED");
    assert_eq!(order["quantity"], "0.5");
    assert_eq!(order["cumulative_quantity"], "0.5");
    assert_eq!(order["avg_price"], "100");
    assert_eq!(order["cumulative_value"], "50");
    assert_eq!(order["cumulative_fee"], "0.0005");
    assert_eq!(order["fee_instrument_name"], "BTC");
    assert_eq!(order["ref_price_type"], "NULL_VAL");
    assert_eq!(order["order_type"], "MARKET");
    assert!(order["create_time"].is_i64() && order["update_time"].is_i64());
    assert!(order["create_time_ns"].is_string());
    assert!(order.get("list_id").is_none());
    let (_, balance) = client.private("private/user-balance", json!({}));
    let positions = balance["result"]["data"][0]["position_balances"]
        .as_array()
        .unwrap();
    let btc = positions
        .iter()
        .find(|row| row["instrument_name"] == "BTC")
        .unwrap();
    assert_eq!(btc["quantity"], "1.4995");
    assert_eq!(btc["reserved_qty"], "0");
    let (_, history) = client.private("private/get-order-history", json!({"limit": 10}));
    assert_eq!(history["result"]["data"][0]["client_oid"], "buy-1");
}

#[test]
fn order_validation_codes() {
    let (_server, client) = start(1, "none");
    client.private("private/create-order", market_buy("same", "0.5"));
    let (status, body) = client.private("private/create-order", market_buy("same", "0.5"));
    assert_eq!((status, code(&body)), (400, 204), "duplicate client_oid");
    let (status, body) = client.private("private/create-order", market_buy("tick", "0.00005"));
    assert_eq!((status, code(&body)), (400, 213), "off-tick quantity");
    let number_price = json!({"instrument_name": "BTC_USD", "side": "BUY", "type": "LIMIT",
        "quantity": "0.5", "price": 90, "client_oid": "n1"});
    let (status, body) = client.private("private/create-order", number_price);
    assert_eq!((status, code(&body)), (400, 308), "price as a number");
    let number_quantity = json!({"instrument_name": "BTC_USD", "side": "BUY", "type": "MARKET",
        "quantity": 1, "client_oid": "n2"});
    let (_, body) = client.private("private/create-order", number_quantity);
    assert_eq!(code(&body), 213, "quantity as a number");
    let (status, body) = client.private("private/create-order", market_buy("rich", "1000"));
    assert_eq!((status, code(&body)), (500, 306), "insufficient balance");
    let (status, body) = client.private("private/get-order-detail", json!({"order_id": "42"}));
    assert_eq!((status, code(&body)), (200, 40401));
    let (status, body) = client.private("private/get-order-history", json!({"limit": "10"}));
    assert_eq!((status, code(&body)), (400, 40003), "string limit");
}

#[test]
fn oco_lives_in_the_advanced_namespace() {
    let (_server, client) = start(1, "none");
    let (status, body) = client.private("private/advanced/create-oco", oco_params());
    assert_eq!((status, code(&body)), (200, 0), "{body}");
    let list_id = body["result"]["list_id"]
        .as_str()
        .expect("string list_id")
        .to_string();
    let (_, open) = client.private("private/advanced/get-open-orders", json!({}));
    let rows = open["result"]["data"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    for row in rows {
        assert_eq!(row["list_id"], list_id.as_str());
        assert_eq!(row["contingency_type"], "OCO");
    }
    let (_, plain) = client.private("private/get-open-orders", json!({}));
    assert_eq!(plain["result"]["data"], json!([]));
    let (_, detail) = client.private("private/get-order-detail", json!({"client_oid": "sl"}));
    assert_eq!(
        code(&detail),
        40401,
        "plain detail does not see advanced orders"
    );
    let (_, stop) = client.private(
        "private/advanced/get-order-detail",
        json!({"client_oid": "sl"}),
    );
    assert_eq!(stop["result"]["status"], "PENDING");
    assert_eq!(stop["result"]["ref_price"], "90");
    assert_eq!(stop["result"]["ref_price_type"], "MARK_PRICE");
    let (status, body) = client.private("private/advanced/cancel-oco", json!({"list_id": list_id}));
    assert_eq!((status, code(&body)), (200, 0), "{body}");
    let book = client.book();
    assert_eq!(book.len(), 2);
    assert!(book.iter().all(|entry| entry["status"] == "CANCELED"));
    assert!(
        book.iter()
            .all(|entry| entry["list_id"] == list_id.as_str())
    );
    let (_, history) = client.private("private/advanced/get-order-history", json!({}));
    assert_eq!(history["result"]["data"].as_array().unwrap().len(), 2);
}

#[test]
fn otoco_legs_arm_after_the_entry_and_hooks_move_the_market() {
    let (_server, client) = start(1, "none");
    let params = json!({"order_list": [
        market_buy("entry", "0.5"),
        trigger("stop", "STOP_LOSS", "95"),
        trigger("profit", "TAKE_PROFIT", "105"),
    ]});
    let (_, body) = client.private("private/advanced/create-otoco", params);
    assert_eq!(code(&body), 0, "{body}");
    let entry = client.wait_terminal("private/advanced/get-order-detail", "entry");
    assert_eq!(entry["status"], "FILLED");
    let price = json!({"instrument_name": "BTC_USD", "price": "94"});
    let answer = client.post_raw("/sim/price", &price).unwrap();
    assert_eq!(answer.0, 200, "{}", answer.1);
    assert_eq!(client.book_entry("stop").unwrap()["status"], "FILLED");
    assert_eq!(client.book_entry("profit").unwrap()["status"], "CANCELED");
}

#[test]
fn advanced_create_order_and_external_cancel() {
    let (_server, client) = start(1, "none");
    let (_, body) = client.private(
        "private/advanced/create-order",
        trigger("stop", "STOP_LOSS", "90"),
    );
    assert_eq!(code(&body), 0, "{body}");
    let order_id = body["result"]["order_id"].as_str().unwrap().to_string();
    let (_, plain) = client.private(
        "private/advanced/create-order",
        json!({"instrument_name": "BTC_USD", "side": "BUY", "type": "MARKET", "quantity": "1"}),
    );
    assert_eq!(
        code(&plain),
        40004,
        "advanced/create-order takes only triggers"
    );
    let answer = client
        .post_raw("/sim/cancel", &json!({"order_id": order_id}))
        .unwrap();
    assert_eq!(answer.0, 200);
    assert_eq!(client.book_entry("stop").unwrap()["status"], "CANCELED");
    let (status, body) = client.private(
        "private/advanced/cancel-order",
        json!({"order_id": order_id}),
    );
    assert_eq!((status, code(&body)), (500, 316), "no longer open");
}

#[test]
fn public_methods() {
    let (_server, client) = start(1, "none");
    let (status, instruments) = client.public("public/get-instruments");
    assert_eq!(status, 200);
    assert_eq!(instruments["id"], -1);
    let row = &instruments["result"]["data"][0];
    assert_eq!(row["symbol"], "BTC_USD");
    assert_eq!(row["inst_type"], "CCY_PAIR");
    assert_eq!(row["price_tick_size"], "0.01");
    assert_eq!(row["qty_tick_size"], "0.0001");
    assert_eq!(
        (
            row["quote_decimals"].as_u64(),
            row["quantity_decimals"].as_u64()
        ),
        (Some(2), Some(4))
    );
    let (_, risk) = client.public("public/get-risk-parameters");
    assert_eq!(
        risk["result"]["base_currency_config"][0]["min_order_notional_usd"],
        "1"
    );
    let (_, tickers) = client.public("public/get-tickers?instrument_name=BTC_USD");
    assert_eq!(tickers["result"]["data"][0]["a"], "100");
    let (_, candles) =
        client.public("public/get-candlestick?instrument_name=BTC_USD&timeframe=5m&count=3");
    assert_eq!(candles["result"]["data"].as_array().unwrap().len(), 3);
    assert_eq!(candles["result"]["data"][0]["c"], "100");
    let (status, posted) = client
        .post_raw("/exchange/v1/public/get-instruments", &json!({}))
        .unwrap();
    let posted: Value = serde_json::from_str(&posted).unwrap();
    assert_eq!((status, code(&posted)), (400, 50001), "public via POST");
    let (status, got) = client.public("private/user-balance");
    assert_eq!((status, code(&got)), (400, 40003), "private via GET");
}

#[test]
fn rate_limit_per_method_window() {
    let (_server, client) = start(1, "none");
    let (first, _) = client.private("private/get-order-history", json!({}));
    let (second, body) = client.private("private/get-order-history", json!({}));
    assert_eq!(first, 200);
    assert_eq!((second, code(&body)), (429, 42901), "1 per second");
}

#[test]
fn lost_applies_the_order_but_drops_the_answer() {
    let (_server, client) = start(3, "lost=1");
    let result = client.try_private("private/create-order", market_buy("lost-1", "0.5"));
    assert!(
        result.is_err(),
        "connection closed without a response: {result:?}"
    );
    let entry = client
        .book_entry("lost-1")
        .expect("the order exists at the exchange");
    assert!(entry["order_id"].is_string());
    let (status, _) = client.private("private/get-open-orders", json!({}));
    assert_eq!(status, 200, "reads are not lost");
}

#[test]
fn error5xx_and_ratelimit_faults_do_not_apply() {
    let (_server, client) = start(3, "error5xx=1");
    let (status, body) = client.private("private/create-order", market_buy("e1", "0.5"));
    assert_eq!((status, code(&body)), (503, 50001));
    assert!(client.book().is_empty());
    let (_server, client) = start(3, "ratelimit=1");
    let (status, body) = client.private("private/create-order", market_buy("r1", "0.5"));
    assert_eq!((status, code(&body)), (429, 42901));
    assert!(client.book().is_empty());
}

#[test]
fn notfound_hides_new_orders_for_a_while() {
    let (_server, client) = start(3, "notfound=400");
    client.private("private/create-order", market_buy("nf", "0.5"));
    let (status, body) = client.private("private/get-order-detail", json!({"client_oid": "nf"}));
    assert_eq!((status, code(&body)), (200, 40401));
    assert!(client.book_entry("nf").is_some(), "the exchange has it");
    std::thread::sleep(Duration::from_millis(450));
    let (_, body) = client.private("private/get-order-detail", json!({"client_oid": "nf"}));
    assert_eq!(code(&body), 0);
    assert_eq!(body["result"]["client_oid"], "nf");
}

#[test]
fn malformed_truncates_reads_only() {
    let (_server, client) = start(3, "malformed=1");
    let (status, body) = client.public_raw("public/get-instruments");
    assert_eq!(status, 200);
    assert!(serde_json::from_str::<Value>(&body).is_err(), "{body}");
    let (status, body) = client.private("private/create-order", market_buy("m1", "0.5"));
    assert_eq!((status, code(&body)), (200, 0), "creates are not malformed");
}

#[test]
fn partial_fills_then_expires() {
    let (_server, client) = start(3, "partial=0.4,fill_delay=50");
    client.private("private/create-order", market_buy("p1", "0.5"));
    let order = client.wait_terminal("private/get-order-detail", "p1");
    assert_eq!(order["status"], "EXPIRED");
    assert_eq!(order["cumulative_quantity"], "0.2");
}

#[test]
fn reject_protective_rejects_triggers_and_lists() {
    let (_server, client) = start(3, "reject_protective=306");
    let (status, body) = client.private(
        "private/advanced/create-order",
        trigger("stop", "STOP_LOSS", "90"),
    );
    assert_eq!((status, code(&body)), (500, 306));
    let (_, body) = client.private("private/advanced/create-oco", oco_params());
    assert_eq!(code(&body), 306);
    let (_, body) = client.private("private/create-order", market_buy("plain", "0.5"));
    assert_eq!(code(&body), 0, "plain orders are unaffected");
}

#[test]
fn latency_delays_answers() {
    let (_server, client) = start(3, "latency=150");
    let started = Instant::now();
    client.public("public/get-tickers");
    assert!(started.elapsed() >= Duration::from_millis(150));
}

/// Statuses of the same request sequence against a fresh server.
fn fault_sequence(seed: u64) -> Vec<u16> {
    let (_server, client) = start(seed, "error5xx=0.3,ratelimit=0.2");
    (0..24)
        .map(|_| client.public_raw("public/get-tickers").0)
        .collect()
}

#[test]
fn same_seed_same_fault_sequence() {
    let first = fault_sequence(11);
    assert_eq!(first, fault_sequence(11));
    assert_ne!(first, fault_sequence(12));
    for status in [200, 429, 503] {
        assert!(first.contains(&status), "{status} in {first:?}");
    }
}

#[test]
fn fault_spec_errors_name_the_item() {
    let error = "lost=0.5,timeout=3".parse::<FaultSpec>().unwrap_err();
    assert!(error.contains("timeout=3"), "{error}");
    assert!(super::FAULTS_HELP.contains("reject_protective=CODE"));
}

#[test]
fn serve_returns_once_stopped() {
    let options = SimOptions {
        listen: "127.0.0.1:0".parse().expect("address"),
        seed: 1,
        faults: FaultSpec::default(),
        api_key: API_KEY.to_string(),
        api_secret: API_SECRET.to_string(),
        paper: paper(),
        speed: 10,
        fill_delay: None,
    };
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let thread_stop = std::sync::Arc::clone(&stop);
    let thread = std::thread::spawn(move || super::serve(options, thread_stop));
    std::thread::sleep(Duration::from_millis(100));
    let stopped_at = Instant::now();
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    thread.join().expect("no panic").expect("served");
    assert!(stopped_at.elapsed() < Duration::from_millis(500));
}

#[test]
fn oversized_bodies_and_unknown_paths_are_refused() {
    use std::io::{Read, Write};
    let (server, client) = start(1, "none");
    let mut stream = std::net::TcpStream::connect(server.address()).expect("connect");
    let head = format!(
        "POST /exchange/v1/private/create-order HTTP/1.1\r\nContent-Length: {}\r\n\r\n",
        super::http::BODY_BYTES_MAX + 1
    );
    stream.write_all(head.as_bytes()).expect("write");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read");
    assert!(answer.starts_with("HTTP/1.1 413 "), "{answer}");
    let (status, _) = Client::read(client.agent.get(client.url("/elsewhere")).call()).unwrap();
    assert_eq!(status, 404);
    let (status, body) = client.public("public/get-everything");
    assert_eq!((status, code(&body)), (400, 40002));
}

fn post_hook(client: &Client, hook: &str, body: &Value) -> Value {
    let (status, text) = client.post_raw(&format!("/sim/{hook}"), body).unwrap();
    assert_eq!(status, 200, "{text}");
    serde_json::from_str(&text).unwrap()
}

fn outage_state(client: &Client) -> Value {
    let (status, text) = Client::read(client.agent.get(client.url("/sim/outage")).call()).unwrap();
    assert_eq!(status, 200, "{text}");
    serde_json::from_str(&text).unwrap()
}

#[test]
fn a_refusing_outage_closes_api_requests_unanswered_and_keeps_the_book() {
    let (_server, client) = start(1, "none");
    client.private("private/create-order", market_buy("before", "0.5"));
    let state = post_hook(
        &client,
        "outage",
        &json!({"seconds": 0.4, "mode": "refuse"}),
    );
    assert_eq!(state["state"], "active");
    let refused = client.try_private("private/create-order", market_buy("during", "0.5"));
    assert!(refused.is_err(), "closed without an answer: {refused:?}");
    let public = Client::read(
        client
            .agent
            .get(client.url("/exchange/v1/public/get-tickers"))
            .call(),
    );
    assert!(public.is_err(), "public methods too: {public:?}");
    let book = client.book();
    assert_eq!(book.len(), 1, "nothing applied during the outage: {book:?}");
    assert_eq!(book[0]["client_oid"], "before");
    assert_eq!(outage_state(&client)["unanswered"], 2);
    std::thread::sleep(Duration::from_millis(450));
    assert_eq!(outage_state(&client)["state"], "off");
    let (status, body) =
        client.private("private/get-order-detail", json!({"client_oid": "before"}));
    assert_eq!((status, code(&body)), (200, 0), "normal service again");
}

#[test]
fn a_hanging_outage_holds_requests_until_the_client_gives_up() {
    let (_server, client) = start(1, "none");
    post_hook(&client, "outage", &json!({"seconds": 1, "mode": "hang"}));
    let impatient = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_millis(300)))
        .build()
        .new_agent();
    let started = Instant::now();
    let held = impatient
        .get(client.url("/exchange/v1/public/get-tickers"))
        .call();
    assert!(held.is_err(), "{held:?}");
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "held, not closed"
    );
    assert!(
        client.book().is_empty(),
        "the hooks answer during the outage"
    );
    // A patient client sees the connection closed unanswered when the outage ends.
    let patient = client.try_private("private/user-balance", json!({}));
    assert!(patient.is_err(), "{patient:?}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "released at the end"
    );
    let (status, _) = client.private("private/user-balance", json!({}));
    assert_eq!(status, 200);
}

#[test]
fn an_outage_armed_for_a_method_starts_after_it_and_may_swallow_its_answer() {
    let (_server, client) = start(1, "none");
    let body = json!({"seconds": 0.5, "after": "private/create-order", "answer_trigger": false});
    assert_eq!(post_hook(&client, "outage", &body)["state"], "armed");
    let (status, _) = client.private("private/user-balance", json!({}));
    assert_eq!(status, 200, "other methods do not start it");
    let lost = client.try_private("private/create-order", market_buy("trigger", "0.5"));
    assert!(lost.is_err(), "its answer is withheld: {lost:?}");
    assert!(client.book_entry("trigger").is_some(), "but it was applied");
    let state = outage_state(&client);
    assert_eq!(
        (&state["state"], &state["mode"]),
        (&json!("active"), &json!("refuse"))
    );
    assert!(
        client
            .try_private("private/user-balance", json!({}))
            .is_err()
    );
    post_hook(&client, "outage", &json!({"seconds": 0}));
    let (status, _) = client.private("private/user-balance", json!({}));
    assert_eq!(status, 200, "ended by seconds 0");
    let (status, text) = client
        .post_raw("/sim/outage", &json!({"seconds": 5, "mode": "slow"}))
        .unwrap();
    assert_eq!(status, 400, "{text}");
}
